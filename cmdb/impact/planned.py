"""Planned changes: recorded with their risk, checked for conflicts and blackouts, and
matched afterwards with what the syncs actually saw change.

A planned change is not a CI: it is a document of kind ``impact.planned_change``
in the store's document table (``put_document`` / ``list_documents``). When
it is planned, its risk is computed and stored with the explanation, and the
business services in its blast radius are kept, so later checks compare
changes without walking the graph again.

Conflicts:

- **overlap**: another planned change's window overlaps this one's and their
  blast radii share a business service (or they change the same CI);
- **blackout**: the window overlaps a blackout period that covers one of its
  services or CIs, or the environment of one of them, or everything.

Blackouts are declared in YAML (``--blackouts FILE`` or ``CMDB_BLACKOUTS``)::

    blackouts:
      - name: Black Friday
        start: 2026-11-27T00:00:00Z
        end: 2026-11-30T23:59:59Z
        environments: [production]
      - name: Payments quarter close
        start: 2026-12-30T00:00:00Z
        end: 2027-01-02T00:00:00Z
        services: [svc-payments]

A blackout with neither ``services`` nor ``environments`` covers everything.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from cmdb.errors import ConfigError, NotFound, ValidationError
from cmdb.impact.radius import BUSINESS_SERVICE
from cmdb.impact.risk import CHANGE_TYPES, RiskAssessment, change_risk
from cmdb.model import ChangeRecord, now, parse_time
from cmdb.store.base import ChangeFilter, Store

__all__ = [
    "BLACKOUTS_ENV",
    "KIND",
    "Blackout",
    "Conflict",
    "PlannedChange",
    "check_planned_change",
    "get_planned_change",
    "list_planned_changes",
    "load_blackouts",
    "plan_change",
    "recorded_changes",
]

log = logging.getLogger(__name__)

KIND = "impact.planned_change"
BLACKOUTS_ENV = "CMDB_BLACKOUTS"
ATTACH_AFTER = timedelta(days=1)
"""How long after a window's end the change records of its CIs still count as its outcome."""


@dataclass(frozen=True, slots=True)
class Blackout:
    name: str
    start: datetime
    end: datetime
    services: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()

    def covers_everything(self) -> bool:
        return not self.services and not self.environments


@dataclass(frozen=True, slots=True)
class Conflict:
    """Why a planned change should not go ahead as planned."""

    kind: str  # "overlap" or "blackout"
    other: str  # the other change's key, or the blackout's name
    detail: str
    services: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "other": self.other, "detail": self.detail, "services": list(self.services)}


@dataclass(slots=True)
class PlannedChange:
    key: str
    ci_ids: tuple[str, ...]
    change: str
    start: datetime
    end: datetime
    requester: str
    description: str
    created_at: datetime
    score: int
    level: str
    risk: dict[str, Any]  # RiskAssessment.as_dict() at planning time
    services: tuple[str, ...]  # business services in its blast radius
    environments: tuple[str, ...]  # of its CIs and those services
    conflicts: list[Conflict] = field(default_factory=list)

    def status(self, at: datetime | None = None) -> str:
        at = at or now()
        return "planned" if at < self.start else "in window" if at < self.end else "done"

    def to_doc(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "ci_ids": list(self.ci_ids),
            "change": self.change,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "requester": self.requester,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "score": self.score,
            "level": self.level,
            "risk": self.risk,
            "services": list(self.services),
            "environments": list(self.environments),
            "conflicts": [c.as_dict() for c in self.conflicts],
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> PlannedChange:
        return cls(
            key=doc["key"],
            ci_ids=tuple(doc["ci_ids"]),
            change=doc["change"],
            start=parse_time(doc["start"]),
            end=parse_time(doc["end"]),
            requester=doc.get("requester", ""),
            description=doc.get("description", ""),
            created_at=parse_time(doc["created_at"]),
            score=int(doc.get("score", 0)),
            level=doc.get("level", ""),
            risk=dict(doc.get("risk") or {}),
            services=tuple(doc.get("services") or ()),
            environments=tuple(doc.get("environments") or ()),
            conflicts=[
                Conflict(c["kind"], c["other"], c["detail"], tuple(c.get("services") or ()))
                for c in doc.get("conflicts") or ()
            ],
        )


def load_blackouts(path: str | os.PathLike[str] | None = None) -> list[Blackout]:
    """Blackout periods from ``path`` (or the file ``CMDB_BLACKOUTS`` names); none without either."""
    target = path or os.environ.get(BLACKOUTS_ENV)
    if not target:
        return []
    file = Path(target).expanduser()
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read blackout periods from {file}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}") from exc
    entries = data.get("blackouts") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{file} needs a top-level 'blackouts:' list")
    found: list[Blackout] = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or "start" not in entry or "end" not in entry:
            raise ConfigError(f"{file}: blackout {number} needs start and end")
        start, end = parse_time(_text(entry["start"])), parse_time(_text(entry["end"]))
        if end <= start:
            raise ConfigError(f"{file}: blackout {number} ends before it starts")
        found.append(
            Blackout(
                name=str(entry.get("name") or f"blackout {number}"),
                start=start,
                end=end,
                services=tuple(str(s) for s in entry.get("services") or ()),
                environments=tuple(str(e).lower() for e in entry.get("environments") or ()),
            )
        )
    return found


def _text(value: Any) -> str | datetime:
    return value if isinstance(value, datetime) else str(value)


