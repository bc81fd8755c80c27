"""Classification: owner, cost centre, business unit, environment and criticality.

Each field is read from tags or labels by a configurable mapping (several
spellings per field, values normalised: ``prd`` -> ``production``) and, when
still empty, inherited from a related CI along the edges the mapping names (a
volume takes the owner of the instance that depends on it; a pod the owner of
its namespace). Every value written says where it came from in the CI's
``provenance``: ``tag:<key>`` or ``inherited:<ci id>``.

Values a source or a person set are never overridden; values this module set
earlier are recomputed on each run (and cleared when their origin is gone).
Writes go through :meth:`cmdb.sync.SyncEngine.set_fields`, so each change has a
change record with the actor ``classification``.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cmdb.compliance.errors import RuleError
from cmdb.model import CI
from cmdb.store.base import CIFilter, RelFilter, Store
from cmdb.sync import SyncEngine
from cmdb.vocabulary import vocabulary

__all__ = [
    "CLASSIFIED_FIELDS",
    "ClassificationMapping",
    "ClassificationReport",
    "InheritRule",
    "OwnershipRow",
    "classify",
    "derive_from_tags",
    "load_mapping",
    "ownership_report",
]

log = logging.getLogger(__name__)

CLASSIFIED_FIELDS: tuple[str, ...] = ("owner", "cost_centre", "business_unit", "environment", "criticality")
_OURS = ("tag:", "inherited:")
_LIVE_STATES = ("planned", "provisioned", "active", "optimise", "stale")
_UNTAGGABLE_CLASSES = frozenset({"team", "commercial"})


@dataclass(frozen=True, slots=True)
class InheritRule:
    rel: str
    direction: str  # "dependent": the target inherits from the source; "target": the source from the target
    types: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()

    def child_ok(self, type_name: str) -> bool:
        return not self.types or any(fnmatch.fnmatchcase(type_name, p) for p in self.types)

    def parent_ok(self, type_name: str) -> bool:
        return not self.parents or any(fnmatch.fnmatchcase(type_name, p) for p in self.parents)


@dataclass(frozen=True, slots=True)
class ClassificationMapping:
    fields: dict[str, tuple[str, ...]]
    values: dict[str, dict[str, str]]
    inherit: tuple[InheritRule, ...]
    inherited_fields: tuple[str, ...]


def _parse_mapping(data: dict[str, Any], base: ClassificationMapping | None, origin: str) -> ClassificationMapping:
    unknown = set(data) - {"fields", "values", "inherit", "inherited_fields"}
    if unknown:
        raise RuleError(f"{origin}: unknown sections {', '.join(sorted(unknown))}")
    fields = dict(base.fields) if base else {}
    for name, spellings in (data.get("fields") or {}).items():
        if name not in CLASSIFIED_FIELDS:
            raise RuleError(f"{origin}: fields.{name} is not one of {', '.join(CLASSIFIED_FIELDS)}")
        if isinstance(spellings, str):
            spellings = [spellings]
        fields[name] = tuple(str(s) for s in spellings)
    values = dict(base.values) if base else {}
    for name, table in (data.get("values") or {}).items():
        values[name] = {str(k).lower(): str(v) for k, v in (table or {}).items()}
    inherit = base.inherit if base else ()
    if "inherit" in data:
        rules = []
        for spec in data["inherit"] or []:
            direction = spec.get("from")
            if direction not in ("dependent", "target"):
                raise RuleError(f"{origin}: inherit.from must be 'dependent' or 'target', not {direction!r}")
            vocabulary().relationship_type(str(spec.get("rel")))
            rules.append(
                InheritRule(
                    str(spec["rel"]), direction, tuple(spec.get("types") or ()), tuple(spec.get("parents") or ())
                )
            )
        inherit = tuple(rules)
    inherited = tuple(data.get("inherited_fields") or (base.inherited_fields if base else ()))
    return ClassificationMapping(fields, values, inherit, inherited)


@functools.cache
def _bundled() -> ClassificationMapping:
    text = (resources.files("cmdb.compliance") / "classification.yaml").read_text(encoding="utf-8")
    return _parse_mapping(yaml.safe_load(text), None, "classification.yaml")


def load_mapping(path: str | Path | None = None) -> ClassificationMapping:
    """The bundled mapping, with the sections of ``path`` (or ``CMDB_CLASSIFICATION``) replacing its own."""
    path = path or os.environ.get("CMDB_CLASSIFICATION") or None
    if path is None:
        return _bundled()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RuleError(f"{path}: cannot read the classification mapping: {exc}") from None
    if not isinstance(data, dict):
        raise RuleError(f"{path}: expected a mapping")
    return _parse_mapping(data, _bundled(), str(path))


def derive_from_tags(ci: CI, mapping: ClassificationMapping) -> dict[str, tuple[str, str]]:
    """Field -> (value, provenance) read from the CI's tags, by the mapping."""
    lowered: dict[str, tuple[str, str]] = {}
    for key, value in ci.tags.items():
        if value.strip():
            lowered.setdefault(key.lower(), (key, value.strip()))
    levels = vocabulary().criticality_levels
    found: dict[str, tuple[str, str]] = {}
    for name, spellings in mapping.fields.items():
        for spelling in spellings:
            hit = lowered.get(spelling.lower())
            if hit is None:
                continue
            key, value = hit
            table = mapping.values.get(name)
            if table:
                value = table.get(value.lower(), value if name != "criticality" else "")
            if name == "criticality" and value not in levels:
                log.debug("tag %s=%s of %s is not a criticality level", key, hit[1], ci.id)
                continue
            found[name] = (value, f"tag:{key}")
            break
    return found


