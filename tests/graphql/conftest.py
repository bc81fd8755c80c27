"""The real app over ASGI, against a real store on disk: the demo estate (two days of it)
for reads, a small hand-built estate for mutations and point-in-time reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from cmdb.demo import DemoConnector
from cmdb.graphql.app import create_app
from cmdb.graphql.settings import ApiSettings, Limits
from cmdb.model import now
from cmdb.store import SqliteStore
from cmdb.store.base import Store
from cmdb.sync import SyncEngine

READ_TOKEN = "read-token-0123456789"
WRITE_TOKEN = "write-token-9876543210"
TOKENS = f"alice:read:{READ_TOKEN},ci-bot:write:{WRITE_TOKEN}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def api_settings(**changes: Any) -> ApiSettings:
    values: dict[str, Any] = {"tokens": SecretStr(TOKENS), "anonymous_read": False, "graphql": Limits()}
    values.update(changes)
    return ApiSettings(**values)


@dataclass
class Api:
    """Posts GraphQL over HTTP to the app, as a client would."""

    client: httpx.AsyncClient
    token: str | None = READ_TOKEN

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = "default"
    ) -> httpx.Response:
        chosen = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {chosen}"} if chosen else {}
        return await self.client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)

    async def data(self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = "default") -> Any:
        """The response's data; fails the test on any error."""
        response = await self.post(query, variables, token=token)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def error(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = "default"
    ) -> dict[str, Any]:
        """The response's first error (there must be one)."""
        body = (await self.post(query, variables, token=token)).json()
        assert body.get("errors"), body
        first: dict[str, Any] = body["errors"][0]
        return first


class CountingStore:
    """The real store, counting every call made to it and the size of each batch of ids."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()
        self.batch_sizes: list[tuple[str, int]] = []

    def reads(self) -> Counter[str]:
        """The calls that read data (not the cheap generation check, nor asking for memory-only reads)."""
        return Counter({name: n for name, n in self.calls.items() if name not in ("generation", "memory_only")})

    def reset(self) -> None:
        self.calls.clear()
        self.batch_sizes.clear()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if not callable(target):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if args and isinstance(args[0], Sequence) and not isinstance(args[0], str):
                self.batch_sizes.append((name, len(args[0])))
            return target(*args, **kwargs)

        return counted


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    """The demo estate as two syncs, yesterday's and today's: it has history."""
    store = SqliteStore(tmp_path_factory.mktemp("demo") / "cmdb.db")
    SyncEngine(store, clock=lambda: now() - timedelta(days=1)).run(DemoConnector(size=600, seed=1, day=0))
    SyncEngine(store).run(DemoConnector(size=600, seed=1, day=1))
    yield store
    store.close()


async def _api(store: Store, settings: ApiSettings, token: str | None = READ_TOKEN) -> AsyncIterator[Api]:
    app = create_app(store, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cmdb.test") as client:
        yield Api(client, token)


@pytest.fixture
async def demo_api(demo_store: SqliteStore) -> AsyncIterator[Api]:
    async for api in _api(demo_store, api_settings()):
        yield api


@pytest.fixture
async def api(store: SqliteStore) -> AsyncIterator[Api]:
    """Over the test's own empty store, with the write token."""
    async for client in _api(store, api_settings(), WRITE_TOKEN):
        yield client


def db_path(store: SqliteStore) -> Path:
    return store.path
