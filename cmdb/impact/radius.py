"""Blast radius (who depends on these CIs) and dependencies (what they need).

Both are a bounded breadth-first walk through a ``GraphView``: over a store it
is the store's own BFS (one indexed query per level), over a networkx graph the
generic ``bfs``. Each CI reached comes with its depth and the shortest path to
it; business services (type ``service.business``) and owners reached are
summarised. ``records()`` gives rows ready for ``pandas.DataFrame`` and
``subgraph()`` a networkx graph of the paths.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

import networkx as nx

from cmdb.errors import NotFound
from cmdb.impact.failure import Affected, State, check_bounds, failure_impact
from cmdb.impact.graph import GraphLike, GraphView, Way, as_view
from cmdb.model import CI, Relationship
from cmdb.store.base import Hit, Traversal
from cmdb.vocabulary import vocabulary

__all__ = [
    "BUSINESS_SERVICE",
    "BlastRadius",
    "ImpactRecord",
    "ReachedCI",
    "blast_radius",
    "dependencies",
    "describe_path",
    "walk_ids",
]

log = logging.getLogger(__name__)

BUSINESS_SERVICE = "service.business"


def describe_path(path: Sequence[Relationship]) -> str:
    """``a -DEPENDS_ON-> b -RUNS_ON-> c`` for a path of stored edges (empty for none)."""
    return "; ".join(f"{r.from_id} -{r.type}-> {r.to_id}" for r in path)


def walk_ids(path: Sequence[Relationship], direction: Way = "in") -> list[str]:
    """The CIs along a walked path, from its start to its end (``in``: towards dependents)."""
    if not path:
        return []
    if direction == "out":
        return [path[0].from_id, *(r.to_id for r in path)]
    return [path[0].to_id, *(r.from_id for r in path)]


class ImpactRecord(TypedDict):
    """One row of a blast radius or dependency listing."""

    id: str
    type: str
    ci_class: str
    name: str
    depth: int
    state: str
    reason: str
    business_service: bool
    owner: str
    environment: str
    criticality: str
    lifecycle_state: str
    path: str
    path_ids: list[str]


@dataclass(slots=True)  # not frozen: a walk makes hundreds of them, and frozen slows each one
class ReachedCI:
    """One CI the walk reached: how far, along which edges, and (when asked) its state.

    The path's relationships are loaded the first time a path of the walk is read.
    """

    hit: Hit
    ci: CI | None = None
    state: State | None = None
    reason: str = ""
    direction: Way = "in"

    @property
    def ci_id(self) -> str:
        return self.hit.ci_id

    @property
    def depth(self) -> int:
        return self.hit.depth

    @property
    def path(self) -> tuple[Relationship, ...]:
        return self.hit.path

    @property
    def path_ids(self) -> list[str]:
        return walk_ids(self.path, self.direction)


@dataclass(slots=True)
class BlastRadius:
    """The result of ``blast_radius`` / ``dependencies``.

    ``walked`` holds every CI reached as columns (ids, depths, types), nearest
    first; ``reached`` gives one ``ReachedCI`` per CI, made the first time it
    is read. ``services`` are the business services reached, with their CIs.
    """

    start_ids: tuple[str, ...]
    direction: Way
    max_depth: int
    types: tuple[str, ...] | None
    walked: Traversal
    services: list[ReachedCI]
    owners: list[str]
    truncated: bool
    as_of: datetime | None = None
    cis: dict[str, CI] = field(default_factory=dict)
    """the CIs reached that were loaded: all of them with ``details``, else the services"""
    affected: dict[str, Affected] | None = None
    """with ``states``: the CIs the failure of the starts takes down or degrades"""
    view: GraphView | None = field(default=None, repr=False)
    """the graph walked, to load the start CIs from when they are first asked for"""
    _reached: list[ReachedCI] | None = field(default=None, repr=False)
    _starts: dict[str, CI] | None = field(default=None, repr=False)

    @property
    def starts(self) -> dict[str, CI]:
        """The start CIs (loaded when first asked for: a walk only needs to know they exist)."""
        if self._starts is None:
            self._starts = self.view.get_cis(self.start_ids) if self.view is not None else {}
        return self._starts

    @property
    def reached(self) -> list[ReachedCI]:
        """Every CI reached, nearest first, then by id."""
        if self._reached is None:
            known = {s.ci_id: s for s in self.services}
            cis, affected, direction = self.cis, self.affected, self.direction
            reached: list[ReachedCI] = []
            for hit in self.walked:
                made = known.get(hit.ci_id)
                if made is None:
                    made = ReachedCI(hit, cis.get(hit.ci_id), None, "", direction)
                    if affected is not None:
                        made.state, made.reason = _state(affected, hit.ci_id)
                reached.append(made)
            self._reached = reached
        return self._reached

    @property
    def ids(self) -> list[str]:
        return list(self.walked.ids)

    def get(self, ci_id: str) -> ReachedCI | None:
        return next((r for r in self.reached if r.ci_id == ci_id), None)

    def records(self) -> list[ImpactRecord]:
        vocab = vocabulary()
        rows: list[ImpactRecord] = []
        for r in self.reached:
            ci = r.ci
            rows.append(
                ImpactRecord(
                    id=r.ci_id,
                    type=ci.type if ci else "",
                    ci_class=vocab.class_of(ci.type) if ci else "",
                    name=ci.name if ci else "",
                    depth=r.depth,
                    state=r.state or "",
                    reason=r.reason,
                    business_service=bool(ci and ci.type == BUSINESS_SERVICE),
                    owner=ci.owner if ci else "",
                    environment=ci.environment if ci else "",
                    criticality=ci.criticality if ci else "",
                    lifecycle_state=ci.lifecycle_state if ci else "",
                    path=describe_path(r.path),
                    path_ids=r.path_ids,
                )
            )
        return rows

    def subgraph(self) -> nx.MultiDiGraph:
        """The starts, every CI reached and the edges of their paths (dependent -> dependency)."""
        graph = nx.MultiDiGraph()
        for ci_id in self.start_ids:
            ci = self.starts.get(ci_id)
            graph.add_node(
                ci_id,
                depth=0,
                start=True,
                state="down",
                type=ci.type if ci else "",
                name=ci.name if ci else "",
                business_service=bool(ci and ci.type == BUSINESS_SERVICE),
            )
        for r in self.reached:
            graph.add_node(
                r.ci_id,
                depth=r.depth,
                start=False,
                state=r.state or "",
                reason=r.reason,
                type=r.ci.type if r.ci else "",
                name=r.ci.name if r.ci else "",
                business_service=bool(r.ci and r.ci.type == BUSINESS_SERVICE),
            )
        for r in self.reached:
            for rel in r.path:
                if not graph.has_edge(rel.from_id, rel.to_id, key=rel.type):
                    graph.add_edge(rel.from_id, rel.to_id, key=rel.type, type=rel.type)
        return graph


def _walk(
    graph: GraphLike,
    ids: str | Sequence[str],
    direction: Way,
    *,
    max_depth: int,
    types: Sequence[str] | None,
    limit: int,
    states: bool,
    details: bool,
    as_of: datetime | None,
) -> BlastRadius:
    check_bounds(max_depth, limit)
    start_ids = tuple(sorted({ids} if isinstance(ids, str) else set(ids)))
    view: GraphView = as_view(graph, as_of)
    type_filter = tuple(sorted(set(types))) if types else None
    for name in type_filter or ():
        vocabulary().relationship_type(name)
    walked, truncated = view.traverse(start_ids, direction, type_filter, max_depth, limit)
    # the walk may say which starts it found (walking from an unknown one reaches nothing)
    known = walked.found_starts if walked.found_starts is not None else view.known_ids(start_ids)
    missing = [i for i in start_ids if i not in known]
    if missing:
        when = f" at {as_of.isoformat()}" if as_of else ""
        raise NotFound(
            f"no CI with id {missing[0]!r}{when}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    walked = walked.nearest_first()
    # positions in ``walked`` of the business services, when the walk told each CI's type
    services_at = walked.positions_of_type(BUSINESS_SERVICE)
    service_hits = walked.hits_at(services_at) if services_at is not None else None
    # the CIs reached to load: all of them, or the services
    if details:
        cis = view.get_cis(walked.ids)
    elif service_hits is not None:
        cis = view.get_cis([hit.ci_id for hit in service_hits])
    else:
        cis = view.get_cis(sorted(view.of_type(walked.ids, BUSINESS_SERVICE)))
    if service_hits is None:  # the walk did not tell types: the services are among the CIs loaded
        service_hits = walked.hits_at(
            [i for i, ci_id in enumerate(walked.ids) if (ci := cis.get(ci_id)) is not None and ci.type == BUSINESS_SERVICE]
        )
    affected = None
    if states and direction == "in":
        affected = failure_impact(view, start_ids, types=type_filter, max_depth=max_depth, limit=limit).affected
    services = [ReachedCI(hit, cis.get(hit.ci_id), None, "", direction) for hit in service_hits]
    if affected is not None:
        for service in services:
            service.state, service.reason = _state(affected, service.ci_id)
    owners = sorted({ci.owner for ci in cis.values() if ci.owner})  # cis: the CIs reached that were loaded
    log.debug("%s walk from %s: %d CIs, %d services", direction, ",".join(start_ids), len(walked), len(services))
    return BlastRadius(
        start_ids=start_ids,
        direction=direction,
        max_depth=max_depth,
        types=type_filter,
        walked=walked,
        services=services,
        owners=owners,
        truncated=truncated,
        as_of=as_of,
        cis=cis,
        affected=affected,
        view=view,
    )


def _state(affected: dict[str, Affected], ci_id: str) -> tuple[State, str]:
    found = affected.get(ci_id)
    return (found.state, found.reason) if found else ("unaffected", "no impact travels this way")


def blast_radius(
    graph: GraphLike,
    ids: str | Sequence[str],
    *,
    max_depth: int = 6,
    types: Sequence[str] | None = None,
    limit: int = 10_000,
    states: bool = False,
    details: bool = True,
    as_of: datetime | None = None,
) -> BlastRadius:
    """Everything upstream of ``ids``: the CIs that depend on them, nearest first.

    ``graph`` is a store, a networkx ``MultiDiGraph`` or a ``GraphView``.
    ``types`` limits the relationship types walked; ``limit`` caps the CIs
    returned (``truncated`` tells). ``states`` adds, per CI, whether the failure
    of ``ids`` takes it down, only degrades it (redundancy held) or leaves it
    unaffected (reached only through relationships that carry no impact).
    ``details=False`` skips loading every reached CI (services are still
    loaded), for speed on large results. ``as_of`` walks the graph as it was then.
    """
    return _walk(
        graph, ids, "in", max_depth=max_depth, types=types, limit=limit, states=states, details=details, as_of=as_of
    )


def dependencies(
    graph: GraphLike,
    ids: str | Sequence[str],
    *,
    max_depth: int = 6,
    types: Sequence[str] | None = None,
    limit: int = 10_000,
    details: bool = True,
    as_of: datetime | None = None,
) -> BlastRadius:
    """Everything downstream of ``ids``: what they need, nearest first (same shape as ``blast_radius``)."""
    return _walk(
        graph, ids, "out", max_depth=max_depth, types=types, limit=limit, states=False, details=details, as_of=as_of
    )
