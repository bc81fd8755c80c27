"""Licence positions on a known set, and renewals coming up."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cmdb.compliance.licences import licence_positions, renewals
from cmdb.connectors.files import FileConnector
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .conftest import Loader

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_positions_per_product_on_the_example_estate(store: SqliteStore, engine: SyncEngine, load: Loader) -> None:
    report = engine.run(FileConnector([EXAMPLES / "hardware.yaml", EXAMPLES / "software.yaml", EXAMPLES / "licences.yaml"]))
    assert not report.problems
    load(
        [
            {"id": "prod-eu/finance/Deployment/ledger-db", "type": "k8s.deployment", "provider": "kubernetes",
             "attributes": {"replicas": 3, "images": ["container-registry.oracle.com/database/enterprise:21.3.0.0"]}},
            {"id": "prod-eu/web/Deployment/shop", "type": "k8s.deployment", "provider": "kubernetes",
             "attributes": {"replicas": 6, "images": ["registry.example.com/shop:1.4.2"]}},
            {"id": "inst-office-kiosk", "type": "software.product",
             "attributes": {"vendor": "Microsoft", "product": "Microsoft 365 E3", "assigned_user": "alice@example.com"}},
            {"id": "inst-7zip", "type": "software.product", "attributes": {"vendor": "Igor Pavlov", "product": "7-Zip"}},
        ],
        name="k8s-and-more",
    )
    positions = {p.product: p for p in licence_positions(store)}

    sql = positions["SQL Server Enterprise"]
    assert (sql.metric, sql.entitled, sql.consumed, sql.status, sql.delta) == ("per-core", 4, 8, "under-licensed", -4)
    office = positions["Microsoft 365 E3"]  # three installations, two distinct users
    assert (office.metric, office.entitled, office.consumed, office.status) == ("per-user", 250, 2, "over-licensed")
    rhel = positions["Red Hat Enterprise Linux Server"]
    assert (rhel.entitled, rhel.consumed, rhel.status) == (10, 1, "over-licensed")
    oracle = positions["Oracle Database Enterprise Edition"]  # consumed by a Kubernetes workload's replicas
    assert (oracle.entitled, oracle.consumed, oracle.status) == (2, 3, "under-licensed")
    assert oracle.installations == ["prod-eu/finance/Deployment/ledger-db"]
    assert positions["7-Zip"].status == "unlicensed"
    # Worst shortfall first.
    assert [p.product for p in licence_positions(store)][:2] == ["SQL Server Enterprise", "Oracle Database Enterprise Edition"]
    assert sql.as_dict()["utilisation_pct"] == 200.0


def test_per_core_uses_the_machine_when_the_installation_does_not_say(store: SqliteStore, load: Loader) -> None:
    load(
        [
            {"id": "lic", "type": "software.licence", "attributes": {"product": "DB2", "metric": "per-core", "count": 64}},
            {"id": "srv-a", "type": "hardware.server", "attributes": {"cpu_cores": 32}},
            {"id": "srv-b", "type": "hardware.server"},
            {"id": "db2-a1", "type": "software.product", "attributes": {"product": "DB2"}},
            {"id": "db2-a2", "type": "software.product", "attributes": {"product": "DB2"}},  # same machine: counted once
            {"id": "db2-b", "type": "software.product", "attributes": {"product": "db2"}},
        ],
        [
            {"from": "db2-a1", "type": "RUNS_ON", "to": "srv-a"},
            {"from": "db2-a2", "type": "RUNS_ON", "to": "srv-a"},
            {"from": "db2-b", "type": "RUNS_ON", "to": "srv-b"},
        ],
    )
    [position] = licence_positions(store)
    assert (position.consumed, position.unknown_cores, position.status) == (32, ["srv-b"], "over-licensed")


def test_renewals_within_90_days(store: SqliteStore, engine: SyncEngine) -> None:
    engine.run(FileConnector([EXAMPLES / "licences.yaml"]))
    due = renewals(store, days=90, at=datetime(2026, 11, 22, tzinfo=UTC))
    assert [r.ci_id for r in due] == ["lic-oracle-db-ee", "contract-ms-ea-2025", "lic-m365-e3", "lic-sqlserver-ent"]
    assert due[0].days_left == 23
    contract = due[1]
    assert contract.notice_by is not None and contract.notice_by.isoformat() == "2026-10-03"  # notice already overdue
    assert contract.annual_value == 184000.0
