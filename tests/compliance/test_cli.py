"""The compliance commands as a user runs them (in-process click runner, real store file)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from cmdb.cli import cli

from .estates import BAD, misconfigured_estate


def run(db: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def db(tmp_path: Path) -> Path:
    estate = tmp_path / "estate.yaml"
    estate.write_text(yaml.safe_dump({"scope": "estate", "cis": misconfigured_estate()}), encoding="utf-8")
    path = tmp_path / "cli.db"
    run(path, "sync", "file", str(estate))
    return path


def test_findings_evaluate_filter_and_formats(db: Path) -> None:
    listed = json.loads(run(db, "findings", "--evaluate", "--format", "json").stdout)
    assert {(f["ci_id"], f["rule_id"]) for f in listed} >= set(BAD.items())
    high = json.loads(run(db, "findings", "--severity", "high", "--format", "json").stdout)
    assert high and all(f["severity"] in ("high", "critical") for f in high)
    one = run(db, "findings", "--rule", "storage.public-bucket", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(one)))
    assert {r["rule_id"] for r in rows} == {"storage.public-bucket"} and len(rows) == 2
    assert rows[0]["first_seen"] and rows[0]["status"] == "open"
    table = run(db, "findings", "--severity", "critical").stdout
    assert "1 open findings" in table and "critical" in table
    rules = run(db, "findings", "--list-rules", "--format", "json").stdout
    assert any(r["id"] == "network.open-admin-ports" for r in json.loads(rules))


def test_waive_a_finding_from_the_cli(db: Path) -> None:
    run(db, "findings", "--evaluate")
    key = "storage.public-bucket|arn:aws:s3:::acme-public-exports"
    run(db, "waiver", "add", key, "--justification", "public website assets", "--approver", "ciso@example.com", "--expires", "2099-01-01")
    waived = json.loads(run(db, "findings", "--status", "waived", "--format", "json").stdout)
    assert [f["key"] for f in waived] == [key] and waived[0]["waiver"]["approver"] == "ciso@example.com"
    listed = json.loads(run(db, "waiver", "list", "--format", "json").stdout)
    assert listed[0]["finding"] == key and listed[0]["state"] == "active"
    run(db, "waiver", "revoke", key)
    still_open = json.loads(run(db, "findings", "--rule", "storage.public-bucket", "--format", "json").stdout)
    assert key in {f["key"] for f in still_open}


def test_lifecycle_classify_and_optimise_commands(tmp_path: Path) -> None:
    estate = tmp_path / "estate.yaml"
    estate.write_text(
        yaml.safe_dump(
            {
                "scope": "dc",
                "cis": [
                    {"id": "vm-idle", "type": "compute.vm", "tags": {"squad": "team-ml"}},
                    {"id": "srv-1", "type": "hardware.server", "tags": {"Owner": "team-infra", "env": "prd"}},
                    {"id": "vol-free", "type": "aws.ec2.volume", "provider": "aws",
                     "attributes": {"state": "available", "size_gb": 100, "volume_type": "gp2"}},
                ],
                "relationships": [{"from": "vm-idle", "type": "RUNS_ON", "to": "srv-1"}],
            }
        ),
        encoding="utf-8",
    )
    db = tmp_path / "cli.db"
    run(db, "sync", "file", str(estate))
    changed = json.loads(run(db, "classify", "--format", "json").stdout)
    assert {"ci_id": "srv-1", "field": "environment", "before": "", "after": "production", "from": "tag:env"} in changed

    run(db, "lifecycle", "set", "srv-1", "retired", "--reason", "replaced, CHG-7", "--actor", "alice")
    history = json.loads(run(db, "lifecycle", "history", "srv-1", "--format", "json").stdout)
    assert history[-1]["after"] == "retired" and history[-1]["actor"] == "alice" and history[-1]["reason"] == "replaced, CHG-7"
    refused = CliRunner().invoke(cli, ["--db", str(db), "lifecycle", "set", "srv-1", "provisioned", "--reason", "x"])
    assert refused.exit_code != 0

    found = json.loads(run(db, "optimise", "--format", "json", "--mark").stdout)
    assert [(r["kind"], r["ci_id"], r["monthly_cost"]) for r in found] == [("unattached-volume", "vol-free", 10.0)]
    retired = json.loads(run(db, "findings", "--evaluate", "--rule", "governance.retired-still-referenced", "--format", "json").stdout)
    assert [f["ci_id"] for f in retired] == ["srv-1"]
