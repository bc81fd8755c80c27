"""The store protocol every backend implements, and the types it speaks.

Everything above the store (sync engine, impact, GraphQL, CLI, notebooks) talks
to a backend through ``Store`` only. Writes happen inside ``store.transaction()``:
a sync run is one transaction, so a crash leaves the last committed state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, overload, runtime_checkable

import numpy as np
import numpy.typing as npt

from cmdb.model import CI, ChangeKind, ChangeRecord, Direction, Relationship, RelKey, SyncRun
from cmdb.vocabulary import vocabulary

__all__ = [
    "MAX_PAGE",
    "CIFilter",
    "ChangeFilter",
    "Hit",
    "NotInMemory",
    "Page",
    "PathBatch",
    "RelFilter",
    "SourceState",
    "Stats",
    "Store",
    "Traversal",
]

T = TypeVar("T")
Node = TypeVar("Node", int, str)  # how a backend names a CI inside its walks


def walk_back(
    node: Node, reached: dict[Node, tuple[int, tuple[Node, str, Node] | None]]
) -> list[tuple[Node, str, Node]]:
    """The edges from a walk's start to ``node``, in walking order.

    ``reached`` maps each CI a breadth-first walk reached to (depth, the edge
    (from, type, to) that reached it); start CIs have no edge.
    """
    steps: list[tuple[Node, str, Node]] = []
    while (step := reached[node][1]) is not None:
        steps.append(step)
        node = _behind(node, step)
    steps.reverse()
    return steps


def _behind(node: Node, step: tuple[Node, str, Node]) -> Node:
    """The CI the walk came from to reach ``node`` along ``step`` (its other end)."""
    return step[0] if step[2] == node else step[2]


MAX_PAGE = 10_000
"""The most rows one listing call returns, whatever ``first`` asks for."""


@dataclass(frozen=True, slots=True)
class CIFilter:
    """Which CIs a listing returns; every field set narrows it (AND)."""

    ids: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    provider: str | None = None
    scope: str | None = None
    region: str | None = None
    environment: str | None = None
    owner: str | None = None
    cost_centre: str | None = None
    business_unit: str | None = None
    criticality: str | None = None
    lifecycle_states: tuple[str, ...] | None = None
    tag_key: str | None = None
    tag_value: str | None = None  # with tag_key: that tag has this value
    text: str | None = None  # full-text search over id, name and tags
    missing_owner: bool | None = None

    def memberships(self) -> list[tuple[str, tuple[str, ...]]]:
        """The list fields that are set, as (stored property, allowed values)."""
        pairs = (("id", self.ids), ("type", self.types), ("ci_class", self.classes),
                 ("lifecycle_state", self.lifecycle_states))
        return [(prop, values) for prop, values in pairs if values is not None]

    def equalities(self) -> list[tuple[str, str]]:
        """The single-valued fields that are set, as (stored property, value)."""
        names = ("provider", "scope", "region", "environment", "owner", "cost_centre", "business_unit", "criticality")
        return [(name, value) for name in names if (value := getattr(self, name)) is not None]


@dataclass(frozen=True, slots=True)
class RelFilter:
    types: tuple[str, ...] | None = None
    source: str | None = None
    scope: str | None = None
    inferred: bool | None = None
    review: str | None = None
    lifecycle_states: tuple[str, ...] | None = None
    ci_id: str | None = None  # either end


@dataclass(frozen=True, slots=True)
class ChangeFilter:
    ci_ids: tuple[str, ...] | None = None
    scope: str | None = None
    sync_id: str | None = None
    kinds: tuple[ChangeKind, ...] | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


class NotInMemory(Exception):
    """A read inside ``Store.memory_only()`` needs the file or the network (raised before any I/O)."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``end_cursor`` is opaque, pass it as ``after``."""

    items: list[T]
    end_cursor: str | None
    has_next: bool


