"""Change risk: deterministic scores made of stated factors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cmdb.errors import ValidationError
from cmdb.export import to_networkx
from cmdb.impact import change_risk
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine
from tests.impact.helpers import ci, settled_estate
from tests.support import Clock

ESTATE = [
    ci("db", "database.instance", owner="dba", environment="production"),
    ci("vm", "compute.vm", owner="ops", environment="production"),
    ci("api", "app.application", owner="payments-team", environment="production"),
    ci(
        "pay",
        "service.business",
        name="Payments",
        owner="payments-lead",
        criticality="critical",
        environment="production",
    ),
    ci("lb", "aws.elbv2.load_balancer", owner="ops", environment="production"),
    ci("web1", "compute.vm", owner="ops", environment="production"),
    ci("web2", "compute.vm", owner="ops", environment="production"),
    ci("shop", "service.business", name="Online Shop", owner="", criticality="high", environment="production"),
    ci("tmp", "compute.vm", environment="development"),
]
EDGES = [
    ("vm", "DEPENDS_ON", "db"),
    ("api", "RUNS_ON", "vm"),
    ("pay", "DEPENDS_ON", "api"),
    ("shop", "DEPENDS_ON", "lb"),
    ("lb", "ROUTES_TO", "web1"),
    ("lb", "ROUTES_TO", "web2"),
]


@pytest.fixture
def estate(store: SqliteStore, clock: Clock) -> SyncEngine:
    return settled_estate(store, clock, ESTATE, EDGES, days=30)


def test_deleting_a_production_database_behind_a_critical_service(
    estate: SyncEngine, store: SqliteStore, clock: Clock
) -> None:
    risk = change_risk(store, "db", "delete", at=clock.now)
    points = {f.name: f.points for f in risk.factors}
    assert points == {
        "business_services": 12.5,  # one critical service down: 1.0 of 2.0
        "single_point_of_failure": 15.0,
        "production": 10.0,
        "stateful": 10.0,
        "recent_changes": 0.0,
        "compliance": 0.0,
        "missing_owner": 0.0,
        "change_type": 10.0,
    }
    assert risk.score == 58 and risk.level == "high"
    assert [(s.ci_id, s.state) for s in risk.services] == [("pay", "down")]
    assert risk.paths == ["pay (down): pay -DEPENDS_ON-> api; api -RUNS_ON-> vm; vm -DEPENDS_ON-> db"]
    assert "Payments has no redundancy on pay -DEPENDS_ON-> api" in risk.factor("single_point_of_failure").evidence[0]
    assert "db holds state (database: database.instance)" in risk.factor("stateful").evidence
    assert "pay -DEPENDS_ON-> api" in risk.explanation


def test_same_input_same_score(estate: SyncEngine, store: SqliteStore, clock: Clock) -> None:
    first = change_risk(store, ["db"], "patch", at=clock.now).as_dict()
    again = change_risk(store, ["db"], "patch", at=clock.now).as_dict()
    assert first == again
    assert first["score"] == 53  # 57.5 - 10 + 5 (patch is worth half the change-type weight), half up


def test_redundancy_lowers_the_risk_and_says_so(estate: SyncEngine, store: SqliteStore, clock: Clock) -> None:
    risk = change_risk(store, "web1", "restart", at=clock.now)
    assert [(s.ci_id, s.state) for s in risk.services] == [("shop", "degraded")]
    spof = risk.factor("single_point_of_failure")
    assert spof.value == 0.3 and "redundancy holds for 1 services" in spof.evidence[0]
    assert risk.factor("business_services").points == 3.8  # high (0.75) x degraded (0.4) / 2 x 25
    assert risk.factor("missing_owner").value == 0.5
    assert risk.factor("missing_owner").evidence == ("service without owner: Online Shop",)
    assert risk.factor("stateful").value == 0.0
    losing_both = change_risk(store, ["web1", "web2"], "restart", at=clock.now)
    assert losing_both.score > risk.score
    assert losing_both.services[0].state == "down"


def test_recent_changes_and_failures_near_the_ci_count(estate: SyncEngine, store: SqliteStore, clock: Clock) -> None:
    quiet = change_risk(store, "db", "modify", at=clock.now)
    estate.set_fields("vm", actor="alice", owner="platform")
    clock.advance(hours=1)
    estate.set_fields("db", actor="alice", lifecycle_state="stale")
    clock.advance(hours=1)
    busy = change_risk(store, "db", "modify", at=clock.now)
    recent = busy.factor("recent_changes")
    assert recent.value == pytest.approx(0.5)  # 2 records + 3 x 1 failure, over 10
    assert "2 change records in 7 days (1 on the CI, 1 on 1 neighbours)" in recent.evidence[0]
    assert "1 failures: db lifecycle_state -> stale" in recent.evidence[1]
    assert busy.score == quiet.score + 5


def test_quiet_development_ci_is_low_risk(estate: SyncEngine, store: SqliteStore, clock: Clock) -> None:
    risk = change_risk(store, "tmp", "modify", at=clock.now)
    assert risk.level == "low" and risk.services == []
    assert risk.factor("business_services").evidence == ("no business service depends on it",)


def test_risk_over_a_networkx_graph_matches_the_store_where_it_can(
    estate: SyncEngine, store: SqliteStore, clock: Clock
) -> None:
    graph = to_networkx(store.iter_cis(), store.iter_relationships())
    from_graph = change_risk(graph, "db", "delete", at=clock.now)
    from_store = change_risk(store, "db", "delete", at=clock.now)
    assert from_graph.score == from_store.score
    assert from_graph.factor("compliance").evidence in (
        ("findings live in a store; this graph has none",),
        ("no compliance module",),
    )


def test_unknown_change_type(estate: SyncEngine, store: SqliteStore) -> None:
    with pytest.raises(ValidationError):
        change_risk(store, "db", "explode")


def test_time_moves_the_recent_window(estate: SyncEngine, store: SqliteStore, clock: Clock) -> None:
    estate.set_fields("db", actor="alice", owner="dba2")
    now = clock.now
    assert change_risk(store, "db", at=now + timedelta(minutes=1)).factor("recent_changes").value > 0
    assert change_risk(store, "db", at=now + timedelta(days=8)).factor("recent_changes").value == 0


def test_open_compliance_findings_raise_the_risk(estate: SyncEngine, store: SqliteStore, clock: Clock) -> None:
    from cmdb.compliance import evaluate

    before = change_risk(store, "tmp", "modify", at=clock.now)
    assert before.factor("compliance").evidence == ("no open compliance findings",)
    evaluate(store, rule_ids=["governance.missing-owner"], at=clock.now)  # tmp has no owner
    after = change_risk(store, "tmp", "modify", at=clock.now)
    compliance = after.factor("compliance")
    assert compliance.value == pytest.approx(0.125)  # one low finding: 0.25 of 2.0
    assert compliance.evidence == ("tmp: Resource has no owner [low]",)
    assert (before.score, after.score) == (14, 15)  # missing owner 10 + modify 4, then + 1.2
