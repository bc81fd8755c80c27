"""Every limit rejects with a clear error carrying extensions.code; internal errors are masked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from cmdb.model import CI
from cmdb.store import SqliteStore
from cmdb.store.base import CIFilter

from .conftest import Api, _api, api_settings

pytestmark = pytest.mark.anyio


async def _code(api: Api, query: str, variables: dict[str, Any] | None = None) -> tuple[str, str]:
    error = await api.error(query, variables)
    return error["extensions"]["code"], error["message"]


async def test_query_depth(demo_api: Api) -> None:
    nested = '{ ci(id: "x") { ownerTeam { ownerTeam { ownerTeam { ownerTeam { ownerTeam { ownerTeam { ownerTeam { ownerTeam { ownerTeam { ownerTeam { ownerTeam { ownerTeam { id } } } } } } } } } } } } } }'
    code, message = await _code(demo_api, nested)
    assert code == "LIMIT_EXCEEDED" and "depth" in message


async def test_validation_is_kept_per_document_schema_and_rules(demo_api: Api, demo_store: SqliteStore) -> None:
    nested = "{ ci(id: \"x\") { " + "ownerTeam { " * 12 + "id" + " }" * 12 + " } }"  # deeper than 12
    for _ in range(2):  # the same document again: the kept verdict
        code, message = await _code(demo_api, nested)
        assert code == "LIMIT_EXCEEDED" and "depth" in message
    deeper = api_settings(graphql=api_settings().graphql.model_copy(update={"max_query_depth": 15}))
    async for api in _api(demo_store, deeper):  # the same text, another schema and rules: checked anew
        assert (await api.data(nested)) == {"ci": None}
    code, _ = await _code(demo_api, nested)
    assert code == "LIMIT_EXCEEDED"


async def test_aliases(demo_api: Api) -> None:
    query = "{ " + " ".join(f"a{i}: stats {{ total }}" for i in range(31)) + " }"
    code, message = await _code(demo_api, query)
    assert code == "LIMIT_EXCEEDED" and "aliases" in message


async def test_tokens(demo_api: Api) -> None:
    query = "{ " + " ".join("stats { total }" for _ in range(1500)) + " }"
    code, message = await _code(demo_api, query)
    assert code == "LIMIT_EXCEEDED" and "tokens" in message


async def test_page_size_cap(demo_api: Api) -> None:
    code, message = await _code(demo_api, "{ cis(first: 501) { totalCount } }")
    assert code == "LIMIT_EXCEEDED" and "500" in message


async def test_traversal_depth_cap(demo_api: Api, demo_store: SqliteStore) -> None:
    some = next(demo_store.iter_cis())
    code, message = await _code(
        demo_api, "query($id: ID!) { ci(id: $id) { dependents(depth: 9) { depth } } }", {"id": some.id}
    )
    assert code == "LIMIT_EXCEEDED" and "depth=9" in message


async def test_traversal_cost_counts_enclosing_pages_and_variables(demo_api: Api) -> None:
    query = (
        "query($n: Int, $d: Int!) { cis(first: $n) { edges { node { dependents(depth: $d, first: 100) { depth } } } } }"
    )
    code, message = await _code(demo_api, query, {"n": 30, "d": 8})  # 30 x 8 x 100 = 24,000
    assert code == "LIMIT_EXCEEDED" and "24,000" in message
    small = await demo_api.data(query, {"n": 5, "d": 3})  # 1,500: allowed
    assert len(small["cis"]["edges"]) == 5


async def test_traversal_cost_sees_through_fragments(demo_api: Api) -> None:
    query = """{ cis(first: 100) { edges { node { ...Deep } } } }
               fragment Deep on CI { dependencies(depth: 5, first: 50) { depth } }"""
    code, message = await _code(demo_api, query)  # 100 x 5 x 50 = 25,000
    assert code == "LIMIT_EXCEEDED" and "25,000" in message


async def test_limits_come_from_the_settings_object(demo_store: SqliteStore) -> None:
    settings = api_settings(graphql=api_settings().graphql.model_copy(update={"max_page_size": 10}))
    async for api in _api(demo_store, settings):
        code, message = await _code(api, "{ cis(first: 11) { totalCount } }")
        assert code == "LIMIT_EXCEEDED" and "10" in message


async def test_bad_documents_and_arguments_are_bad_input(demo_api: Api) -> None:
    assert (await _code(demo_api, "{ nope }"))[0] == "BAD_INPUT"
    assert (await _code(demo_api, "{ stats { total }"))[0] == "BAD_INPUT"
    assert (await _code(demo_api, '{ cis(after: "garbage") { totalCount } }'))[0] == "BAD_INPUT"
    assert (await _code(demo_api, "query($n: Int) { cis(first: $n) { totalCount } }", {"n": "many"}))[0] == "BAD_INPUT"


class BrokenStore:
    """A real store whose CI reads fail the way a bug would (not a domain error)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def get_cis(self, ids: Sequence[str]) -> dict[str, CI]:
        raise RuntimeError(f"secret internals at /var/lib/cmdb for {len(ids)} ids")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_internal_errors_are_masked(demo_store: SqliteStore) -> None:
    async for api in _api(BrokenStore(demo_store), api_settings()):  # type: ignore[arg-type]
        body = (await api.post('{ stats { total } ci(id: "x") { id } }')).json()
        assert body["data"]["stats"]["total"] > 0  # the rest of the query still answers
        error = body["errors"][0]
        assert error["message"] == "Unexpected error."
        assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
        assert "secret" not in str(body)