@dataclass(slots=True)
class ClassificationReport:
    examined: int = 0
    changed: dict[str, dict[str, tuple[str, str, str]]] = field(default_factory=dict)  # id -> field -> (before, after, why)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {"examined": self.examined, "changed_cis": len(self.changed)}
        for fields in self.changed.values():
            for name, (_, _, why) in fields.items():
                origin = why.split(":", 1)[0] if why else "cleared"
                counts[f"{name}.{origin}"] = counts.get(f"{name}.{origin}", 0) + 1
        return counts


@dataclass(slots=True)
class _Node:
    type: str
    current: dict[str, tuple[str, str]]  # field -> (value, provenance) as stored
    fixed: dict[str, str]  # fields set by a source or a person: never touched
    result: dict[str, tuple[str, str]]  # field -> (value, provenance) computed now


def _parents(store: Store, mapping: ClassificationMapping, nodes: dict[str, _Node]) -> dict[str, list[str]]:
    """Child id -> the ids it may inherit from, over every inheritance rule (one pass over the edges)."""
    by_rel: dict[str, list[InheritRule]] = {}
    for rule in mapping.inherit:
        by_rel.setdefault(rule.rel, []).append(rule)
    allowed: dict[tuple[int, str, str], bool] = {}  # (rule, child type, parent type) -> may inherit

    def ok(index: int, rule: InheritRule, child_type: str, parent_type: str) -> bool:
        key = (index, child_type, parent_type)
        if key not in allowed:
            allowed[key] = rule.child_ok(child_type) and rule.parent_ok(parent_type)
        return allowed[key]

    parents: dict[str, list[str]] = {}
    if not by_rel:
        return parents
    for rel in store.iter_relationships(RelFilter(types=tuple(by_rel), lifecycle_states=("active",))):
        for rule in by_rel.get(rel.type, ()):
            child, parent = (rel.to_id, rel.from_id) if rule.direction == "dependent" else (rel.from_id, rel.to_id)
            c, p = nodes.get(child), nodes.get(parent)
            if c is None or p is None or not ok(id(rule), rule, c.type, p.type):
                continue
            parents.setdefault(child, []).append(parent)
    return parents


