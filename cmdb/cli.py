"""The ``cmdb`` command line.

Every option is also an environment variable (``CMDB_<COMMAND>_<OPTION>``, and
the global ``CMDB_DB`` / ``CMDB_NEO4J_URI``). Errors print one line with a hint
and exit non-zero. Commands that belong to a part of cmdb live in that part
(``cmdb.connectors.aws.cli``, ``cmdb.graphql.cli``, ...) and are loaded lazily,
so ``cmdb --help`` stays fast and a part's SDKs load only when it runs.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cmdb.config import Settings, default_db_path
from cmdb.connectors.base import Connector
from cmdb.errors import CmdbError, NotFound
from cmdb.model import CI, now, parse_time
from cmdb.store import ChangeFilter, Store, open_store
from cmdb.sync import SyncEngine, SyncReport

__all__ = ["App", "cli", "main", "pass_app", "run_sync"]

log = logging.getLogger(__name__)
console = Console(stderr=True)
out = Console()

# name -> "module:attribute"; a part registers its commands here.
TOP_COMMANDS: dict[str, str] = {
    "serve": "cmdb.graphql.cli:serve",
    "export-schema": "cmdb.graphql.cli:export_schema",
    "impact": "cmdb.impact.cli:impact",
    "change": "cmdb.impact.cli:change",
    "incident": "cmdb.impact.cli:incident",
    "whatif": "cmdb.impact.cli:whatif",
    "findings": "cmdb.compliance.cli:findings",
    "report": "cmdb.compliance.cli:report",
    "waiver": "cmdb.compliance.cli:waiver",
    "lifecycle": "cmdb.compliance.cli:lifecycle",
    "classify": "cmdb.compliance.cli:classify_command",
    "optimise": "cmdb.compliance.cli:optimise",
    "links": "cmdb.inference_cli:links",
}
SYNC_COMMANDS: dict[str, str] = {
    "aws": "cmdb.connectors.aws.cli:sync_aws",
    "gcp": "cmdb.connectors.gcp.cli:sync_gcp",
    "azure": "cmdb.connectors.azure.cli:sync_azure",
    "kubernetes": "cmdb.connectors.kubernetes.cli:sync_kubernetes",
}


class LazyGroup(click.Group):
    """A group whose extra commands are imported on first use.

    A command whose module is not part of this installation is not listed.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def _load(self, name: str) -> click.Command | None:
        module_name, attribute = self.lazy[name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                return None  # that part is not in this installation
            raise
        command: click.Command = getattr(module, attribute)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(name for name in self.lazy if self._load(name) is not None)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy:
            command = self._load(cmd_name)
        return command


@dataclass
class App:
    """What every command shares: settings and the (lazily opened) store."""

    settings: Settings
    target: str | None = None
    explicit: bool = False  # the user named a store (option or environment)
    long_lived: bool = False  # the command serves: the store may keep its graph in memory
    _store: Store | None = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.target, self.settings, long_lived=self.long_lived)
        return self._store

    def engine(self) -> SyncEngine:
        from cmdb.inference import infer_links

        return SyncEngine(self.store, grace=timedelta(days=self.settings.stale_grace_days), inferrer=infer_links)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


pass_app = click.make_pass_decorator(App)


@click.group(cls=LazyGroup, lazy=TOP_COMMANDS, context_settings={"auto_envvar_prefix": "CMDB", "help_option_names": ["-h", "--help"]})
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Embedded store file [env CMDB_DB].")
@click.option("--neo4j-uri", help="bolt:// or neo4j:// URI of a Neo4j store [env CMDB_NEO4J_URI].")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="cmdb")
@click.pass_context
def cli(ctx: click.Context, db: Path | None, neo4j_uri: str | None, verbose: int) -> None:
    """cmdb: what do we have, how is it connected, what breaks if it changes."""
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    settings = Settings()
    if db is not None:
        settings.db = db
    target = neo4j_uri or None
    app = App(settings, target, explicit=db is not None or bool(neo4j_uri or settings.neo4j_uri))
    ctx.obj = app
    ctx.call_on_close(app.close)


@cli.group(cls=LazyGroup, lazy=SYNC_COMMANDS)
def sync() -> None:
    """Discover CIs and relationships from a source into the store."""


def run_sync(app: App, connector: Connector, *, json_output: bool = False) -> SyncReport:
    """Run one sync with a progress display and print its summary."""
    with _progress(f"sync {connector.source}") as advance:
        report = app.engine().run(connector, progress=advance)
    if json_output:
        _evaluate_findings(app)
        out.print_json(
            orjson.dumps(
                {
                    "sync_id": report.run.sync_id,
                    "status": report.run.status,
                    "scopes": report.run.scopes,
                    "counts": report.counts,
                    "problems": [str(p) for p in report.problems],
                }
            ).decode()
        )
        return report
    _evaluate_findings(app)
    table = Table(title=f"sync {report.run.sync_id}: {report.run.status}", show_header=False)
    for key, value in report.counts.items():
        table.add_row(key.replace("_", " "), str(value))
    for scope, complete in report.run.scopes.items():
        table.add_row(f"scope {scope}", "complete" if complete else "INCOMPLETE (nothing marked stale)")
    out.print(table)
    for problem in report.problems[:50]:
        console.print(f"[yellow]problem[/] {problem}", highlight=False)
    if len(report.problems) > 50:
        console.print(f"... and {len(report.problems) - 50} more problems")
    return report