async def test_traversal_cost_counts_start_cis(demo_api: Api, demo_store: SqliteStore) -> None:
    ids = [ci.id for ci in demo_store.list_cis(CIFilter(), 60).items]
    code, message = await _code(
        demo_api, "query($ids: [ID!]!) { impact(ids: $ids, depth: 8, first: 50) { truncated } }", {"ids": ids}
    )
    assert code == "LIMIT_EXCEEDED" and "24,000" in message  # 60 starts x 8 x 50


async def test_traversal_cost_is_kept_per_operation_only_while_it_reads_no_variable(
    demo_api: Api, demo_store: SqliteStore
) -> None:
    literal = "query($id: ID!) { ci(id: $id) { id } cis(first: 100) { edges { node { dependents(depth: 5) { depth } } } } }"
    for ci_id in ("a", "b"):  # weighed once, then kept: $id is read by no weighed argument
        code, message = await _code(demo_api, literal, {"id": ci_id})  # 100 x 5 x 50 = 25,000
        assert code == "LIMIT_EXCEEDED" and "25,000" in message
    # a list read from a variable: weighed again with every request's variables
    ids = [ci.id for ci in demo_store.list_cis(CIFilter(), 60).items]
    listed = "query($ids: [ID!]!) { impact(ids: $ids, depth: 8, first: 50) { truncated } }"
    code, message = await _code(demo_api, listed, {"ids": ids})
    assert code == "LIMIT_EXCEEDED" and "24,000" in message  # 60 starts x 8 x 50
    assert "impact" in await demo_api.data(listed, {"ids": ids[:2]})  # 2 x 8 x 50 = 800
    code, message = await _code(demo_api, listed, {"ids": ids[:51]})
    assert code == "LIMIT_EXCEEDED" and "20,400" in message


async def test_listing_as_of_refuses_an_estate_too_large_to_rewind(demo_store: SqliteStore) -> None:
    settings = api_settings(graphql=api_settings().graphql.model_copy(update={"max_snapshot_cis": 10}))
    async for api in _api(demo_store, settings):
        code, message = await _code(api, '{ cis(asOf: "2026-01-01T00:00:00Z") { totalCount } }')
        assert code == "LIMIT_EXCEEDED" and "more than 10 CIs" in message
