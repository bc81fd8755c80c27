"""The response cache, over ASGI/HTTP: a repeated read is answered from memory, and never
after a write, whoever made it (this app, another connection, another process)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from cmdb.graphql.cache import ResponseCache, ResponseKey
from cmdb.graphql.settings import ResponseCacheSettings
from cmdb.model import CI, Relationship
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .conftest import READ_TOKEN, TOKENS, WRITE_TOKEN, Api, CountingStore, _api, api_settings

pytestmark = pytest.mark.anyio

MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FRIDAY = datetime(2026, 11, 6, 9, 0, tzinfo=UTC)
BOB_TOKEN = "bob-read-token-5555555555"

OWNER = "query($id: ID!) { ci(id: $id) { id owner } }"
DEPENDENTS = "query($id: ID!) { ci(id: $id) { dependents(depth: 3) { depth ci { id name } path { fromId toId } } } }"


@pytest.fixture
def estate(store: SqliteStore) -> SqliteStore:
    """On Monday: app -> db, app owned by team:blue. On Friday: app owned by team:green."""
    clock = [MONDAY]
    engine = SyncEngine(store, clock=lambda: clock[0])
    engine.edit(
        actor="alice",
        cis=[
            CI("app", "app.application", name="orders", owner="team:blue", sources=("manual",)),
            CI("db", "database.instance", name="orders-db"),
            CI("svc", "service.business", name="checkout"),
        ],
        relationships=[Relationship("app", "DEPENDS_ON", "db")],
    )
    clock[0] = FRIDAY
    engine.set_fields("app", actor="bob", owner="team:green")
    return store


async def _counting_api(store: SqliteStore, **settings: Any) -> AsyncIterator[tuple[Api, CountingStore]]:
    counting = CountingStore(store)
    values: dict[str, Any] = {"tokens": SecretStr(f"{TOKENS},bob:read:{BOB_TOKEN}")}
    values.update(settings)
    async for api in _api(counting, api_settings(**values)):  # type: ignore[arg-type]
        yield api, counting


@pytest.fixture
async def cached(estate: SqliteStore) -> AsyncIterator[tuple[Api, CountingStore]]:
    async for pair in _counting_api(estate):
        yield pair


async def _owner(api: Api, token: str = READ_TOKEN) -> str:
    owner: str = (await api.data(OWNER, {"id": "app"}, token=token))["ci"]["owner"]
    return owner


async def _dependents(api: Api) -> list[str]:
    data = await api.data(DEPENDENTS, {"id": "db"})
    return sorted(hit["ci"]["id"] for hit in data["ci"]["dependents"])


async def test_a_repeated_query_is_answered_from_memory(cached: tuple[Api, CountingStore]) -> None:
    api, counting = cached
    first = await api.post(DEPENDENTS, {"id": "db"})
    assert first.status_code == 200 and first.json()["data"]["ci"]["dependents"]
    counting.reset()
    # The same document laid out differently is the same query.
    again = await api.post(DEPENDENTS.replace(" {", "\n  {").replace("query", "# the walk\nquery"), {"id": "db"})
    assert again.content == first.content
    assert again.headers["content-type"] == "application/json"
    assert not counting.reads(), counting.calls  # nothing read from the store
    assert counting.calls["generation"] == 1  # only asked whether the data changed
    # Other variables are another query.
    other = await api.post(DEPENDENTS, {"id": "app"})
    assert other.content != first.content and counting.reads()


async def test_a_mutation_retires_cached_answers(cached: tuple[Api, CountingStore]) -> None:
    api, _ = cached
    assert await _owner(api) == "team:green"
    assert await _owner(api) == "team:green"
    changed = await api.data(
        'mutation { setCIFields(id: "app", input: {owner: "team:red"}) { owner } }', token=WRITE_TOKEN
    )
    assert changed["setCIFields"]["owner"] == "team:red"
    assert await _owner(api) == "team:red"


@pytest.mark.parametrize("graph_cache", ["off", "blocking"])
async def test_a_write_through_another_connection_retires_cached_answers(estate: SqliteStore, graph_cache: Any) -> None:
    served = SqliteStore(estate.path, graph_cache=graph_cache)  # the server's own handle on the file
    other = SqliteStore(estate.path)
    try:
        async for api, counting in _counting_api(served):
            assert await _dependents(api) == ["app"]
            assert await _owner(api) == "team:green"
            counting.reset()
            assert await _dependents(api) == ["app"] and await _owner(api) == "team:green"
            assert not counting.reads()  # both from memory
            SyncEngine(other).edit(
                actor="carol", cis=[], relationships=[Relationship("svc", "DEPENDS_ON", "app")], scope="manual"
            )
            SyncEngine(other).set_fields("app", actor="carol", owner="team:orange")
            assert await _dependents(api) == ["app", "svc"]
            assert await _owner(api) == "team:orange"
    finally:
        other.close()
        served.close()


async def test_a_write_from_another_process_retires_cached_answers(cached: tuple[Api, CountingStore]) -> None:
    api, counting = cached
    assert await _owner(api) == "team:green"
    script = (
        "import sys\n"
        "from cmdb.store import SqliteStore\n"
        "from cmdb.sync import SyncEngine\n"
        "store = SqliteStore(sys.argv[1])\n"
        "SyncEngine(store).set_fields('app', actor='cron', owner='team:purple')\n"
        "store.close()\n"
    )
    with anyio.fail_after(60):
        await anyio.run_process([sys.executable, "-c", script, str(counting._store.path)], check=True)
    assert await _owner(api) == "team:purple"


async def test_tokens_of_one_role_share_answers_but_not_their_names(cached: tuple[Api, CountingStore]) -> None:
    api, counting = cached
    alice = await api.post(OWNER, {"id": "app"})
    counting.reset()
    bob = await api.post(OWNER, {"id": "app"}, token=BOB_TOKEN)
    assert bob.content == alice.content and not counting.reads()
    # Who is asking is part of the answer: each token sees its own name.
    viewer = '{ viewer { name role } ci(id: "app") { owner } }'
    assert (await api.data(viewer))["viewer"] == {"name": "alice", "role": "read"}
    assert (await api.data(viewer, token=BOB_TOKEN))["viewer"] == {"name": "bob", "role": "read"}
    assert (await api.data(viewer))["viewer"] == {"name": "alice", "role": "read"}
    assert (await api.data(viewer, token=WRITE_TOKEN))["viewer"] == {"name": "ci-bot", "role": "write"}


async def test_roles_do_not_share_answers(cached: tuple[Api, CountingStore]) -> None:
    api, counting = cached
    await api.data(OWNER, {"id": "app"})
    counting.reset()
    assert await _owner(api, WRITE_TOKEN) == "team:green"
    assert counting.reads()  # the write role's answer was not the read role's


async def test_a_cached_answer_is_not_served_to_a_caller_who_may_not_read(cached: tuple[Api, CountingStore]) -> None:
    api, _ = cached
    assert await _owner(api) == "team:green"
    for token in (None, "not-a-known-token"):
        response = await api.post(OWNER, {"id": "app"}, token=token)
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHORIZED"


async def test_answers_with_errors_are_not_kept(cached: tuple[Api, CountingStore]) -> None:
    api, counting = cached
    missing = 'query { path(from: "app", to: "nowhere") { length } }'
    for _ in range(2):
        counting.reset()
        error = await api.error(missing)
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert counting.reads()  # executed again


async def test_mutations_are_never_answered_from_memory(cached: tuple[Api, CountingStore]) -> None:
    api, counting = cached
    same = 'mutation { setCIFields(id: "app", input: {owner: "team:green"}) { owner } }'
    for _ in range(2):
        counting.reset()
        assert (await api.data(same, token=WRITE_TOKEN))["setCIFields"]["owner"] == "team:green"
        assert counting.reads()


async def test_as_of_reads_are_kept_per_time(cached: tuple[Api, CountingStore]) -> None:
    api, counting = cached
    query = 'query($at: DateTime) { ci(id: "app", asOf: $at) { owner } }'
    wednesday = "2026-11-04T12:00:00Z"
    for _ in range(2):
        assert (await api.data(query, {"at": wednesday}))["ci"]["owner"] == "team:blue"
        assert (await api.data(query, {"at": None}))["ci"]["owner"] == "team:green"
        assert (await api.data(query, {"at": "2026-11-01T00:00:00Z"}))["ci"] is None  # before it existed
    counting.reset()
    assert (await api.data(query, {"at": wednesday}))["ci"]["owner"] == "team:blue"
    assert not counting.reads()


async def test_answers_that_depend_on_the_clock_are_not_kept(cached: tuple[Api, CountingStore]) -> None:
    api, counting = cached
    risk = 'query { changeRisk(ids: ["db"], change: PATCH) { level } }'
    for _ in range(2):
        counting.reset()
        await api.data(risk)
        assert counting.reads()


async def test_a_disabled_cache_executes_every_request(estate: SqliteStore) -> None:
    async for api, counting in _counting_api(estate, response_cache=ResponseCacheSettings(enabled=False)):
        for _ in range(3):
            counting.reset()
            assert await _owner(api) == "team:green"
            assert counting.reads()
            assert not counting.calls["generation"]


class Forgetful:
    """The real store, without ``generation``: a backend that cannot tell when data changed."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name == "generation":
            raise AttributeError(name)
        return getattr(self._store, name)


