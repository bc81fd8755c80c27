"""The compliance part's commands: findings, waivers, lifecycle, classification, reports.

Registered in ``cmdb.cli.TOP_COMMANDS``; each command is thin: it parses,
calls one function of this package and prints the result.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from cmdb.cli import App, pass_app
from cmdb.compliance.findings import Finding, evaluate, list_findings
from cmdb.compliance.rules import SEVERITIES, load_rules
from cmdb.model import parse_time

__all__ = ["classify_command", "findings", "lifecycle", "optimise", "report", "waiver"]

log = logging.getLogger(__name__)
out = Console()
err = Console(stderr=True)

FORMATS = ("table", "json", "csv")


def _actor(given: str | None) -> str:
    return given or os.environ.get("USER") or os.environ.get("USERNAME") or "cli"


def emit(rows: Sequence[dict[str, Any]], fmt: str, *, title: str = "", columns: Sequence[str] | None = None) -> None:
    """Print ``rows`` as a rich table, JSON or CSV (only ``columns`` in table and CSV)."""
    if fmt == "json":
        sys.stdout.write(orjson.dumps(list(rows), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
        return
    columns = list(columns or (rows[0].keys() if rows else []))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
        sys.stdout.write(buffer.getvalue())
        return
    table = Table(title=title or None)
    for index, column in enumerate(columns):
        table.add_column(column.replace("_", " "), no_wrap=index == 0, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    out.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _finding_row(finding: Finding) -> dict[str, Any]:
    row = finding.as_dict()
    row["expires"] = finding.waiver.expires.isoformat() if finding.waiver else None
    return row


FINDING_COLUMNS = ("severity", "rule_id", "ci_id", "detail", "status", "first_seen", "last_seen", "resolved_at")


def _rule_dirs(rules_dir: tuple[Path, ...]) -> list[Path]:
    dirs = list(rules_dir)
    if not dirs and os.environ.get("CMDB_RULES_DIR"):
        dirs = [Path(p) for p in os.environ["CMDB_RULES_DIR"].split(os.pathsep) if p]
    return dirs


def run_evaluation(app: App, rule_ids: Sequence[str] = (), rules_dir: Sequence[Path] = ()) -> None:
    """Evaluate, tell the webhooks about new high-severity findings, and say what happened."""
    from cmdb.compliance.webhooks import notify_configured

    report = evaluate(app.store, load_rules(rules_dir), rule_ids=list(rule_ids) or None)
    delivered = notify_configured(report)
    summary = report.summary()
    err.print(
        f"evaluated {summary['rules']} rules over {summary['cis']:,} CIs: {summary['open']} open "
        f"({summary['new']} new, {summary['reopened']} reopened, {summary['reraised']} re-raised), "
        f"{summary['resolved']} resolved, {summary['waived']} waived"
        + (f"; {delivered} webhook deliveries" if delivered else ""),
        highlight=False,
    )


@click.command()
@click.option("--evaluate", "do_evaluate", is_flag=True, help="Evaluate the rules first (and fire webhooks).")
@click.option("--severity", type=click.Choice(SEVERITIES), help="Only findings of this severity or worse.")
@click.option("--rule", "rule_ids", multiple=True, help="Only this rule (repeatable).")
@click.option(
    "--status",
    type=click.Choice(["open", "waived", "resolved", "all"]),
    default="open",
    show_default=True,
    help="Which findings to list.",
)
@click.option("--ci", "ci_ids", multiple=True, help="Only findings of this CI (repeatable).")
@click.option(
    "--rules-dir",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Extra rule files or folders [env CMDB_RULES_DIR].",
)
@click.option("--list-rules", is_flag=True, help="List the rules instead of findings.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@pass_app
def findings(
    app: App,
    do_evaluate: bool,
    severity: str | None,
    rule_ids: tuple[str, ...],
    status: str,
    ci_ids: tuple[str, ...],
    rules_dir: tuple[Path, ...],
    list_rules: bool,
    fmt: str,
) -> None:
    """Compliance findings: what breaks a rule, since when, and under which control."""
    dirs = _rule_dirs(rules_dir)
    if list_rules:
        rows = [
            {
                "id": r.id,
                "version": r.version,
                "severity": r.severity,
                "title": r.title,
                "applies_to": list(r.applies_to),
                "controls": [str(c) for c in r.controls],
            }
            for r in load_rules(dirs)
        ]
        emit(rows, fmt, title="rules", columns=("id", "version", "severity", "title", "controls"))
        return
    if do_evaluate:
        run_evaluation(app, rule_ids, dirs)
    found = list_findings(
        app.store,
        statuses=(status,),
        min_severity=severity,
        rule_ids=rule_ids or None,
        ci_ids=ci_ids or None,
    )
    emit([_finding_row(f) for f in found], fmt, title=f"{len(found)} {status} findings", columns=FINDING_COLUMNS)


# --- waivers ----------------------------------------------------------------
@click.group()
def waiver() -> None:
    """Accept a finding's risk for a while: waive, list, revoke."""


