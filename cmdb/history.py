"""The graph as it was: point-in-time reads and diffs, from the change records.

The change log is the one record of history: every create, attribute change,
relationship change and lifecycle transition, with before and after. The
state at time T is today's state with every change after T undone, newest
first. Nothing here is backend-specific: it reads through the Store protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cmdb.model import CI, ChangeRecord, Direction, Relationship, RelKey, now
from cmdb.store.base import ChangeFilter, Store

__all__ = [
    "GraphDiff",
    "Snapshot",
    "ci_as_of",
    "cis_as_of",
    "diff",
    "relationships_as_of",
    "snapshot",
]

_INACTIVE = ("retired",)


@dataclass(slots=True)
class Snapshot:
    """Every CI and relationship that existed at ``at``, with its values then."""

    at: datetime
    cis: dict[str, CI]
    relationships: dict[RelKey, Relationship]


_IDS_PER_QUERY = 400  # keeps each change query well inside a backend's parameter limit


def _later_changes(store: Store, at: datetime, ci_ids: Sequence[str] | None = None) -> list[ChangeRecord]:
    """Changes strictly after ``at``, newest first (the order to undo them in)."""
    if ci_ids is None:
        filters = [ChangeFilter(since=at)]
    else:
        unique = list(dict.fromkeys(ci_ids))
        filters = [
            ChangeFilter(ci_ids=tuple(unique[i : i + _IDS_PER_QUERY]), since=at)
            for i in range(0, len(unique), _IDS_PER_QUERY)
        ]
    by_seq = {c.seq: c for f in filters for c in store.iter_changes(f) if c.at > at}
    return [by_seq[seq] for seq in sorted(by_seq, reverse=True)]


def _undo_ci(ci: CI, change: ChangeRecord) -> None:
    name = change.field
    if change.kind == "ci.lifecycle" or name == "lifecycle_state":
        ci.lifecycle_state = change.before
        return
    if name.startswith(("tags.", "attributes.")):
        label, key = name.split(".", 1)
        target: dict[str, Any] = ci.tags if label == "tags" else ci.attributes
        if change.before is None:
            target.pop(key, None)
        else:
            target[key] = change.before
    elif name:
        setattr(ci, name, change.before if change.before is not None else "")


def _undo_rel(rel: Relationship, change: ChangeRecord) -> None:
    if change.field == "evidence":
        return  # evidence is kept as text in the log; the current evidence stands for it
    if change.field:
        setattr(rel, change.field, change.before)


def _rewind_cis(current: dict[str, CI], changes: Iterable[ChangeRecord]) -> dict[str, CI]:
    result = {
        ci_id: ci.copy(tags=dict(ci.tags), attributes=dict(ci.attributes)) for ci_id, ci in current.items()
    }
    for change in changes:
        if change.rel_type:
            continue
        ci = result.get(change.ci_id)
        if ci is None:
            continue
        if change.kind == "ci.created":
            del result[change.ci_id]
        else:
            _undo_ci(ci, change)
    return result


def _rewind_rels(
    current: dict[RelKey, Relationship], changes: Iterable[ChangeRecord], *, keep_inactive: bool = False
) -> dict[RelKey, Relationship]:
    result = {key: rel.copy() for key, rel in current.items()}
    for change in changes:
        key = change.rel_key
        if key is None or key not in result:
            continue
        if change.kind == "rel.added":
            del result[key]
        else:
            _undo_rel(result[key], change)
    if keep_inactive:
        return result
    return {k: r for k, r in result.items() if r.lifecycle_state not in _INACTIVE and r.review != "rejected"}


def cis_as_of(store: Store, ids: Sequence[str], at: datetime) -> dict[str, CI]:
    """The CIs among ``ids`` that existed at ``at``, as they were then."""
    return _rewind_cis(store.get_cis(ids), _later_changes(store, at, ids))


def ci_as_of(store: Store, ci_id: str, at: datetime) -> CI | None:
    return cis_as_of(store, [ci_id], at).get(ci_id)


def relationships_as_of(
    store: Store,
    ids: Sequence[str],
    at: datetime,
    direction: Direction = "out",
    types: Sequence[str] | None = None,
) -> list[Relationship]:
    """The relationships touching ``ids`` that existed (and were not retired) at ``at``."""
    current = store.relationships(ids, direction, types, include_inactive=True)
    by_key = {rel.key: rel for rel in current}
    ends = sorted({rel.from_id for rel in current})
    return list(_rewind_rels(by_key, _later_changes(store, at, ends)).values())


def snapshot(store: Store, at: datetime) -> Snapshot:
    """The whole graph as it was at ``at``."""
    changes = _later_changes(store, at)
    cis = _rewind_cis({ci.id: ci for ci in store.iter_cis()}, changes)
    rels = _rewind_rels({rel.key: rel for rel in store.iter_relationships()}, changes)
    rels = {k: r for k, r in rels.items() if k[0] in cis and k[2] in cis}
    return Snapshot(at, cis, rels)


@dataclass(slots=True)
class GraphDiff:
    """What changed between ``since`` and ``until``, summarised per CI and edge."""

    since: datetime
    until: datetime
    changes: list[ChangeRecord]
    created: list[str] = field(default_factory=list)
    updated: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)  # id -> field -> (first before, last after)
    lifecycle: dict[str, tuple[str, str]] = field(default_factory=dict)
    relationships_added: list[RelKey] = field(default_factory=list)
    relationships_removed: list[RelKey] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.since:%Y-%m-%d %H:%M} .. {self.until:%Y-%m-%d %H:%M}: {len(self.created)} created, "
            f"{len(self.updated)} updated, {len(self.lifecycle)} lifecycle changes, "
            f"{len(self.relationships_added)} relationships added, {len(self.relationships_removed)} removed "
            f"({len(self.changes)} change records)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "created": self.created,
            "updated": {ci: {f: {"before": b, "after": a} for f, (b, a) in fields.items()} for ci, fields in self.updated.items()},
            "lifecycle": {ci: {"before": b, "after": a} for ci, (b, a) in self.lifecycle.items()},
            "relationships_added": [list(k) for k in self.relationships_added],
            "relationships_removed": [list(k) for k in self.relationships_removed],
            "change_records": len(self.changes),
        }


def diff(store: Store, since: datetime, until: datetime | None = None, *, scope: str | None = None) -> GraphDiff:
    """Net changes between two times (a field changed twice shows first before, last after)."""
    until = until or now()
    changes = list(store.iter_changes(ChangeFilter(scope=scope, since=since, until=until)))
    result = GraphDiff(since, until, changes)
    for c in changes:
        if c.kind == "ci.created":
            result.created.append(c.ci_id)
        elif c.kind == "ci.updated":
            fields = result.updated.setdefault(c.ci_id, {})
            first_before = fields[c.field][0] if c.field in fields else c.before
            fields[c.field] = (first_before, c.after)
        elif c.kind == "ci.lifecycle":
            first = result.lifecycle[c.ci_id][0] if c.ci_id in result.lifecycle else c.before
            result.lifecycle[c.ci_id] = (first, c.after)
        elif c.kind in ("rel.added", "rel.restored") and c.rel_key:
            result.relationships_added.append(c.rel_key)
        elif c.kind == "rel.removed" and c.rel_key:
            result.relationships_removed.append(c.rel_key)
    for ci_id, fields in list(result.updated.items()):  # a value changed and changed back is no change
        net = {f: ba for f, ba in fields.items() if ba[0] != ba[1]}
        if net:
            result.updated[ci_id] = net
        else:
            del result.updated[ci_id]
    return result