class PathBatch(Generic[Node]):
    """The paths of one walk, whose edges are fetched together when a path is first read.

    A walk records, for each CI it reached, the edge (from, type, to) that
    reached it (``reached`` gives that map, as ``walk_back`` reads it, when
    first asked). Many callers only count, summarise or page through the hits,
    so the stored relationships along the paths are loaded on demand: the first
    ``path()`` call fetches the edges of every path of the walk in one batch
    (``fetch``) and makes every path, each from its parent's; later calls look
    them up.
    """

    def __init__(
        self,
        reached: Callable[[], dict[Node, tuple[int, tuple[Node, str, Node] | None]]],
        fetch: Callable[[Iterable[tuple[Node, str, Node]]], dict[tuple[Node, str, Node], Relationship]],
    ) -> None:
        self._walked: Callable[[], dict[Node, tuple[int, tuple[Node, str, Node] | None]]] = reached
        self._fetch: Callable[[Iterable[tuple[Node, str, Node]]], dict[tuple[Node, str, Node], Relationship]] = fetch
        self._paths: dict[Node, tuple[Relationship, ...]] | None = None
        self._lock = threading.Lock()

    def path(self, node: Node) -> tuple[Relationship, ...]:
        return self._loaded()[node]

    def paths_of(self, nodes: Sequence[Node]) -> list[tuple[Relationship, ...]]:
        """The path of each of ``nodes``."""
        paths = self._loaded()
        return [paths[node] for node in nodes]

    def _loaded(self) -> dict[Node, tuple[Relationship, ...]]:
        paths = self._paths
        if paths is None:
            with self._lock:
                if self._paths is None:
                    self._paths = self._every_path()
                paths = self._paths
        return paths

    def _every_path(self) -> dict[Node, tuple[Relationship, ...]]:
        reached = self._walked()
        edges = self._fetch([edge for _, edge in reached.values() if edge is not None])
        paths: dict[Node, tuple[Relationship, ...]] = {}
        for node, (_, step) in reached.items():  # breadth first: a CI comes after the one it was reached from
            if step is None:
                paths[node] = ()
                continue
            # the CI it was reached from: the edge's other end (``_behind``, inline: one call a CI)
            before: tuple[Relationship, ...] | None = paths.get(step[0] if step[2] == node else step[2])
            if before is None:  # not in that order: walked back, edge by edge
                paths[node] = tuple(edges[s] for s in walk_back(node, reached))
            else:
                paths[node] = before + (edges[step],)
        return paths


class Hit:
    """A CI reached by a traversal, with the shortest path that reached it.

    ``path`` runs from the start CI to this one, edge by edge, each as stored
    (from_id -> to_id in dependency direction, whichever way the walk went).
    A backend either gives the path itself or the walk's ``PathBatch`` and this
    hit's node in it; then the path is loaded the first time it is read.
    ``ci_type`` is the reached CI's type, when the backend knows it.
    """

    __slots__ = ("_batch", "_node", "_path", "ci_id", "ci_type", "depth")

    def __init__(
        self,
        ci_id: str,
        depth: int,
        path: tuple[Relationship, ...] = (),
        ci_type: str | None = None,
        batch: PathBatch[Any] | None = None,
        node: Any = None,
    ) -> None:
        self.ci_id = ci_id
        self.depth = depth
        self.ci_type = ci_type
        self._path = path
        self._batch = batch
        self._node = node

    @property
    def path(self) -> tuple[Relationship, ...]:
        if self._batch is not None:
            self._path = self._batch.path(self._node)
            self._batch = None
        return self._path

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hit):
            return NotImplemented
        return (self.ci_id, self.depth, self.path) == (other.ci_id, other.depth, other.path)

    __hash__ = None  # type: ignore[assignment]  # mutable: its path loads on demand

    def __repr__(self) -> str:
        return f"Hit(ci_id={self.ci_id!r}, depth={self.depth}, ci_type={self.ci_type!r})"


