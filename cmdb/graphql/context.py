"""The per-request context: who is asking, the store, and the request's dataloaders.

Every store call from a resolver goes through ``Context.run`` (a worker thread,
so the event loop never waits on I/O) or through a dataloader, which batches
the keys asked for in one tick into one store call of at most
``dataloader_batch_size`` keys. A walk is one call for everything it needs:
the traversal, the paths when the query reads them, and the CIs it reached.
The CI and walk loaders first ask the store to answer from memory
(``Store.memory_only``) on the event loop, and take a worker-thread hop only
for a read that needs the file or the network.

Store calls share ``StoreThreads``: at most ``store_threads`` run at once,
whichever requests they serve. The embedded store's work is mostly Python
(rows into objects), which holds the GIL; ten requests' calls in ten threads
only fight over it, and that fight cost as much CPU as the calls themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, partial
from typing import Any, NamedTuple, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader

from cmdb import history
from cmdb.compliance import Finding, open_findings
from cmdb.graphql.auth import Principal
from cmdb.graphql.settings import ApiSettings
from cmdb.model import CI, Direction, Relationship
from cmdb.store.base import NotInMemory, Store, Traversal
from cmdb.sync import SyncEngine

__all__ = ["Context", "Loaders", "StoreThreads", "TraversalKey", "Walk"]

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class TraversalKey(NamedTuple):
    """One walk from one CI: which way, along which types, how deep, how many CIs at most.
    (A named tuple: made, hashed and compared in C, once or more a walk.)"""

    ci_id: str
    direction: Direction
    types: tuple[str, ...] | None
    depth: int
    limit: int
    paths: bool = False
    """load each CI's path with the walk (the query reads them)"""


@dataclass(slots=True)
class Walk:
    """What one walk found: the CIs it reached, nearest first (as columns), their records,
    and the path to each once loaded."""

    reached: Traversal
    cis: dict[str, CI]
    paths: list[tuple[Relationship, ...]] | None = None

    def path(self, position: int) -> tuple[Relationship, ...]:
        """The path to the CI at ``position``: loaded with the walk when the query reads paths
        (``TraversalKey.paths``), else here, from the store."""
        if self.paths is None:
            self.paths = self.reached.paths()
        return self.paths[position]


class StoreThreads:
    """The worker threads that store calls run in, at most ``size`` at once (one set per app)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker thread, once one of the ``size`` is free."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="cmdb-store")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None


_SHARED: dict[int, StoreThreads] = {}


def shared_threads(size: int) -> StoreThreads:
    """Store threads shared by contexts made without an app's (tests, scripts)."""
    return _SHARED.setdefault(size, StoreThreads(size))


