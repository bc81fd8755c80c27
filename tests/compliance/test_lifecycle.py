"""Lifecycle transitions with who and why; hand-kept assets from the example files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cmdb.compliance.errors import ComplianceError
from cmdb.compliance.lifecycle import set_state, transitions, warranties_ending
from cmdb.connectors.files import FileConnector
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .conftest import Clock, Loader

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_transitions_are_change_records_with_actor_and_reason(store: SqliteStore, load: Loader, timed_engine: SyncEngine, clock: Clock) -> None:
    load([{"id": "srv-9", "type": "hardware.server", "lifecycle_state": "planned"}])
    clock.advance(days=1)
    set_state(timed_engine, "srv-9", "provisioned", reason="racked, CHG-101", actor="alice")
    clock.advance(days=1)
    set_state(timed_engine, "srv-9", "active", reason="in service", actor="alice")
    with pytest.raises(ComplianceError, match="cannot go from active to disposed"):
        set_state(timed_engine, "srv-9", "disposed", reason="skip", actor="bob")
    retired_at = clock.advance(days=300)
    set_state(timed_engine, "srv-9", "retired", reason="replaced by srv-12, CHG-340", actor="bob")
    clock.advance(days=30)
    set_state(timed_engine, "srv-9", "disposed", reason="WEEE certificate 8812", actor="carol")
    history = transitions(store, "srv-9")
    assert [(t.before, t.after, t.actor) for t in history] == [
        ("planned", "provisioned", "alice"),
        ("provisioned", "active", "alice"),
        ("active", "retired", "bob"),
        ("retired", "disposed", "carol"),
    ]
    assert history[2].reason == "replaced by srv-12, CHG-340" and history[2].at == retired_at
    assert store.get_cis(["srv-9"])["srv-9"].lifecycle_state == "disposed"


def test_sync_transitions_name_their_run(store: SqliteStore, load: Loader, clock: Clock) -> None:
    load([{"id": "sw-1", "type": "hardware.network_device"}, {"id": "sw-2", "type": "hardware.network_device"}])
    clock.advance(days=1)
    load([{"id": "sw-1", "type": "hardware.network_device"}])  # sw-2 is gone from a complete sweep
    [stale] = transitions(store, "sw-2")
    assert stale.after == "stale" and stale.sync_id.startswith("file-")
    assert stale.as_dict()["reason"].startswith("sync file-")


def test_example_assets_load_with_their_attributes(store: SqliteStore, engine: SyncEngine) -> None:
    report = engine.run(FileConnector([EXAMPLES / "hardware.yaml", EXAMPLES / "software.yaml", EXAMPLES / "licences.yaml"]))
    assert not report.problems
    laptop = store.get_cis(["laptop-0042"])["laptop-0042"]
    assert laptop.attributes["serial_number"] == "C02ZK1ABMD6R" and laptop.attributes["assigned_user"] == "alice@example.com"
    assert store.resolve_aliases(["CZ23410001"]) == {"CZ23410001": "srv-lon1-db-01"}
    ending = warranties_ending(store, days=45, at=datetime(2026, 11, 22, tzinfo=UTC))
    assert [row["id"] for row in ending] == ["sw-lon1-core-01", "laptop-0043", "srv-lon1-app-02"]
    assert ending[0]["days_left"] < 0 and ending[2]["serial_number"] == "CZ23410002" and ending[2]["days_left"] == 39
