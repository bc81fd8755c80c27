"""A nested query over many CIs makes a small, bounded number of store calls (no N+1)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cmdb import model
from cmdb.graphql.context import Walk
from cmdb.graphql.settings import ResponseCacheSettings
from cmdb.store import CIFilter, Hit, SqliteStore, Traversal

from .conftest import READ_TOKEN, CountingStore, _api, api_settings

pytestmark = pytest.mark.anyio

NESTED = """query($n: Int) { cis(first: $n) { totalCount edges { node {
    id owner
    ownerTeam { id name }
    relationships { type direction from { id } to { id name ownerTeam { id } } }
} } } }"""


async def _calls(store: CountingStore, size: int, **limits: Any) -> Counter[str]:
    settings = api_settings(graphql=api_settings().graphql.model_copy(update=limits))
    async for api in _api(store, settings):  # type: ignore[arg-type]
        store.reset()
        data = await api.data(NESTED, {"n": size})
        edges = data["cis"]["edges"]
        assert len(edges) == size
        assert sum(len(e["node"]["relationships"]) for e in edges) > size  # the query really is nested
        assert any(e["node"]["ownerTeam"] for e in edges)
    return Counter(store.calls)


async def test_nested_query_over_100_cis_makes_few_store_calls(demo_store: SqliteStore) -> None:
    counting = CountingStore(demo_store)
    small = await _calls(counting, 10)
    large = await _calls(counting, 100)
    # An N+1 resolver would make hundreds of calls for 100 CIs, their relationships,
    # the CIs at the other end and the owners of both; batched, it is a handful,
    # one a level of nesting, whatever the page size.
    assert sum(large.values()) <= 12, large
    assert large["list_cis"] == large["count_cis"] == 1
    assert large["relationships"] <= 4 and large["get_cis"] <= 5, large
    assert sum(large.values()) <= sum(small.values()) + 5, (small, large)  # ten times the CIs, a few more calls


async def test_batches_are_bounded_by_the_configured_size(demo_store: SqliteStore) -> None:
    counting = CountingStore(demo_store)
    calls = await _calls(counting, 100, dataloader_batch_size=25)
    batches = [size for name, size in counting.batch_sizes if name in ("get_cis", "relationships")]
    assert max(batches) <= 25
    assert calls["relationships"] >= 4  # 100 CIs, 25 at a time
    # Still batched: calls are mostly full, not one a CI.
    assert sum(batches) / len(batches) >= 10, counting.batch_sizes


class OverlapStore:
    """The real store, recording how many of its calls run at once (each call lingers a little)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.running = 0
        self.most = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if not callable(target) or name == "generation":
            return target

        def observed(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                time.sleep(0.005)
                return target(*args, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        return observed


@pytest.mark.parametrize("threads", [1, 2, 4])
async def test_store_calls_run_in_a_bounded_set_of_threads(demo_store: SqliteStore, threads: int) -> None:
    overlap = OverlapStore(demo_store)
    settings = api_settings(store_threads=threads, concurrent_requests=12)  # all twelve requests run at once
    async for api in _api(overlap, settings):  # type: ignore[arg-type]
        query = "query($n: Int) { cis(first: $n) { totalCount edges { node { id owner } } } }"
        answers = await asyncio.gather(*(api.data(query, {"n": n}) for n in range(1, 13)))
        assert [len(a["cis"]["edges"]) for a in answers] == list(range(1, 13))
    # Twelve requests at once; their store calls never more than the configured threads at a time.
    assert overlap.most == threads


class OrderStore:
    """The real store, recording the start CI of each call made for one CI (a lookup, a walk)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.order: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if name not in ("get_cis", "traverse"):
            return target

        def recorded(ids: Any, *args: Any, **kwargs: Any) -> Any:
            if len(ids) == 1:
                self.order.append(ids[0])
            return target(ids, *args, **kwargs)

        return recorded


@pytest.mark.parametrize("turns", [1, 6])
async def test_requests_take_turns_first_come_first_served(demo_store: SqliteStore, turns: int) -> None:
    """With one turn, each request runs to its end before the next starts: its calls come
    together. With a turn each, the six interleave (the control: the test can tell)."""
    listed = demo_store.list_cis(CIFilter(), 200).items
    starts = [c.id for c in listed if len(demo_store.traverse([c.id], "in", max_depth=2))][:6]
    assert len(starts) == 6
    recording = OrderStore(demo_store)
    query = "query($id: ID!) { ci(id: $id) { id dependents(depth: 2) { ci { id } } } }"
    async for api in _api(recording, api_settings(concurrent_requests=turns)):  # type: ignore[arg-type]
        answers = await asyncio.gather(*(api.data(query, {"id": start}) for start in starts))
        assert [a["ci"]["id"] for a in answers] == starts and all(a["ci"]["dependents"] for a in answers)
    calls = [start for start in recording.order if start in starts]
    together = [start for start in starts for _ in range(calls.count(start))]
    assert len(calls) == 12  # each request: its CI looked up, then walked
    assert (calls == together) is (turns == 1), calls


@pytest.mark.parametrize("cache", [False, True])
async def test_a_slow_upload_holds_no_turn(demo_store: SqliteStore, cache: bool) -> None:
    """A request waits for its turn only once its whole body is in: one client sending slowly
    does not hold up the others, even with a single turn."""
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"query": "{ stats { total } }"'
        await release.wait()
        yield b"}"

    settings = api_settings(concurrent_requests=1, response_cache=ResponseCacheSettings(enabled=cache))
    async for api in _api(demo_store, settings):
        headers = {"Authorization": f"Bearer {READ_TOKEN}", "Content-Type": "application/json"}
        slow = asyncio.create_task(api.client.post("/graphql", content=slow_body(), headers=headers))
        await asyncio.sleep(0.05)  # the slow request has started and sent its first part
        quick = await asyncio.wait_for(api.data("{ stats { relationships } }"), timeout=10)
        assert quick["stats"]["relationships"] > 0 and not slow.done()
        release.set()
        answer = await slow
        assert answer.status_code == 200 and answer.json()["data"]["stats"]["total"] > 0


async def test_what_a_request_loaded_is_freed_when_it_is_answered(demo_store: SqliteStore) -> None:
    """The CIs, walks, hits and relationships a request loaded go as soon as it is answered,
    not when the garbage collector next runs (graphql-core and strawberry keep a request's
    context in reference cycles; the collector's passes over all it held cost a walk dearly).
    Nor does the request leave its context, loaders or execution state to the collector."""
    query = """query($id: ID!) { ci(id: $id) { id ownerTeam { id }
        dependents(depth: 3, first: 50) { depth ci { id name owner } path { type fromId toId } }
        relationships { type to { id } } } }"""
    starts = [ci.id for ci in demo_store.list_cis(CIFilter(types=("aws.ec2.vpc",)), 3).items]
    settings = api_settings(response_cache=ResponseCacheSettings(enabled=False))
    kept = (model.CI, model.Relationship, Hit, Traversal, Walk)
    async for api in _api(demo_store, settings):
        answers = [await api.data(query, {"id": start}) for start in starts]  # plans, kept rows: warm
        assert all(a["ci"]["dependents"] and a["ci"]["dependents"][-1]["path"] for a in answers)
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage, to be counted
        try:
            for start in starts:
                await api.data(query, {"id": start})
            gc.collect()
            left = Counter(
                type(o).__qualname__
                for o in gc.garbage
                if isinstance(o, kept) or type(o).__module__.split(".")[0] in ("cmdb", "graphql", "strawberry", "starlette")
            )
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        assert not left, left


class ThreadStore:
    """The real store, recording the thread each CI read and walk runs in."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.threads: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if name not in ("get_cis", "traverse"):
            return target

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.threads.append((name, threading.current_thread().name))
            return target(*args, **kwargs)

        return recorded


async def test_reads_the_store_answers_from_memory_take_no_thread_hop(demo_store: SqliteStore) -> None:
    """A walk request's lookups and walk run on the event loop once the store holds what they
    read in memory (its graph copy, what it read since the last commit); before, and whatever
    needs the file, in a store thread."""
    start = next(c.id for c in demo_store.list_cis(CIFilter(), 200).items if demo_store.traverse([c.id], "in"))
    query = """query($id: ID!) { ci(id: $id) { id dependents(depth: 3) { ci { id name } path { fromId } } } }"""
    settings = api_settings(response_cache=ResponseCacheSettings(enabled=False))
    loop_thread = threading.current_thread().name
    with SqliteStore(demo_store.path, graph_cache="blocking") as memory:
        memory.warm_graph_cache()
        for store in (memory, demo_store):  # with a graph copy, and without (every read queries the file)
            recording = ThreadStore(store)
            calls: list[list[tuple[str, str]]] = []
            answers = []
            async for api in _api(recording, settings):  # type: ignore[arg-type]
                for _ in range(2):
                    recording.threads.clear()
                    answers.append(await api.data(query, {"id": start}))
                    calls.append(list(recording.threads))
            assert answers[0] == answers[1] and answers[0]["ci"]["dependents"][0]["path"]
            hopped = [{thread for name, thread in request if thread != loop_thread} for request in calls]
            assert hopped[0]  # nothing read yet: the file, in a store thread
            if store is memory:
                assert calls[1] == [("get_cis", loop_thread), ("traverse", loop_thread), ("get_cis", loop_thread)]
            else:
                assert hopped[1] and loop_thread not in {thread for _, thread in calls[1]}
