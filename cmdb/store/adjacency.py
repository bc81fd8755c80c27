"""An in-memory copy of the embedded store's walkable graph, for walks at memory speed.

A breadth-first walk over SQLite pays one indexed query per level plus a query
for the names of what it reached; on a million-CI estate that is most of the
time of a blast radius. A long-lived process (``cmdb serve``, a notebook, a
benchmark) may keep the graph in memory instead: two compressed adjacency
arrays (who points at each CI, and what each CI points at), the relationship
type of each edge as a small code, each CI's id, type and place in id order,
and, decoded once, the few CIs every blast radius reports (business
services). About 300 MB for a million CIs and four million edges.

The copy is tagged with the store's ``generation()`` when it was read; the
store uses it only while the generation is unchanged, so an answer never comes
from an outdated copy (see ``SqliteStore.traverse``). The walk visits the
frontier and each CI's edges in exactly the order of the SQL walk (frontier by
node id; edges by type name, then the other end's node id), so both reach the
same CIs, at the same depths, along the same paths; the store then orders what
a walk reached by depth, then id. A walk hands back columns (``Walk``), not one
object per CI.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from cmdb.errors import StoreError
from cmdb.model import Direction
from cmdb.vocabulary import vocabulary

__all__ = ["Adjacency", "GraphCopy", "Reached", "Stopped", "Walk"]

log = logging.getLogger(__name__)

Reached = dict[int, tuple[int, tuple[int, str, int] | None]]
"""node id -> (depth, edge (src, type, dst) that reached it); starts have no edge."""

_FETCH = 50_000  # rows per fetch while reading the store, between checks for a stop
TYPE_BITS = 16  # a node's type code fits in the low bits of its place in id order
TYPE_MASK = (1 << TYPE_BITS) - 1


class Stopped(Exception):
    """The store closed while its graph was being copied."""


Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Adjacency:
    """Compressed adjacency: node ``n``'s edges are ``other[start[n]:start[n + 1]]``,
    ordered by type name (``type_code``), then the other end."""

    start: Ints
    other: Ints
    type_code: npt.NDArray[np.int8]

    @classmethod
    def from_edges(cls, here: Ints, there: Ints, code: Ints, size: int) -> Adjacency:
        order = np.lexsort((there, code, here))
        start = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(np.bincount(here, minlength=size), out=start[1:])
        return cls(start, there[order], code[order].astype(np.int8))

    def edges_of(self, nodes: Ints) -> tuple[Ints, Ints]:
        """Positions of every edge of ``nodes``, in node order, and how many each node has."""
        first = self.start[nodes]
        counts = self.start[nodes + 1] - first
        if len(nodes) == 1:  # one run (a walk's first step from one CI)
            return np.arange(first[0], first[0] + counts[0], dtype=np.int64), counts
        ends = counts.cumsum()
        # position k of the run of node i is first[i] + k: one arange shifted per run
        # (array methods, not numpy's functions: these small arrays would pay more for the wrappers)
        positions = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64) + (first - ends + counts).repeat(counts)
        return positions, counts


@dataclass(frozen=True, slots=True)
class Walk:
    """What one in-memory walk reached besides its starts, as columns in reaching order:
    each CI's node id and depth, and the edge (src, type code, dst) that reached it."""

    nodes: Ints
    depths: Ints
    src: Ints
    code: npt.NDArray[np.int8]
    dst: Ints
    rel_types: tuple[str, ...]
    starts: tuple[int, ...]

    @classmethod
    def of(
        cls,
        parts: list[tuple[Ints, int, Ints, npt.NDArray[np.int8], Ints]],
        rel_types: tuple[str, ...],
        starts: Sequence[int],
    ) -> Walk:
        """The walk from what each expanded chunk reached: (nodes, depth, src, type code, dst)."""
        if not parts:
            none = np.empty(0, dtype=np.int64)
            return cls(none, none, none, none.astype(np.int8), none, rel_types, tuple(starts))
        nodes, levels, src, code, dst = zip(*parts, strict=True)
        return cls(
            np.concatenate(nodes),
            np.repeat(np.array(levels, dtype=np.int64), [len(n) for n in nodes]),
            np.concatenate(src),
            np.concatenate(code),
            np.concatenate(dst),
            rel_types,
            tuple(starts),
        )

    def reached(self) -> Reached:
        """The walk as ``SqliteStore._bfs`` gives it: node -> (depth, edge that reached it)."""
        names = self.rel_types
        reached: Reached = {n: (0, None) for n in self.starts}
        edges = zip(self.src.tolist(), [names[c] for c in self.code.tolist()], self.dst.tolist())
        reached.update(zip(self.nodes.tolist(), zip(self.depths.tolist(), edges)))
        return reached


