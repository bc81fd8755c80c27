"""Blast radius as of a past time, and its difference between two times."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cmdb.errors import NotFound
from cmdb.impact import blast_radius, blast_radius_diff, change_risk
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine
from tests.impact.helpers import build, ci
from tests.support import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_relationship_added_later_is_not_in_the_past_blast_radius(store: SqliteStore, clock: Clock) -> None:
    engine = SyncEngine(store, clock=clock)
    build(
        engine,
        [ci("db", "database.instance"), ci("api", "app.application"), ci("pay", "service.business")],
        [("api", "DEPENDS_ON", "db"), ("pay", "DEPENDS_ON", "api")],
    )
    last_week = clock.now + timedelta(hours=1)
    clock.advance(days=7)
    build(
        engine,
        [ci("shop", "service.business"), ci("web", "app.application")],
        [("web", "DEPENDS_ON", "db"), ("shop", "DEPENDS_ON", "web")],
    )

    assert blast_radius(store, "db", as_of=last_week).ids == ["api", "pay"]
    assert blast_radius(store, "db").ids == ["api", "web", "pay", "shop"]
    diff = blast_radius_diff(store, "db", last_week)
    assert diff.added == ["shop", "web"] and diff.removed == []
    assert diff.services_added == ["shop"]
    assert diff.summary().startswith("since ") and "1 more services depend on db" in diff.summary()


def test_relationship_retired_later_is_still_in_the_past_blast_radius(store: SqliteStore, clock: Clock) -> None:
    engine = SyncEngine(store, clock=clock)
    build(
        engine,
        [ci("db", "database.instance"), ci("api", "app.application"), ci("pay", "service.business")],
        [("api", "DEPENDS_ON", "db"), ("pay", "DEPENDS_ON", "api")],
    )
    before = clock.now + timedelta(minutes=1)
    clock.advance(days=1)
    engine.remove_relationship(("api", "DEPENDS_ON", "db"), actor="test")
    assert blast_radius(store, "db").ids == []
    assert blast_radius(store, "db", as_of=before).ids == ["api", "pay"]
    diff = blast_radius_diff(store, "db", before)
    assert diff.removed == ["api", "pay"] and diff.services_removed == ["pay"]
    assert "1 fewer services depend on db" in diff.summary()
    # Risk as of then sees the service; now it does not.
    assert [s.ci_id for s in change_risk(store, "db", "delete", as_of=before).services] == ["pay"]
    assert change_risk(store, "db", "delete", at=clock.now).services == []


def test_a_ci_that_did_not_exist_yet_is_not_found(store: SqliteStore, clock: Clock) -> None:
    engine = SyncEngine(store, clock=clock)
    early = clock.now - timedelta(days=1)
    build(engine, [ci("db", "database.instance")])
    with pytest.raises(NotFound):
        blast_radius(store, "db", as_of=early)