@waiver.command("add")
@click.argument("finding_key")
@click.option("--justification", required=True, help="Why the risk is accepted.")
@click.option("--approver", required=True, help="Who approved it.")
@click.option("--expires", required=True, help="When the waiver ends (ISO-8601), e.g. 2027-03-31.")
@click.option("--actor", help="Who records it [default: $USER].")
@pass_app
def waiver_add(app: App, finding_key: str, justification: str, approver: str, expires: str, actor: str | None) -> None:
    """Waive the finding FINDING_KEY (RULE_ID|CI_ID, as `cmdb findings --format json` shows)."""
    from cmdb.compliance.waivers import waive

    made = waive(app.store, finding_key, justification=justification, approver=approver, expires=parse_time(expires), actor=_actor(actor))
    err.print(f"waived {finding_key} until {made.expires.isoformat()} (approved by {made.approver})", highlight=False)


@waiver.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired and revoked waivers.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@pass_app
def waiver_list(app: App, show_all: bool, fmt: str) -> None:
    """Waivers, with whether each still holds."""
    from cmdb.compliance.waivers import list_waivers

    rows = [w | {"state": state} for w, state in ((w.to_doc(), s) for w, s in list_waivers(app.store, include_inactive=show_all))]
    emit(rows, fmt, title="waivers", columns=("finding", "state", "approver", "expires", "justification", "created_by"))


@waiver.command("revoke")
@click.argument("finding_key")
@click.option("--actor", help="Who revokes it [default: $USER].")
@pass_app
def waiver_revoke(app: App, finding_key: str, actor: str | None) -> None:
    """End a waiver now: the finding is open again at the next evaluation."""
    from cmdb.compliance.waivers import revoke

    revoke(app.store, finding_key, actor=_actor(actor))
    err.print(f"revoked the waiver of {finding_key}", highlight=False)


# --- lifecycle --------------------------------------------------------------
@click.group()
def lifecycle() -> None:
    """Lifecycle states: set them with a reason, see their history."""


@lifecycle.command("set")
@click.argument("ci_id")
@click.argument("state")
@click.option("--reason", required=True, help="Why (a ticket, a decision); kept with the change.")
@click.option("--actor", help="Who [default: $USER].")
@click.option("--force", is_flag=True, help="Allow a transition the lifecycle does not expect.")
@pass_app
def lifecycle_set(app: App, ci_id: str, state: str, reason: str, actor: str | None, force: bool) -> None:
    """Move CI_ID to STATE (planned, provisioned, active, optimise, retired, disposed)."""
    from cmdb.compliance.lifecycle import set_state

    transition = set_state(app.engine(), ci_id, state, reason=reason, actor=_actor(actor), force=force)
    err.print(f"{ci_id}: {transition.before} -> {transition.after} ({reason})", highlight=False)


@lifecycle.command("history")
@click.argument("ci_id")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@pass_app
def lifecycle_history(app: App, ci_id: str, fmt: str) -> None:
    """Every lifecycle transition of CI_ID: when, from, to, who and why."""
    from cmdb.compliance.lifecycle import transitions

    rows = [t.as_dict() for t in transitions(app.store, ci_id)]
    emit(rows, fmt, title=f"lifecycle of {ci_id}", columns=("at", "before", "after", "actor", "reason"))


