"""What-if, single points of failure, incident impact and root-cause ranking."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cmdb.impact import incident_impact, root_causes, single_points_of_failure, what_if
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine
from tests.impact.helpers import ci, settled_estate
from tests.support import Clock

# shop -> web -> deploy -COMPOSED_OF-> pod1, pod2 -RUNS_ON-> node1 (both!) ; pod2 also fine
# shop -> db ; pay -> api -> db ; api -> cache -COMPOSED_OF-> c1, c2 (on different nodes)
ESTATE = [
    ci("shop", "service.business", name="Online Shop", owner="shop-lead", criticality="high"),
    ci("pay", "service.business", name="Payments", owner="pay-lead", criticality="critical"),
    ci("web", "app.application", owner="shop-team"),
    ci("api", "app.application", owner="pay-team"),
    ci("deploy", "k8s.deployment", owner="shop-team"),
    ci("pod1", "k8s.pod"),
    ci("pod2", "k8s.pod"),
    ci("node1", "k8s.node", owner="platform"),
    ci("node2", "k8s.node", owner="platform"),
    ci("db", "database.instance", owner="dba"),
    ci("cache", "aws.elasticache.replication_group", owner="platform"),
    ci("c1", "aws.elasticache.cluster"),
    ci("c2", "aws.elasticache.cluster"),
]
EDGES = [
    ("shop", "DEPENDS_ON", "web"),
    ("web", "RUNS_ON", "deploy"),
    ("deploy", "COMPOSED_OF", "pod1"),
    ("deploy", "COMPOSED_OF", "pod2"),
    ("pod1", "RUNS_ON", "node1"),
    ("pod2", "RUNS_ON", "node1"),
    ("shop", "DEPENDS_ON", "db"),
    ("pay", "DEPENDS_ON", "api"),
    ("api", "DEPENDS_ON", "db"),
    ("api", "DEPENDS_ON", "cache"),
    ("cache", "COMPOSED_OF", "c1"),
    ("cache", "COMPOSED_OF", "c2"),
    ("c1", "RUNS_ON", "node1"),
    ("c2", "RUNS_ON", "node2"),
]


@pytest.fixture
def estate(store: SqliteStore, clock: Clock) -> SyncEngine:
    return settled_estate(store, clock, ESTATE, EDGES)


def test_what_if_removing_a_node_lists_services_that_lose_everything_they_need(
    estate: SyncEngine, store: SqliteStore
) -> None:
    result = what_if(store, remove=["node1"])
    assert [s.ci_id for s in result.services_down] == ["shop"]  # both pods sat on node1
    assert [s.ci_id for s in result.services_degraded] == ["pay"]  # cache keeps c2 on node2
    assert result.services_down[0].path.startswith(
        "shop -DEPENDS_ON-> web; web -RUNS_ON-> deploy; deploy -COMPOSED_OF-> pod"
    )
    assert result.as_dict()["services_down"][0]["reason"] == "needs web (DEPENDS_ON)"


def test_what_if_cut_relationship_and_degrade(estate: SyncEngine, store: SqliteStore) -> None:
    cut = what_if(store, remove_relationships=[("cache", "COMPOSED_OF", "c1")])
    assert cut.services_down == [] and [s.ci_id for s in cut.services_degraded] == ["pay"]
    both = what_if(store, remove_relationships=[("cache", "COMPOSED_OF", "c1"), ("cache", "COMPOSED_OF", "c2")])
    assert [s.ci_id for s in both.services_down] == ["pay"]
    soft = what_if(store, degrade=["db"], services=["pay"])
    assert soft.services_down == [] and [s.ci_id for s in soft.services_degraded] == ["pay"]


def test_single_points_of_failure_respect_redundancy(estate: SyncEngine, store: SqliteStore) -> None:
    shop = single_points_of_failure(store, "shop")
    assert [p.ci_id for p in shop] == ["db", "web", "deploy", "node1"]  # pods are redundant, their node is not
    # The failure reaches the deployment through its last alternative to fail.
    assert shop[-1].description == (
        "shop -DEPENDS_ON-> web; web -RUNS_ON-> deploy; deploy -COMPOSED_OF-> pod2; pod2 -RUNS_ON-> node1"
    )
    pay = single_points_of_failure(store, "pay")
    assert [p.ci_id for p in pay] == ["api", "cache", "db"]  # c1, c2 and their nodes are redundant


def test_incident_lists_services_applications_and_owners_to_notify(estate: SyncEngine, store: SqliteStore) -> None:
    incident = incident_impact(store, ["db"])
    assert [(s.ci_id, s.state) for s in incident.services] == [("pay", "down"), ("shop", "down")]
    assert [(a.ci_id, a.state) for a in incident.applications] == [("api", "down")]
    assert incident.services[0].path == "pay -DEPENDS_ON-> api; api -DEPENDS_ON-> db"
    assert [(n.owner, n.ci_ids) for n in incident.notify] == [
        ("dba", ("db",)),
        ("pay-lead", ("pay",)),
        ("pay-team", ("api",)),
        ("shop-lead", ("shop",)),
    ]
    node = incident_impact(store, "node2")
    assert [(s.ci_id, s.state) for s in node.services] == [("pay", "degraded")]
    assert node.unowned == []


def test_root_causes_ranked_by_changes_lifecycle_and_sharing(
    estate: SyncEngine, store: SqliteStore, clock: Clock
) -> None:
    estate.set_fields("c2", actor="alice", lifecycle_state="stale")
    clock.advance(minutes=5)
    estate.set_fields("node1", actor="bob", owner="platform-2")
    clock.advance(minutes=5)
    ranked = root_causes(store, ["shop", "pay"], at=clock.now)
    top = [c.ci_id for c in ranked[:3]]
    assert top == ["c2", "node1", "db"]
    c2, node1, db = ranked[:3]
    assert c2.failures == 1 and "stale: its source no longer reports it" in c2.reasons
    assert node1.shared_by == ("pay", "shop") and node1.changes == 1
    assert db.shared_by == ("pay", "shop") and db.changes == 0
    assert ranked == root_causes(store, ["pay", "shop"], at=clock.now)  # deterministic
    later = root_causes(store, ["shop", "pay"], at=clock.now + timedelta(days=2))
    assert later[0].ci_id == "c2"  # the changes aged out of the window; the stale lifecycle did not
    assert later[0].changes == 0
