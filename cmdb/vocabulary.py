"""The controlled vocabulary: CI classes, CI types and relationship types.

Declared once, as data, in ``cmdb/vocab/*.yaml`` (``core.yaml`` holds classes,
relationship types and provider-neutral CI types; one file a provider holds its
types). This module loads the files once and answers questions about them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import yaml

from cmdb.errors import ValidationError

__all__ = [
    "AttributeKind",
    "CIType",
    "RelationshipType",
    "Vocabulary",
    "vocabulary",
]

AttributeKind = Literal["str", "int", "float", "bool", "list", "map"]
Impact = Literal["all", "any", "none"]

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list, tuple),
    "map": (dict,),
}


@dataclass(frozen=True, slots=True)
class CIType:
    name: str
    ci_class: str
    description: str
    attributes: dict[str, AttributeKind] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        return self.name.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class RelationshipType:
    name: str
    impact: Impact
    description: str


@dataclass(frozen=True, slots=True)
class Vocabulary:
    classes: dict[str, str]
    types: dict[str, CIType]
    relationship_types: dict[str, RelationshipType]
    lifecycle_states: tuple[str, ...]
    criticality_levels: tuple[str, ...]

    def ci_type(self, name: str) -> CIType:
        try:
            return self.types[name]
        except KeyError:
            raise ValidationError(f"unknown CI type {name!r}") from None

    def relationship_type(self, name: str) -> RelationshipType:
        try:
            return self.relationship_types[name]
        except KeyError:
            known = ", ".join(sorted(self.relationship_types))
            raise ValidationError(f"unknown relationship type {name!r} (known: {known})") from None

    def class_of(self, type_name: str) -> str:
        return self.ci_type(type_name).ci_class

    def types_of_class(self, ci_class: str) -> list[str]:
        return sorted(t.name for t in self.types.values() if t.ci_class == ci_class)

    def check_attributes(self, type_name: str, attributes: dict[str, Any]) -> None:
        """Raise ValidationError when a declared attribute has the wrong kind.

        Undeclared attributes are allowed (sources know more than we declare) but
        must be JSON values; declared ones must match their kind.
        """
        declared = self.ci_type(type_name).attributes
        for key, value in attributes.items():
            if value is None:
                continue
            kind = declared.get(key)
            if kind is None:
                continue
            if kind in ("int", "float") and isinstance(value, bool):
                raise ValidationError(f"attribute {key!r} of {type_name} must be {kind}, got bool")
            if not isinstance(value, _PYTHON_TYPES[kind]):
                raise ValidationError(
                    f"attribute {key!r} of {type_name} must be {kind}, got {type(value).__name__}"
                )


def _load() -> Vocabulary:
    folder = resources.files("cmdb") / "vocab"
    core = yaml.safe_load((folder / "core.yaml").read_text(encoding="utf-8"))
    classes: dict[str, str] = dict(core["classes"])
    rel_types = {
        name: RelationshipType(name, spec["impact"], spec["description"])
        for name, spec in core["relationship_types"].items()
    }
    types: dict[str, CIType] = {}
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, spec in (data.get("types") or {}).items():
            if name in types:
                raise ValidationError(f"CI type {name!r} declared twice (again in {path.name})")
            types[name] = CIType(
                name=name,
                ci_class=spec["class"],
                description=spec.get("description", ""),
                attributes=dict(spec.get("attributes") or {}),
            )
    return Vocabulary(
        classes=classes,
        types=types,
        relationship_types=rel_types,
        lifecycle_states=tuple(core["lifecycle_states"]),
        criticality_levels=tuple(core["criticality_levels"]),
    )


@functools.cache
def vocabulary() -> Vocabulary:
    """The vocabulary, loaded once per process."""
    return _load()
