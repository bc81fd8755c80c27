"""Bearer tokens and roles, checked in one hook: reads need a token unless anonymous read is on,
mutations need the write role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from cmdb.errors import ConfigError
from cmdb.graphql.auth import Role, TokenBook
from cmdb.graphql.settings import ApiSettings
from cmdb.store import SqliteStore

from .conftest import READ_TOKEN, WRITE_TOKEN, Api, _api, api_settings

pytestmark = pytest.mark.anyio

MUTATION = 'mutation { setCIFields(id: "x", input: { owner: "y" }) { id } }'


async def test_a_read_token_may_query(demo_api: Api) -> None:
    data = await demo_api.data("{ viewer { name role } stats { total } }")
    assert data["viewer"] == {"name": "alice", "role": "read"}
    assert data["stats"]["total"] > 0


@pytest.mark.parametrize(
    ("header", "message"),
    [(None, "needs a bearer token"), ("Bearer not-a-token", "unknown token"), ("Basic abc", "Bearer TOKEN")],
)
async def test_without_a_valid_token_nothing_is_read(demo_api: Api, header: str | None, message: str) -> None:
    headers = {"Authorization": header} if header else {}
    response = await demo_api.client.post("/graphql", json={"query": "{ stats { total } }"}, headers=headers)
    body = response.json()
    assert response.status_code == 401
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHORIZED"
    assert message in body["errors"][0]["message"]


async def test_a_read_token_may_not_mutate(demo_api: Api) -> None:
    response = await demo_api.post(MUTATION)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHORIZED"


async def test_a_write_token_may_mutate_and_query(demo_api: Api) -> None:
    error = await demo_api.error(MUTATION, token=WRITE_TOKEN)
    assert error["extensions"]["code"] == "NOT_FOUND"  # got past the permission check to the engine
    assert (await demo_api.data("{ viewer { role } }", token=WRITE_TOKEN))["viewer"]["role"] == "write"


@pytest.fixture
async def anonymous_api(demo_store: SqliteStore) -> AsyncIterator[Api]:
    async for api in _api(demo_store, api_settings(anonymous_read=True), token=None):
        yield api


async def test_anonymous_read_when_configured_but_never_anonymous_writes(anonymous_api: Api) -> None:
    data = await anonymous_api.data("{ viewer { name } stats { total } }")
    assert data["viewer"]["name"] is None and data["stats"]["total"] > 0
    error = await anonymous_api.error(MUTATION)
    assert error["extensions"]["code"] == "UNAUTHORIZED"
    bad = await anonymous_api.error("{ stats { total } }", token="wrong")  # a wrong token is not anonymous
    assert bad["extensions"]["code"] == "UNAUTHORIZED"


def test_tokens_from_environment_and_file(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text("# people\nbob:write:file-token\n\n", encoding="utf-8")
    env_file = tmp_path / ".env"  # the same names as the environment variables
    env_file.write_text(
        f"CMDB_TOKENS=alice:read:{READ_TOKEN}\nCMDB_TOKENS_FILE={tokens_file}\n"
        "CMDB_ANONYMOUS_READ=true\nCMDB_GRAPHQL__MAX_PAGE_SIZE=42\n",
        encoding="utf-8",
    )
    settings = ApiSettings(_env_file=env_file)  # type: ignore[call-arg]
    book = TokenBook.from_settings(settings)
    assert settings.anonymous_read and settings.graphql.max_page_size == 42
    alice, bob = book.principal(READ_TOKEN), book.principal("file-token")
    assert alice is not None and (alice.name, alice.role) == ("alice", Role.READ)
    assert bob is not None and (bob.name, bob.role, bob.can_write) == ("bob", Role.WRITE, True)
    assert book.principal("nobody") is None


@pytest.mark.parametrize("text", ["alice:admin:x", "alice:read", "a:read:t,b:write:t"])
def test_bad_token_configuration_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        TokenBook.from_settings(ApiSettings(tokens=SecretStr(text)))


async def test_cors_preflight_from_a_configured_origin(demo_store: SqliteStore) -> None:
    settings = api_settings(cors_origins="https://architects.example.com")
    async for api in _api(demo_store, settings):
        allowed = await api.client.options(
            "/graphql",
            headers={"Origin": "https://architects.example.com", "Access-Control-Request-Method": "POST"},
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://architects.example.com"
        refused = await api.client.options(
            "/graphql", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in refused.headers
