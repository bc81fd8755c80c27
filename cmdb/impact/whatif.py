"""What-if: remove or degrade CIs or relationships and see which services lose what they need;
and the single points of failure of a service.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cmdb.errors import NotFound
from cmdb.impact.failure import FailureImpact, _cause_path, check_bounds, failure_impact, propagate
from cmdb.impact.graph import GraphLike, GraphView, as_view, impact_types
from cmdb.impact.radius import BUSINESS_SERVICE, describe_path
from cmdb.model import Relationship, RelKey

__all__ = ["ServiceLoss", "SinglePoint", "WhatIf", "single_points_of_failure", "what_if"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceLoss:
    """A business service a what-if reaches: down (lost every path to something it needs) or degraded."""

    ci_id: str
    name: str
    state: str
    criticality: str
    owner: str
    path: str  # from the service down to what was removed
    reason: str


@dataclass(slots=True)
class WhatIf:
    removed: tuple[str, ...]
    degraded_inputs: tuple[str, ...]
    removed_relationships: tuple[RelKey, ...]
    services_down: list[ServiceLoss]
    services_degraded: list[ServiceLoss]
    impact: FailureImpact = field(repr=False)

    @property
    def truncated(self) -> bool:
        return self.impact.truncated

    def as_dict(self) -> dict[str, Any]:
        def loss(s: ServiceLoss) -> dict[str, str]:
            return {
                "id": s.ci_id,
                "name": s.name,
                "state": s.state,
                "criticality": s.criticality,
                "owner": s.owner,
                "path": s.path,
                "reason": s.reason,
            }

        return {
            "removed": list(self.removed),
            "degraded": list(self.degraded_inputs),
            "removed_relationships": [list(k) for k in self.removed_relationships],
            "services_down": [loss(s) for s in self.services_down],
            "services_degraded": [loss(s) for s in self.services_degraded],
            "cis_down": len(self.impact.down),
            "cis_degraded": len(self.impact.degraded),
            "truncated": self.truncated,
        }


def what_if(
    graph: GraphLike,
    *,
    remove: Sequence[str] = (),
    degrade: Sequence[str] = (),
    remove_relationships: Sequence[RelKey] = (),
    services: Sequence[str] | None = None,
    max_depth: int = 8,
    limit: int = 50_000,
) -> WhatIf:
    """Which business services lose every path to something they need when ``remove`` CIs are
    gone, ``degrade`` CIs are impaired and ``remove_relationships`` are cut.

    ``services`` narrows the answer to those services.
    """
    view: GraphView = as_view(graph)
    impact = failure_impact(
        view, remove, degraded=degrade, removed_relationships=remove_relationships, max_depth=max_depth, limit=limit
    )
    wanted = set(services) if services is not None else None
    hit = sorted(view.of_type([i for i in impact.affected if wanted is None or i in wanted], BUSINESS_SERVICE))
    cis = view.get_cis(hit)
    down: list[ServiceLoss] = []
    degraded: list[ServiceLoss] = []
    for sid in hit:
        a, ci = impact.affected[sid], cis[sid]
        loss = ServiceLoss(
            sid, ci.name, a.state, ci.criticality, ci.owner, describe_path(tuple(reversed(a.path))), a.reason
        )
        (down if a.state == "down" else degraded).append(loss)
    return WhatIf(impact.failing, impact.degraded_inputs, impact.removed_relationships, down, degraded, impact)


@dataclass(frozen=True, slots=True)
class SinglePoint:
    """A CI whose failure alone takes the service down, and the path that carries it."""

    ci_id: str
    name: str
    type: str
    depth: int
    path: tuple[Relationship, ...]  # from the service down to the CI

    @property
    def description(self) -> str:
        return describe_path(self.path)


def single_points_of_failure(
    graph: GraphLike,
    service_id: str,
    *,
    types: Sequence[str] | None = None,
    max_depth: int = 8,
    limit: int = 5_000,
) -> list[SinglePoint]:
    """The CIs below ``service_id`` whose failure alone takes it down, nearest first.

    Walks the service's dependencies (at most ``max_depth`` levels and
    ``limit`` CIs) once, then evaluates each one's failure in memory with the
    redundancy rules: a CI behind any-of alternatives is a single point only
    when every alternative needs it (three pods on one node).
    """
    check_bounds(max_depth, limit)
    view: GraphView = as_view(graph)
    if not view.known_ids([service_id]):
        raise NotFound(f"no CI with id {service_id!r}")
    carrying = impact_types(("all", "any"), types)
    any_types = frozenset(impact_types(("any",), types))
    hits, truncated = view.traverse([service_id], "out", carrying, max_depth, limit)
    depth = {h.ci_id: h.depth for h in hits}
    inside = {service_id, *depth}
    in_edges: dict[str, list[Relationship]] = {}
    group_size: dict[tuple[str, str], int] = {}
    for rel in sorted(view.edges(sorted(inside), "out", carrying), key=lambda r: r.key):
        if rel.type in any_types:
            group = (rel.from_id, rel.type)
            group_size[group] = group_size.get(group, 0) + 1
        if rel.to_id in inside:
            in_edges.setdefault(rel.to_id, []).append(rel)
    found: list[tuple[int, str, tuple[Relationship, ...]]] = []
    for candidate in sorted(depth, key=lambda c: (depth[c], c)):
        down, _ = propagate(in_edges, group_size, any_types, [candidate], stop_at=service_id)
        if service_id in down:
            found.append((depth[candidate], candidate, tuple(reversed(_cause_path(service_id, down)))))
    cis = view.get_cis([c for _, c, _ in found])
    if truncated:
        log.info("single points of failure of %s: dependencies cut at %d CIs", service_id, limit)
    return [SinglePoint(c, cis[c].name if c in cis else "", cis[c].type if c in cis else "", d, p) for d, c, p in found]
