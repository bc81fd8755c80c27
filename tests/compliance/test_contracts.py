"""Vendors and contracts: coverage, status, spend."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cmdb.compliance.contracts import contracts, uncovered_hardware, vendor_spend
from cmdb.connectors.files import FileConnector
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .conftest import Loader

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_contracts_coverage_and_spend(store: SqliteStore, engine: SyncEngine, load: Loader) -> None:
    assert not engine.run(FileConnector([EXAMPLES / "hardware.yaml", EXAMPLES / "software.yaml", EXAMPLES / "licences.yaml"])).problems
    load(
        [{"id": "contract-hpe-care", "type": "commercial.contract", "name": "HPE Foundation Care",
          "attributes": {"vendor": "HPE", "start_date": "2022-03-14", "end_date": "2025-03-14", "annual_value": 4100.0}}],
        [{"from": "srv-lon1-app-02", "type": "COVERED_BY", "to": "contract-hpe-care"}],
        name="support",
    )
    at = datetime(2026, 11, 22, tzinfo=UTC)
    rows = {r.ci_id: r for r in contracts(store, at)}
    assert rows["contract-ms-ea-2025"].vendor == "Microsoft" and rows["contract-ms-ea-2025"].status == "active"
    assert rows["contract-ms-ea-2025"].covered == ("lic-m365-e3", "lic-sqlserver-ent", "srv-lon1-db-01")
    assert rows["contract-hpe-care"].status == "expired"
    assert vendor_spend(list(rows.values()))[0] == {"vendor": "Microsoft", "contracts": 1, "annual_value": 184000.0}
    gaps = {g["ci_id"]: g["reason"] for g in uncovered_hardware(store, at)}
    assert "srv-lon1-db-01" not in gaps
    assert gaps["srv-lon1-app-02"] == "contract expired: contract-hpe-care" and gaps["laptop-0042"] == "no contract"