@lifecycle.command("warranties")
@click.option("--days", default=90, show_default=True, help="Warranties ending within this many days.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@pass_app
def lifecycle_warranties(app: App, days: int, fmt: str) -> None:
    """Hand-kept hardware whose warranty ends soon (or has ended)."""
    from cmdb.compliance.lifecycle import warranties_ending

    rows = warranties_ending(app.store, days=days)
    emit(rows, fmt, title=f"warranties ending within {days} days", columns=("id", "type", "serial_number", "model", "assigned_user", "location", "warranty_end", "days_left"))


# --- classification ---------------------------------------------------------
@click.command("classify")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Classification mapping file [env CMDB_CLASSIFICATION].")
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@pass_app
def classify_command(app: App, mapping: Path | None, dry_run: bool, fmt: str) -> None:
    """Derive owner, cost centre, business unit, environment, criticality from tags; inherit the rest."""
    from cmdb.compliance.classification import classify, load_mapping

    result = classify(app.store, app.engine(), load_mapping(mapping), dry_run=dry_run)
    rows = [
        {"ci_id": ci_id, "field": name, "before": before, "after": after, "from": why}
        for ci_id, fields in sorted(result.changed.items())
        for name, (before, after, why) in sorted(fields.items())
    ]
    emit(rows, fmt, title=("would change" if dry_run else "changed"), columns=("ci_id", "field", "before", "after", "from"))
    err.print(f"{result.examined:,} CIs examined, {len(result.changed):,} {'would change' if dry_run else 'changed'}")


# --- reports ----------------------------------------------------------------
REPORTS = ("inventory", "compliance", "optimisation", "licences", "ownership", "cost", "quality", "contracts")


@click.command()
@click.argument("kind", type=click.Choice(REPORTS))
@click.option("--format", "fmt", type=click.Choice([*FORMATS, "html"]), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write (html: default <kind>-report.html).")
@click.option("--prices", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Price table overriding the bundled one [env CMDB_PRICES].")
@click.option("--days", default=90, show_default=True, help="Horizon for renewals and warranties.")
@click.option("--cloudwatch", is_flag=True, help="Optimisation: read EC2 CPU from CloudWatch (AWS credentials from the SDK chain).")
@pass_app
def report(app: App, kind: str, fmt: str, output: Path | None, prices: Path | None, days: int, cloudwatch: bool) -> None:
    """Reports: inventory, compliance, optimisation, licences, ownership, cost, quality, contracts."""
    from cmdb.compliance import reports
    from cmdb.compliance.metrics import CloudWatchCpu

    options = reports.ReportOptions(prices=prices, days=days, cpu=[CloudWatchCpu()] if cloudwatch else [])
    if fmt == "html":
        html = reports.render_html(app.store, kind, options)
        target = output or Path(f"{kind}-report.html")
        target.write_text(html, encoding="utf-8")
        err.print(f"wrote {target}", highlight=False)
        return
    built = reports.build(app.store, kind, options)
    if fmt == "json":
        text = orjson.dumps(built.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
        if output:
            output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return
    if fmt == "table":
        emit([{"measure": k, "value": v} for k, v in built.headline.items()], fmt, title=built.title)
    for section in built.sections:
        emit(section.rows, fmt, title=section.title, columns=section.columns)


# --- optimisation -------------------------------------------------------------
@click.command("optimise")
@click.option("--cloudwatch", is_flag=True, help="Read EC2 CPU from CloudWatch (AWS credentials from the SDK chain).")
@click.option("--cpu-threshold", default=5.0, show_default=True, help="Idle below this daily average CPU (%).")
@click.option("--idle-days", default=14, show_default=True, help="Days of evidence needed to call a machine idle.")
@click.option("--snapshot-days", default=90, show_default=True, help="Snapshots older than this are stale.")
@click.option("--prices", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Price table overriding the bundled one [env CMDB_PRICES].")
@click.option("--mark", is_flag=True, help="Move active CIs with a recommendation to the 'optimise' lifecycle state.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@pass_app
def optimise(
    app: App, cloudwatch: bool, cpu_threshold: float, idle_days: int, snapshot_days: int, prices: Path | None, mark: bool, fmt: str
) -> None:
    """Idle compute, unattached volumes, unused IPs, empty load balancers, stale snapshots, with monthly cost."""
    from cmdb.compliance.cost import load_prices
    from cmdb.compliance.metrics import CloudWatchCpu
    from cmdb.compliance.optimisation import OptimisationSettings, mark_for_optimisation, recommend

    settings = OptimisationSettings(cpu_threshold, idle_days, snapshot_days)
    found = recommend(app.store, settings=settings, cpu=[CloudWatchCpu()] if cloudwatch else [], prices=load_prices(prices))
    emit([r.as_dict() for r in found], fmt, title=f"{len(found)} recommendations", columns=("kind", "ci_id", "owner", "detail", "monthly_cost"))
    saving = sum(r.monthly_cost or 0.0 for r in found)
    err.print(f"estimated saving: {saving:,.2f} a month", highlight=False)
    if mark:
        marked = mark_for_optimisation(app.engine(), found)
        err.print(f"{marked} CIs moved to the 'optimise' lifecycle state", highlight=False)
