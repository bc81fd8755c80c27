"""An in-memory copy of the embedded store's walkable graph, for walks at memory speed.

A breadth-first walk over SQLite pays one indexed query per level plus a query
for the names of what it reached; on a million-CI estate that is most of the
time of a blast radius. A long-lived process (``cmdb serve``, a notebook, a
benchmark) may keep the graph in memory instead: two compressed adjacency
arrays (who points at each CI, and what each CI points at), the relationship
type of each edge as a small code, and each CI's id and type. About 130 MB
for a million CIs and four million edges.

The copy is tagged with the store's ``generation()`` when it was read; the
store uses it only while the generation is unchanged, so an answer never comes
from an outdated copy (see ``SqliteStore.traverse``). The walk visits the
frontier and each CI's edges in exactly the order of the SQL walk (frontier by
node id; edges by type name, then the other end's node id), so both give the
same CIs, depths and paths.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cmdb.errors import StoreError
from cmdb.model import Direction
from cmdb.vocabulary import vocabulary

__all__ = ["Adjacency", "GraphCopy", "Reached", "Stopped"]

log = logging.getLogger(__name__)

Reached = dict[int, tuple[int, tuple[int, str, int] | None]]
"""node id -> (depth, edge (src, type, dst) that reached it); starts have no edge."""

_FETCH = 50_000  # rows per fetch while reading the store, between checks for a stop


class Stopped(Exception):
    """The store closed while its graph was being copied."""


@dataclass(frozen=True, slots=True)
class Adjacency:
    """Compressed adjacency: node ``n``'s edges are ``other[start[n]:start[n + 1]]``."""

    start: array[int]
    other: array[int]
    type_code: array[int]

    @classmethod
    def from_edges(
        cls, here: npt.NDArray[np.int64], there: npt.NDArray[np.int64], code: npt.NDArray[np.int64], size: int
    ) -> Adjacency:
        order = np.lexsort((there, code, here))  # by here, then type name, then the other end
        counts = np.bincount(here, minlength=size)
        start = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(counts, out=start[1:])
        return cls(
            array("q", start.tobytes()),
            array("q", there[order].tobytes()),
            array("b", code[order].astype(np.int8).tobytes()),
        )


@dataclass(frozen=True, slots=True)
class GraphCopy:
    """The walkable graph of a store as it was at ``generation``."""

    generation: int
    ids: list[str]  # CI id by node id ("" where no CI has that node id)
    type_of: array[int]  # index into ``type_names`` by node id
    type_names: tuple[str, ...]
    rel_types: tuple[str, ...]  # sorted; an edge's type code is its position here
    inward: Adjacency  # per CI, the edges ending there: who needs it
    outward: Adjacency  # per CI, the edges starting there: what it needs

    @classmethod
    def read(cls, conn: sqlite3.Connection, generation: int, stop: threading.Event | None = None) -> GraphCopy:
        """Copy the graph through ``conn``, in one read transaction (one consistent state)."""
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
            for nid, ci_id in conn.execute("SELECT nid, id FROM cis INDEXED BY sqlite_autoindex_cis_1"):
                ids[nid] = ci_id
            type_names = tuple(row[0] for row in conn.execute("SELECT DISTINCT type FROM cis INDEXED BY cis_type"))
            type_of = np.zeros(size, dtype=np.int16)
            for position, name in enumerate(type_names):
                nids = np.fromiter(rows("SELECT nid FROM cis INDEXED BY cis_type WHERE type = ?", (name,)), np.int64)
                type_of[nids] = position
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
        finally:
            conn.execute("COMMIT")
        src, dst, code = flat[:, 0], flat[:, 1], flat[:, 2]
        if (code < 0).any():  # the store accepts vocabulary types only; a copy must not differ from it
            raise StoreError("the store holds relationships of a type the vocabulary does not know")
        copy = cls(
            generation=generation,
            ids=ids,
            type_of=array("h", type_of.tobytes()),
            type_names=type_names,
            rel_types=rel_types,
            inward=Adjacency.from_edges(dst, src, code, size),
            outward=Adjacency.from_edges(src, dst, code, size),
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
    ) -> Reached:
        """The store's breadth-first walk (``SqliteStore._bfs``), in memory, step for step."""
        reached: Reached = {n: (0, None) for n in start}
        allowed = None if not types else {self.rel_types.index(t) for t in types if t in self.rel_types}
        ways: list[tuple[bool, Adjacency]] = []
        if direction in ("in", "both"):
            ways.append((True, self.inward))
        if direction in ("out", "both"):
            ways.append((False, self.outward))
        names = self.rel_types
        frontier = list(start)
        found = 0
        for depth in range(1, max_depth + 1):
            next_frontier: list[int] = []
            for lo in range(0, len(frontier), chunk):
                part = frontier[lo : lo + chunk]
                for inward, adjacency in ways:
                    begin, other, type_code = adjacency.start, adjacency.other, adjacency.type_code
                    for here in part:
                        for k in range(begin[here], begin[here + 1]):
                            there = other[k]
                            if there in reached or (allowed is not None and type_code[k] not in allowed):
                                continue
                            edge = (there, names[type_code[k]], here) if inward else (here, names[type_code[k]], there)
                            reached[there] = (depth, edge)
                            next_frontier.append(there)
                            found += 1
                            if found >= limit or there == goal:
                                return reached
            if not next_frontier:
                break
            next_frontier.sort()
            frontier = next_frontier
        return reached
