"""Incidents: what failing CIs take with them, and what may be behind a failing service.

``incident_impact`` walks up from failing CIs with the redundancy rules and
lists the business services and applications affected, each with its path and
owner, and who to notify. ``root_causes`` walks down from failing services and
ranks the CIs below them by recent change records, lifecycle and how many of
the failing services share them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cmdb.errors import NotFound, ValidationError
from cmdb.impact.failure import FailureImpact, check_bounds, failure_impact
from cmdb.impact.graph import GraphLike, GraphView, as_view, impact_types
from cmdb.impact.radius import BUSINESS_SERVICE, describe_path
from cmdb.impact.risk import _is_failure
from cmdb.model import ChangeRecord, now
from cmdb.vocabulary import vocabulary

__all__ = ["AffectedItem", "Candidate", "IncidentImpact", "Notify", "incident_impact", "root_causes"]

log = logging.getLogger(__name__)

LIFECYCLE_SUSPICION: dict[str, tuple[float, str]] = {
    "stale": (4.0, "stale: its source no longer reports it"),
    "retired": (5.0, "retired but still depended on"),
    "disposed": (5.0, "disposed but still depended on"),
    "planned": (1.0, "only planned"),
    "provisioned": (1.0, "only provisioned, not yet active"),
}


@dataclass(frozen=True, slots=True)
class AffectedItem:
    """A business service or application an incident reaches."""

    ci_id: str
    name: str
    type: str
    state: str
    owner: str
    criticality: str
    path: str  # from it down to a failing CI
    reason: str


@dataclass(frozen=True, slots=True)
class Notify:
    """An owner to notify and the affected CIs they own."""

    owner: str
    ci_ids: tuple[str, ...]


@dataclass(slots=True)
class IncidentImpact:
    failing: tuple[str, ...]
    services: list[AffectedItem]
    applications: list[AffectedItem]
    notify: list[Notify]
    unowned: list[str]
    impact: FailureImpact = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        def item(a: AffectedItem) -> dict[str, str]:
            return {
                "id": a.ci_id,
                "name": a.name,
                "type": a.type,
                "state": a.state,
                "owner": a.owner,
                "criticality": a.criticality,
                "path": a.path,
                "reason": a.reason,
            }

        return {
            "failing": list(self.failing),
            "services": [item(a) for a in self.services],
            "applications": [item(a) for a in self.applications],
            "notify": [{"owner": n.owner, "ci_ids": list(n.ci_ids)} for n in self.notify],
            "unowned": self.unowned,
            "truncated": self.impact.truncated,
        }


def incident_impact(
    graph: GraphLike, failing: str | Sequence[str], *, max_depth: int = 8, limit: int = 50_000
) -> IncidentImpact:
    """The business services and applications that ``failing`` CIs take down or degrade."""
    view: GraphView = as_view(graph)
    ids = sorted({failing} if isinstance(failing, str) else set(failing))
    if not ids:
        raise ValidationError("an incident needs at least one failing CI")
    impact = failure_impact(view, ids, max_depth=max_depth, limit=limit)
    vocab = vocabulary()
    region = sorted(impact.affected)
    cis = view.get_cis(region)
    services: list[AffectedItem] = []
    applications: list[AffectedItem] = []
    for ci_id in region:
        ci = cis.get(ci_id)
        if ci is None:
            continue
        ci_class = vocab.class_of(ci.type)
        if ci.type != BUSINESS_SERVICE and ci_class != "application":
            continue
        a = impact.affected[ci_id]
        item = AffectedItem(
            ci_id, ci.name, ci.type, a.state, ci.owner, ci.criticality, describe_path(tuple(reversed(a.path))), a.reason
        )
        (services if ci.type == BUSINESS_SERVICE else applications).append(item)
    order = {"down": 0, "degraded": 1}
    for items in (services, applications):
        items.sort(key=lambda a: (order.get(a.state, 2), a.ci_id))
    owners: dict[str, list[str]] = {}
    unowned: list[str] = []
    for ci_id in [*ids, *(a.ci_id for a in services), *(a.ci_id for a in applications)]:
        ci = cis.get(ci_id)
        if ci is None:
            continue
        if ci.owner:
            owners.setdefault(ci.owner, []).append(ci_id)
        else:
            unowned.append(ci_id)
    notify = [Notify(owner, tuple(dict.fromkeys(found))) for owner, found in sorted(owners.items())]
    return IncidentImpact(tuple(ids), services, applications, notify, sorted(set(unowned)), impact)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A CI below failing services that may be the cause, with why it ranks where it does."""

    ci_id: str
    name: str
    type: str
    lifecycle_state: str
    score: float
    depth: int
    shared_by: tuple[str, ...]
    changes: int
    failures: int
    last_change: datetime | None
    path: str  # from the first failing service that needs it down to it
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.ci_id,
            "name": self.name,
            "type": self.type,
            "lifecycle_state": self.lifecycle_state,
            "score": self.score,
            "depth": self.depth,
            "shared_by": list(self.shared_by),
            "changes": self.changes,
            "failures": self.failures,
            "last_change": self.last_change.isoformat() if self.last_change else None,
            "path": self.path,
            "reasons": list(self.reasons),
        }