class Traversal(Sequence[Hit]):
    """The CIs one walk reached, as columns (ids, depths, types), in walking order.

    A sequence of ``Hit``: each hit is made the first time it is read, so a
    caller that only needs the columns (how many, which ids, which types, how
    deep) never builds one object per CI. ``paths`` and ``nodes`` are the
    walk's ``PathBatch`` and each CI's node in it, for the hits' paths. A
    backend that knows types as codes gives ``type_codes`` (an integer array,
    one per CI) into ``type_names``; the names are listed when first read.
    A backend that names its nodes cheaply may give ``ids=None`` and
    ``label`` (the CI id of each of a list of nodes): the ids are then listed
    when first read, and a hit names only its own node. ``found_starts``: the
    start ids the walk found in the graph, when the backend tells (None: it
    does not; unknown starts are walked from as if they had no edges).
    """

    __slots__ = (
        "_hits",
        "_ids",
        "_label",
        "_nearest_first",
        "_nodes",
        "_paths",
        "_type_codes",
        "_type_names",
        "_types",
        "depths",
        "found_starts",
    )

    def __init__(
        self,
        ids: list[str] | None,
        depths: list[int],
        types: list[str] | None = None,
        paths: PathBatch[Any] | None = None,
        nodes: list[Any] | None = None,
        *,
        nearest_first: bool = False,
        type_codes: npt.NDArray[np.integer[Any]] | None = None,
        type_names: Sequence[str] = (),
        label: Callable[[list[Any]], list[str]] | None = None,
        found_starts: frozenset[str] | None = None,
    ) -> None:
        if ids is None and (nodes is None or label is None):
            raise ValueError("a Traversal without ids needs its nodes and a label for them")
        self._ids = ids
        self._label = label
        self.depths = depths
        self._types = types
        self._type_codes = type_codes
        self._type_names = type_names
        self._paths = paths
        self._nodes = nodes
        self._hits: list[Hit] | None = None
        self._nearest_first = nearest_first  # already ordered by depth, then id
        self.found_starts = found_starts

    @classmethod
    def of(cls, hits: Sequence[Hit]) -> Traversal:
        """The traversal of hits a backend made itself."""
        known = all(h.ci_type is not None for h in hits)
        made = cls([h.ci_id for h in hits], [h.depth for h in hits], [h.ci_type or "" for h in hits] if known else None)
        made._hits = list(hits)
        return made

    @property
    def ids(self) -> list[str]:
        """Each CI's id."""
        if self._ids is None:
            assert self._label is not None and self._nodes is not None  # checked when made
            self._ids = self._label(self._nodes)
        return self._ids

    @property
    def types(self) -> list[str] | None:
        """Each CI's type, when the walk told them."""
        if self._types is None and self._type_codes is not None:
            names = self._type_names
            self._types = [names[code] for code in self._type_codes.tolist()]
        return self._types

    def positions_of_type(self, type_name: str) -> list[int] | None:
        """Where CIs of ``type_name`` stand in the walk (None when the walk did not tell types)."""
        if self._type_codes is not None:
            if type_name not in self._type_names:
                return []
            positions: list[int] = (self._type_codes == self._type_names.index(type_name)).nonzero()[0].tolist()
            return positions
        if self._types is None:
            return None
        return [i for i, ci_type in enumerate(self._types) if ci_type == type_name]

    def paths(self) -> list[tuple[Relationship, ...]]:
        """Each CI's path, in walking order: loaded in one batch, without making the hits."""
        if self._hits is not None:
            return [hit.path for hit in self._hits]
        if self._paths is None or self._nodes is None:
            return [()] * len(self.depths)
        return self._paths.paths_of(self._nodes)

    def hits(self) -> list[Hit]:
        if self._hits is None:
            self._hits = self.hits_at(range(len(self.depths)))
        return self._hits

    def hits_at(self, positions: Sequence[int]) -> list[Hit]:
        """The hits at these positions (made without listing the others)."""
        if self._hits is not None:
            return [self._hits[i] for i in positions]
        depths, nodes, paths = self.depths, self._nodes, self._paths
        if self._ids is None and self._label is not None and nodes is not None:
            ids: Sequence[str] = self._label([nodes[i] for i in positions])
        else:
            every = self.ids
            ids = [every[i] for i in positions]
        if self._types is None and self._type_codes is not None:
            names, codes = self._type_names, self._type_codes[list(positions)].tolist()
            types: Sequence[str | None] = [names[code] for code in codes]
        else:
            types = [self._types[i] for i in positions] if self._types is not None else [None] * len(positions)
        return [
            Hit(ci_id, depths[i], (), ci_type, paths, nodes[i] if nodes is not None else None)
            for i, ci_id, ci_type in zip(positions, ids, types, strict=True)
        ]

    def _pick(self, positions: Sequence[int] | slice) -> Traversal:
        def take(column: list[T]) -> list[T]:
            return column[positions] if isinstance(positions, slice) else [column[i] for i in positions]

        codes = self._type_codes
        picked = Traversal(
            take(self._ids) if self._ids is not None else None,
            take(self.depths),
            take(self._types) if self._types is not None else None,
            self._paths,
            take(self._nodes) if self._nodes is not None else None,
            nearest_first=self._nearest_first and isinstance(positions, slice) and (positions.step or 1) > 0,
            type_codes=codes[positions if isinstance(positions, slice) else list(positions)] if codes is not None else None,
            type_names=self._type_names,
            label=self._label,
            found_starts=self.found_starts,
        )
        if self._hits is not None:
            picked._hits = take(self._hits)
        return picked

    def nearest_first(self) -> Traversal:
        """The same CIs ordered by depth, then id."""
        if self._nearest_first:
            return self
        order = sorted(range(len(self.ids)), key=self.ids.__getitem__)
        order.sort(key=self.depths.__getitem__)  # stable: by id within each depth
        ordered = self._pick(order)
        ordered._nearest_first = True
        return ordered

    def __len__(self) -> int:
        return len(self.depths)

    @overload
    def __getitem__(self, index: int) -> Hit: ...

    @overload
    def __getitem__(self, index: slice) -> Traversal: ...

    def __getitem__(self, index: int | slice) -> Hit | Traversal:
        if isinstance(index, slice):
            return self._pick(index)
        return self.hits_at([index])[0]

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Traversal):
            return self.hits() == other.hits()
        if isinstance(other, list):
            return self.hits() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Traversal({len(self.depths)} CIs)"


