"""The file connector: formats, file:line errors, scope per file."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmdb.connectors.files import FileConnector
from cmdb.errors import ConnectorError
from cmdb.store import CIFilter, SqliteStore
from cmdb.sync import SyncEngine

ESTATE = """\
scope: dc-lon1
defaults: {provider: onprem, environment: production}
cis:
  - id: srv-lon1-001
    type: hardware.server
    name: lon1-db-01
    owner: team-data
    tags: {rack: A3}
    attributes: {serial_number: CZ2341, cpu_cores: 32, warranty_end: "2027-03-31"}
  - {id: app-payments, type: app.application, name: payments}
  - {id: srv-lon1-002, type: hardware.server, attributes: {cpu_cores: many}}
  - {id: svc-pay, type: service.business, name: Payments, criticality: critical}
relationships:
  - {from: svc-pay, type: DEPENDS_ON, to: app-payments}
  - {from: app-payments, type: RUNS_ON, to: srv-lon1-001}
  - {from: app-payments, type: HOSTED_BY, to: srv-lon1-001}
"""


def test_yaml_estate_lands_with_bad_lines_reported_by_file_and_line(tmp_path: Path, engine: SyncEngine,
                                                                     store: SqliteStore) -> None:
    path = tmp_path / "estate.yaml"
    path.write_text(ESTATE)
    report = engine.run(FileConnector([path]))
    assert report.counts["created"] == 3
    assert report.counts["relationships_added"] == 2
    problems = [str(p) for p in report.problems]
    assert any(p.startswith(f"{path}:11") and "cpu_cores" in p for p in problems), problems
    assert any(p.startswith(f"{path}:16") and "HOSTED_BY" in p for p in problems), problems
    server = store.get_cis(["srv-lon1-001"])["srv-lon1-001"]
    assert server.scope == "dc-lon1" and server.environment == "production"
    assert server.attributes["cpu_cores"] == 32 and server.tags == {"rack": "A3"}
    assert report.run.scopes == {"dc-lon1": True}


def test_csv_and_jsonl(tmp_path: Path, engine: SyncEngine, store: SqliteStore) -> None:
    cis = tmp_path / "hardware.csv"
    cis.write_text(
        "id,type,name,owner,tag:rack,attr:cpu_cores,attr:memory_gb,aliases\n"
        "srv-1,hardware.server,db-1,team-data,A1,16,64.0,db-1.lon1.example.com;CZ1\n"
        "srv-2,hardware.server,db-2,team-data,A1,sixteen,64,\n"
        "sw-1,hardware.network_device,core-switch,,B2,,,\n"
    )
    rels = tmp_path / "links.jsonl"
    rels.write_text(
        '{"from": "sw-1", "type": "DEPENDS_ON", "to": "srv-1", "evidence": "patch panel"}\n'
        "{not json\n"
        '{"id": "app-x", "type": "app.application"}\n'
    )
    report = engine.run(FileConnector([cis, rels]))
    problems = [str(p) for p in report.problems]
    assert any(p.startswith(f"{cis}:3") and "attr:cpu_cores must be int" in p for p in problems), problems
    assert any(p.startswith(f"{rels}:2") and "not valid JSON" in p for p in problems), problems
    assert store.get_cis(["srv-1"])["srv-1"].attributes == {"cpu_cores": 16, "memory_gb": 64.0}
    assert store.resolve_aliases(["CZ1"]) == {"CZ1": "srv-1"}
    assert store.count_cis(CIFilter()) == 3


def test_removing_a_line_marks_its_ci_stale_but_an_unparseable_file_marks_nothing(tmp_path: Path, engine: SyncEngine,
                                                                                 store: SqliteStore) -> None:
    path = tmp_path / "estate.yaml"
    path.write_text(ESTATE)
    engine.run(FileConnector([path]))
    path.write_text(ESTATE.replace("  - {id: app-payments, type: app.application, name: payments}\n", ""))
    report = engine.run(FileConnector([path]))
    assert report.counts["stale"] == 1
    assert store.get_cis(["app-payments"])["app-payments"].lifecycle_state == "stale"
    path.write_text("cis:\n  - {id: a, type: [unclosed\n")
    broken = engine.run(FileConnector([path]))
    assert broken.counts["stale"] == 0
    assert any("not valid YAML" in str(p) and str(p).startswith(f"{path}:") for p in broken.problems)
    assert store.get_cis(["srv-lon1-001"])["srv-lon1-001"].lifecycle_state == "active"


def test_unknown_file_kind_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "estate.xml"
    path.write_text("<cis/>")
    with pytest.raises(ConnectorError, match="unknown file type .xml"):
        FileConnector([path])
