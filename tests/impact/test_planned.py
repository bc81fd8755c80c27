"""Planned changes: risk stored with them, overlap conflicts, blackouts, what actually changed."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cmdb.errors import ConfigError, NotFound, ValidationError
from cmdb.impact.planned import (
    Blackout,
    check_planned_change,
    get_planned_change,
    list_planned_changes,
    load_blackouts,
    plan_change,
    recorded_changes,
)
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine
from tests.impact.helpers import ci, settled_estate
from tests.support import Clock

ESTATE = [
    ci("shop", "service.business", owner="shop-lead", environment="production", criticality="high"),
    ci("pay", "service.business", owner="pay-lead", environment="production", criticality="critical"),
    ci("reports", "service.business", owner="bi", environment="staging"),
    ci("web", "app.application", owner="shop-team", environment="production"),
    ci("api", "app.application", owner="pay-team", environment="production"),
    ci("db", "database.instance", owner="dba", environment="production"),
    ci("vm", "compute.vm", owner="ops", environment="production"),
    ci("etl", "compute.vm", owner="bi", environment="staging"),
]
EDGES = [
    ("shop", "DEPENDS_ON", "web"),
    ("web", "DEPENDS_ON", "db"),
    ("pay", "DEPENDS_ON", "api"),
    ("api", "DEPENDS_ON", "db"),
    ("api", "RUNS_ON", "vm"),
    ("reports", "DEPENDS_ON", "etl"),
]


@pytest.fixture
def estate(store: SqliteStore, clock: Clock) -> SyncEngine:
    return settled_estate(store, clock, ESTATE, EDGES)


def window(clock: Clock, hours: float, length: float = 2) -> tuple[datetime, datetime]:
    start = clock.now + timedelta(hours=hours)
    return start, start + timedelta(hours=length)


def test_a_planned_change_is_stored_with_its_risk_and_services(
    estate: SyncEngine, store: SqliteStore, clock: Clock
) -> None:
    start, end = window(clock, 24)
    planned = plan_change(
        store, ["db"], "patch", start, end, requester="alice", description="minor version", at=clock.now, blackouts=[]
    )
    assert planned.key == "CHG-000001"
    assert planned.services == ("pay", "shop")
    assert planned.environments == ("production",)
    assert planned.score == planned.risk["score"] and planned.level == planned.risk["level"]
    assert "pay -DEPENDS_ON-> api; api -DEPENDS_ON-> db" in planned.risk["explanation"]
    assert planned.conflicts == []
    again = get_planned_change(store, "CHG-000001")
    assert again.to_doc() == planned.to_doc()
    assert [c.key for c in list_planned_changes(store)] == ["CHG-000001"]
    assert planned.status(clock.now) == "planned" and planned.status(end) == "done"


def test_overlapping_changes_that_share_a_service_conflict(
    estate: SyncEngine, store: SqliteStore, clock: Clock
) -> None:
    start, end = window(clock, 24)
    plan_change(store, "db", "patch", start, end, requester="alice", at=clock.now, blackouts=[])
    # vm reaches pay too, and the windows overlap by an hour.
    second = plan_change(
        store,
        "vm",
        "restart",
        start + timedelta(hours=1),
        end + timedelta(hours=1),
        requester="bob",
        at=clock.now,
        blackouts=[],
    )
    assert [(c.kind, c.other, c.services) for c in second.conflicts] == [("overlap", "CHG-000001", ("pay",))]
    # The first change, checked now, sees the second.
    assert [(c.kind, c.other) for c in check_planned_change(store, "CHG-000001", blackouts=[])] == [
        ("overlap", "CHG-000002")
    ]
    # Same time, unrelated services: no conflict. Related services, later window: no conflict.
    assert (
        plan_change(store, "etl", "restart", start, end, requester="carol", at=clock.now, blackouts=[]).conflicts == []
    )
    later = plan_change(
        store,
        "vm",
        "restart",
        end + timedelta(hours=5),
        end + timedelta(hours=6),
        requester="bob",
        at=clock.now,
        blackouts=[],
    )
    assert later.conflicts == []


def test_blackouts_by_environment_and_by_service(
    estate: SyncEngine, store: SqliteStore, clock: Clock, tmp_path: Path
) -> None:
    start, end = window(clock, 48)
    config = tmp_path / "blackouts.yaml"
    config.write_text(
        "blackouts:\n"
        f"  - name: Black Friday\n    start: {(start - timedelta(days=1)).isoformat()}\n    end: {(end + timedelta(days=1)).isoformat()}\n"
        "    environments: [production]\n"
        f"  - name: reporting freeze\n    start: {start.isoformat()}\n    end: {end.isoformat()}\n    services: [reports]\n"
        f"  - name: long ago\n    start: 2020-01-01T00:00:00Z\n    end: 2020-01-02T00:00:00Z\n",
        encoding="utf-8",
    )
    blackouts = load_blackouts(config)
    assert [b.name for b in blackouts] == ["Black Friday", "reporting freeze", "long ago"]
    prod = plan_change(store, "db", "patch", start, end, requester="alice", at=clock.now, blackouts=blackouts)
    assert [(c.kind, c.other) for c in prod.conflicts] == [("blackout", "Black Friday")]
    assert "environment production" in prod.conflicts[0].detail
    staging = plan_change(store, "etl", "patch", start, end, requester="alice", at=clock.now, blackouts=blackouts)
    assert [(c.kind, c.other, c.services) for c in staging.conflicts] == [
        ("blackout", "reporting freeze", ("reports",))
    ]
    everything = [Blackout("all hands", start, end)]
    assert [c.other for c in check_planned_change(store, staging.key, blackouts=everything)] == ["all hands"]


def test_malformed_blackout_files_are_config_errors(tmp_path: Path) -> None:
    config = tmp_path / "b.yaml"
    config.write_text("blackouts:\n  - {name: x, start: 2026-12-24, end: 2026-12-27}\n", encoding="utf-8")
    assert [(b.name, b.start.day, b.end.day) for b in load_blackouts(config)] == [("x", 24, 27)]
    for text in ("blackouts: nope\n", "blackouts:\n  - {name: x, start: 2026-12-27, end: 2026-12-24}\n", "[: nope"):
        config.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError):
            load_blackouts(config)
    with pytest.raises(ConfigError):
        load_blackouts(tmp_path / "missing.yaml")


def test_records_of_the_next_syncs_attach_to_the_change(estate: SyncEngine, store: SqliteStore, clock: Clock) -> None:
    start, end = window(clock, 1)
    planned = plan_change(store, "vm", "modify", start, end, requester="alice", at=clock.now, blackouts=[])
    estate.set_fields("vm", actor="before-window", owner="early")  # before the window: not its outcome
    clock.advance(hours=2)
    estate.set_fields("vm", actor="ops", owner="ops-2")  # inside
    clock.advance(hours=3)
    estate.set_fields("vm", actor="sync", cost_centre="cc-9")  # after, within a day
    clock.advance(days=3)
    estate.set_fields("vm", actor="sync", cost_centre="cc-10")  # long after: not attached
    records = recorded_changes(store, planned.key)
    assert [(r.actor, r.field, r.after) for r in records] == [
        ("ops", "owner", "ops-2"),
        ("sync", "cost_centre", "cc-9"),
    ]


def test_invalid_plans(estate: SyncEngine, store: SqliteStore, clock: Clock) -> None:
    start, end = window(clock, 1)
    with pytest.raises(ValidationError):
        plan_change(store, "db", "patch", end, start, requester="a", blackouts=[])
    with pytest.raises(ValidationError):
        plan_change(store, "db", "reboot", start, end, requester="a", blackouts=[])
    with pytest.raises(NotFound):
        get_planned_change(store, "CHG-999999")
