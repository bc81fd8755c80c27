"""Reconciliation quality: how far the CMDB can be trusted, per source.

- **duplicates**: one real thing seen as two CIs — the same serial number,
  endpoint or hostname on two live CIs (aliases cannot collide: the sync
  engine folds those);
- **conflicts**: a CI two sources report, whose field each of them last set
  to a different value (read from the change records, where each sync run
  names its source);
- **incomplete records**: live CIs missing a field their type requires
  (:data:`REQUIRED`, overridable);
- **accuracy per source**: of the CIs a source reports, the share that are
  live (not gone stale), complete and not duplicated; with its last run.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cmdb.model import CI
from cmdb.store.base import ChangeFilter, CIFilter, Store

__all__ = [
    "REQUIRED",
    "Conflict",
    "Duplicate",
    "Incomplete",
    "QualityReport",
    "SourceAccuracy",
    "conflicts",
    "duplicates",
    "incomplete",
    "quality",
]

log = logging.getLogger(__name__)

_LIVE = ("planned", "provisioned", "active", "optimise")
_NOT_CONFLICTS = frozenset({"scope"})  # each source has its own scope by design

# Identity-bearing attributes: two live CIs with the same value are one thing seen twice.
IDENTITY_ATTRIBUTES: tuple[str, ...] = ("serial_number", "endpoint", "dns_name", "fqdn", "hostname", "connection_name")

REQUIRED: dict[str, tuple[str, ...]] = {
    "hardware.*": ("name", "owner", "serial_number", "model", "location"),
    "software.licence": ("product", "metric", "count"),
    "software.product": ("product",),
    "commercial.contract": ("vendor", "end_date"),
    "service.business": ("name", "owner", "criticality"),
    "app.application": ("name", "owner"),
    "aws.*": ("name", "region"),
    "gcp.*": ("name",),
    "azure.*": ("name",),
}
"""Type pattern -> fields a record of that type must carry (common fields or attributes)."""


@dataclass(frozen=True, slots=True)
class Duplicate:
    key: str  # the attribute that collides
    value: str
    ci_ids: tuple[str, ...]
    differences: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> ci id -> value, where they disagree

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "ci_ids": list(self.ci_ids), "differences": self.differences}


@dataclass(frozen=True, slots=True)
class Conflict:
    ci_id: str
    field: str
    values: dict[str, Any]  # source -> the value it last set
    current: Any
    winner: str  # the source whose value the CI holds

    def as_dict(self) -> dict[str, Any]:
        return {"ci_id": self.ci_id, "field": self.field, "values": self.values, "current": self.current, "winner": self.winner}


@dataclass(frozen=True, slots=True)
class Incomplete:
    ci_id: str
    ci_type: str
    missing: tuple[str, ...]
    sources: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"ci_id": self.ci_id, "type": self.ci_type, "missing": list(self.missing), "sources": list(self.sources)}


@dataclass(slots=True)
class SourceAccuracy:
    source: str
    cis: int = 0
    live: int = 0
    complete: int = 0
    duplicated: int = 0
    conflicting: int = 0
    last_run: str = ""
    last_status: str = ""

    @property
    def accurate(self) -> int:
        return max(0, min(self.live, self.complete) - self.duplicated)

    def as_dict(self) -> dict[str, Any]:
        def pct(n: int) -> float:
            return round(100.0 * n / self.cis, 1) if self.cis else 0.0

        return {
            "source": self.source,
            "cis": self.cis,
            "live_pct": pct(self.live),
            "complete_pct": pct(self.complete),
            "duplicated": self.duplicated,
            "conflicting": self.conflicting,
            "accuracy_pct": pct(self.accurate),
            "last_run": self.last_run,
            "last_status": self.last_status,
        }


def _norm(value: Any) -> str:
    return str(value).strip().lower().rstrip(".")


def duplicates(store: Store, attributes: Sequence[str] = IDENTITY_ATTRIBUTES) -> list[Duplicate]:
    """Live CIs that share a serial number, endpoint or hostname."""
    seen: dict[tuple[str, str], list[CI]] = {}
    for ci in store.iter_cis(CIFilter(lifecycle_states=_LIVE)):
        for name in attributes:
            value = ci.attributes.get(name)
            if isinstance(value, str) and value.strip():
                seen.setdefault((name, _norm(value)), []).append(ci)
    found: list[Duplicate] = []
    for (name, value), cis in sorted(seen.items()):
        if len({ci.id for ci in cis}) < 2:
            continue
        differences: dict[str, dict[str, Any]] = {}
        for fname in ("owner", "location", "model", "environment", "lifecycle_state", "assigned_user"):
            values = {ci.id: getattr(ci, fname, None) if fname in ("owner", "environment", "lifecycle_state") else ci.attributes.get(fname) for ci in cis}
            if len({str(v) for v in values.values() if v not in (None, "")}) > 1:
                differences[fname] = values
        found.append(Duplicate(name, value, tuple(sorted(ci.id for ci in cis)), differences))
    return found


def _source_of(sync_id: str, actor: str) -> str:
    if actor.startswith("sync:"):
        return actor[5:]
    if sync_id:
        return sync_id.rsplit("-", 2)[0]
    return f"manual:{actor}" if actor else ""


def conflicts(store: Store, batch: int = 500) -> list[Conflict]:
    """Fields that two sources of one CI last set to different values."""
    multi = [ci for ci in store.iter_cis(CIFilter(lifecycle_states=_LIVE)) if len(ci.sources) > 1]
    found: list[Conflict] = []
    for start in range(0, len(multi), batch):
        chunk = {ci.id: ci for ci in multi[start : start + batch]}
        last: dict[tuple[str, str], dict[str, Any]] = {}
        for change in store.iter_changes(ChangeFilter(ci_ids=tuple(chunk), kinds=("ci.updated", "ci.created"))):
            source = _source_of(change.sync_id, change.actor)
            if not source:
                continue
            if change.kind == "ci.created" or change.field in _NOT_CONFLICTS or change.field.startswith("tags."):
                continue
            values = last.setdefault((change.ci_id, change.field), {})
            creator = chunk[change.ci_id].sources[0]
            if not values and change.before not in (None, "") and creator != source:
                values[creator] = change.before  # what the first source had set when the CI was created
            values[source] = change.after
        for (ci_id, fname), values in sorted(last.items()):
            distinct = {repr(v) for v in values.values()}
            if len(values) < 2 or len(distinct) < 2:
                continue
            ci = chunk[ci_id]
            current = ci.attributes.get(fname[11:]) if fname.startswith("attributes.") else getattr(ci, fname, None)
            winner = ci.provenance.get(fname, "")
            found.append(Conflict(ci_id, fname, values, current, winner))
    return found


def _required_for(type_name: str, required: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    fields: list[str] = []
    for pattern, names in required.items():
        if fnmatch.fnmatchcase(type_name, pattern):
            fields.extend(n for n in names if n not in fields)
    return tuple(fields)


def _missing(ci: CI, names: Sequence[str]) -> tuple[str, ...]:
    gone: list[str] = []
    for name in names:
        value = getattr(ci, name) if name in CI.__dataclass_fields__ else ci.attributes.get(name)
        if value is None or value == "" or value == []:
            gone.append(name)
    return tuple(gone)


def incomplete(store: Store, required: Mapping[str, Sequence[str]] = REQUIRED) -> list[Incomplete]:
    found: list[Incomplete] = []
    for ci in store.iter_cis(CIFilter(lifecycle_states=_LIVE)):
        missing = _missing(ci, _required_for(ci.type, required))
        if missing:
            found.append(Incomplete(ci.id, ci.type, missing, ci.sources))
    return found


def _lost_by(store: Store, ids: Sequence[str]) -> dict[str, str]:
    """For CIs no source reports any more: the source whose sweep marked them stale."""
    lost: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        for change in store.iter_changes(ChangeFilter(ci_ids=tuple(ids[start : start + 500]), kinds=("ci.lifecycle",))):
            if change.after == "stale" and change.sync_id:
                lost[change.ci_id] = _source_of(change.sync_id, change.actor)
    return lost


@dataclass(slots=True)
class QualityReport:
    duplicates: list[Duplicate]
    conflicts: list[Conflict]
    incomplete: list[Incomplete]
    sources: list[SourceAccuracy]


def quality(store: Store, required: Mapping[str, Sequence[str]] = REQUIRED) -> QualityReport:
    dups = duplicates(store)
    clashes = conflicts(store)
    gaps = incomplete(store, required)
    gap_ids = {g.ci_id for g in gaps}
    dup_ids = {ci_id for d in dups for ci_id in d.ci_ids}
    clash_ids = {c.ci_id for c in clashes}
    per_source: dict[str, SourceAccuracy] = {}
    everything = list(store.iter_cis(CIFilter(lifecycle_states=(*_LIVE, "stale", "retired"))))
    lost_by = _lost_by(store, [ci.id for ci in everything if not ci.sources])
    for ci in everything:
        names = ci.sources or (lost_by.get(ci.id, "(none)"),)
        for source in names:
            acc = per_source.setdefault(source, SourceAccuracy(source))
            acc.cis += 1
            acc.live += ci.lifecycle_state in _LIVE
            acc.complete += ci.id not in gap_ids
            acc.duplicated += ci.id in dup_ids
            acc.conflicting += ci.id in clash_ids
    for run in store.sync_runs(limit=200):
        known = per_source.get(run.source)
        if known is not None and not known.last_run:
            known.last_run = run.started_at.isoformat()
            known.last_status = run.status
    return QualityReport(dups, clashes, gaps, sorted(per_source.values(), key=lambda a: a.source))
