"""Reconciliation quality: duplicates, conflicts between sources, incomplete records, accuracy per source."""

from __future__ import annotations

from cmdb.compliance.reconciliation import conflicts, duplicates, incomplete, quality
from cmdb.connectors.base import Batch, ScopeDone
from cmdb.model import CI
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .conftest import Clock, Loader


def scan(engine: SyncEngine, cis: list[CI], scope: str = "lon1-scan") -> None:
    """A second source (a network scanner) sweeping one scope completely."""
    report = engine.apply_events("scanner", [Batch(scope, cis), ScopeDone(scope, True)], actor="sync:scanner")
    assert not report.problems, report.problems


def server(ci_id: str, serial: str, **attributes: object) -> dict[str, object]:
    return {"id": ci_id, "type": "hardware.server", "name": ci_id, "owner": "team-infra",
            "attributes": {"serial_number": serial, "model": "PowerEdge R650", "location": "LON1", **attributes}}


def test_duplicates_by_serial_number_and_endpoint(store: SqliteStore, load: Loader) -> None:
    load(
        [
            server("srv-a", "CZ2341"),
            server("srv-a-again", "cz2341 ", location="LON2"),  # typed twice, once with a trailing space
            server("srv-b", "CZ9999"),
            {"id": "db-orders", "type": "database.instance", "attributes": {"endpoint": "orders.db.corp.example.com"}},
            {"id": "db-orders-old", "type": "database.instance", "attributes": {"endpoint": "ORDERS.db.corp.example.com."}},
        ]
    )
    found = {(d.key, d.value): d for d in duplicates(store)}
    assert set(found) == {("serial_number", "cz2341"), ("endpoint", "orders.db.corp.example.com")}
    serial = found[("serial_number", "cz2341")]
    assert serial.ci_ids == ("srv-a", "srv-a-again") and serial.differences["location"] == {"srv-a": "LON1", "srv-a-again": "LON2"}


def test_conflicting_values_between_two_sources(store: SqliteStore, load: Loader, timed_engine: SyncEngine, clock: Clock) -> None:
    load([server("srv-a", "CZ2341", cpu_cores=32), server("srv-b", "CZ9999", cpu_cores=16)], name="assets")
    clock.advance(hours=1)
    scan(timed_engine, [CI("srv-a", "hardware.server", attributes={"cpu_cores": 48}), CI("srv-b", "hardware.server", attributes={"cpu_cores": 16})])
    found = conflicts(store)
    assert [(c.ci_id, c.field) for c in found] == [("srv-a", "attributes.cpu_cores")]
    assert found[0].values == {"file": 32, "scanner": 48} and found[0].current == 48


def test_incomplete_records_and_accuracy_per_source(store: SqliteStore, load: Loader, timed_engine: SyncEngine, clock: Clock) -> None:
    load(
        [
            server("srv-a", "CZ1"),
            server("srv-b", "CZ1"),  # a duplicate of srv-a
            {"id": "srv-c", "type": "hardware.server", "name": "srv-c", "attributes": {"serial_number": "CZ3"}},  # no owner, model, location
            server("srv-d", "CZ4"),
        ],
        name="assets",
    )
    scan(timed_engine, [CI("switch-1", "hardware.network_device", name="switch-1", owner="net",
                           attributes={"serial_number": "FDO1", "model": "C9500", "location": "LON1"}),
                        CI("switch-2", "hardware.network_device", name="switch-2", owner="net",
                           attributes={"serial_number": "FDO2", "model": "C9500", "location": "LON1"})])
    clock.advance(days=1)
    scan(timed_engine, [CI("switch-1", "hardware.network_device", name="switch-1", owner="net",
                           attributes={"serial_number": "FDO1", "model": "C9500", "location": "LON1"})])  # switch-2 is gone
    [gap] = incomplete(store)
    assert gap.ci_id == "srv-c" and gap.missing == ("owner", "model", "location")
    report = quality(store)
    by_source = {s.source: s.as_dict() for s in report.sources}
    assert by_source["file"]["cis"] == 4 and by_source["file"]["complete_pct"] == 75.0 and by_source["file"]["duplicated"] == 2
    assert by_source["file"]["accuracy_pct"] == 25.0  # only srv-d is live, complete and unique
    assert by_source["scanner"]["cis"] == 2 and by_source["scanner"]["live_pct"] == 50.0 and by_source["scanner"]["accuracy_pct"] == 50.0
    assert by_source["scanner"]["last_status"] == "complete"