@dataclass(frozen=True, slots=True)
class SourceState:
    """What one source last reported for one CI."""

    fingerprint: str
    last_seen: datetime
    lifecycle_state: str


@dataclass(frozen=True, slots=True)
class Stats:
    total: int
    by_class: dict[str, int] = field(default_factory=dict)
    by_provider: dict[str, int] = field(default_factory=dict)
    by_lifecycle: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    relationships: int = 0
    relationships_by_type: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_counts(
        cls,
        by_type: dict[str, int],
        by_provider: dict[str, int],
        by_lifecycle: dict[str, int],
        relationships_by_type: dict[str, int],
    ) -> Stats:
        """The totals and per-class counts a backend's grouped counts imply, every listing sorted."""
        vocab = vocabulary()
        by_class: dict[str, int] = {}
        for type_name, count in by_type.items():
            ci_class = vocab.class_of(type_name)
            by_class[ci_class] = by_class.get(ci_class, 0) + count
        return cls(
            total=sum(by_type.values()),
            by_class=dict(sorted(by_class.items())),
            by_provider=dict(sorted(by_provider.items())),
            by_lifecycle=dict(sorted(by_lifecycle.items())),
            by_type=dict(sorted(by_type.items())),
            relationships=sum(relationships_by_type.values()),
            relationships_by_type=dict(sorted(relationships_by_type.items())),
        )


