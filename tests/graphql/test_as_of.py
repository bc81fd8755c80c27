"""Point-in-time reads: asOf on ci, cis, path and everything read below a CI read asOf."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cmdb.model import CI, Relationship
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .conftest import Api

pytestmark = pytest.mark.anyio

MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FRIDAY = datetime(2026, 11, 6, 9, 0, tzinfo=UTC)
WEDNESDAY = "2026-11-04T12:00:00Z"


@pytest.fixture
def history(store: SqliteStore) -> SqliteStore:
    """On Monday: app -> old-db. On Friday: a new owner, app -> new-db, and old-db's link retired."""
    clock = [MONDAY]
    engine = SyncEngine(store, clock=lambda: clock[0])
    engine.edit(
        actor="alice",
        cis=[
            CI("app", "app.application", name="orders", owner="team:blue"),
            CI("old-db", "database.instance", name="orders-db-2019", attributes={"engine": "postgres"}),
        ],
        relationships=[Relationship("app", "DEPENDS_ON", "old-db")],
    )
    clock[0] = FRIDAY
    engine.set_fields("app", actor="bob", owner="team:green")
    engine.edit(
        actor="bob",
        cis=[CI("new-db", "database.instance", name="orders-db-2026")],
        relationships=[Relationship("app", "DEPENDS_ON", "new-db")],
    )
    engine.remove_relationship(("app", "DEPENDS_ON", "old-db"), actor="bob")
    return store


async def test_a_ci_as_it_was(api: Api, history: SqliteStore) -> None:
    query = """query($at: DateTime) { ci(id: "app", asOf: $at) {
        owner asOfTime
        relationships { toId }
        dependencies { ci { id name asOfTime } }
    } }"""
    then = (await api.data(query, {"at": WEDNESDAY}))["ci"]
    now = (await api.data(query, {"at": None}))["ci"]
    assert then["owner"] == "team:blue" and now["owner"] == "team:green"
    assert then["asOfTime"].startswith("2026-11-04T12:00:00") and now["asOfTime"] is None
    assert [r["toId"] for r in then["relationships"]] == ["old-db"]
    assert [r["toId"] for r in now["relationships"]] == ["new-db"]
    assert [d["ci"]["id"] for d in then["dependencies"]] == ["old-db"]
    assert then["dependencies"][0]["ci"]["asOfTime"] == then["asOfTime"]  # the neighbourhood is read then too
    assert [d["ci"]["id"] for d in now["dependencies"]] == ["new-db"]


async def test_a_ci_that_did_not_exist_yet_is_null(api: Api, history: SqliteStore) -> None:
    data = await api.data('query($at: DateTime) { ci(id: "new-db", asOf: $at) { id } }', {"at": WEDNESDAY})
    assert data["ci"] is None
    before_all = await api.data('{ ci(id: "app", asOf: "2026-10-01T00:00:00Z") { id } }')
    assert before_all["ci"] is None


async def test_listing_as_of_a_time(api: Api, history: SqliteStore) -> None:
    query = """query($at: DateTime, $owner: String) { cis(asOf: $at, filter: { owner: $owner }) {
        totalCount edges { node { id owner } } } }"""
    then = (await api.data(query, {"at": WEDNESDAY}))["cis"]
    assert then["totalCount"] == 2 and {e["node"]["id"] for e in then["edges"]} == {"app", "old-db"}
    blue = (await api.data(query, {"at": WEDNESDAY, "owner": "team:blue"}))["cis"]
    assert [e["node"]["id"] for e in blue["edges"]] == ["app"]
    assert (await api.data(query, {"at": None, "owner": "team:blue"}))["cis"]["totalCount"] == 0


async def test_pages_as_of_a_time_round_trip(api: Api, history: SqliteStore) -> None:
    query = 'query($after: String) { cis(first: 1, asOf: "2026-11-07T00:00:00Z", after: $after) { pageInfo { hasNextPage endCursor } edges { node { id } } } }'
    seen: list[str] = []
    after = None
    while True:
        page = (await api.data(query, {"after": after}))["cis"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == ["app", "new-db", "old-db"]


async def test_path_as_of_a_time(api: Api, history: SqliteStore) -> None:
    query = 'query($at: DateTime) { path(from: "app", to: "old-db", asOf: $at) { length } }'
    assert (await api.data(query, {"at": WEDNESDAY}))["path"] == {"length": 1}
    assert (await api.data(query, {"at": None}))["path"] is None


async def test_history_as_of_a_time_stops_there(api: Api, history: SqliteStore) -> None:
    data = await api.data(
        'query($at: DateTime) { ci(id: "app", asOf: $at) { history { edges { node { kind actor } } } } }',
        {"at": WEDNESDAY},
    )
    assert {e["node"]["actor"] for e in data["ci"]["history"]["edges"]} == {"alice"}
