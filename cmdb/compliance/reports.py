"""Reports: inventory, compliance, optimisation, licences, ownership, cost, quality, contracts.

:func:`build` gathers one report as headline numbers, tables (sections) and
charts; the CLI prints it as a table, CSV or JSON, and :func:`render_html`
makes one self-contained HTML page of it with inline SVG charts (no scripts,
no external resources). Trends come from history: the change records
(inventory) and the stored evaluation summaries (compliance).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from cmdb.compliance import svg
from cmdb.compliance.errors import ComplianceError
from cmdb.compliance.findings import EVALUATION_KIND, list_findings
from cmdb.compliance.metrics import CpuSource
from cmdb.compliance.rules import SEVERITIES, load_rules
from cmdb.model import now, parse_time
from cmdb.store.base import ChangeFilter, CIFilter, Store
from cmdb.vocabulary import vocabulary

__all__ = [
    "CHART_GAP",
    "CHART_HEIGHT",
    "CHART_WIDTH",
    "HEADER_HEIGHT",
    "KINDS",
    "PAGE_MARGIN",
    "Chart",
    "Report",
    "ReportOptions",
    "Section",
    "build",
    "chart_boxes",
    "render_html",
]

log = logging.getLogger(__name__)

KINDS = ("inventory", "compliance", "optimisation", "licences", "ownership", "cost", "quality", "contracts")
_LIVE = ("provisioned", "active", "optimise")

# Fixed layout, so that a screenshot's chart regions are known (see chart_boxes).
PAGE_MARGIN = 20
HEADER_HEIGHT = 150
CHART_WIDTH = 600
CHART_HEIGHT = 330  # title 30 + svg 280 + padding
CHART_GAP = 20


@dataclass(slots=True)
class ReportOptions:
    prices: Path | None = None
    at: datetime | None = None
    days: int = 90  # renewals, warranties
    trend_days: int = 30
    cpu: Sequence[CpuSource] = ()
    entitlements: list[Path] = field(default_factory=list)


@dataclass(slots=True)
class Section:
    title: str
    columns: Sequence[str]
    rows: list[dict[str, Any]]
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": list(self.columns), "rows": self.rows, "note": self.note}


@dataclass(slots=True)
class Chart:
    kind: str  # bar, line, donut
    title: str
    data: list[tuple[str, float]]
    colour: str = svg.PALETTE[0]
    colours: dict[str, str] | None = None
    unit: str = ""

    def svg(self) -> str:
        if self.kind == "line":
            return svg.line_chart(self.data, colour=self.colour)
        if self.kind == "donut":
            return svg.donut_chart(self.data, colours=self.colours)
        return svg.bar_chart(self.data, colour=self.colour, unit=self.unit)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "data": [{"label": k, "value": v} for k, v in self.data]}


@dataclass(slots=True)
class Report:
    kind: str
    title: str
    generated_at: datetime
    location: str
    headline: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "generated_at": self.generated_at.isoformat(),
            "store": self.location,
            "headline": self.headline,
            "sections": [s.as_dict() for s in self.sections],
            "charts": [c.as_dict() for c in self.charts],
        }


def _pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _counted(counts: dict[str, int], total: int, name: str) -> list[dict[str, Any]]:
    return [
        {name: key or "(none)", "count": value, "pct": _pct(value, total)}
        for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


# --- inventory --------------------------------------------------------------
def _inventory(store: Store, options: ReportOptions, report: Report) -> None:
    at = options.at or now()
    by: dict[str, dict[str, int]] = {"class": {}, "provider": {}, "lifecycle_state": {}, "environment": {}, "type": {}}
    total = 0
    hardware = 0
    for ci in store.iter_cis():
        total += 1
        values = {"class": ci.ci_class, "provider": ci.provider, "lifecycle_state": ci.lifecycle_state, "environment": ci.environment, "type": ci.type}
        for dimension, value in values.items():
            by[dimension][value] = by[dimension].get(value, 0) + 1
        hardware += ci.ci_class == "hardware"
    live = sum(v for k, v in by["lifecycle_state"].items() if k in _LIVE)
    stats = store.stats()
    report.headline = {"cis": total, "live": live, "live_pct": _pct(live, total), "relationships": stats.relationships, "hardware": hardware}
    # Trend: CIs known at the end of each day = total now - created since; plus gone per day.
    since = at - timedelta(days=options.trend_days)
    created_per_day: dict[str, int] = {}
    gone_per_day: dict[str, int] = {}
    for change in store.iter_changes(ChangeFilter(kinds=("ci.created", "ci.lifecycle"), since=since)):
        day = change.at.date().isoformat()
        if change.kind == "ci.created":
            created_per_day[day] = created_per_day.get(day, 0) + 1
        elif change.after in ("stale", "retired", "disposed") and not change.rel_type:
            gone_per_day[day] = gone_per_day.get(day, 0) + 1
    trend_rows: list[dict[str, Any]] = []
    known = total
    days = [(at - timedelta(days=d)).date().isoformat() for d in range(options.trend_days - 1, -1, -1)]
    later_created = 0
    for day in reversed(days):
        trend_rows.append({"day": day, "cis": known - later_created, "created": created_per_day.get(day, 0), "gone": gone_per_day.get(day, 0)})
        later_created += created_per_day.get(day, 0)
    trend_rows.reverse()
    active_days = [r for r in trend_rows if r["created"] or r["gone"]] or trend_rows[-1:]
    first = trend_rows.index(active_days[0]) if active_days else 0
    shown = trend_rows[max(0, first - 1) :]
    report.sections += [
        Section("CIs by class", ("class", "count", "pct"), _counted(by["class"], total, "class")),
        Section("CIs by provider", ("provider", "count", "pct"), _counted(by["provider"], total, "provider")),
        Section("CIs by lifecycle state", ("lifecycle_state", "count", "pct"), _counted(by["lifecycle_state"], total, "lifecycle_state")),
        Section("CIs by environment", ("environment", "count", "pct"), _counted(by["environment"], total, "environment")),
        Section("CIs by type (top 25)", ("type", "count", "pct"), _counted(by["type"], total, "type")[:25]),
        Section(f"Inventory over the last {options.trend_days} days", ("day", "cis", "created", "gone"), shown),
    ]
    from cmdb.compliance.lifecycle import warranties_ending

    warranties = warranties_ending(store, options.days, at)
    report.sections.append(
        Section(f"Warranties ending within {options.days} days", ("id", "model", "serial_number", "assigned_user", "warranty_end", "days_left"), warranties)
    )
    report.charts += [
        Chart("bar", "CIs by class", [(r["class"], r["count"]) for r in _counted(by["class"], total, "class")], svg.PALETTE[0]),
        Chart("donut", "CIs by provider", [(r["provider"], r["count"]) for r in _counted(by["provider"], total, "provider")]),
        Chart("line", "CIs known over time", [(r["day"][5:], r["cis"]) for r in shown], svg.PALETTE[3]),
        Chart("bar", "CIs by lifecycle state", [(r["lifecycle_state"], r["count"]) for r in _counted(by["lifecycle_state"], total, "lifecycle_state")], svg.PALETTE[2]),
    ]


# --- compliance -------------------------------------------------------------
def _compliance(store: Store, options: ReportOptions, report: Report) -> None:
    at = options.at or now()
    found = list_findings(store, statuses=("open", "waived"), at=at)
    open_ = [f for f in found if f.status == "open"]
    by_severity = {s: sum(1 for f in open_ if f.severity == s) for s in reversed(SEVERITIES)}
    failing_cis = len({f.ci_id for f in open_})
    rows: list[dict[str, Any]] = []
    for rule in load_rules():
        applicable = store.count_cis(CIFilter(types=tuple(sorted(rule.types())), lifecycle_states=rule.states))
        failing = len({f.ci_id for f in open_ if f.rule_id == rule.id})
        rows.append(
            {
                "rule_id": rule.id,
                "severity": rule.severity,
                "title": rule.title,
                "controls": ", ".join(str(c) for c in rule.controls),
                "applicable": applicable,
                "failing": failing,
                "pass_pct": _pct(applicable - failing, applicable) if applicable else None,
            }
        )
    rows.sort(key=lambda r: (-r["failing"], r["rule_id"]))
    evaluations = store.list_documents(EVALUATION_KIND)[-options.trend_days :]
    trend = [
        {
            "at": doc.get("at", key),
            "open": doc.get("open", 0),
            **{s: doc.get("open_by_severity", {}).get(s, 0) for s in ("critical", "high", "medium", "low")},
            "new": doc.get("new", 0),
            "resolved": doc.get("resolved", 0),
        }
        for key, doc in evaluations
    ]
    evaluated = store.count_cis(CIFilter(lifecycle_states=_LIVE))
    report.headline = {
        "open_findings": len(open_),
        "waived": len(found) - len(open_),
        "cis_with_findings": failing_cis,
        "cis_with_findings_pct": _pct(failing_cis, evaluated),
        **{f"open_{k}": v for k, v in by_severity.items() if k in ("critical", "high")},
    }
    report.sections += [
        Section("Open findings by severity", ("severity", "count", "pct"), [{"severity": k, "count": v, "pct": _pct(v, len(open_))} for k, v in by_severity.items()]),
        Section("Rules: applicable CIs, failing, pass rate", ("rule_id", "severity", "applicable", "failing", "pass_pct", "controls"), rows),
        Section("Open findings (most severe first)", ("severity", "rule_id", "ci_id", "owner", "detail", "first_seen"), [f.as_dict() for f in open_[:500]]),
        Section("Waived findings", ("rule_id", "ci_id", "expires", "approver"), [
            {"rule_id": f.rule_id, "ci_id": f.ci_id, "expires": f.waiver.expires.isoformat() if f.waiver else "", "approver": f.waiver.approver if f.waiver else ""}
            for f in found if f.status == "waived"
        ]),
        Section("Evaluations over time", ("at", "open", "critical", "high", "medium", "low", "new", "resolved"), trend),
    ]
    report.charts += [
        Chart("donut", "Open findings by severity", [(k, v) for k, v in by_severity.items()], colours=svg.SEVERITY_COLOURS),
        Chart("bar", "Failing CIs by rule", [(r["rule_id"], r["failing"]) for r in rows if r["failing"]], svg.PALETTE[0]),
        Chart("line", "Open findings over time", [(parse_time(r["at"]).strftime("%m-%d %H:%M"), r["open"]) for r in trend], svg.PALETTE[3]),
        Chart("bar", "Pass rate by rule (%)", [(r["rule_id"], r["pass_pct"]) for r in rows if r["pass_pct"] is not None][:10], svg.PALETTE[2], unit="%"),
    ]


# --- optimisation -----------------------------------------------------------
def _optimisation(store: Store, options: ReportOptions, report: Report) -> None:
    from cmdb.compliance.cost import load_prices
    from cmdb.compliance.optimisation import recommend

    found = recommend(store, cpu=options.cpu, prices=load_prices(options.prices), at=options.at)
    by_kind: dict[str, tuple[int, float]] = {}
    for rec in found:
        count, saving = by_kind.get(rec.kind, (0, 0.0))
        by_kind[rec.kind] = (count + 1, saving + (rec.monthly_cost or 0.0))
    total = round(sum(s for _, s in by_kind.values()), 2)
    report.headline = {"recommendations": len(found), "monthly_saving": total, "priced": sum(1 for r in found if r.monthly_cost is not None)}
    report.sections += [
        Section("Recommendations by kind", ("kind", "count", "monthly_saving"), [
            {"kind": k, "count": c, "monthly_saving": round(s, 2)} for k, (c, s) in sorted(by_kind.items(), key=lambda kv: -kv[1][1])
        ]),
        Section("Recommendations (costliest first)", ("kind", "ci_id", "owner", "detail", "monthly_cost"), [r.as_dict() for r in found]),
    ]
    report.charts += [
        Chart("bar", "Estimated monthly saving by kind", [(k, round(s, 2)) for k, (_, s) in sorted(by_kind.items(), key=lambda kv: -kv[1][1])], svg.PALETTE[1]),
        Chart("donut", "Recommendations by kind", [(k, c) for k, (c, _) in by_kind.items()]),
    ]


# --- licences ---------------------------------------------------------------
def _licences(store: Store, options: ReportOptions, report: Report) -> None:
    from cmdb.compliance.licences import licence_positions, renewals

    positions = licence_positions(store)
    due = renewals(store, options.days, options.at)
    statuses: dict[str, int] = {}
    for p in positions:
        statuses[p.status] = statuses.get(p.status, 0) + 1
    report.headline = {"products": len(positions), **{k.replace("-", "_"): v for k, v in statuses.items()}, "renewals_due": len(due)}
    report.sections += [
        Section("Licence position per product", ("product", "vendor", "metric", "entitled", "consumed", "delta", "status", "utilisation_pct"), [p.as_dict() for p in positions]),
        Section(f"Renewals within {options.days} days", ("ci_id", "type", "name", "vendor", "renews", "days_left", "notice_by", "annual_value"), [r.as_dict() for r in due]),
    ]
    report.charts += [
        Chart("bar", "Shortfall by product (licences missing)", [(p.product, -p.delta) for p in positions if p.status == "under-licensed"], svg.PALETTE[4]),
        Chart("donut", "Products by position", list(statuses.items()),
              colours={"under-licensed": "#c0392b", "over-licensed": "#e07b39", "compliant": "#3a9e5f", "unlicensed": "#7f8c8d"}),
    ]


# --- ownership, cost, quality, contracts --------------------------------------
def _ownership(store: Store, options: ReportOptions, report: Report) -> None:
    from cmdb.compliance.classification import ownership_report

    rows = [r.as_dict() for r in ownership_report(store)]
    total = sum(r["cis"] for r in rows)
    ownerless = sum(r["ownerless"] for r in rows)
    report.headline = {"cis": total, "ownerless": ownerless, "ownerless_pct": _pct(ownerless, total), "untagged": sum(r["untagged"] for r in rows)}
    report.sections.append(Section("Untagged and ownerless CIs by provider and scope", ("provider", "scope", "cis", "untagged", "untagged_pct", "ownerless", "ownerless_pct", "unclassified_pct"), rows))
    by_provider: dict[str, int] = {}
    for r in rows:
        by_provider[r["provider"]] = by_provider.get(r["provider"], 0) + r["ownerless"]
    report.charts.append(Chart("bar", "Ownerless CIs by provider", sorted(by_provider.items(), key=lambda kv: -kv[1]), svg.PALETTE[1]))


def _cost(store: Store, options: ReportOptions, report: Report) -> None:
    from cmdb.compliance.cost import DIMENSIONS, load_prices, rollup

    result = rollup(store, load_prices(options.prices))
    report.headline = {"monthly_total": result.total, "currency": result.currency, "priced_cis": result.priced, "unpriced_cis": result.unpriced}
    for dimension in DIMENSIONS:
        report.sections.append(Section(f"Estimated monthly cost by {dimension.replace('_', ' ')}", (dimension, "monthly", "share_pct"), result.rows(dimension)))
    for i, dimension in enumerate(DIMENSIONS):
        report.charts.append(
            Chart("bar", f"Monthly cost by {dimension.replace('_', ' ')} ({result.currency})", [(r[dimension], r["monthly"]) for r in result.rows(dimension)], svg.PALETTE[i % 4])
        )


def _quality(store: Store, options: ReportOptions, report: Report) -> None:
    from cmdb.compliance.reconciliation import quality

    result = quality(store)
    report.headline = {"duplicates": len(result.duplicates), "conflicts": len(result.conflicts), "incomplete": len(result.incomplete)}
    report.sections += [
        Section("Inventory accuracy per source", ("source", "cis", "live_pct", "complete_pct", "duplicated", "conflicting", "accuracy_pct", "last_run", "last_status"), [s.as_dict() for s in result.sources]),
        Section("Duplicates", ("key", "value", "ci_ids"), [d.as_dict() for d in result.duplicates]),
        Section("Conflicting values between sources", ("ci_id", "field", "values", "current", "winner"), [c.as_dict() for c in result.conflicts]),
        Section("Records missing required fields", ("ci_id", "type", "missing", "sources"), [g.as_dict() for g in result.incomplete[:1000]]),
    ]
    report.charts.append(Chart("bar", "Accuracy per source (%)", [(s.source, s.as_dict()["accuracy_pct"]) for s in result.sources], svg.PALETTE[2], unit="%"))


def _contracts(store: Store, options: ReportOptions, report: Report) -> None:
    from cmdb.compliance.contracts import contracts, uncovered_hardware, vendor_spend

    rows = contracts(store, options.at, options.days)
    spend = vendor_spend(rows)
    gaps = uncovered_hardware(store, options.at)
    report.headline = {"contracts": len(rows), "expiring": sum(r.status == "expiring" for r in rows), "expired": sum(r.status == "expired" for r in rows), "uncovered_hardware": len(gaps)}
    report.sections += [
        Section("Contracts", ("ci_id", "name", "vendor", "status", "end", "renewal", "annual_value", "covered"), [r.as_dict() for r in rows]),
        Section("Annual value by vendor", ("vendor", "contracts", "annual_value"), spend),
        Section("Hardware without a live support contract", ("ci_id", "type", "name", "owner", "reason"), gaps),
    ]
    report.charts.append(Chart("bar", "Annual contract value by vendor", [(r["vendor"], r["annual_value"]) for r in spend], svg.PALETTE[5]))


_BUILDERS: dict[str, Callable[[Store, ReportOptions, Report], None]] = {
    "inventory": _inventory,
    "compliance": _compliance,
    "optimisation": _optimisation,
    "licences": _licences,
    "ownership": _ownership,
    "cost": _cost,
    "quality": _quality,
    "contracts": _contracts,
}


def build(store: Store, kind: str, options: ReportOptions | None = None) -> Report:
    """Gather the report ``kind`` (one of :data:`KINDS`)."""
    if kind not in _BUILDERS:
        raise ComplianceError(f"no report {kind!r} (one of {', '.join(KINDS)})")
    options = options or ReportOptions()
    vocabulary()  # loaded once, before timing matters
    report = Report(kind, f"{kind.capitalize()} report", options.at or now(), store.location)
    _BUILDERS[kind](store, options, report)
    return report


# --- HTML -------------------------------------------------------------------
def chart_boxes(count: int) -> list[tuple[int, int, int, int]]:
    """Where chart ``i`` is drawn in the page, as (left, top, right, bottom) CSS pixels."""
    boxes = []
    for i in range(count):
        left = PAGE_MARGIN + (i % 2) * (CHART_WIDTH + CHART_GAP)
        top = HEADER_HEIGHT + (i // 2) * (CHART_HEIGHT + CHART_GAP)
        boxes.append((left, top, left + CHART_WIDTH, top + CHART_HEIGHT))
    return boxes


_CSS = f"""
* {{ box-sizing: border-box; }}
body {{ margin: 0; padding: 0 {PAGE_MARGIN}px {PAGE_MARGIN}px; font-family: "DejaVu Sans", Arial, sans-serif; color: #222; background: #fff; }}
header {{ height: {HEADER_HEIGHT}px; overflow: hidden; padding-top: 12px; }}
h1 {{ font-size: 24px; margin: 0 0 4px; }}
.meta {{ color: #666; font-size: 12px; margin-bottom: 10px; }}
.cards {{ display: flex; gap: 10px; flex-wrap: nowrap; overflow: hidden; }}
.card {{ border: 1px solid #ddd; border-radius: 6px; padding: 6px 12px; min-width: 110px; }}
.card b {{ display: block; font-size: 20px; }}
.card span {{ font-size: 11px; color: #666; }}
.charts {{ display: grid; grid-template-columns: repeat(2, {CHART_WIDTH}px); grid-auto-rows: {CHART_HEIGHT}px; gap: {CHART_GAP}px; }}
figure {{ margin: 0; width: {CHART_WIDTH}px; height: {CHART_HEIGHT}px; border: 1px solid #e5e5e5; border-radius: 6px; overflow: hidden; }}
figcaption {{ height: 30px; line-height: 30px; padding: 0 10px; font-size: 14px; font-weight: bold; background: #f7f7f7; }}
figure svg {{ display: block; margin: 10px 0 0; }}
section {{ margin-top: 28px; }}
h2 {{ font-size: 17px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }}
table {{ border-collapse: collapse; font-size: 12px; width: 100%; }}
th, td {{ border: 1px solid #e3e3e3; padding: 3px 6px; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
"""


def _cell(value: Any) -> tuple[str, bool]:
    if value is None:
        return "", False
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, (int, float)):
        return (f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"), True
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value), False
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items()), False
    return str(value), False


def render_html(store: Store, kind: str, options: ReportOptions | None = None, report: Report | None = None) -> str:
    """One self-contained HTML page: headline cards, inline SVG charts, then the tables."""
    report = report or build(store, kind, options)
    cards = "".join(
        f'<div class="card"><b>{escape(_cell(v)[0])}</b><span>{escape(k.replace("_", " "))}</span></div>'
        for k, v in list(report.headline.items())[:8]
    )
    figures = "".join(
        f'<figure class="chart" data-chart="{i}"><figcaption>{escape(c.title)}</figcaption>{c.svg()}</figure>'
        for i, c in enumerate(report.charts)
    )
    tables = []
    for section in report.sections:
        head = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in section.columns)
        body = []
        for row in section.rows[:1000]:
            cells = []
            for column in section.columns:
                text, numeric = _cell(row.get(column))
                cells.append(f'<td class="n">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        empty = f'<tr><td colspan="{len(section.columns)}">none</td></tr>' if not section.rows else ""
        more = f"<p>{len(section.rows) - 1000:,} more rows not shown; use --format csv.</p>" if len(section.rows) > 1000 else ""
        tables.append(f"<section><h2>{escape(section.title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}{empty}</tbody></table>{more}</section>")
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(report.title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body>"
        f"<header><h1>{escape(report.title)}</h1>"
        f'<div class="meta">generated {escape(report.generated_at.strftime("%Y-%m-%d %H:%M UTC"))} from {escape(report.location)}</div>'
        f'<div class="cards">{cards}</div></header>'
        f'<div class="charts">{figures}</div>'
        f"{''.join(tables)}"
        "</body></html>\n"
    )
