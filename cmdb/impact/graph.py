"""One way to walk any graph: the ``GraphView`` the impact algorithms read through.

Every algorithm in ``cmdb.impact`` asks a view for the edges touching a whole
BFS frontier at once (``edges(ids, direction, types)``), the same idea as the
``neighbors`` argument of networkx's ``generic_bfs_edges`` but batched per level
so that a store answers each level with one indexed query. Three views:

- ``StoreView``: over the ``Store`` protocol (embedded SQLite or Neo4j); its
  ``traverse`` is the store's own per-level BFS.
- ``AsOfView``: over a store as it was at a past time (``cmdb.history``).
- ``NetworkxView``: over a ``networkx.MultiDiGraph`` shaped like
  ``cmdb.export.to_networkx`` (nodes: CI ids with their fields; edges from the
  dependent to what it needs, keyed by relationship type).

``as_view`` turns whichever of these a caller holds into a view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol, TypeAlias, cast, runtime_checkable

import networkx as nx

from cmdb.errors import ValidationError
from cmdb.model import CI, COMMON_FIELDS, ChangeRecord, Relationship
from cmdb.store.base import ChangeFilter, CIFilter, Hit, Store, Traversal
from cmdb.vocabulary import vocabulary

__all__ = [
    "AsOfView",
    "GraphLike",
    "GraphView",
    "NetworkxView",
    "Reached",
    "StoreView",
    "Way",
    "as_view",
    "bfs",
    "hits_from_reached",
    "impact_types",
    "path_to",
]

log = logging.getLogger(__name__)

Way = Literal["in", "out", "both"]
"""``in``: towards dependents (who needs it, the blast radius); ``out``: towards dependencies."""

Reached = dict[str, tuple[int, Relationship | None, str | None]]
"""CI id -> (depth, edge that reached it, the CI it was reached from); starts have (0, None, None)."""

Neighbors = Callable[[Sequence[str]], Iterable[tuple[str, Relationship, str]]]
"""Given a frontier, every (here, edge, there) step leaving it, in any order."""


def impact_types(kinds: Iterable[str] = ("all", "any"), types: Sequence[str] | None = None) -> tuple[str, ...]:
    """Relationship types whose impact is one of ``kinds``, within ``types`` when given, sorted."""
    wanted = set(kinds)
    vocab = vocabulary()
    names = types if types is not None else tuple(vocab.relationship_types)
    return tuple(sorted(n for n in names if vocab.relationship_type(n).impact in wanted))


def _walkable(rel: Relationship) -> bool:
    return rel.lifecycle_state != "retired" and rel.review != "rejected"


def _edge_order(step: tuple[str, Relationship, str]) -> tuple[str, str, str]:
    return (step[0], step[1].type, step[2])


def bfs(
    neighbors: Neighbors, sources: Iterable[str], depth_limit: int, limit: int | None = None, *, batch: int = 1000
) -> tuple[Reached, bool]:
    """Breadth-first search level by level, like ``networkx.generic_bfs_edges``.

    ``neighbors`` is asked for a sorted frontier ``batch`` CIs at a time, so a
    walk that hits ``limit`` stops asking. Deterministic: steps are taken in
    (here, type, there) order, so a CI reachable at the same depth from several
    parents keeps the first in that order. Returns what was reached and whether
    ``limit`` cut the walk short.
    """
    reached: Reached = {s: (0, None, None) for s in sorted(set(sources))}
    frontier = list(reached)
    found = 0
    for depth in range(1, depth_limit + 1):
        if not frontier:
            break
        next_frontier: list[str] = []
        for start in range(0, len(frontier), batch):
            for here, edge, there in sorted(neighbors(frontier[start : start + batch]), key=_edge_order):
                if there in reached:
                    continue
                reached[there] = (depth, edge, here)
                next_frontier.append(there)
                found += 1
                if limit is not None and found >= limit:
                    return reached, True
        frontier = sorted(next_frontier)
    return reached, False


def path_to(ci_id: str, reached: Reached) -> tuple[Relationship, ...]:
    """The edges from a start CI to ``ci_id``, in walking order."""
    steps: list[Relationship] = []
    node: str | None = ci_id
    while node is not None:
        _, edge, parent = reached[node]
        if edge is None:
            break
        steps.append(edge)
        node = parent
    steps.reverse()
    return tuple(steps)


def hits_from_reached(reached: Reached) -> Traversal:
    return Traversal.of(
        [Hit(ci_id, depth, path_to(ci_id, reached)) for ci_id, (depth, edge, _) in reached.items() if edge is not None]
    ).nearest_first()


@runtime_checkable
class GraphView(Protocol):
    """What the impact algorithms need from a graph; every call is batched."""

    def edges(self, ids: Sequence[str], direction: Way, types: Sequence[str] | None = None) -> list[Relationship]:
        """Walkable edges touching ``ids``: ``out`` start at them, ``in`` end at them."""
        ...

    def traverse(
        self, start_ids: Sequence[str], direction: Way, types: Sequence[str] | None, max_depth: int, limit: int
    ) -> tuple[Traversal, bool]:
        """BFS from ``start_ids`` (not included), nearest first, and whether ``limit`` cut it."""
        ...

    def get_cis(self, ids: Sequence[str]) -> dict[str, CI]: ...

    def known_ids(self, ids: Sequence[str]) -> set[str]: ...

    def of_type(self, ids: Sequence[str], type_name: str) -> set[str]:
        """The CIs among ``ids`` of type ``type_name`` (only those are loaded)."""
        ...

    def changes(self, ci_ids: Sequence[str], since: datetime | None, until: datetime | None) -> list[ChangeRecord]:
        """Change records of these CIs (or their relationships) within [since, until), oldest first."""
        ...


def _steps(view: GraphView, direction: Way, types: Sequence[str] | None) -> Neighbors:
    def neighbors(frontier: Sequence[str]) -> Iterable[tuple[str, Relationship, str]]:
        if direction in ("in", "both"):
            for rel in view.edges(frontier, "in", types):
                yield rel.to_id, rel, rel.from_id
        if direction in ("out", "both"):
            for rel in view.edges(frontier, "out", types):
                yield rel.from_id, rel, rel.to_id

    return neighbors


class _ViewBase:
    """Shared parts: the generic traverse and the type cache."""

    #: CIs per ``edges`` call in a generic walk
    batch = 1000

    def edges(self, ids: Sequence[str], direction: Way, types: Sequence[str] | None = None) -> list[Relationship]:
        raise NotImplementedError

    def traverse(
        self, start_ids: Sequence[str], direction: Way, types: Sequence[str] | None, max_depth: int, limit: int
    ) -> tuple[Traversal, bool]:
        reached, cut = bfs(_steps(self, direction, types), start_ids, max_depth, limit, batch=self.batch)  # type: ignore[arg-type]
        return hits_from_reached(reached), cut


class StoreView(_ViewBase):
    """A view over the store protocol: one batched store call per BFS level."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def edges(self, ids: Sequence[str], direction: Way, types: Sequence[str] | None = None) -> list[Relationship]:
        if not ids:
            return []
        return self.store.relationships(ids, direction, types)

    def traverse(
        self, start_ids: Sequence[str], direction: Way, types: Sequence[str] | None, max_depth: int, limit: int
    ) -> tuple[Traversal, bool]:
        # The store's own BFS works on integer ids with one indexed query per level.
        # Asking for one more than ``limit`` tells whether the limit cut the walk.
        hits = self.store.traverse(list(start_ids), direction, types, max_depth, limit + 1)
        return (hits[:limit], True) if len(hits) > limit else (hits, False)

    def get_cis(self, ids: Sequence[str]) -> dict[str, CI]:
        return self.store.get_cis(ids) if ids else {}

    def known_ids(self, ids: Sequence[str]) -> set[str]:
        return self.store.known_ids(ids) if ids else set()

    def of_type(self, ids: Sequence[str], type_name: str) -> set[str]:
        unique = sorted(set(ids))
        if len(unique) <= 2000:  # loading them beats a filtered listing, which walks every CI of the type
            return {ci.id for ci in self.store.get_cis(unique).values() if ci.type == type_name}
        found: set[str] = set()
        for start in range(0, len(unique), 900):
            chunk = tuple(unique[start : start + 900])
            found.update(ci.id for ci in self.store.list_cis(CIFilter(ids=chunk, types=(type_name,)), len(chunk)).items)
        return found

    def changes(self, ci_ids: Sequence[str], since: datetime | None, until: datetime | None) -> list[ChangeRecord]:
        found: list[ChangeRecord] = []
        ids = sorted(set(ci_ids))
        for start in range(0, len(ids), 400):  # the store puts each id in its query twice
            chunk = tuple(ids[start : start + 400])
            found.extend(self.store.iter_changes(ChangeFilter(ci_ids=chunk, since=since, until=until)))
        unique = {c.seq: c for c in found}
        return [unique[seq] for seq in sorted(unique)]