def _evaluate_findings(app: App) -> None:
    """After a sync, findings follow the graph: new ones open, fixed ones get their resolved time."""
    if not app.settings.evaluate_findings:
        return
    try:
        from cmdb.compliance.cli import run_evaluation
    except ModuleNotFoundError:  # compliance is not part of this installation
        return
    try:
        run_evaluation(app)
    except CmdbError as exc:  # the sync has landed; say why the findings did not follow
        console.print(f"[yellow]findings not evaluated:[/] {exc}", highlight=False, soft_wrap=True)


@contextmanager
def _progress(label: str) -> Iterator[Any]:
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("CIs"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(label, total=None)

        def advance(scope: str, cis: int, rels: int) -> None:
            progress.update(task, advance=cis, description=f"{label} {scope}")

        yield advance


@sync.command("file")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "json_output", is_flag=True, help="Print the summary as JSON.")
@pass_app
def sync_file(app: App, paths: tuple[Path, ...], json_output: bool) -> None:
    """Load hand-kept CIs and relationships from YAML, JSON, JSON lines or CSV files."""
    from cmdb.connectors.files import FileConnector

    run_sync(app, FileConnector(paths), json_output=json_output)


@cli.command()
@click.option("--size", default=3000, show_default=True, help="About how many CIs to generate.")
@click.option("--seed", default=7, show_default=True, help="Random seed; the same seed gives the same estate.")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve GraphQL on the demo estate.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
@pass_app
def demo(app: App, size: int, seed: int, serve: bool, host: str, port: int) -> None:
    """Load a realistic generated estate into the store and summarise it.

    Without --db (or CMDB_DB) the demo gets a store of its own, demo.db beside
    the default store, so it never mixes with real data.
    """
    from cmdb.demo import DemoConnector

    if not app.explicit:
        app.settings.db = default_db_path().with_name("demo.db")
    app.long_lived = serve
    if app.store.sync_runs(limit=1, source="demo"):
        console.print(f"{app.store.location} already holds the demo estate: syncing today's view again")
        run_sync(app, DemoConnector(size=size, seed=seed, day=1))
        _print_stats(app.store)
        if serve:
            _serve(host, port)
        return

    # Two days of the estate: yesterday's sync, then today's, so the demo has history and stale CIs.
    yesterday = SyncEngine(app.store, clock=lambda: now() - timedelta(days=1))
    with _progress("demo estate, yesterday") as advance:
        yesterday.run(DemoConnector(size=size, seed=seed, day=0), actor="demo", progress=advance)
    run_sync(app, DemoConnector(size=size, seed=seed, day=1))
    _print_stats(app.store)
    if serve:
        _serve(host, port)


def _serve(host: str, port: int) -> None:
    ctx = click.get_current_context()
    serve_command = cli.get_command(ctx, "serve")
    if serve_command is None:
        console.print("GraphQL is not part of this installation; the estate is loaded.")
        return
    no_tokens = not (os.environ.get("CMDB_TOKENS") or os.environ.get("CMDB_TOKENS_FILE"))
    if no_tokens and host in ("127.0.0.1", "localhost", "::1"):
        # The demo on loopback with no tokens configured: let GraphiQL read without one.
        os.environ.setdefault("CMDB_ANONYMOUS_READ", "true")
    ctx.invoke(serve_command, host=host, port=port)


def _print_stats(store: Store) -> None:
    stats = store.stats()
    for title, counts in (
        ("CIs by class", stats.by_class),
        ("CIs by provider", stats.by_provider),
        ("CIs by lifecycle state", stats.by_lifecycle),
        ("relationships by type", stats.relationships_by_type),
    ):
        table = Table(title=title)
        table.add_column("")
        table.add_column("count", justify="right")
        for key, value in counts.items():
            table.add_row(key or "(none)", f"{value:,}")
        out.print(table)
    out.print(f"{stats.total:,} CIs and {stats.relationships:,} relationships in {store.location}")


@cli.command()
@pass_app
def stats(app: App) -> None:
    """Counts of CIs by class, provider and lifecycle state."""
    _print_stats(app.store)


def _ci_json(ci: CI) -> dict[str, Any]:
    from cmdb.export import ci_record

    return ci_record(ci)


