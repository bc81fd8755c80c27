"""Reads over the demo estate: lookups, typed fields, pages, filters, walks, paths, changes, stats."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from cmdb.store import SqliteStore
from cmdb.store.base import CIFilter
from cmdb.vocabulary import vocabulary

from .conftest import Api

pytestmark = pytest.mark.anyio


def _one(store: SqliteStore, **criteria: Any) -> Any:
    return store.list_cis(CIFilter(**criteria), first=1).items[0]


async def test_ci_by_id_has_common_and_typed_fields(demo_api: Api, demo_store: SqliteStore) -> None:
    db = _one(demo_store, types=("aws.rds.db_instance",))
    data = await demo_api.data(
        """query($id: ID!) { ci(id: $id) {
            __typename id type ciClass name provider owner lifecycleState tags { key value } attributes
            ... on DatabaseCI { engine port encrypted }
        } }""",
        {"id": db.id},
    )
    ci = data["ci"]
    assert ci["__typename"] == "DatabaseCI"
    assert (ci["id"], ci["type"], ci["ciClass"], ci["name"]) == (db.id, db.type, "DATABASE", db.name)
    assert ci["owner"] == (db.owner or None)
    assert ci["lifecycleState"] == db.lifecycle_state.upper()
    assert ci["engine"] == db.attributes.get("engine")
    assert ci["port"] == db.attributes.get("port")
    assert ci["attributes"] == db.attributes
    assert {t["key"]: t["value"] for t in ci["tags"]} == db.tags


async def test_unknown_ci_is_null(demo_api: Api) -> None:
    assert (await demo_api.data('{ ci(id: "no-such-ci") { id } }'))["ci"] is None


async def test_pages_round_trip_every_ci_once(demo_api: Api, demo_store: SqliteStore) -> None:
    query = """query($after: String) { cis(first: 70, after: $after) {
        totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { id } } } }"""
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = (await demo_api.data(query, {"after": after}))["cis"]
        pages += 1
        seen.extend(edge["node"]["id"] for edge in page["edges"])
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    total = demo_store.count_cis(CIFilter())
    assert page["totalCount"] == total
    assert len(seen) == len(set(seen)) == total
    assert pages == -(-total // 70)


async def test_resuming_after_any_edge_continues_with_the_next_ci(demo_api: Api) -> None:
    query = "query($after: String, $n: Int) { cis(first: $n, after: $after) { edges { cursor node { id } } } }"
    edges = (await demo_api.data(query, {"n": 40}))["cis"]["edges"]
    for index in (0, 11, 28, 39):
        resumed = (await demo_api.data(query, {"n": 5, "after": edges[index]["cursor"]}))["cis"]["edges"]
        following = (await demo_api.data(query, {"n": index + 6}))["cis"]["edges"][index + 1 :]
        assert [e["node"]["id"] for e in resumed] == [e["node"]["id"] for e in following]
        assert len(resumed) == 5


@pytest.mark.parametrize(
    ("graphql_filter", "store_filter"),
    [
        ("{ classes: [DATABASE] }", CIFilter(classes=("database",))),
        ('{ types: ["k8s.pod"] }', CIFilter(types=("k8s.pod",))),
        ('{ provider: "aws", classes: [STORAGE] }', CIFilter(provider="aws", classes=("storage",))),
        ("{ lifecycleStates: [STALE, RETIRED] }", CIFilter(lifecycle_states=("stale", "retired"))),
        ('{ owner: "payments" }', CIFilter(owner="payments")),
        ('{ text: "checkout" }', CIFilter(text="checkout")),
        ("{ missingOwner: true }", CIFilter(missing_owner=True)),
    ],
)
async def test_filters_select_what_the_store_selects(
    demo_api: Api, demo_store: SqliteStore, graphql_filter: str, store_filter: CIFilter
) -> None:
    data = await demo_api.data(
        f"{{ cis(first: 500, filter: {graphql_filter}) {{ totalCount edges {{ node {{ id }} }} }} }}"
    )
    expected = [ci.id for ci in demo_store.iter_cis(store_filter)]
    assert data["cis"]["totalCount"] == len(expected)
    assert [e["node"]["id"] for e in data["cis"]["edges"]] == expected[:500]


async def test_filter_by_tag_key_and_value(demo_api: Api, demo_store: SqliteStore) -> None:
    tagged = next(ci for ci in demo_store.iter_cis() if ci.tags)
    key, value = next(iter(tagged.tags.items()))
    data = await demo_api.data(
        "query($k: String!, $v: String) { cis(first: 500, filter: { tag: { key: $k, value: $v } }) { edges { node { id tag(key: $k) } } } }",
        {"k": key, "v": value},
    )
    nodes = [e["node"] for e in data["cis"]["edges"]]
    assert tagged.id in {n["id"] for n in nodes}
    assert all(n["tag"] == value for n in nodes)


async def test_relationships_of_a_ci_either_way(demo_api: Api, demo_store: SqliteStore) -> None:
    db = _one(demo_store, types=("aws.rds.db_instance",))
    data = await demo_api.data(
        """query($id: ID!) { ci(id: $id) {
            out: relationships(direction: OUT) { type fromId toId direction impact to { id } }
            in: relationships(direction: IN) { type fromId toId direction other { id } }
        } }""",
        {"id": db.id},
    )
    outgoing = {(r.type, r.to_id) for r in demo_store.relationships([db.id], "out")}
    incoming = {(r.type, r.from_id) for r in demo_store.relationships([db.id], "in")}
    assert {(r["type"], r["toId"]) for r in data["ci"]["out"]} == outgoing
    assert {(r["type"], r["other"]["id"]) for r in data["ci"]["in"]} == incoming
    assert all(r["direction"] == "OUT" and r["to"]["id"] == r["toId"] for r in data["ci"]["out"])
    assert all(r["direction"] == "IN" and r["toId"] == db.id for r in data["ci"]["in"])
    impacts = {r["type"]: r["impact"] for r in data["ci"]["out"]}
    assert impacts.get("OWNED_BY", "NONE") == "NONE"


async def test_every_common_field_of_a_ci_is_its_stored_value(demo_api: Api, demo_store: SqliteStore) -> None:
    """Some fields are set when the object is made, the others read from the record when asked."""
    found = [ci for ci in demo_store.iter_cis() if ci.aliases and ci.region][:1]  # and a service, with criticality
    found += list(demo_store.get_cis(["service:payments"]).values())
    assert len(found) == 2
    for ci in found:
        data = await demo_api.data(
            """query($id: ID!) { ci(id: $id) { id type ciClass name provider scope region environment owner
                costCentre businessUnit criticality lifecycleState aliases sources firstSeen lastSeen
                staleSince asOfTime } }""",
            {"id": ci.id},
        )
        got = data["ci"]

        def text(value: str) -> str | None:
            return value or None

        assert (got["id"], got["type"], got["ciClass"], got["name"]) == (ci.id, ci.type, ci.ci_class.upper(), ci.name)
        assert [
            got[k] for k in ("provider", "scope", "region", "environment", "owner", "costCentre", "businessUnit")
        ] == [
            text(v)
            for v in (ci.provider, ci.scope, ci.region, ci.environment, ci.owner, ci.cost_centre, ci.business_unit)
        ]
        assert got["criticality"] == (ci.criticality.upper() if ci.criticality else None)
        assert got["lifecycleState"] == ci.lifecycle_state.upper()
        assert (got["aliases"], got["sources"]) == (list(ci.aliases), list(ci.sources))
        assert got["firstSeen"] == (ci.first_seen.isoformat() if ci.first_seen else None)
        assert got["lastSeen"] == (ci.last_seen.isoformat() if ci.last_seen else None)
        assert got["staleSince"] == (ci.stale_since.isoformat() if ci.stale_since else None)
        assert got["asOfTime"] is None


async def test_every_field_of_a_relationship_is_its_stored_value(demo_api: Api, demo_store: SqliteStore) -> None:
    """Some fields are set when the object is made, the others read from the record when asked."""
    db = _one(demo_store, types=("aws.rds.db_instance",))
    data = await demo_api.data(
        """query($id: ID!) { ci(id: $id) { relationships { type impact direction fromId toId source scope
            confidence inferred review lifecycleState firstSeen lastSeen staleSince } } }""",
        {"id": db.id},
    )
    stored = {(r.from_id, r.type, r.to_id): r for r in demo_store.relationships([db.id], "both")}
    assert len(data["ci"]["relationships"]) == len(stored) > 0
    for got in data["ci"]["relationships"]:
        rel = stored[(got["fromId"], got["type"], got["toId"])]
        assert got["direction"] == ("IN" if rel.to_id == db.id else "OUT")
        assert got["impact"] == vocabulary().relationship_type(rel.type).impact.upper()
        assert (got["source"], got["scope"], got["confidence"], got["inferred"]) == (
            rel.source,
            rel.scope,
            rel.confidence,
            rel.inferred,
        )
        assert (got["review"], got["lifecycleState"]) == (
            (rel.review or "unreviewed").upper(),
            rel.lifecycle_state.upper(),
        )
        assert got["firstSeen"] == (rel.first_seen.isoformat() if rel.first_seen else None)
        assert got["lastSeen"] == (rel.last_seen.isoformat() if rel.last_seen else None)
        assert got["staleSince"] == (rel.stale_since.isoformat() if rel.stale_since else None)


async def test_dependents_come_with_the_path_to_each(demo_api: Api, demo_store: SqliteStore) -> None:
    db = _one(demo_store, types=("aws.rds.db_instance",))
    data = await demo_api.data(
        """query($id: ID!) { ci(id: $id) { dependents(depth: 3, first: 100) {
            depth ci { id type } path { fromId type toId } } } }""",
        {"id": db.id},
    )
    reached = data["ci"]["dependents"]
    expected = demo_store.traverse([db.id], "in", max_depth=3, limit=100)
    assert [r["ci"]["id"] for r in reached] == [hit.ci_id for hit in expected]
    assert any(r["ci"]["type"] == "service.business" for r in reached)
    for r in reached:
        path = r["path"]
        assert len(path) == r["depth"]
        assert path[0]["toId"] == db.id and path[-1]["fromId"] == r["ci"]["id"]
        for near, far in itertools.pairwise(path):
            assert far["toId"] == near["fromId"]  # each step reaches the next dependent


async def test_dependencies_walk_down_along_chosen_types(demo_api: Api, demo_store: SqliteStore) -> None:
    service = _one(demo_store, types=("service.business",))
    data = await demo_api.data(
        """query($id: ID!) { ci(id: $id) {
            all: dependencies(depth: 4, first: 200) { depth ci { id } }
            owners: dependencies(depth: 1, types: [OWNED_BY]) { ci { id ciClass } }
        } }""",
        {"id": service.id},
    )
    expected = demo_store.traverse([service.id], "out", max_depth=4, limit=200)
    assert [r["ci"]["id"] for r in data["ci"]["all"]] == [h.ci_id for h in expected]
    assert all(r["ci"]["ciClass"] == "TEAM" for r in data["ci"]["owners"])


async def test_owner_team_is_the_team_ci(demo_api: Api, demo_store: SqliteStore) -> None:
    owned = next(ci for ci in demo_store.iter_cis(CIFilter(types=("aws.rds.db_instance",))) if ci.owner)
    data = await demo_api.data(
        "query($id: ID!) { ci(id: $id) { owner ownerTeam { __typename id ... on TeamCI { email } } } }",
        {"id": owned.id},
    )
    team = data["ci"]["ownerTeam"]
    assert team["__typename"] == "TeamCI"
    owned_by = [r.to_id for r in demo_store.relationships([owned.id], "out", ["OWNED_BY"])]
    assert team["id"] in owned_by or team["id"] == owned.owner


async def test_path_between_two_cis(demo_api: Api, demo_store: SqliteStore) -> None:
    service = _one(demo_store, types=("service.business",))
    far = demo_store.traverse([service.id], "out", max_depth=4)[-1]
    data = await demo_api.data(
        "query($a: ID!, $b: ID!) { path(from: $a, to: $b) { length cis { id } relationships { fromId toId } } }",
        {"a": service.id, "b": far.ci_id},
    )
    path = data["path"]
    expected = demo_store.shortest_path(service.id, far.ci_id)
    assert expected is not None
    assert path["length"] == len(expected)
    assert path["cis"][0]["id"] == service.id and path["cis"][-1]["id"] == far.ci_id
    assert [(r["fromId"], r["toId"]) for r in path["relationships"]] == [(r.from_id, r.to_id) for r in expected]
    none = await demo_api.data(
        "query($a: ID!, $b: ID!) { path(from: $a, to: $b, maxDepth: 2) { length } }", {"a": far.ci_id, "b": service.id}
    )
    assert none["path"] is None  # edges point from the dependent: no way down from the far end back up


async def test_path_from_an_unknown_ci_is_not_found(demo_api: Api) -> None:
    error = await demo_api.error('{ path(from: "nope", to: "nada") { length } }')
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_changes_since_a_time_and_of_one_scope(demo_api: Api, demo_store: SqliteStore) -> None:
    runs = demo_store.sync_runs()
    today = max(run.started_at for run in runs)
    data = await demo_api.data(
        "query($since: DateTime!) { changes(since: $since, first: 500) { edges { node { at kind ciId actor syncId } } pageInfo { hasNextPage } } }",
        {"since": today.isoformat()},
    )
    nodes = [e["node"] for e in data["changes"]["edges"]]
    assert nodes, "the second day's sync changed something"
    assert all(n["at"] >= today.isoformat()[:19] for n in nodes)
    assert {n["actor"] for n in nodes} == {"sync:demo"}
    scope = next(
        c.scope
        for c in demo_store.iter_changes(__import__("cmdb.store.base", fromlist=["ChangeFilter"]).ChangeFilter())
        if c.scope
    )
    scoped = await demo_api.data(
        "query($s: String!) { changes(scope: $s, first: 50) { edges { node { scope } } } }", {"s": scope}
    )
    assert scoped["changes"]["edges"] and all(e["node"]["scope"] == scope for e in scoped["changes"]["edges"])


async def test_history_of_a_ci(demo_api: Api, demo_store: SqliteStore) -> None:
    db = _one(demo_store, types=("aws.rds.db_instance",))
    data = await demo_api.data(
        "query($id: ID!) { ci(id: $id) { history(first: 100) { edges { node { kind ciId toId relationshipType } } } } }",
        {"id": db.id},
    )
    nodes = [e["node"] for e in data["ci"]["history"]["edges"]]
    assert nodes[0]["kind"] == "CI_CREATED" and nodes[0]["ciId"] == db.id
    assert all(n["ciId"] == db.id or n["toId"] == db.id for n in nodes)


async def test_stats_match_the_store(demo_api: Api, demo_store: SqliteStore) -> None:
    data = await demo_api.data(
        "{ stats { total relationships byClass { key count } byProvider { key count } byLifecycle { key count } } }"
    )
    stats = demo_store.stats()
    assert data["stats"]["total"] == stats.total
    assert data["stats"]["relationships"] == stats.relationships
    assert {e["key"]: e["count"] for e in data["stats"]["byClass"]} == stats.by_class
    assert {e["key"]: e["count"] for e in data["stats"]["byProvider"]} == stats.by_provider
    assert {e["key"]: e["count"] for e in data["stats"]["byLifecycle"]} == stats.by_lifecycle


async def test_graphiql_is_served_to_a_browser(demo_api: Api) -> None:
    response = await demo_api.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_a_body_that_is_not_json_is_a_bad_request(demo_api: Api) -> None:
    headers = {"Authorization": f"Bearer {demo_api.token}", "Content-Type": "application/json"}
    for body in (b'{"query": "{ stats { total } }"', b"\xff\xfe", b""):
        response = await demo_api.client.post("/graphql", content=body, headers=headers)
        assert response.status_code == 400, (body, response.text)
        assert "JSON" in response.text
    assert (await demo_api.data("{ stats { total } }"))["stats"]["total"] > 0  # and the next request is answered


async def test_changes_page_round_trip(demo_api: Api, demo_store: SqliteStore) -> None:
    from cmdb.store.base import ChangeFilter

    query = "query($after: String) { changes(first: 500, after: $after) { pageInfo { hasNextPage endCursor } edges { node { seq } } } }"
    seqs: list[int] = []
    after: str | None = None
    while True:
        page = (await demo_api.data(query, {"after": after}))["changes"]
        seqs += [e["node"]["seq"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seqs == [c.seq for c in demo_store.iter_changes(ChangeFilter())]