@runtime_checkable
class Store(Protocol):
    """One CMDB graph, wherever it is kept."""

    #: how the store is described to a person (path or URI without secrets)
    location: str

    # --- life cycle ---------------------------------------------------------
    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """Everything written inside lands together or not at all."""
        ...

    def generation(self) -> int | None:
        """A number that changes whenever committed data changes, from any process.

        Caches of derived answers key on it; None means the backend cannot tell
        cheaply, and nothing may be cached.
        """
        ...

    def memory_only(self) -> AbstractContextManager[None]:
        """Reads made inside (in this thread) are answered from what the store holds in
        memory, or raise ``NotInMemory`` before they would touch the file or the network.

        For callers on an event loop: a read the store answers from memory is cheaper there
        than a hop to a worker thread, and only a read that would wait on I/O needs one.
        A backend that holds nothing in memory raises ``NotInMemory`` when this is called.
        Inside, the store is read only; what a read raised midway left behind is its caches.
        """
        ...

    # --- CIs ----------------------------------------------------------------
    def get_cis(self, ids: Sequence[str], *, shared: bool = False) -> dict[str, CI]:
        """The CIs among ``ids`` that the store holds, by id.

        ``shared``: the caller only reads what it gets and never changes it (nor hands it
        to code that might), so the backend may hand out objects it keeps for other such
        callers instead of copies of them.
        """
        ...

    def list_cis(self, filter: CIFilter, first: int = 100, after: str | None = None) -> Page[CI]: ...

    def count_cis(self, filter: CIFilter) -> int: ...

    def iter_cis(self, filter: CIFilter | None = None, batch_size: int = 5000) -> Iterator[CI]:
        """Every CI that passes ``filter``, in stable order, streamed."""
        ...

    def known_ids(self, ids: Sequence[str]) -> set[str]:
        """The subset of ``ids`` that the store holds."""
        ...

    def search(self, text: str, limit: int = 20) -> list[CI]:
        """Full-text search over ids, names and tags, best match first."""
        ...

    def resolve_aliases(self, aliases: Sequence[str]) -> dict[str, str]:
        """Map each known alias to the id of the CI that carries it."""
        ...

    def stats(self) -> Stats: ...

    # --- relationships ------------------------------------------------------
    def relationships(
        self,
        ids: Sequence[str],
        direction: Direction = "out",
        types: Sequence[str] | None = None,
        include_inactive: bool = False,
    ) -> list[Relationship]:
        """Edges touching ``ids``: ``out`` edges start at them, ``in`` edges end at them.

        Rejected and retired edges are left out unless ``include_inactive``.
        """
        ...

    def get_relationships(self, keys: Sequence[RelKey]) -> dict[RelKey, Relationship]: ...

    def list_relationships(
        self, filter: RelFilter, first: int = 100, after: str | None = None
    ) -> Page[Relationship]: ...

    def iter_relationships(self, filter: RelFilter | None = None, batch_size: int = 5000) -> Iterator[Relationship]: ...

    # --- graph walks --------------------------------------------------------
    def traverse(
        self,
        start_ids: Sequence[str],
        direction: Direction = "in",
        types: Sequence[str] | None = None,
        max_depth: int = 3,
        limit: int = 10_000,
        *,
        shared: bool = False,
    ) -> Traversal:
        """Breadth-first walk from ``start_ids`` (not included), nearest first, then by id.

        ``in`` walks to dependents (blast radius), ``out`` to dependencies.
        Stops at ``max_depth`` or after ``limit`` CIs. ``shared``: the caller only reads the
        relationships along the hits' paths (as for ``get_cis``).
        """
        ...

    def shortest_path(
        self,
        from_id: str,
        to_id: str,
        direction: Direction = "out",
        types: Sequence[str] | None = None,
        max_depth: int = 10,
    ) -> list[Relationship] | None: ...

    # --- history ------------------------------------------------------------
    def changes(self, filter: ChangeFilter, first: int = 100, after: str | None = None) -> Page[ChangeRecord]: ...

    def iter_changes(self, filter: ChangeFilter, batch_size: int = 5000) -> Iterator[ChangeRecord]: ...

    def sync_runs(self, limit: int = 20, source: str | None = None) -> list[SyncRun]: ...

    # --- writes (inside transaction()) --------------------------------------
    def source_states(self, ids: Sequence[str], source: str) -> dict[str, SourceState]:
        """For each id that ``source`` has reported before: what it reported last."""
        ...

    def rel_fingerprints(self, keys: Sequence[RelKey]) -> dict[RelKey, tuple[str, str, str]]:
        """For each existing relationship key: (fingerprint, lifecycle_state, review)."""
        ...

    def put_cis(self, cis: Sequence[CI]) -> None:
        """Insert or replace whole CIs (the engine has merged them)."""
        ...

    def put_source_states(self, source: str, scope: str, states: dict[str, tuple[str, datetime]]) -> None:
        """Record, per CI id, the fingerprint ``source`` reported in its sweep of ``scope``, and when."""
        ...

    def touch(self, ids: Sequence[str], source: str, at: datetime) -> None:
        """``source`` saw these CIs unchanged at ``at``."""
        ...

    def drop_source(self, ids: Sequence[str], source: str) -> None:
        """``source`` no longer reports these CIs."""
        ...

    def unseen(self, scope: str, source: str, before: datetime) -> list[str]:
        """Ids of CIs that ``source`` reported in its sweep of ``scope``, but not since ``before``."""
        ...

    def put_relationships(self, rels: Sequence[Relationship], fingerprints: Sequence[str]) -> None: ...

    def touch_relationships(self, keys: Sequence[RelKey], at: datetime) -> None: ...

    def unseen_relationships(self, scope: str, source: str, before: datetime) -> list[Relationship]:
        """Active relationships from ``source`` in ``scope`` not seen since ``before``."""
        ...

    def stale_before(self, before: datetime, limit: int = 100_000) -> tuple[list[CI], list[Relationship]]:
        """Stale CIs and relationships whose ``stale_since`` is before ``before``."""
        ...

    def append_changes(self, changes: Sequence[ChangeRecord]) -> None: ...

    def save_sync_run(self, run: SyncRun) -> None: ...

    # --- documents ----------------------------------------------------------
    # A small generic key-value facility for what parts above the graph keep
    # beside it (compliance findings, waivers, saved analyses): JSON objects
    # grouped by ``kind``, each under a ``key`` unique within its kind.
    def put_document(self, kind: str, key: str, body: dict[str, Any]) -> None:
        """Insert or replace one JSON document (inside ``transaction()``)."""
        ...

    def get_document(self, kind: str, key: str) -> dict[str, Any] | None: ...

    def list_documents(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """Every document of ``kind`` as (key, body), in key order."""
        ...
