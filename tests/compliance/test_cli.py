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