@cli.command()
@click.argument("ci_id")
@click.option("--as-of", "as_of", help="Show the CI as it was at this time (ISO-8601).")
@pass_app
def show(app: App, ci_id: str, as_of: str | None) -> None:
    """Show one CI with its relationships."""
    from cmdb.history import ci_as_of

    if as_of:
        ci = ci_as_of(app.store, ci_id, parse_time(as_of))
    else:
        ci = app.store.get_cis([ci_id]).get(ci_id)
    if ci is None:
        raise NotFound(f"no CI with id {ci_id!r}" + (f" at {as_of}" if as_of else ""))
    out.print_json(orjson.dumps(_ci_json(ci)).decode())
    if not as_of:
        table = Table(title="relationships")
        for column in ("from", "type", "to", "state", "evidence"):
            table.add_column(column)
        for rel in app.store.relationships([ci_id], "both", include_inactive=True):
            table.add_row(rel.from_id, rel.type, rel.to_id, rel.lifecycle_state, "; ".join(map(str, rel.evidence)))
        out.print(table)


@cli.command()
@click.argument("text")
@click.option("--limit", default=20, show_default=True)
@pass_app
def search(app: App, text: str, limit: int) -> None:
    """Full-text search over CI ids, names and tags."""
    table = Table()
    for column in ("id", "type", "name", "owner", "state"):
        table.add_column(column)
    for ci in app.store.search(text, limit):
        table.add_row(ci.id, ci.type, ci.name, ci.owner, ci.lifecycle_state)
    out.print(table)


def _change_table(title: str, changes: list[Any]) -> Table:
    table = Table(title=title)
    for column in ("at", "kind", "ci", "field", "before", "after", "by"):
        table.add_column(column)
    for c in changes:
        subject = f"{c.ci_id} -{c.rel_type}-> {c.to_id}" if c.rel_type else c.ci_id
        table.add_row(
            c.at.strftime("%Y-%m-%d %H:%M:%S"),
            c.kind,
            subject,
            c.field,
            "" if c.before is None else str(c.before),
            "" if c.after is None else str(c.after),
            c.actor or c.sync_id,
        )
    return table


@cli.command()
@click.argument("ci_id")
@click.option("--limit", default=100, show_default=True)
@pass_app
def history(app: App, ci_id: str, limit: int) -> None:
    """The change records of one CI (and of its relationships)."""
    page = app.store.changes(ChangeFilter(ci_ids=(ci_id,)), first=limit)
    if not page.items and not app.store.known_ids([ci_id]):
        raise NotFound(f"no CI with id {ci_id!r}")
    out.print(_change_table(f"history of {ci_id}", page.items))


@cli.command()
@click.option("--since", required=True, help="Start time (ISO-8601), e.g. 2026-11-01 or 2026-11-20T08:00Z.")
@click.option("--until", help="End time (ISO-8601); default now.")
@click.option("--scope", help="Only this scope (account, project, subscription, cluster, file).")
@click.option("--json", "json_output", is_flag=True)
@pass_app
def diff(app: App, since: str, until: str | None, scope: str | None, json_output: bool) -> None:
    """What changed between two times: created, changed, gone CIs and relationships."""
    from cmdb.history import diff as graph_diff

    result = graph_diff(app.store, parse_time(since), parse_time(until) if until else None, scope=scope)
    if json_output:
        _evaluate_findings(app)
        out.print_json(orjson.dumps(result.as_dict()).decode())
        return
    out.print(result.summary())
    out.print(_change_table("changes", result.changes[:200]))


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["json", "graphml", "node-link"]), default="json", show_default=True)
@click.option("--as-of", "as_of", help="Export the graph as it was at this time (ISO-8601).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write; default stdout.")
@pass_app
def export_command(app: App, fmt: str, as_of: str | None, output: Path | None) -> None:
    """Export every CI and relationship."""
    from cmdb.export import export

    target = output.open("wb") if output else sys.stdout.buffer
    try:
        count = export(app.store, target, fmt, as_of=parse_time(as_of) if as_of else None)
    finally:
        if output:
            target.close()
    console.print(f"exported {count[0]:,} CIs and {count[1]:,} relationships")


def main(argv: list[str] | None = None) -> None:
    """The console script: errors become one line with a hint, never a traceback."""
    try:
        cli.main(args=argv, prog_name="cmdb", standalone_mode=False)
    except click.exceptions.Abort:
        console.print("aborted")
        raise SystemExit(130) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except CmdbError as exc:
        hint = f" (hint: {exc.hint})" if exc.hint else ""
        console.print(f"[red]error:[/] {exc}{hint}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        console.print("interrupted; nothing of the unfinished run was kept")
        raise SystemExit(130) from None
    except Exception as exc:  # a bug: still one line, the traceback goes to the debug log
        log.debug("unexpected error", exc_info=True)
        console.print(
            f"[red]internal error:[/] {type(exc).__name__}: {exc} (hint: run with -vv for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