class AsOfView(StoreView):
    """The store as it was at ``at``: edges and CIs rewound through ``cmdb.history``.

    Every level's edges come from ``relationships_as_of``, so a walk costs the
    change records of the frontier on top of the live walk. Frontiers go in
    small batches: the history reads name every dependent in one query.
    """

    batch = 200

    def __init__(self, store: Store, at: datetime) -> None:
        super().__init__(store)
        self.at = at

    def edges(self, ids: Sequence[str], direction: Way, types: Sequence[str] | None = None) -> list[Relationship]:
        from cmdb.history import relationships_as_of

        if not ids:
            return []
        rels = relationships_as_of(self.store, ids, self.at, direction, types)
        return sorted((r for r in rels if _walkable(r)), key=lambda r: r.key)

    def traverse(
        self, start_ids: Sequence[str], direction: Way, types: Sequence[str] | None, max_depth: int, limit: int
    ) -> tuple[Traversal, bool]:
        return _ViewBase.traverse(self, start_ids, direction, types, max_depth, limit)

    def get_cis(self, ids: Sequence[str]) -> dict[str, CI]:
        from cmdb.history import cis_as_of

        return cis_as_of(self.store, ids, self.at) if ids else {}

    def known_ids(self, ids: Sequence[str]) -> set[str]:
        return set(self.get_cis(ids))

    def of_type(self, ids: Sequence[str], type_name: str) -> set[str]:
        current = super().of_type(ids, type_name)  # a CI's type does not change; did it exist then?
        return {ci.id for ci in self.get_cis(sorted(current)).values() if ci.type == type_name}

    def changes(self, ci_ids: Sequence[str], since: datetime | None, until: datetime | None) -> list[ChangeRecord]:
        until = min(until, self.at) if until is not None else self.at
        return super().changes(ci_ids, since, until)