@dataclass(frozen=True, slots=True)
class GraphCopy:
    """The walkable graph of a store as it was at ``generation``."""

    generation: int
    ids: list[str]  # CI id by node id ("" where no CI has that node id)
    rank_and_type: Ints  # by node id: (place of its CI id in id order) << TYPE_BITS | its type's index in type_names
    sorted_ids: list[str]  # every CI id, in id order (SQLite's binary collation is code point order)
    by_rank: Ints  # the node id of each of ``sorted_ids``
    type_names: tuple[str, ...]
    rel_types: tuple[str, ...]  # sorted; an edge's type code is its position here
    inward: Adjacency  # per CI, the edges ending there: who needs it
    outward: Adjacency  # per CI, the edges starting there: what it needs
    rows: dict[str, Any]  # the CIs the store asked to keep, by id, as its ``decode`` made them
    _scratch: threading.local = field(default_factory=threading.local)  # per thread: see _scratch_arrays

    @classmethod
    def read(
        cls,
        conn: sqlite3.Connection,
        generation: int,
        stop: threading.Event | None = None,
        rows_sql: tuple[str, Sequence[object]] | None = None,
        decode: Callable[[tuple[Any, ...]], Any] = lambda row: row,
    ) -> GraphCopy:
        """Copy the graph through ``conn``, in one read transaction (one consistent state);
        with ``rows_sql`` (a query and its parameters), also the rows it selects, each as
        ``decode`` makes it, by their first column."""
        began = time.perf_counter()

        def rows(sql: str, params: Sequence[object] = ()) -> Iterator[int]:
            """Every value of every row, read in batches; stops when ``stop`` is set."""
            cursor = conn.execute(sql, params)
            while batch := cursor.fetchmany(_FETCH):
                if stop is not None and stop.is_set():
                    raise Stopped
                yield from itertools.chain.from_iterable(batch)

        conn.execute("BEGIN")
        try:
            size = (conn.execute("SELECT max(nid) FROM cis").fetchone()[0] or 0) + 1
            ids = [""] * size
            sorted_ids: list[str] = []
            in_id_order = array("q")  # node ids, 8 bytes each rather than an int object each
            for nid, ci_id in conn.execute("SELECT nid, id FROM cis INDEXED BY sqlite_autoindex_cis_1"):
                ids[nid] = ci_id
                sorted_ids.append(ci_id)
                in_id_order.append(nid)
            by_rank = np.frombuffer(in_id_order, dtype=np.int64).copy()
            rank_and_type = np.zeros(size, dtype=np.int64)
            rank_and_type[by_rank] = np.arange(len(by_rank), dtype=np.int64) << TYPE_BITS
            type_names = tuple(row[0] for row in conn.execute("SELECT DISTINCT type FROM cis INDEXED BY cis_type"))
            if len(type_names) > TYPE_MASK + 1:
                raise StoreError(f"the store holds {len(type_names)} CI types, more than a graph copy can tell apart")
            for position, name in enumerate(type_names):
                nids = np.fromiter(rows("SELECT nid FROM cis INDEXED BY cis_type WHERE type = ?", (name,)), np.int64)
                rank_and_type[nids] |= position
            rel_types = tuple(sorted(vocabulary().relationship_types))
            # Each edge's type as its code, computed by SQLite: the names are parameters.
            case = "CASE type " + " ".join(f"WHEN ? THEN {n}" for n in range(len(rel_types))) + " ELSE -1 END"
            flat = np.fromiter(
                rows(
                    f"SELECT src, dst, {case} FROM rels WHERE lifecycle_state != 'retired' AND review != 'rejected'",
                    rel_types,
                ),
                np.int64,
            ).reshape(-1, 3)
            kept = {row[0]: decode(row) for row in conn.execute(*rows_sql)} if rows_sql is not None else {}
        finally:
            conn.execute("COMMIT")
        src, dst, code = flat[:, 0], flat[:, 1], flat[:, 2]
        if (code < 0).any():  # the store accepts vocabulary types only; a copy must not differ from it
            raise StoreError("the store holds relationships of a type the vocabulary does not know")
        copy = cls(
            generation=generation,
            ids=ids,
            rank_and_type=rank_and_type,
            sorted_ids=sorted_ids,
            by_rank=by_rank,
            type_names=type_names,
            rel_types=rel_types,
            inward=Adjacency.from_edges(dst, src, code, size),
            outward=Adjacency.from_edges(src, dst, code, size),
            rows=kept,
        )
        log.info(
            "graph copied into memory: %d CIs, %d walkable edges in %.1f s",
            size - 1,
            len(src),
            time.perf_counter() - began,
        )
        return copy

    def walk(
        self,
        start: Sequence[int],
        direction: Direction,
        types: Sequence[str] | None,
        max_depth: int,
        limit: int,
        chunk: int,
        goal: int | None = None,
    ) -> Walk:
        """The store's breadth-first walk (``SqliteStore._bfs``), in memory, step for step.

        Each level expands a whole chunk of the frontier at once with array operations;
        of the edges reaching a new CI, the first in walking order wins, as in SQL.
        """
        allowed: npt.NDArray[np.bool_] | None = None
        if types:
            allowed = np.isin(
                np.arange(len(self.rel_types)), [self.rel_types.index(t) for t in types if t in self.rel_types]
            )
        ways: list[tuple[bool, Adjacency]] = []
        if direction in ("in", "both"):
            ways.append((True, self.inward))
        if direction in ("out", "both"):
            ways.append((False, self.outward))
        seen, claim = self._scratch_arrays()
        frontier = np.array(sorted(set(start)), dtype=np.int64)
        seen[frontier] = True
        # per expanded chunk: the CIs it reached, their depth, and the edge (src, code, dst) that reached each
        parts: list[tuple[Ints, int, Ints, npt.NDArray[np.int8], Ints]] = []
        found = 0
        try:
            for depth in range(1, max_depth + 1):
                grown: list[Ints] = []
                for lo in range(0, len(frontier), chunk):
                    part = frontier[lo : lo + chunk]
                    for inward, adjacency in ways:
                        positions, counts = adjacency.edges_of(part)
                        there = adjacency.other[positions]
                        keep = ~seen[there]
                        if allowed is not None:
                            keep &= allowed[adjacency.type_code[positions]]
                        picked = keep.nonzero()[0]
                        candidates = there[picked]
                        # One edge per new CI, its first in walking order: each candidate claims its
                        # CI back to front, so the first claim is the one left (numpy assigns repeated
                        # indices in order, the last value staying).
                        order = np.arange(len(picked), dtype=np.int64)
                        claim[candidates[::-1]] = order[::-1]
                        firsts = claim[candidates] == order
                        picked, new = picked[firsts], candidates[firsts]
                        cut = limit - found
                        if goal is not None and (at := (new == goal).nonzero()[0]).size:
                            cut = min(cut, int(at[0]) + 1)
                        done = len(picked) >= cut
                        picked, new = picked[:cut], new[:cut]
                        seen[new] = True
                        grown.append(new)
                        found += len(new)
                        here = part.repeat(counts)[picked]
                        src, dst = (new, here) if inward else (here, new)
                        parts.append((new, depth, src, adjacency.type_code[positions[picked]], dst))
                        if done:
                            return Walk.of(parts, self.rel_types, start)
                frontier = np.concatenate(grown) if grown else frontier[:0]
                frontier.sort()
                if not len(frontier):
                    break
            return Walk.of(parts, self.rel_types, start)
        finally:
            seen[np.asarray(start, dtype=np.int64)] = False
            for new, *_ in parts:
                seen[new] = False

    def find(self, ids: Sequence[str]) -> dict[str, int]:
        """The node ids of the CIs among ``ids``."""
        found: dict[str, int] = {}
        sorted_ids = self.sorted_ids
        for ci_id in ids:
            at = bisect_left(sorted_ids, ci_id)
            if at < len(sorted_ids) and sorted_ids[at] == ci_id:
                found[ci_id] = int(self.by_rank[at])
        return found

    def nearest_first(self, walk: Walk) -> tuple[Ints, Ints, Ints]:
        """The nodes a walk reached, their depths and their type codes (into ``type_names``),
        ordered by depth, then CI id."""
        keys = self.rank_and_type[walk.nodes]  # one lookup per node, for the order and the types
        order = np.lexsort((keys, walk.depths))  # the rank, in the high bits, orders the keys
        return walk.nodes[order], walk.depths[order], keys[order] & TYPE_MASK

    def ids_of(self, nodes: Sequence[int]) -> list[str]:
        """The CI id of each node."""
        if len(nodes) > 1:  # one C call; with a single key itemgetter gives the item, not a tuple
            return list(itemgetter(*nodes)(self.ids))
        return [self.ids[node] for node in nodes]

    def _scratch_arrays(self) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int32]]:
        """This thread's arrays for walks, by node: which nodes a walk reached (all clear
        between walks), and the claims of one step (never read before being written)."""
        scratch = self._scratch
        if getattr(scratch, "seen", None) is None:
            scratch.seen = np.zeros(len(self.ids), dtype=np.bool_)
            scratch.claim = np.zeros(len(self.ids), dtype=np.int32)  # a step has far fewer than 2**31 edges
        return scratch.seen, scratch.claim
