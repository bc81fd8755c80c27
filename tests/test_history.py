"""Point-in-time reads and diffs, reconstructed from the change records."""

from __future__ import annotations

from datetime import timedelta

from cmdb.history import ci_as_of, diff, relationships_as_of, snapshot
from cmdb.model import CI, Relationship
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine
from tests.support import Clock, ListConnector


def test_as_of_returns_old_attributes_and_relationships(store: SqliteStore) -> None:
    clock = Clock()
    engine = SyncEngine(store, clock=clock)
    t0 = clock.now
    db = CI(id="db-1", type="aws.rds.db_instance", name="orders", owner="team-a",
            attributes={"instance_class": "db.r6g.large"}, tags={"env": "prod"})
    app = CI(id="app-1", type="app.application", name="orders-api")
    engine.run(ListConnector("aws", "s", [db, app]))
    clock.advance(days=1)
    t1 = clock.now
    db2 = db.copy(owner="team-b", attributes={"instance_class": "db.r6g.xlarge"}, tags={"env": "prod", "pci": "yes"})
    engine.run(ListConnector("aws", "s", [db2, app], [Relationship("app-1", "DEPENDS_ON", "db-1")]))
    clock.advance(days=1)
    engine.run(ListConnector("aws", "s", [app]))  # db-1 goes stale, the link with it

    before = ci_as_of(store, "db-1", t0 + timedelta(hours=1))
    assert before is not None
    assert before.owner == "team-a" and before.attributes == {"instance_class": "db.r6g.large"}
    assert before.tags == {"env": "prod"} and before.lifecycle_state == "active"
    middle = ci_as_of(store, "db-1", t1 + timedelta(hours=1))
    assert middle is not None and middle.owner == "team-b" and middle.tags["pci"] == "yes"
    assert store.get_cis(["db-1"])["db-1"].lifecycle_state == "stale"
    assert ci_as_of(store, "db-1", t0 - timedelta(hours=1)) is None  # did not exist yet

    assert relationships_as_of(store, ["app-1"], t0 + timedelta(hours=1)) == []
    then = relationships_as_of(store, ["app-1"], t1 + timedelta(hours=1))
    assert [(r.to_id, r.lifecycle_state) for r in then] == [("db-1", "active")]

    snap = snapshot(store, t0 + timedelta(hours=1))
    assert set(snap.cis) == {"db-1", "app-1"} and not snap.relationships

    changes = diff(store, t1 - timedelta(minutes=1), t1 + timedelta(minutes=1))
    assert changes.updated["db-1"]["owner"] == ("team-a", "team-b")
    assert changes.relationships_added == [("app-1", "DEPENDS_ON", "db-1")]
    later = diff(store, t1 + timedelta(minutes=1))
    assert later.lifecycle == {"db-1": ("active", "stale")}
    assert later.relationships_removed == [("app-1", "DEPENDS_ON", "db-1")]