class Loaders:
    """The request's dataloaders, each made when first used; each caches what it loaded for
    the rest of the request."""

    def __init__(self, store: Store, batch_size: int, threads: StoreThreads) -> None:
        self.store = store
        self._run = threads.run
        self._batch_size = batch_size

    def _loader(self, load: Callable[[list[K]], Awaitable[list[V]]]) -> DataLoader[K, V]:
        return DataLoader(load, max_batch_size=self._batch_size)

    @cached_property
    def ci(self) -> DataLoader[str, CI | None]:
        return self._loader(self._load_cis)

    @cached_property
    def relationships(self) -> DataLoader[tuple[str, bool], list[Relationship]]:
        """(ci id, include inactive) -> every relationship touching the CI, either way"""
        return self._loader(self._load_relationships)

    @cached_property
    def traversal(self) -> DataLoader[TraversalKey, Walk]:
        return self._loader(self._load_traversals)

    @cached_property
    def findings(self) -> DataLoader[str, list[Finding]]:
        return self._loader(self._load_findings)

    # The same, as of a past time (cmdb.history rewinds what the store holds now).
    @cached_property
    def ci_as_of(self) -> DataLoader[tuple[str, datetime], CI | None]:
        return self._loader(self._load_cis_as_of)

    @cached_property
    def relationships_as_of(self) -> DataLoader[tuple[str, datetime], list[Relationship]]:
        return self._loader(self._load_relationships_as_of)

    @cached_property
    def traversal_as_of(self) -> DataLoader[tuple[TraversalKey, datetime], Walk]:
        return self._loader(self._load_traversals_as_of)

    def release(self) -> None:
        """Drop what the loaders hold. Graphql-core and strawberry keep a request's context in
        reference cycles, which only the garbage collector frees: without this, every CI, hit
        and relationship a request loaded would wait for a collection, and the collector's
        passes over them were a large share of a walk's CPU time. The loaders made are
        dropped too: each refers back to these loaders, a cycle of its own."""
        for name, loader in list(vars(self).items()):
            if isinstance(loader, DataLoader):
                loader.clear_all()
                loader.batch = None  # the last batch's futures hold what they loaded
                del self.__dict__[name]

    async def _read(self, load: Callable[[], T]) -> T:
        """``load()`` here on the event loop if the store answers it from memory, else in a
        store thread. A hop to a thread and back costs more CPU than what a walk request
        reads in memory (its two hops: 3.9 -> 2.5 ms of server CPU per walk request at 10
        clients), and in memory there is no I/O to wait for. The traversal limits bound
        how long a walk holds the loop; in a thread it would hold the GIL as long."""
        try:
            with self.store.memory_only():
                return load()
        except NotInMemory:
            return await self._run(load)

    async def _load_cis(self, ids: list[str]) -> list[CI | None]:
        found = await self._read(partial(self.store.get_cis, ids, shared=True))  # resolvers only read CIs
        return [found.get(ci_id) for ci_id in ids]

    async def _load_relationships(self, keys: list[tuple[str, bool]]) -> list[list[Relationship]]:
        def load() -> dict[tuple[str, bool], list[Relationship]]:
            by_key: dict[tuple[str, bool], list[Relationship]] = {key: [] for key in keys}
            for inactive in (False, True):
                ids = [ci_id for ci_id, flag in keys if flag is inactive]
                if not ids:
                    continue
                for rel in self.store.relationships(ids, "both", include_inactive=inactive):
                    for end in (rel.from_id, rel.to_id):
                        bucket = by_key.get((end, inactive))
                        if bucket is not None:
                            bucket.append(rel)
            return by_key

        found = await self._run(load)
        return [found[key] for key in keys]

    async def _load_traversals(self, keys: list[TraversalKey]) -> list[Walk]:
        # A walk is one store call per start CI (walks from several starts would merge);
        # the walks of one tick, their paths and the CIs they reach are one read of the store.
        def load() -> list[Walk]:
            walks = [
                self.store.traverse(
                    [key.ci_id], key.direction, key.types, max_depth=key.depth, limit=key.limit, shared=True
                )  # resolvers only read the paths' relationships
                for key in keys
            ]
            cis = self.store.get_cis(list(dict.fromkeys(ci_id for walk in walks for ci_id in walk.ids)), shared=True)
            return [
                Walk(walk, cis, walk.paths() if key.paths else None) for key, walk in zip(keys, walks, strict=True)
            ]

        return await self._read(load)

    async def _load_findings(self, ids: list[str]) -> list[list[Finding]]:
        found = await self._run(open_findings, self.store, ids)
        by_ci: dict[str, list[Finding]] = {ci_id: [] for ci_id in ids}
        for finding in found:  # most severe first, kept per CI
            by_ci.setdefault(finding.ci_id, []).append(finding)
        return [by_ci[ci_id] for ci_id in ids]

    async def _load_cis_as_of(self, keys: list[tuple[str, datetime]]) -> list[CI | None]:
        def load() -> dict[tuple[str, datetime], CI]:
            found: dict[tuple[str, datetime], CI] = {}
            for at, ids in _by_time(keys).items():
                found.update(((ci_id, at), ci) for ci_id, ci in history.cis_as_of(self.store, ids, at).items())
            return found

        found = await self._run(load)
        return [found.get(key) for key in keys]

    async def _load_relationships_as_of(self, keys: list[tuple[str, datetime]]) -> list[list[Relationship]]:
        def load() -> dict[tuple[str, datetime], list[Relationship]]:
            by_key: dict[tuple[str, datetime], list[Relationship]] = {key: [] for key in keys}
            for at, ids in _by_time(keys).items():
                rels = history.relationships_as_of(self.store, ids, at, "out")
                rels += history.relationships_as_of(self.store, ids, at, "in")
                for rel in {r.key: r for r in rels}.values():
                    for end in (rel.from_id, rel.to_id):
                        bucket = by_key.get((end, at))
                        if bucket is not None:
                            bucket.append(rel)
            return by_key

        found = await self._run(load)
        return [found[key] for key in keys]

    async def _load_traversals_as_of(self, keys: list[tuple[TraversalKey, datetime]]) -> list[Walk]:
        from cmdb.impact.graph import AsOfView

        def load() -> list[Walk]:
            walks = [
                AsOfView(self.store, at).traverse([key.ci_id], key.direction, key.types, key.depth, key.limit)[0]
                for key, at in keys
            ]
            reached = [(ci_id, at) for (_, at), walk in zip(keys, walks, strict=True) for ci_id in walk.ids]
            by_time = {
                at: history.cis_as_of(self.store, list(dict.fromkeys(ids)), at) for at, ids in _by_time(reached).items()
            }
            return [
                Walk(walk, by_time.get(at, {}), walk.paths() if key.paths else None)
                for (key, at), walk in zip(keys, walks, strict=True)
            ]

        return await self._run(load)