def _ci_from_node(node: str, data: dict[str, Any]) -> CI:
    ci = data.get("ci")
    if isinstance(ci, CI):
        return ci
    if "type" not in data:
        raise ValidationError(f"node {node!r} of the networkx graph has no 'type' attribute")
    made = CI(
        id=str(node),
        type=str(data["type"]),
        tags=dict(data.get("tags") or {}),
        attributes=dict(data.get("attributes") or {}),
    )
    for name in COMMON_FIELDS:
        if data.get(name) is not None:
            setattr(made, name, str(data[name]))
    return made


class NetworkxView(_ViewBase):
    """A view over an in-memory ``networkx.MultiDiGraph`` (as ``cmdb.export.to_networkx`` makes).

    Edges point from the dependent to what it needs; the relationship type is
    the edge key (or its ``type`` attribute). Change records, when a notebook
    has them, go in ``graph.graph["changes"]`` as a list of ``ChangeRecord``.
    """

    def __init__(self, graph: nx.MultiDiGraph) -> None:
        if not isinstance(graph, nx.MultiDiGraph):
            raise ValidationError("the impact functions take a networkx.MultiDiGraph (see cmdb.export.to_networkx)")
        self.graph = graph

    def _rel(self, u: str, v: str, key: Any, data: dict[str, Any]) -> Relationship:
        rel = data.get("rel")
        if isinstance(rel, Relationship):
            return rel
        return Relationship(
            from_id=u,
            type=str(data.get("type") or key),
            to_id=v,
            lifecycle_state=str(data.get("lifecycle_state") or "active"),
            review=str(data.get("review") or ""),
            source=str(data.get("source") or ""),
            confidence=float(data.get("confidence", 1.0)),
            inferred=bool(data.get("inferred", False)),
        )

    def edges(self, ids: Sequence[str], direction: Way, types: Sequence[str] | None = None) -> list[Relationship]:
        wanted = set(types) if types is not None else None
        graph = self.graph
        found: list[Relationship] = []
        for node in dict.fromkeys(ids):
            if node not in graph:
                continue
            if direction in ("out", "both"):
                for _, v, key, data in graph.out_edges(node, keys=True, data=True):
                    rel = self._rel(node, v, key, data)
                    if (wanted is None or rel.type in wanted) and _walkable(rel):
                        found.append(rel)
            if direction in ("in", "both"):
                for u, _, key, data in graph.in_edges(node, keys=True, data=True):
                    if direction == "both" and u in ids:
                        continue  # already seen as an out edge
                    rel = self._rel(u, node, key, data)
                    if (wanted is None or rel.type in wanted) and _walkable(rel):
                        found.append(rel)
        return found

    def get_cis(self, ids: Sequence[str]) -> dict[str, CI]:
        graph = self.graph
        return {i: _ci_from_node(i, graph.nodes[i]) for i in dict.fromkeys(ids) if i in graph}

    def known_ids(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self.graph}

    def of_type(self, ids: Sequence[str], type_name: str) -> set[str]:
        graph = self.graph
        return {i for i in set(ids) if i in graph and _ci_from_node(i, graph.nodes[i]).type == type_name}

    def changes(self, ci_ids: Sequence[str], since: datetime | None, until: datetime | None) -> list[ChangeRecord]:
        wanted = set(ci_ids)
        records: list[ChangeRecord] = list(self.graph.graph.get("changes") or [])
        return sorted(
            (
                c
                for c in records
                if (c.ci_id in wanted or c.to_id in wanted)
                and (since is None or c.at >= since)
                and (until is None or c.at < until)
            ),
            key=lambda c: (c.at, c.seq),
        )


GraphLike: TypeAlias = "Store | nx.MultiDiGraph | GraphView"
"""What the public impact functions accept: a store, a networkx graph or a view."""


_VIEW_CLASSES: dict[type, bool] = {}


def _is_view(graph: object) -> bool:
    """Whether ``graph`` is a view; known per class (a protocol check costs tens of microseconds)."""
    cls = type(graph)
    known = _VIEW_CLASSES.get(cls)
    if known is None:
        known = _VIEW_CLASSES[cls] = issubclass(cls, GraphView)
    return known


def as_view(graph: GraphLike, as_of: datetime | None = None) -> GraphView:
    """The view to walk ``graph`` through (as it was at ``as_of``, for a store)."""
    view: GraphView
    if isinstance(graph, nx.MultiDiGraph):
        view = NetworkxView(graph)
    elif _is_view(graph):
        view = cast(GraphView, graph)
    else:
        view = StoreView(cast(Store, graph))
    if as_of is None or isinstance(view, AsOfView) and view.at == as_of:
        return view
    if isinstance(view, StoreView):
        return AsOfView(view.store, as_of)
    raise ValidationError("as_of needs a store (its change records); this graph has one time only")