def classify(
    store: Store,
    engine: SyncEngine | None = None,
    mapping: ClassificationMapping | None = None,
    *,
    actor: str = "classification",
    dry_run: bool = False,
    max_depth: int = 8,
) -> ClassificationReport:
    """Derive and inherit classification fields for every live CI; write what changed."""
    mapping = mapping or load_mapping()
    engine = engine or SyncEngine(store)
    report = ClassificationReport()
    nodes: dict[str, _Node] = {}
    for ci in store.iter_cis(CIFilter(lifecycle_states=_LIVE_STATES)):
        report.examined += 1
        current = {name: (getattr(ci, name), ci.provenance.get(name, "")) for name in CLASSIFIED_FIELDS}
        fixed = {
            name: value for name, (value, why) in current.items() if value and not why.startswith(_OURS)
        }
        derived = {k: v for k, v in derive_from_tags(ci, mapping).items() if k not in fixed}
        nodes[ci.id] = _Node(ci.type, current, fixed, derived)

    def value(node: _Node, name: str) -> str:
        if name in node.fixed:
            return node.fixed[name]
        return node.result.get(name, ("", ""))[0]

    parents = _parents(store, mapping, nodes)
    # First every parent must offer the same value; then parents with nothing to offer are ignored.
    for strict in (True, False):
        for _ in range(max_depth):
            progressed = False
            for child_id, parent_ids in parents.items():
                child = nodes[child_id]
                for name in mapping.inherited_fields:
                    if value(child, name):
                        continue
                    offers = {pid: value(nodes[pid], name) for pid in parent_ids}
                    distinct = {v for v in offers.values() if v}
                    if len(distinct) == 1 and (all(offers.values()) or not strict):
                        chosen = distinct.pop()
                        source = min(pid for pid, v in offers.items() if v == chosen)
                        child.result[name] = (chosen, f"inherited:{source}")
                        progressed = True
            if not progressed:
                break

    writes: dict[str, dict[str, tuple[str, str]]] = {}
    for ci_id, node in nodes.items():
        for name in CLASSIFIED_FIELDS:
            if name in node.fixed:
                continue
            old_value, old_why = node.current[name]
            new_value, new_why = node.result.get(name, ("", ""))
            if (old_value, old_why if old_value else "") == (new_value, new_why):
                continue
            if not new_value and not old_why.startswith(_OURS):
                continue
            writes.setdefault(ci_id, {})[name] = (new_value, new_why)
            report.changed.setdefault(ci_id, {})[name] = (old_value, new_value, new_why)
    if dry_run or not writes:
        return report
    with store.transaction():
        for ci_id, values in writes.items():
            after = engine.set_fields(ci_id, actor=actor, **{k: v for k, (v, _) in values.items()})
            for name, (new_value, why) in values.items():
                if new_value:
                    after.provenance[name] = why
                else:
                    after.provenance.pop(name, None)
            store.put_cis([after])
    log.info("classification: %d CIs examined, %d changed", report.examined, len(report.changed))
    return report


@dataclass(frozen=True, slots=True)
class OwnershipRow:
    provider: str
    scope: str
    cis: int
    untagged: int
    ownerless: int
    unclassified: int  # missing any of owner, cost centre, environment

    def as_dict(self) -> dict[str, Any]:
        def pct(n: int) -> float:
            return round(100.0 * n / self.cis, 1) if self.cis else 0.0

        return {
            "provider": self.provider,
            "scope": self.scope,
            "cis": self.cis,
            "untagged": self.untagged,
            "untagged_pct": pct(self.untagged),
            "ownerless": self.ownerless,
            "ownerless_pct": pct(self.ownerless),
            "unclassified": self.unclassified,
            "unclassified_pct": pct(self.unclassified),
        }


def ownership_report(store: Store, states: Sequence[str] = ("active", "optimise", "provisioned")) -> list[OwnershipRow]:
    """Untagged, ownerless and unclassified CIs by provider and scope (teams and contracts left out)."""
    vocab = vocabulary()
    counts: dict[tuple[str, str], list[int]] = {}
    for ci in store.iter_cis(CIFilter(lifecycle_states=tuple(states))):
        if vocab.class_of(ci.type) in _UNTAGGABLE_CLASSES:
            continue
        row = counts.setdefault((ci.provider or "(none)", ci.scope or "(none)"), [0, 0, 0, 0])
        row[0] += 1
        row[1] += not ci.tags
        row[2] += not ci.owner
        row[3] += not (ci.owner and ci.cost_centre and ci.environment)
    return [OwnershipRow(p, s, *values) for (p, s), values in sorted(counts.items())]


def untagged(store: Store, field_name: str = "owner", limit: int = 1000) -> Iterable[CI]:
    """Live CIs still missing ``field_name`` after classification."""
    if field_name not in CLASSIFIED_FIELDS:
        raise RuleError(f"{field_name} is not one of {', '.join(CLASSIFIED_FIELDS)}")
    count = 0
    for ci in store.iter_cis(CIFilter(lifecycle_states=("active", "optimise", "provisioned"))):
        if not getattr(ci, field_name) and vocabulary().class_of(ci.type) not in _UNTAGGABLE_CLASSES:
            yield ci
            count += 1
            if count >= limit:
                return