def _by_time(keys: list[tuple[str, datetime]]) -> dict[datetime, list[str]]:
    grouped: dict[datetime, list[str]] = {}
    for ci_id, at in keys:
        grouped.setdefault(at, []).append(ci_id)
    return grouped


@dataclass
class Context:
    """What every resolver sees as ``info.context``."""

    store: Store
    engine: SyncEngine
    settings: ApiSettings
    principal: Principal | None
    auth_problem: str | None = None
    request: Request | None = None
    response: Response | None = None
    threads: StoreThreads | None = None
    """the app's store threads (None: threads shared by contexts made without an app)"""
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        if self.threads is None:
            self.threads = shared_threads(self.settings.store_threads)
        self.loaders = Loaders(self.store, self.settings.graphql.dataloader_batch_size, self.threads)

    @property
    def actor(self) -> str:
        """The name changes are recorded under (the permission hook has made sure there is one)."""
        return self.principal.name if self.principal else "anonymous"

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a blocking store, engine or impact function in a store thread."""
        assert self.threads is not None
        return await self.threads.run(partial(function, *args, **kwargs))

    def deny(self) -> None:
        if self.response is not None:
            self.response.status_code = 401

    # --- graph reads, now or as of a past time -------------------------------------
    async def ci(self, ci_id: str, as_of: datetime | None) -> CI | None:
        if as_of is None:
            return await self.loaders.ci.load(ci_id)
        return await self.loaders.ci_as_of.load((ci_id, as_of))

    async def cis(self, ids: Sequence[str], as_of: datetime | None) -> dict[str, CI]:
        unique = list(dict.fromkeys(ids))
        if as_of is None:
            found = await self.loaders.ci.load_many(unique)
        else:
            found = await self.loaders.ci_as_of.load_many([(ci_id, as_of) for ci_id in unique])
        return {ci.id: ci for ci in found if ci is not None}

    async def relationships_of(self, ci_id: str, include_inactive: bool, as_of: datetime | None) -> list[Relationship]:
        """Every relationship touching ``ci_id``, either way (walkable ones unless ``include_inactive``)."""
        if as_of is None:
            return await self.loaders.relationships.load((ci_id, include_inactive))
        return await self.loaders.relationships_as_of.load((ci_id, as_of))

    async def walk(self, key: TraversalKey, as_of: datetime | None) -> Walk:
        if as_of is None:
            return await self.loaders.traversal.load(key)
        return await self.loaders.traversal_as_of.load((key, as_of))
