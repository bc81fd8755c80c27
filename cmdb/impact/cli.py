"""The impact commands: ``cmdb impact``, ``cmdb change``, ``cmdb incident``, ``cmdb whatif``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import orjson
from rich.table import Table

from cmdb.cli import App, console, out, pass_app
from cmdb.errors import ValidationError
from cmdb.impact.failure import MAX_DEPTH
from cmdb.impact.incident import incident_impact, root_causes
from cmdb.impact.planned import (
    Conflict,
    PlannedChange,
    check_planned_change,
    get_planned_change,
    list_planned_changes,
    load_blackouts,
    plan_change,
    recorded_changes,
)
from cmdb.impact.radius import BlastRadius, blast_radius, dependencies
from cmdb.impact.render import to_dot, to_html, to_svg
from cmdb.impact.risk import CHANGE_TYPES, RiskAssessment, change_risk
from cmdb.impact.timetravel import blast_radius_diff
from cmdb.impact.whatif import single_points_of_failure, what_if
from cmdb.model import RelKey, parse_time
from cmdb.vocabulary import vocabulary

__all__ = ["change", "impact", "incident", "whatif"]

log = logging.getLogger(__name__)

STATE_STYLE = {"down": "bold red", "degraded": "yellow", "unaffected": "dim", "": ""}


def _json(value: Any) -> None:
    out.print_json(orjson.dumps(value).decode())


def _write(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote {output}")


def _depth(value: int) -> int:
    if not 0 <= value <= MAX_DEPTH:
        raise click.BadParameter(f"must be within 0..{MAX_DEPTH}")
    return value


def _radius_table(radius: BlastRadius) -> Table:
    what = "blast radius" if radius.direction == "in" else "dependencies"
    when = f" as of {radius.as_of:%Y-%m-%d %H:%M}" if radius.as_of else ""
    table = Table(
        title=f"{what} of {', '.join(radius.start_ids)}{when}: {len(radius.reached)} CIs"
        + (" (truncated)" if radius.truncated else "")
    )
    for column in ("depth", "id", "type", "state", "owner", "via"):
        table.add_column(column)
    for r in radius.reached:
        via = (
            f"{r.path[-1].type} {r.path[-1].to_id if radius.direction == 'in' else r.path[-1].from_id}"
            if r.path
            else ""
        )
        state = r.state or ""
        table.add_row(
            str(r.depth),
            r.ci_id,
            r.ci.type if r.ci else "",
            f"[{STATE_STYLE[state]}]{state}[/]" if state else "",
            r.ci.owner if r.ci else "",
            via,
        )
    return table


def _print_radius(radius: BlastRadius) -> None:
    out.print(_radius_table(radius))
    if radius.services:
        table = Table(title=f"business services reached: {len(radius.services)}")
        for column in ("id", "name", "criticality", "state", "owner", "path"):
            table.add_column(column)
        for s in radius.services:
            ci = s.ci
            path = " <- ".join(s.path_ids)
            table.add_row(
                s.ci_id,
                ci.name if ci else "",
                ci.criticality if ci else "",
                s.state or "",
                ci.owner if ci else "",
                path,
            )
        out.print(table)
    out.print(f"owners reached: {', '.join(radius.owners) or 'none'}")


def _print_risk(risk: RiskAssessment) -> None:
    colour = {"low": "green", "medium": "yellow", "high": "red", "critical": "bold red"}[risk.level]
    out.print(
        f"[bold]{risk.change}[/] of {', '.join(risk.ci_ids)}: risk [{colour}]{risk.score}/100 ({risk.level})[/]; "
        f"if it goes wrong {risk.down} CIs go down and {risk.degraded} lose redundancy"
        + (" (walk truncated)" if risk.truncated else "")
    )
    table = Table(title="factors")
    for column in ("factor", "points", "weight", "evidence"):
        table.add_column(column)
    for f in sorted(risk.factors, key=lambda f: (-f.points, f.name)):
        table.add_row(f.name, f"{f.points:g}", str(f.weight), "\n".join(f.evidence))
    out.print(table)
    if risk.paths:
        out.print("paths carrying the risk:")
        for p in risk.paths:
            out.print(f"  {p}", highlight=False)


@click.command()
@click.argument("ci_ids", nargs=-1, required=True)
@click.option(
    "--depth", "max_depth", default=6, show_default=True, callback=lambda c, p, v: _depth(v), help="Levels to walk."
)
@click.option("--type", "types", multiple=True, help="Walk only this relationship type (repeatable).")
@click.option("--limit", default=10_000, show_default=True, help="Most CIs to return.")
@click.option("--dependencies", "downstream", is_flag=True, help="Walk down to what the CIs need instead.")
@click.option(
    "--change", "change_type", type=click.Choice(CHANGE_TYPES), help="Assess the risk of this change instead."
)
@click.option("--at", "at_text", help="Judge recent changes as of this time (ISO-8601; with --change).")
@click.option("--as-of", "as_of_text", help="Walk the graph as it was at this time (ISO-8601).")
@click.option("--since", "since_text", help="Compare the blast radius at this time with now (or --as-of).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "dot", "svg", "html"]), default="table", show_default=True
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the picture here.")
@pass_app
def impact(
    app: App,
    ci_ids: tuple[str, ...],
    max_depth: int,
    types: tuple[str, ...],
    limit: int,
    downstream: bool,
    change_type: str | None,
    at_text: str | None,
    as_of_text: str | None,
    since_text: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """What depends on CI_IDS (blast radius, with down/degraded states), what they depend on
    (--dependencies), how risky a change is (--change) or how the blast radius changed (--since)."""
    for name in types:
        vocabulary().relationship_type(name)
    as_of = parse_time(as_of_text) if as_of_text else None
    if change_type:
        risk = change_risk(
            app.store,
            ci_ids,
            change_type,
            at=parse_time(at_text) if at_text else None,
            max_depth=max_depth,
            as_of=as_of,
        )
        if fmt == "json":
            _json(risk.as_dict())
        elif fmt == "table":
            _print_risk(risk)
        else:
            raise click.UsageError("--change prints a table or json")
        return
    if since_text:
        diff = blast_radius_diff(
            app.store, ci_ids, parse_time(since_text), as_of, max_depth=max_depth, types=types or None, limit=limit
        )
        if fmt == "json":
            _json(diff.as_dict())
            return
        out.print(diff.summary())
        for label, items in (
            ("services joined", diff.services_added),
            ("services left", diff.services_removed),
            ("CIs joined", diff.added),
            ("CIs left", diff.removed),
        ):
            if items:
                out.print(
                    f"{label}: {', '.join(items[:50])}" + (f" and {len(items) - 50} more" if len(items) > 50 else "")
                )
        return
    if downstream:
        radius = dependencies(app.store, ci_ids, max_depth=max_depth, types=types or None, limit=limit, as_of=as_of)
    else:
        radius = blast_radius(
            app.store, ci_ids, max_depth=max_depth, types=types or None, limit=limit, states=True, as_of=as_of
        )
    if fmt == "json":
        _json(
            {
                "start_ids": list(radius.start_ids),
                "direction": radius.direction,
                "depth": radius.max_depth,
                "truncated": radius.truncated,
                "services": [s.ci_id for s in radius.services],
                "owners": radius.owners,
                "reached": radius.records(),
            }
        )
    elif fmt == "table":
        _print_radius(radius)
    else:
        _write({"dot": to_dot, "svg": to_svg, "html": to_html}[fmt](radius), output)


# --- planned changes -------------------------------------------------------------


@click.group()
def change() -> None:
    """Plan changes, check them for conflicts and blackouts, see what actually changed."""


def _conflict_lines(conflicts: list[Conflict]) -> None:
    if not conflicts:
        out.print("[green]no conflicts[/]")
    for c in conflicts:
        out.print(f"[red]{c.kind}[/] {c.detail}", highlight=False)


def _change_row(c: PlannedChange) -> list[str]:
    return [
        c.key,
        c.status(),
        c.change,
        ", ".join(c.ci_ids),
        f"{c.start:%Y-%m-%d %H:%M}",
        f"{c.end:%Y-%m-%d %H:%M}",
        f"{c.score} ({c.level})",
        str(len(c.services)),
        str(len(c.conflicts)),
        c.requester,
    ]


def _blackouts_option(fn: Any) -> Any:
    return click.option(
        "--blackouts",
        "blackouts_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        envvar="CMDB_BLACKOUTS",
        help="YAML file of blackout periods [env CMDB_BLACKOUTS].",
    )(fn)


@change.command("plan")
@click.argument("ci_ids", nargs=-1, required=True)
@click.option("--type", "change_type", type=click.Choice(CHANGE_TYPES), required=True, help="What the change does.")
@click.option("--start", "start_text", required=True, help="Window start (ISO-8601).")
@click.option("--end", "end_text", required=True, help="Window end (ISO-8601).")
@click.option("--requester", required=True, help="Who asks for the change.")
@click.option("--description", default="", help="What and why.")
@_blackouts_option
@click.option("--json", "json_output", is_flag=True)
@pass_app
def plan(
    app: App,
    ci_ids: tuple[str, ...],
    change_type: str,
    start_text: str,
    end_text: str,
    requester: str,
    description: str,
    blackouts_path: Path | None,
    json_output: bool,
) -> None:
    """Record a planned change of CI_IDS with its risk and conflicts."""
    planned = plan_change(
        app.store,
        ci_ids,
        change_type,
        parse_time(start_text),
        parse_time(end_text),
        requester=requester,
        description=description,
        blackouts=load_blackouts(blackouts_path),
    )
    if json_output:
        _json(planned.to_doc())
        return
    out.print(
        f"planned [bold]{planned.key}[/]: risk {planned.score}/100 ({planned.level}), {len(planned.services)} services"
    )
    _conflict_lines(planned.conflicts)


@change.command("list")
@click.option("--json", "json_output", is_flag=True)
@pass_app
def list_command(app: App, json_output: bool) -> None:
    """Every planned change, by window start."""
    changes = list_planned_changes(app.store)
    if json_output:
        _json([c.to_doc() for c in changes])
        return
    table = Table(title=f"{len(changes)} planned changes")
    for column in ("key", "status", "change", "CIs", "start", "end", "risk", "services", "conflicts", "requester"):
        table.add_column(column, no_wrap=column == "key")
    for c in changes:
        table.add_row(*_change_row(c))
    out.print(table)


@change.command("show")
@click.argument("key")
@click.option("--json", "json_output", is_flag=True)
@pass_app
def show(app: App, key: str, json_output: bool) -> None:
    """One planned change: its risk explanation, conflicts and what actually changed."""
    planned = get_planned_change(app.store, key)
    records = recorded_changes(app.store, planned)
    if json_output:
        doc = planned.to_doc()
        doc["recorded_changes"] = [
            {
                "seq": r.seq,
                "at": r.at.isoformat(),
                "kind": r.kind,
                "ci_id": r.ci_id,
                "field": r.field,
                "before": r.before,
                "after": r.after,
                "actor": r.actor,
                "sync_id": r.sync_id,
            }
            for r in records
        ]
        _json(doc)
        return
    out.print(
        f"[bold]{planned.key}[/] ({planned.status()}): {planned.change} of {', '.join(planned.ci_ids)} "
        f"{planned.start:%Y-%m-%d %H:%M}..{planned.end:%Y-%m-%d %H:%M} by {planned.requester}"
    )
    if planned.description:
        out.print(planned.description, highlight=False)
    out.print(planned.risk.get("explanation", ""), highlight=False)
    out.print(f"services: {', '.join(planned.services) or 'none'}")
    out.print("conflicts when planned:")
    _conflict_lines(planned.conflicts)
    table = Table(title=f"recorded changes of its CIs from the window start: {len(records)}")
    for column in ("at", "kind", "ci", "field", "before", "after", "by"):
        table.add_column(column)
    for r in records:
        subject = f"{r.ci_id} -{r.rel_type}-> {r.to_id}" if r.rel_type else r.ci_id
        table.add_row(
            f"{r.at:%Y-%m-%d %H:%M:%S}",
            r.kind,
            subject,
            r.field,
            "" if r.before is None else str(r.before),
            "" if r.after is None else str(r.after),
            r.actor or r.sync_id,
        )
    out.print(table)


@change.command("check")
@click.argument("keys", nargs=-1)
@_blackouts_option
@click.option("--fail-on-conflict", is_flag=True, help="Exit with status 1 when any change has a conflict.")
@click.option("--json", "json_output", is_flag=True)
@pass_app
def check(
    app: App, keys: tuple[str, ...], blackouts_path: Path | None, fail_on_conflict: bool, json_output: bool
) -> None:
    """Check planned changes (all, or KEYS) against each other and the blackout periods now."""
    blackouts = load_blackouts(blackouts_path)
    changes = [get_planned_change(app.store, k) for k in keys] if keys else list_planned_changes(app.store)
    results = {c.key: check_planned_change(app.store, c, blackouts=blackouts) for c in changes}
    if json_output:
        _json({key: [c.as_dict() for c in found] for key, found in results.items()})
    else:
        for key, found in results.items():
            out.print(f"[bold]{key}[/]:")
            _conflict_lines(found)
    if fail_on_conflict and any(results.values()):
        raise SystemExit(1)


# --- incidents and what-if ------------------------------------------------------


@click.command()
@click.argument("failing", nargs=-1)
@click.option("--service", "services", multiple=True, help="A failing service: rank root-cause candidates below it.")
@click.option("--window", "window_hours", default=24.0, show_default=True, help="Hours of change records to weigh.")
@click.option("--at", "at_text", help="The time of the incident (ISO-8601); default now.")
@click.option("--top", default=20, show_default=True)
@click.option("--json", "json_output", is_flag=True)
@pass_app
def incident(
    app: App,
    failing: tuple[str, ...],
    services: tuple[str, ...],
    window_hours: float,
    at_text: str | None,
    top: int,
    json_output: bool,
) -> None:
    """Services and applications FAILING CIs take down, and whom to notify;
    with --service, root-cause candidates below failing services."""
    from datetime import timedelta

    if not failing and not services:
        raise click.UsageError("name failing CIs, or failing services with --service")
    result: dict[str, Any] = {}
    if failing:
        found = incident_impact(app.store, failing)
        result["impact"] = found.as_dict()
        if not json_output:
            table = Table(title=f"affected by {', '.join(found.failing)}")
            for column in ("kind", "id", "name", "state", "owner", "path"):
                table.add_column(column)
            for kind, items in (("service", found.services), ("application", found.applications)):
                for a in items:
                    table.add_row(kind, a.ci_id, a.name, f"[{STATE_STYLE[a.state]}]{a.state}[/]", a.owner, a.path)
            out.print(table)
            out.print("notify: " + ("; ".join(f"{n.owner} ({', '.join(n.ci_ids)})" for n in found.notify) or "nobody"))
            if found.unowned:
                out.print(f"[yellow]no owner:[/] {', '.join(found.unowned)}")
    if services:
        ranked = root_causes(
            app.store,
            services,
            at=parse_time(at_text) if at_text else None,
            window=timedelta(hours=window_hours),
            top=top,
        )
        result["root_causes"] = [c.as_dict() for c in ranked]
        if not json_output:
            table = Table(title=f"root-cause candidates below {', '.join(services)}")
            for column in ("score", "id", "type", "state", "shared by", "why", "path"):
                table.add_column(column)
            for c in ranked:
                table.add_row(
                    f"{c.score:g}",
                    c.ci_id,
                    c.type,
                    c.lifecycle_state,
                    str(len(c.shared_by)),
                    "\n".join(c.reasons),
                    c.path,
                )
            out.print(table)
    if json_output:
        _json(result)


def _rel_key(text: str) -> RelKey:
    parts = text.split(",")
    if len(parts) != 3 or not all(parts):
        raise ValidationError(f"a relationship is FROM,TYPE,TO, not {text!r}")
    return parts[0], parts[1], parts[2]


@click.command()
@click.option("--remove", multiple=True, help="A CI that is gone (repeatable).")
@click.option("--degrade", multiple=True, help="A CI that is impaired but up (repeatable).")
@click.option("--cut", multiple=True, help="A relationship that is gone, as FROM,TYPE,TO (repeatable).")
@click.option("--service", "services", multiple=True, help="Only report these services.")
@click.option("--spof", help="List the single points of failure of this service instead.")
@click.option("--depth", "max_depth", default=8, show_default=True, callback=lambda c, p, v: _depth(v))
@click.option("--json", "json_output", is_flag=True)
@pass_app
def whatif(
    app: App,
    remove: tuple[str, ...],
    degrade: tuple[str, ...],
    cut: tuple[str, ...],
    services: tuple[str, ...],
    spof: str | None,
    max_depth: int,
    json_output: bool,
) -> None:
    """Which services lose every path to something they need if CIs or relationships go."""
    if spof:
        points = single_points_of_failure(app.store, spof, max_depth=max_depth)
        if json_output:
            _json(
                [
                    {"id": p.ci_id, "name": p.name, "type": p.type, "depth": p.depth, "path": p.description}
                    for p in points
                ]
            )
            return
        table = Table(title=f"single points of failure of {spof}: {len(points)}")
        for column in ("depth", "id", "type", "path"):
            table.add_column(column)
        for p in points:
            table.add_row(str(p.depth), p.ci_id, p.type, p.description)
        out.print(table)
        return
    if not (remove or degrade or cut):
        raise click.UsageError("say what goes: --remove, --degrade or --cut (or --spof SERVICE)")
    result = what_if(
        app.store,
        remove=remove,
        degrade=degrade,
        remove_relationships=[_rel_key(c) for c in cut],
        services=services or None,
        max_depth=max_depth,
    )
    if json_output:
        _json(result.as_dict())
        return
    table = Table(
        title=f"services affected: {len(result.services_down)} down, {len(result.services_degraded)} degraded"
    )
    for column in ("service", "name", "state", "criticality", "owner", "why", "path"):
        table.add_column(column)
    for s in [*result.services_down, *result.services_degraded]:
        table.add_row(
            s.ci_id, s.name, f"[{STATE_STYLE[s.state]}]{s.state}[/]", s.criticality, s.owner, s.reason, s.path
        )
    out.print(table)