def root_causes(
    graph: GraphLike,
    service_ids: str | Sequence[str],
    *,
    at: datetime | None = None,
    window: timedelta = timedelta(hours=24),
    max_depth: int = 8,
    limit: int = 5_000,
    top: int = 20,
) -> list[Candidate]:
    """Root-cause candidates below failing services, most suspicious first.

    Score: change records in ``window`` before ``at`` (1 each, at most 10),
    failures among them (3 each), a suspicious lifecycle (stale 4, retired 5,
    planned 1), 3 for every further failing service that shares the CI, and a
    nearness bonus of 1/depth.
    """
    check_bounds(max_depth, limit)
    view: GraphView = as_view(graph)
    at = at or now()
    services = sorted({service_ids} if isinstance(service_ids, str) else set(service_ids))
    missing = sorted(set(services) - view.known_ids(services))
    if missing:
        raise NotFound(f"no CI with id {missing[0]!r}")
    carrying = impact_types(("all", "any"))
    depth: dict[str, int] = {}
    path: dict[str, str] = {}
    shared: dict[str, list[str]] = {}
    for service in services:
        hits, _ = view.traverse([service], "out", carrying, max_depth, limit)
        for h in hits:
            shared.setdefault(h.ci_id, []).append(service)
            if h.ci_id not in depth or h.depth < depth[h.ci_id]:
                depth[h.ci_id] = h.depth
                path[h.ci_id] = describe_path(h.path)
    candidates = sorted(depth)
    records = view.changes(candidates, at - window, at)
    by_ci: dict[str, list[ChangeRecord]] = {}
    for c in records:
        for end in {c.ci_id, c.to_id} - {""}:
            if end in depth:
                by_ci.setdefault(end, []).append(c)
    cis = view.get_cis(candidates)
    ranked: list[Candidate] = []
    for ci_id in candidates:
        ci = cis.get(ci_id)
        lifecycle = ci.lifecycle_state if ci else ""
        changes = by_ci.get(ci_id, [])
        failures = [c for c in changes if _is_failure(c)]
        reasons: list[str] = []
        score = 1.0 / depth[ci_id]
        if changes:
            score += min(10, len(changes))
            last = max(changes, key=lambda c: (c.at, c.seq))
            reasons.append(
                f"{len(changes)} changes in the last {window}; latest {last.at:%Y-%m-%d %H:%M} {last.kind} {last.field}".rstrip()
            )
        if failures:
            score += 3 * len(failures)
            reasons.append(f"{len(failures)} failures: " + ", ".join(f"{c.field} -> {c.after}" for c in failures[:3]))
        if lifecycle in LIFECYCLE_SUSPICION:
            points, why = LIFECYCLE_SUSPICION[lifecycle]
            score += points
            reasons.append(why)
        sharers = tuple(shared[ci_id])
        if len(sharers) > 1:
            score += 3 * (len(sharers) - 1)
            reasons.append(f"shared by {len(sharers)} failing services")
        ranked.append(
            Candidate(
                ci_id,
                ci.name if ci else "",
                ci.type if ci else "",
                lifecycle,
                round(score, 3),
                depth[ci_id],
                sharers,
                len(changes),
                len(failures),
                max((c.at for c in changes), default=None),
                path[ci_id],
                tuple(reasons),
            )
        )
    ranked.sort(key=lambda c: (-c.score, c.depth, c.ci_id))
    return ranked[:top]
