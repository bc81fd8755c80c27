"""Failure that respects redundancy, on hand-built graphs with known answers."""

from __future__ import annotations

import pytest

from cmdb.errors import NotFound
from cmdb.impact import failure_impact
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine
from tests.impact.helpers import build

# shop -> app -> lb ={ROUTES_TO}=> web1, web2, web3 -> each RUNS_ON its own host
WEB = {
    "shop": "service.business",
    "app": "app.application",
    "lb": "aws.elbv2.load_balancer",
    "web1": "compute.vm",
    "web2": "compute.vm",
    "web3": "compute.vm",
    "host1": "hardware.server",
    "host2": "hardware.server",
    "host3": "hardware.server",
    "team": "team.team",
}
WEB_EDGES = [
    ("shop", "DEPENDS_ON", "app"),
    ("app", "DEPENDS_ON", "lb"),
    ("lb", "ROUTES_TO", "web1"),
    ("lb", "ROUTES_TO", "web2"),
    ("lb", "ROUTES_TO", "web3"),
    ("web1", "RUNS_ON", "host1"),
    ("web2", "RUNS_ON", "host2"),
    ("web3", "RUNS_ON", "host3"),
    ("shop", "OWNED_BY", "team"),
]


@pytest.fixture
def web(engine: SyncEngine) -> SyncEngine:
    build(engine, WEB, WEB_EDGES)
    return engine


def test_one_of_three_targets_down_degrades_the_load_balancer_and_everything_above(
    web: SyncEngine, store: SqliteStore
) -> None:
    impact = failure_impact(store, ["web1"])
    assert impact.state("web1") == "down"
    assert impact.state("lb") == "degraded"
    assert impact.affected["lb"].reason == "1 of 3 ROUTES_TO targets down"
    assert impact.state("app") == "degraded"
    assert impact.state("shop") == "degraded"
    assert impact.down == ["web1"]


def test_all_three_targets_down_takes_the_load_balancer_and_the_service_down(
    web: SyncEngine, store: SqliteStore
) -> None:
    impact = failure_impact(store, ["host1", "host2", "host3"])
    assert {ci: impact.state(ci) for ci in ("web1", "web2", "web3", "lb", "app", "shop")} == dict.fromkeys(
        ("web1", "web2", "web3", "lb", "app", "shop"), "down"
    )
    assert impact.affected["lb"].reason == "all 3 ROUTES_TO targets are down"
    # The path the failure travelled, from a failing host up to the service.
    path = impact.affected["shop"].path
    assert path[-1].key == ("shop", "DEPENDS_ON", "app")
    assert path[0].to_id in {"host1", "host2", "host3"}


def test_two_of_three_down_still_only_degrades(web: SyncEngine, store: SqliteStore) -> None:
    impact = failure_impact(store, ["host1", "web2"])
    assert impact.state("lb") == "degraded"
    assert impact.affected["lb"].reason == "2 of 3 ROUTES_TO targets down"
    assert impact.state("shop") == "degraded"


def test_ownership_carries_no_impact(web: SyncEngine, store: SqliteStore) -> None:
    impact = failure_impact(store, ["team"])
    assert impact.affected == {"team": impact.affected["team"]}
    assert impact.state("shop") == "unaffected"


def test_all_of_dependency_takes_dependent_down_even_with_redundancy_elsewhere(
    engine: SyncEngine, store: SqliteStore
) -> None:
    build(
        engine,
        {
            "svc": "service.business",
            "lb": "aws.elbv2.load_balancer",
            "a": "compute.vm",
            "b": "compute.vm",
            "sg": "aws.ec2.security_group",
        },
        [
            ("svc", "DEPENDS_ON", "lb"),
            ("lb", "ROUTES_TO", "a"),
            ("lb", "ROUTES_TO", "b"),
            ("a", "SECURED_BY", "sg"),
            ("b", "SECURED_BY", "sg"),
        ],
    )
    impact = failure_impact(store, ["sg"])
    assert impact.state("a") == impact.state("b") == impact.state("lb") == impact.state("svc") == "down"
    assert impact.affected["a"].reason == "needs sg (SECURED_BY)"


def test_cycles_terminate_and_propagate(engine: SyncEngine, store: SqliteStore) -> None:
    build(
        engine,
        {"a": "compute.vm", "b": "compute.vm", "c": "compute.vm", "top": "service.business"},
        [("a", "DEPENDS_ON", "b"), ("b", "DEPENDS_ON", "c"), ("c", "DEPENDS_ON", "a"), ("top", "DEPENDS_ON", "a")],
    )
    impact = failure_impact(store, ["b"])
    assert sorted(impact.down) == ["a", "b", "c", "top"]


def test_a_ring_of_mutual_alternatives_does_not_take_itself_down(engine: SyncEngine, store: SqliteStore) -> None:
    # x and y route to each other and to one backend each; losing x's backend leaves x on y.
    build(
        engine,
        {"x": "aws.elbv2.load_balancer", "y": "aws.elbv2.load_balancer", "bx": "compute.vm", "by": "compute.vm"},
        [("x", "ROUTES_TO", "y"), ("y", "ROUTES_TO", "x"), ("x", "ROUTES_TO", "bx"), ("y", "ROUTES_TO", "by")],
    )
    impact = failure_impact(store, ["bx"])
    assert impact.state("x") == "degraded"
    assert impact.state("y") == "degraded"
    both = failure_impact(store, ["bx", "by"])
    # Each still names the other, but that route only leads back into the failure.
    assert both.state("x") == "down" and both.state("y") == "down"
    assert both.affected["x"].reason == "every remaining ROUTES_TO alternative leads back into the failure"
    assert [r.key for r in both.affected["x"].path] == [("x", "ROUTES_TO", "bx")]  # a real path from a failing CI


def test_removed_relationship_and_degraded_inputs(web: SyncEngine, store: SqliteStore) -> None:
    removed = failure_impact(store, removed_relationships=[("app", "DEPENDS_ON", "lb")])
    assert removed.state("app") == "down"
    assert removed.state("shop") == "down"
    assert removed.state("lb") == "unaffected"
    impaired = failure_impact(store, degraded=["lb"])
    assert impaired.state("lb") == "degraded" and impaired.state("shop") == "degraded"
    assert impaired.down == []


def test_depth_bounds_the_walk(web: SyncEngine, store: SqliteStore) -> None:
    impact = failure_impact(store, ["host1", "host2", "host3"], max_depth=2)
    assert impact.state("lb") == "down"
    assert impact.state("app") == "unaffected"  # beyond depth 2 of the hosts


def test_unknown_ci_is_not_found(store: SqliteStore) -> None:
    with pytest.raises(NotFound):
        failure_impact(store, ["nope"])