async def test_a_store_that_cannot_tell_its_generation_is_never_cached(estate: SqliteStore) -> None:
    counting = CountingStore(Forgetful(estate))  # type: ignore[arg-type]
    async for api in _api(counting, api_settings()):  # type: ignore[arg-type]
        for _ in range(2):
            counting.reset()
            assert await _owner(api) == "team:green"
            assert counting.reads()


def _key(n: int, generation: int = 1) -> ResponseKey:
    return ResponseKey(f"{{ ci(id: {n}) {{ id }} }}", None, b"{}", ("read", None), generation)


def test_the_cache_keeps_the_most_recently_used_within_its_bounds() -> None:
    cache = ResponseCache(ResponseCacheSettings(max_entries=3, max_mb=1))
    for n in range(4):
        assert cache.get(_key(n)) is None
        cache.put(_key(n), b"x" * 100)
    assert len(cache) == 3 and cache.get(_key(0)) is None  # the oldest went first
    assert cache.get(_key(1)) == b"x" * 100  # now the most recently used
    cache.put(_key(4), b"y" * 100)
    assert cache.get(_key(2)) is None and cache.get(_key(1)) is not None
    # Bytes bound: one large body pushes out the others; a body above the bound is not kept.
    cache.put(_key(5), b"z" * (1024 * 1024 - 150))
    assert len(cache) == 2 and cache.size_bytes <= 1024 * 1024
    assert cache.get(_key(5)) is not None and cache.get(_key(1)) is not None and cache.get(_key(4)) is None
    cache.put(_key(6), b"z" * (1024 * 1024 + 1))
    assert cache.get(_key(6)) is None


def test_a_new_generation_retires_every_entry() -> None:
    cache = ResponseCache(ResponseCacheSettings())
    cache.get(_key(1, generation=7))
    cache.put(_key(1, generation=7), b"old")
    assert cache.get(_key(1, generation=7)) == b"old"
    assert cache.get(_key(1, generation=8)) is None
    assert len(cache) == 0
    cache.put(_key(2, generation=7), b"late")  # a query that ran before the write finishes after it
    assert cache.get(_key(2, generation=8)) is None and len(cache) == 0