def _overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def list_planned_changes(store: Store) -> list[PlannedChange]:
    """Every planned change, by window start then key."""
    changes = [PlannedChange.from_doc(doc) for _, doc in store.list_documents(KIND)]
    return sorted(changes, key=lambda c: (c.start, c.key))


def get_planned_change(store: Store, key: str) -> PlannedChange:
    doc = store.get_document(KIND, key)
    if doc is None:
        raise NotFound(f"no planned change {key!r}", hint="list them with 'cmdb change list'")
    return PlannedChange.from_doc(doc)


def _conflicts(change: PlannedChange, others: Sequence[PlannedChange], blackouts: Sequence[Blackout]) -> list[Conflict]:
    found: list[Conflict] = []
    mine = set(change.services)
    for other in sorted(others, key=lambda c: c.key):
        if other.key == change.key or not _overlaps(change.start, change.end, other.start, other.end):
            continue
        shared = sorted(mine & set(other.services))
        same_cis = sorted(set(change.ci_ids) & set(other.ci_ids))
        if shared or same_cis:
            what = f"services {', '.join(shared)}" if shared else f"CIs {', '.join(same_cis)}"
            found.append(
                Conflict(
                    "overlap",
                    other.key,
                    f"{other.key} ({other.change} of {', '.join(other.ci_ids)}, "
                    f"{other.start:%Y-%m-%d %H:%M}..{other.end:%Y-%m-%d %H:%M}) overlaps and shares {what}",
                    tuple(shared),
                )
            )
    subjects = mine | set(change.ci_ids)
    envs = set(change.environments)
    for blackout in sorted(blackouts, key=lambda b: (b.start, b.name)):
        if not _overlaps(change.start, change.end, blackout.start, blackout.end):
            continue
        hit_services = sorted(subjects & set(blackout.services))
        hit_envs = sorted(envs & set(blackout.environments))
        if blackout.covers_everything() or hit_services or hit_envs:
            scope = (
                "everything"
                if blackout.covers_everything()
                else ", ".join([*(f"service {s}" for s in hit_services), *(f"environment {e}" for e in hit_envs)])
            )
            found.append(
                Conflict(
                    "blackout",
                    blackout.name,
                    f"window falls into blackout {blackout.name!r} "
                    f"({blackout.start:%Y-%m-%d %H:%M}..{blackout.end:%Y-%m-%d %H:%M}) for {scope}",
                    tuple(hit_services),
                )
            )
    return found


def plan_change(
    store: Store,
    ci_ids: str | Sequence[str],
    change: str,
    start: datetime,
    end: datetime,
    *,
    requester: str,
    description: str = "",
    blackouts: Sequence[Blackout] | None = None,
    at: datetime | None = None,
    max_depth: int = 6,
) -> PlannedChange:
    """Record a planned change with its risk, the services it reaches and its conflicts."""
    if change not in CHANGE_TYPES:
        raise ValidationError(f"change type {change!r} is not one of {', '.join(CHANGE_TYPES)}")
    if end <= start:
        raise ValidationError("a change window must end after it starts")
    if not requester:
        raise ValidationError("a planned change needs a requester")
    ids = tuple(sorted({ci_ids} if isinstance(ci_ids, str) else set(ci_ids)))
    at = at or now()
    risk: RiskAssessment = change_risk(store, ids, change, at=at, max_depth=max_depth)
    changed = store.get_cis(ids)
    services = tuple(
        sorted({*(s.ci_id for s in risk.services), *(i for i in ids if changed[i].type == BUSINESS_SERVICE)})
    )
    cis = {**changed, **store.get_cis(services)}
    environments = tuple(sorted({c.environment.lower() for c in cis.values() if c.environment}))
    blackouts = load_blackouts() if blackouts is None else blackouts
    with store.transaction():
        existing = list_planned_changes(store)
        number = 1 + max((int(c.key.rsplit("-", 1)[-1]) for c in existing if c.key.startswith("CHG-")), default=0)
        planned = PlannedChange(
            key=f"CHG-{number:06d}",
            ci_ids=ids,
            change=change,
            start=start,
            end=end,
            requester=requester,
            description=description,
            created_at=at,
            score=risk.score,
            level=risk.level,
            risk=risk.as_dict(),
            services=services,
            environments=environments,
        )
        planned.conflicts = _conflicts(planned, existing, blackouts)
        store.put_document(KIND, planned.key, planned.to_doc())
    log.info(
        "planned %s: %s of %s, risk %d (%s), %d conflicts",
        planned.key,
        change,
        ",".join(ids),
        planned.score,
        planned.level,
        len(planned.conflicts),
    )
    return planned


def check_planned_change(
    store: Store, change: str | PlannedChange, *, blackouts: Sequence[Blackout] | None = None
) -> list[Conflict]:
    """The conflicts of a planned change now, against every other planned change and the blackouts."""
    planned = get_planned_change(store, change) if isinstance(change, str) else change
    blackouts = load_blackouts() if blackouts is None else blackouts
    return _conflicts(planned, list_planned_changes(store), blackouts)


def recorded_changes(
    store: Store, change: str | PlannedChange, *, after: timedelta = ATTACH_AFTER
) -> list[ChangeRecord]:
    """What actually changed: change records of its CIs (and their relationships) from the
    window's start until ``after`` past its end, oldest first."""
    planned = get_planned_change(store, change) if isinstance(change, str) else change
    records = store.iter_changes(ChangeFilter(ci_ids=planned.ci_ids, since=planned.start, until=planned.end + after))
    return sorted(records, key=lambda c: (c.at, c.seq))
