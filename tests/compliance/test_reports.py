"""Reports: counts, percentages, trends; the HTML report rendered by headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cmdb.cli import cli
from cmdb.compliance import evaluate
from cmdb.compliance.reports import ReportOptions, build, chart_boxes, render_html
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .conftest import Clock, Loader
from .estates import BAD, misconfigured_estate
from .png import read_png

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _history(store: SqliteStore, load: Loader, clock: Clock) -> None:
    """Three evaluations: the estate, then some fixes, then one regression."""
    estate = misconfigured_estate()
    load(estate)
    evaluate(store, at=clock())
    fixed = [dict(ci) for ci in estate]
    for ci in fixed:
        if ci["type"] == "aws.s3.bucket":
            ci["attributes"] = {**ci["attributes"], "public": False}
    load(fixed)
    evaluate(store, at=clock.advance(days=1))
    fixed = [ci for ci in fixed if "orders-public" not in str(ci["id"])]
    load(fixed)
    evaluate(store, at=clock.advance(days=1))


def test_compliance_report_counts_percentages_and_trend(store: SqliteStore, load: Loader, clock: Clock) -> None:
    _history(store, load, clock)
    report = build(store, "compliance", ReportOptions(at=clock()))
    sections = {s.title: s for s in report.sections}
    trend = sections["Evaluations over time"].rows
    n = len(BAD) + 1  # one CI breaks two rules
    assert [row["open"] for row in trend] == [n, n - 1, n - 2]
    assert trend[1]["resolved"] == 1 and trend[2]["resolved"] == 1
    rules = {row["rule_id"]: row for row in sections["Rules: applicable CIs, failing, pass rate"].rows}
    assert rules["aws.rds.publicly-accessible"]["applicable"] == 2 and rules["aws.rds.publicly-accessible"]["pass_pct"] == 100.0
    assert rules["network.open-admin-ports"]["failing"] == 4
    assert report.headline["open_findings"] == n - 2 and report.headline["open_critical"] == 1


def test_inventory_report_with_trend_and_warranties(store: SqliteStore, engine: SyncEngine, load: Loader, clock: Clock) -> None:
    load([{"id": "srv-x", "type": "hardware.server"}], name="early")
    clock.advance(days=2)
    load([{"id": f"vm-{i}", "type": "compute.vm", "environment": "production"} for i in range(3)], name="later")
    report = build(store, "inventory", ReportOptions(at=clock(), trend_days=5))
    sections = {s.title: s for s in report.sections}
    assert report.headline["cis"] == 4
    classes = {row["class"]: row for row in sections["CIs by class"].rows}
    assert classes["compute"]["count"] == 3 and classes["compute"]["pct"] == 75.0
    trend = sections["Inventory over the last 5 days"].rows
    assert [row["cis"] for row in trend][-3:] == [1, 1, 4]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def test_html_report_renders_real_charts_in_headless_chromium(store: SqliteStore, load: Loader, clock: Clock, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (CI installs it in .ci/run; locally: apt-get install chromium)")
    _history(store, load, clock)
    report = build(store, "compliance", ReportOptions(at=clock()))
    page = tmp_path / "compliance.html"
    page.write_text(render_html(store, "compliance", report=report), encoding="utf-8")
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html

    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shot.exists(), result.stderr[-2000:]
    pixels = read_png(shot)
    assert pixels.shape == (2000, 1280, 3)

    def colour(hex_code: str) -> np.ndarray:
        return np.array([int(hex_code[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)

    # Each chart's own colour must be painted, inside that chart's box; the boxes hold real drawings.
    expected = ["#8b0000", "#2f6db5", "#8e44ad", "#3a9e5f"]  # severity donut, failing bars, trend line, pass-rate bars
    boxes = chart_boxes(len(report.charts))
    assert len(boxes) == 4
    for (left, top, right, bottom), hex_code in zip(boxes, expected, strict=True):
        region = pixels[top + 32 : bottom - 2, left + 2 : right - 2]
        painted = (region < 245).any(axis=2).mean()
        assert painted > 0.03, f"chart at {left},{top} is blank ({painted:.1%} painted)"
        matches = (region == colour(hex_code)).all(axis=2).sum()
        assert matches > 150, f"chart at {left},{top} lacks its colour {hex_code} ({matches} pixels)"
        assert len(np.unique(region.reshape(-1, 3), axis=0)) > 8  # text, lines and fills, not one flat colour
    # The bars of chart 1 differ in length: a real bar chart, not a block.
    left, top, right, bottom = boxes[1]
    bar_rows = (pixels[top:bottom, left:right] == colour("#2f6db5")).all(axis=2).sum(axis=1)
    assert len({int(n) for n in bar_rows if n}) >= 2
    # And the page below the charts is not empty: the tables are drawn.
    assert (pixels[boxes[-1][3] + 40 : 1990, 20:1260] < 200).any(axis=2).mean() > 0.005


def test_report_cli_formats(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    run("sync", "file", str(EXAMPLES / "hardware.yaml"), str(EXAMPLES / "software.yaml"), str(EXAMPLES / "licences.yaml"))
    licences = json.loads(run("report", "licences", "--format", "json"))
    positions = {row["product"]: row for row in licences["sections"][0]["rows"]}
    assert positions["SQL Server Enterprise"]["status"] == "under-licensed"
    for kind in ("inventory", "compliance", "optimisation", "ownership", "cost", "quality", "contracts"):
        out = run("report", kind, "--format", "csv")
        assert out.count("\n") >= 2, kind
    target = tmp_path / "inventory.html"
    run("report", "inventory", "--format", "html", "--output", str(target))
    assert "<svg" in target.read_text(encoding="utf-8")
    assert "CIs by class" in run("report", "inventory")
