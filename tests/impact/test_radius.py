"""Blast radius and dependencies: depth, relationship filters, paths, services, owners, states."""

from __future__ import annotations

import networkx as nx
import pytest

from cmdb.errors import LimitExceeded, NotFound
from cmdb.export import to_networkx
from cmdb.impact import blast_radius, dependencies
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine
from tests.impact.helpers import build, ci

CHAIN = [
    ci("db", "database.instance", owner="dba", environment="production"),
    ci("vm", "compute.vm", owner="ops"),
    ci("api", "app.application", owner="payments-team"),
    ci("pay", "service.business", owner="payments-lead", criticality="critical"),
    ci("shop", "service.business", owner="shop-lead", criticality="high"),
    ci("web", "app.application", owner="shop-team"),
    ci("team", "team.team"),
    ci("report", "app.application", owner="bi"),
]
CHAIN_EDGES = [
    ("vm", "DEPENDS_ON", "db"),
    ("api", "RUNS_ON", "vm"),
    ("pay", "DEPENDS_ON", "api"),
    ("web", "DEPENDS_ON", "api"),
    ("shop", "DEPENDS_ON", "web"),
    ("db", "OWNED_BY", "team"),
    ("report", "MEMBER_OF", "db"),
]


@pytest.fixture
def chain(engine: SyncEngine) -> SyncEngine:
    build(engine, CHAIN, CHAIN_EDGES)
    return engine


def test_blast_radius_lists_dependents_nearest_first_with_paths(chain: SyncEngine, store: SqliteStore) -> None:
    radius = blast_radius(store, "db")
    assert [(r.ci_id, r.depth) for r in radius.reached] == [
        ("report", 1),
        ("vm", 1),
        ("api", 2),
        ("pay", 3),
        ("web", 3),
        ("shop", 4),
    ]
    shop = radius.get("shop")
    assert shop is not None
    assert [r.key for r in shop.path] == [
        ("vm", "DEPENDS_ON", "db"),
        ("api", "RUNS_ON", "vm"),
        ("web", "DEPENDS_ON", "api"),
        ("shop", "DEPENDS_ON", "web"),
    ]
    assert shop.path_ids == ["db", "vm", "api", "web", "shop"]
    assert [s.ci_id for s in radius.services] == ["pay", "shop"]
    assert radius.owners == ["bi", "ops", "payments-lead", "payments-team", "shop-lead", "shop-team"]
    assert not radius.truncated


def test_depth_limit_and_result_limit(chain: SyncEngine, store: SqliteStore) -> None:
    assert blast_radius(store, "db", max_depth=2).ids == ["report", "vm", "api"]
    limited = blast_radius(store, "db", limit=2)
    assert len(limited.reached) == 2 and limited.truncated
    with pytest.raises(LimitExceeded):
        blast_radius(store, "db", max_depth=99)


def test_relationship_type_filter(chain: SyncEngine, store: SqliteStore) -> None:
    assert blast_radius(store, "db", types=["DEPENDS_ON"]).ids == ["vm"]
    assert blast_radius(store, "db", types=["DEPENDS_ON", "RUNS_ON"]).ids == ["vm", "api", "pay", "web", "shop"]
    assert blast_radius(store, "db", types=["MEMBER_OF"]).ids == ["report"]


def test_states_mark_what_only_a_no_impact_edge_reaches_as_unaffected(chain: SyncEngine, store: SqliteStore) -> None:
    radius = blast_radius(store, "db", states=True)
    states = {r.ci_id: r.state for r in radius.reached}
    assert states == {"report": "unaffected", "vm": "down", "api": "down", "pay": "down", "web": "down", "shop": "down"}


def test_dependencies_walk_down(chain: SyncEngine, store: SqliteStore) -> None:
    deps = dependencies(store, "shop")
    assert [(r.ci_id, r.depth) for r in deps.reached] == [("web", 1), ("api", 2), ("vm", 3), ("db", 4), ("team", 5)]
    assert deps.get("db") is not None and deps.get("db").path_ids == ["shop", "web", "api", "vm", "db"]  # type: ignore[union-attr]


def test_records_and_subgraph_for_notebooks(chain: SyncEngine, store: SqliteStore) -> None:
    radius = blast_radius(store, ["db"], states=True)
    records = radius.records()
    pay = next(r for r in records if r["id"] == "pay")
    assert pay["business_service"] and pay["criticality"] == "critical" and pay["state"] == "down"
    assert pay["path"] == "vm -DEPENDS_ON-> db; api -RUNS_ON-> vm; pay -DEPENDS_ON-> api"
    graph = radius.subgraph()
    assert isinstance(graph, nx.MultiDiGraph)
    assert set(graph.nodes) == {"db", "report", "vm", "api", "pay", "web", "shop"}
    assert graph.has_edge("shop", "web", key="DEPENDS_ON")
    assert graph.nodes["pay"]["business_service"]


def test_same_answers_over_a_networkx_graph(chain: SyncEngine, store: SqliteStore) -> None:
    graph = to_networkx(store.iter_cis(), store.iter_relationships())
    from_store = blast_radius(store, "db", states=True)
    from_graph = blast_radius(graph, "db", states=True)
    assert [(r.ci_id, r.depth, r.state) for r in from_graph.reached] == [
        (r.ci_id, r.depth, r.state) for r in from_store.reached
    ]
    assert [s.ci_id for s in from_graph.services] == ["pay", "shop"]
    assert from_graph.owners == from_store.owners


def test_unknown_start_is_not_found(store: SqliteStore) -> None:
    with pytest.raises(NotFound):
        blast_radius(store, "missing")


def test_retired_relationships_are_not_walked(chain: SyncEngine, store: SqliteStore) -> None:
    chain.remove_relationship(("vm", "DEPENDS_ON", "db"), actor="test")
    assert blast_radius(store, "db").ids == ["report"]


def test_type_lookup_is_the_same_for_few_and_many_ids(chain: SyncEngine, store: SqliteStore) -> None:
    from cmdb.impact import StoreView

    view = StoreView(store)
    few = ["pay", "shop", "db", "api"]
    many = [*few, *(f"not-there-{i}" for i in range(2500))]
    assert view.of_type(few, "service.business") == view.of_type(many, "service.business") == {"pay", "shop"}
