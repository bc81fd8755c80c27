"""The CLI as a user runs it: a subprocess, real files, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx


def cmdb(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CMDB_DB": str(tmp_path / "cli.db"), "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "cmdb", *args], check=False, env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_demo_then_search_show_history_diff_export(tmp_path: Path) -> None:
    demo = cmdb(tmp_path, "demo", "--size", "800", "--no-serve")
    assert "CIs by class" in demo.stdout and "stale" in demo.stdout

    found = cmdb(tmp_path, "search", "payments")
    assert "service:payments" in found.stdout

    shown = cmdb(tmp_path, "show", "service:payments")
    assert '"type": "service.business"' in shown.stdout and "DEPENDS_ON" in shown.stdout

    diffed = cmdb(tmp_path, "diff", "--since", "2000-01-01", "--json")
    summary = json.loads(diffed.stdout)
    assert summary["created"] and summary["lifecycle"]

    out = tmp_path / "estate.json"
    cmdb(tmp_path, "export", "--format", "json", "--output", str(out))
    exported = json.loads(out.read_text())
    assert len(exported["cis"]) > 700 and len(exported["relationships"]) > len(exported["cis"])
    assert {"id", "type", "class", "owner", "provenance", "first_seen"} <= set(exported["cis"][0])

    graphml = tmp_path / "estate.graphml"
    cmdb(tmp_path, "export", "--format", "graphml", "--output", str(graphml))
    graph = nx.read_graphml(graphml)
    assert graph.number_of_nodes() == len(exported["cis"])


def test_errors_are_one_line_with_a_hint_and_nonzero_exit(tmp_path: Path) -> None:
    missing = cmdb(tmp_path, "show", "no-such-ci", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("error: no CI with id 'no-such-ci'") and "hint:" in missing.stderr
    assert "Traceback" not in missing.stderr

    bad_time = cmdb(tmp_path, "diff", "--since", "last tuesday", check=False)
    assert bad_time.returncode == 1 and "not an ISO-8601 time" in bad_time.stderr

    bad_file = tmp_path / "x.toml"
    bad_file.write_text("")
    wrong = cmdb(tmp_path, "sync", "file", str(bad_file), check=False)
    assert wrong.returncode == 1 and "unknown file type .toml" in wrong.stderr

    broken_db = tmp_path / "not-a-db.db"
    broken_db.write_text("this is not sqlite" * 100)
    env = {**os.environ, "CMDB_DB": str(broken_db)}
    corrupt = subprocess.run([sys.executable, "-m", "cmdb", "stats"], check=False, env=env, capture_output=True, text=True, timeout=60)
    assert corrupt.returncode == 1 and "cannot open the CMDB database" in corrupt.stderr
    assert "Traceback" not in corrupt.stderr


def test_sync_file_reports_problems_and_json_summary(tmp_path: Path) -> None:
    estate = tmp_path / "estate.yaml"
    estate.write_text(
        "cis:\n"
        "  - {id: srv-1, type: hardware.server, name: db-host}\n"
        "  - {id: srv-2, type: hardware.sever}\n"
    )
    result = cmdb(tmp_path, "sync", "file", str(estate), "--json")
    summary = json.loads(result.stdout)
    assert summary["counts"]["created"] == 1 and summary["status"] == "partial"
    assert summary["problems"] == [f"{estate}:3 (srv-2): unknown CI type 'hardware.sever'"]


def test_a_sync_evaluates_findings_and_a_fix_resolves_them(tmp_path: Path) -> None:
    estate = tmp_path / "buckets.yaml"
    bucket = (
        "cis:\n"
        "  - {{id: 'arn:aws:s3:::payments-exports', type: aws.s3.bucket, name: payments-exports, owner: team-pay,\n"
        "     provider: aws, attributes: {{public: {public}, encrypted: true, block_public_access: {blocked}}}}}\n"
    )
    estate.write_text(bucket.format(public="true", blocked="false"))
    first = cmdb(tmp_path, "sync", "file", str(estate))
    assert "1 open (1 new" in first.stderr
    opened = json.loads(cmdb(tmp_path, "findings", "--format", "json").stdout)
    assert [f["ci_id"] for f in opened] == ["arn:aws:s3:::payments-exports"]

    estate.write_text(bucket.format(public="false", blocked="true"))
    second = cmdb(tmp_path, "sync", "file", str(estate))
    assert "1 resolved" in second.stderr
    everything = json.loads(cmdb(tmp_path, "findings", "--status", "all", "--format", "json").stdout)
    assert everything[0]["resolved_at"] and everything[0]["status"] == "resolved"
