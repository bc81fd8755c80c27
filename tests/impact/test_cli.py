"""The impact commands, run in-process against a real store file."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cmdb.cli import cli, main
from cmdb.model import now
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine
from tests.impact.helpers import build, ci

ESTATE = [
    ci("shop", "service.business", name="Online Shop", owner="shop-lead", environment="production", criticality="high"),
    ci("pay", "service.business", name="Payments", owner="pay-lead", environment="production", criticality="critical"),
    ci("web", "app.application", owner="shop-team", environment="production"),
    ci("api", "app.application", owner="pay-team", environment="production"),
    ci("lb", "aws.elbv2.load_balancer", owner="ops", environment="production"),
    ci("vm1", "compute.vm", owner="ops", environment="production"),
    ci("vm2", "compute.vm", owner="ops", environment="production"),
    ci("db", "database.instance", owner="dba", environment="production"),
    ci("team", "team.team"),
]
EDGES = [
    ("shop", "DEPENDS_ON", "web"),
    ("web", "DEPENDS_ON", "lb"),
    ("lb", "ROUTES_TO", "vm1"),
    ("lb", "ROUTES_TO", "vm2"),
    ("web", "DEPENDS_ON", "db"),
    ("pay", "DEPENDS_ON", "api"),
    ("api", "DEPENDS_ON", "db"),
    ("db", "OWNED_BY", "team"),
]

Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    db = tmp_path / "cmdb.db"
    store = SqliteStore(db)
    build(SyncEngine(store), ESTATE, EDGES)
    store.close()

    def invoke(*args: str, env: dict[str, str] | None = None, code: int = 0) -> Result:
        result = CliRunner().invoke(cli, ["--db", str(db), *args], env=env, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return invoke


def test_impact_table_and_json(run: Run) -> None:
    table = run("impact", "db")
    assert "Payments" in table.output and "down" in table.output
    data = json.loads(run("impact", "db", "--format", "json").output)
    assert data["services"] == ["pay", "shop"]
    states = {r["id"]: r["state"] for r in data["reached"]}
    assert states == {"api": "down", "web": "down", "pay": "down", "shop": "down"}
    vm = json.loads(run("impact", "vm1", "--format", "json").output)
    assert {r["id"]: r["state"] for r in vm["reached"]} == {"lb": "degraded", "web": "degraded", "shop": "degraded"}
    deps = json.loads(run("impact", "shop", "--dependencies", "--depth", "2", "--format", "json").output)
    assert [r["id"] for r in deps["reached"]] == ["web", "db", "lb"]


def test_change_risk_from_the_command_line(run: Run) -> None:
    at = (now() + timedelta(days=30)).isoformat()
    data = json.loads(run("impact", "db", "--change", "delete", "--at", at, "--format", "json").output)
    assert data["level"] in ("high", "critical")
    assert [f["name"] for f in data["factors"]][:2] == ["business_services", "single_point_of_failure"]
    assert (
        data["score"]
        == json.loads(run("impact", "db", "--change", "delete", "--at", at, "--format", "json").output)["score"]
    )
    table = run("impact", "db", "--change", "delete", "--at", at)
    assert "paths carrying the risk" in table.output


def test_pictures(run: Run, tmp_path: Path) -> None:
    dot = run("impact", "vm1", "--format", "dot").output
    assert dot.startswith("digraph blast_radius {")
    assert '"lb" -> "vm1" [label="ROUTES_TO"];' in dot
    assert "doubleoctagon" in dot  # the service
    svg = run("impact", "db", "--format", "svg").output
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    states = {g.get("data-id"): g.get("class") for g in root.iter("{http://www.w3.org/2000/svg}g")}
    assert states["pay"] == "ci state-down service" and states["db"] == "ci state-start"
    page = tmp_path / "radius.html"
    run("impact", "db", "--format", "html", "-o", str(page))
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "<script>" in text
    assert "src=" not in text and "href=" not in text  # self-contained


def test_planned_changes_end_to_end(run: Run, tmp_path: Path) -> None:
    start = now() + timedelta(days=2)
    end = start + timedelta(hours=2)
    blackouts = tmp_path / "blackouts.yaml"
    blackouts.write_text(
        f"blackouts:\n  - name: freeze\n    start: {start.isoformat()}\n    end: {end.isoformat()}\n    services: [pay]\n",
        encoding="utf-8",
    )
    first = json.loads(
        run(
            "change",
            "plan",
            "db",
            "--type",
            "patch",
            "--start",
            start.isoformat(),
            "--end",
            end.isoformat(),
            "--requester",
            "alice",
            "--json",
        ).output
    )
    assert first["key"] == "CHG-000001" and first["services"] == ["pay", "shop"] and first["conflicts"] == []
    second = run(
        "change",
        "plan",
        "api",
        "--type",
        "restart",
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--requester",
        "bob",
        env={"CMDB_BLACKOUTS": str(blackouts)},
    )
    assert "CHG-000002" in second.output and "overlap" in second.output and "freeze" in second.output
    listing = run("change", "list")
    assert "CHG-000001" in listing.output and "CHG-000002" in listing.output
    shown = json.loads(run("change", "show", "CHG-000002", "--json").output)
    assert shown["risk"]["explanation"].startswith("restart of api")
    assert shown["recorded_changes"] == []
    checked = json.loads(run("change", "check", "--json", env={"CMDB_BLACKOUTS": str(blackouts)}).output)
    assert [c["kind"] for c in checked["CHG-000001"]] == ["overlap", "blackout"]
    run("change", "check", "--fail-on-conflict", code=1)


def test_incident_and_whatif(run: Run) -> None:
    incident = json.loads(run("incident", "db", "--json").output)
    assert [s["id"] for s in incident["impact"]["services"]] == ["pay", "shop"]
    assert {n["owner"] for n in incident["impact"]["notify"]} == {
        "dba",
        "pay-lead",
        "pay-team",
        "shop-lead",
        "shop-team",
    }
    causes = json.loads(run("incident", "--service", "pay", "--service", "shop", "--json").output)
    assert causes["root_causes"][0]["id"] == "db"  # shared by both, and recently created
    gone = json.loads(run("whatif", "--remove", "vm1", "--remove", "vm2", "--json").output)
    assert [s["id"] for s in gone["services_down"]] == ["shop"]
    cut = json.loads(run("whatif", "--cut", "api,DEPENDS_ON,db", "--json").output)
    assert [s["id"] for s in cut["services_down"]] == ["pay"]
    spof = json.loads(run("whatif", "--spof", "shop", "--json").output)
    assert [p["id"] for p in spof] == ["web", "db", "lb"]


def test_errors_are_one_line_with_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "empty.db"
    with pytest.raises(SystemExit) as exit_info:
        main(["--db", str(db), "impact", "nope"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "no CI with id 'nope'" in err and "hint:" in err and "Traceback" not in err


def test_blast_radius_since_and_as_of(run: Run) -> None:
    before = (now() - timedelta(days=1)).isoformat()
    diff = json.loads(run("impact", "db", "--since", before, "--format", "json").output)
    assert diff["services_added"] == ["pay", "shop"] and diff["removed"] == []
    assert "2 more services depend on db" in diff["summary"]
    text = run("impact", "db", "--since", before).output
    assert "services joined: pay, shop" in text
    later = json.loads(run("impact", "db", "--as-of", now().isoformat(), "--format", "json").output)
    assert later["services"] == ["pay", "shop"]
