"""Which tags say who owns a resource, who pays for it, and where it belongs.

A ``TagMap`` lists, for each common CI field it fills (owner, cost_centre,
environment, business_unit), the tag keys that may carry it, in order of
preference. Keys are matched exactly first, then case-insensitively, so one
spelling covers ``Owner``/``owner``/``OWNER``. Load one from a YAML or JSON file::

    owner: [Owner, team, Contact]
    cost_centre: [CostCenter, cost-centre]
    environment: [Environment, env, Stage]
    business_unit: [BusinessUnit, bu]

A field left out of the file keeps its default spellings; an empty list turns
it off.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cmdb.errors import ConfigError

__all__ = ["DEFAULT_TAG_KEYS", "TAG_FIELDS", "TAG_MAP_ENV", "TagMap"]

log = logging.getLogger(__name__)

TAG_MAP_ENV = "CMDB_AWS_TAG_MAP"
"""Environment variable naming a tag-map file (the CLI's ``--tag-map``)."""

TAG_FIELDS: tuple[str, ...] = ("owner", "cost_centre", "environment", "business_unit")

DEFAULT_TAG_KEYS: dict[str, tuple[str, ...]] = {
    "owner": ("Owner", "owner", "Team", "team", "OwnerTeam", "owner-team", "Contact", "Maintainer"),
    "cost_centre": ("CostCentre", "CostCenter", "cost-centre", "cost-center", "cost_centre", "cost_center", "BillingCode"),
    "environment": ("Environment", "environment", "Env", "env", "Stage", "stage", "Tier"),
    "business_unit": ("BusinessUnit", "business-unit", "business_unit", "BU", "Division", "Department"),
}


@dataclass(frozen=True, slots=True)
class TagMap:
    """Field name -> tag keys that carry it, most preferred first."""

    keys: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_TAG_KEYS))

    def fields(self, tags: Mapping[str, str]) -> dict[str, str]:
        """The common fields these tags set (fields without a tag are left out)."""
        found: dict[str, str] = {}
        if not tags:
            return found
        lowered: dict[str, str] | None = None
        for name, spellings in self.keys.items():
            value = next((tags[k] for k in spellings if tags.get(k)), None)
            if value is None:
                if lowered is None:
                    lowered = {k.lower(): v for k, v in tags.items() if v}
                value = next((lowered[k.lower()] for k in spellings if k.lower() in lowered), None)
            if value is not None:
                found[name] = value.strip()
        return found

    @classmethod
    def from_mapping(cls, data: object, where: str = "tag map") -> TagMap:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping of field -> list of tag keys")
        keys = dict(DEFAULT_TAG_KEYS)
        for name, spellings in data.items():
            if name not in TAG_FIELDS:
                raise ConfigError(f"{where}: unknown field {name!r}", hint=f"use one of {', '.join(TAG_FIELDS)}")
            if isinstance(spellings, str):
                spellings = [spellings]
            if not isinstance(spellings, Sequence) or not all(isinstance(s, str) and s for s in spellings):
                raise ConfigError(f"{where}: {name} must be a list of tag keys")
            keys[name] = tuple(spellings)
        return cls(keys)

    @classmethod
    def load(cls, path: str | Path | None = None) -> TagMap:
        """The map in ``path``, else in the file named by $CMDB_AWS_TAG_MAP, else the default."""
        if path is None:
            path = os.environ.get(TAG_MAP_ENV) or None
        if path is None:
            return cls()
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the tag map {path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"the tag map {path} is not valid YAML/JSON: {exc}") from None
        log.debug("tag map loaded from %s", path)
        return cls.from_mapping(data or {}, str(path))
