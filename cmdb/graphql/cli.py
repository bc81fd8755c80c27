"""``cmdb serve`` and ``cmdb export-schema`` (loaded lazily by ``cmdb.cli``)."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import click
from rich.console import Console

from cmdb.cli import App, pass_app
from cmdb.errors import ConfigError

__all__ = ["export_schema", "serve"]

log = logging.getLogger(__name__)
console = Console(stderr=True)

EXAMPLES = """\
  {{ stats {{ total byClass {{ key count }} }} }}
  {{ cis(first: 5, filter: {{ classes: [DATABASE] }}) {{ totalCount edges {{ node {{ id name owner }} }} }} }}
  {{ ci(id: "ID") {{ name dependents(depth: 3) {{ depth ci {{ id type }} }} }} }}
  {{ changes(since: "{since}") {{ edges {{ node {{ at kind ciId field before after actor }} }} }} }}"""


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Embedded store file to serve.")
@click.option("--neo4j-uri", help="bolt:// or neo4j:// URI of the Neo4j store to serve.")
@click.option("--log-level", default="warning", show_default=True, help="uvicorn's log level.")
@pass_app
def serve(app: App, host: str, port: int, db: Path | None, neo4j_uri: str | None, log_level: str) -> None:
    """Serve the GraphQL API (with GraphiQL in the browser) at /graphql.

    Tokens come from CMDB_TOKENS (NAME:ROLE:TOKEN,...) or CMDB_TOKENS_FILE;
    CMDB_ANONYMOUS_READ=true allows queries without one; CMDB_CORS_ORIGINS
    lists origins allowed by CORS; limits are CMDB_GRAPHQL__*; repeated read
    queries are answered from memory until the data changes, unless
    CMDB_RESPONSE_CACHE__ENABLED=false (see cmdb.graphql.settings).
    """
    import pydantic
    import uvicorn

    from cmdb.graphql.app import create_app
    from cmdb.graphql.auth import TokenBook
    from cmdb.graphql.settings import ApiSettings
    from cmdb.model import now

    if neo4j_uri:
        app.target = neo4j_uri
    elif db is not None:
        app.target = str(db)
    try:
        settings = ApiSettings()
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"GraphQL settings from CMDB_* variables: {problems}") from None
    app.long_lived = True
    store = app.store
    status, warm = getattr(store, "graph_cache_status", None), getattr(store, "warm_graph_cache", None)
    if callable(status) and callable(warm) and status() != "off":  # read the graph into memory as the server starts
        threading.Thread(target=warm, name="cmdb-graph-copy", daemon=True).start()
    web = create_app(store, settings, engine=app.engine(), freeze_gc=True)
    tokens = len(TokenBook.from_settings(settings))
    url = f"http://{host if host not in ('0.0.0.0', '::') else 'localhost'}:{port}/graphql"
    console.print(
        f"serving {store.location} at [bold]{url}[/] (GraphiQL: open it in a browser)", highlight=False, soft_wrap=True
    )
    console.print(
        f"{tokens} token(s) configured; anonymous read is {'on' if settings.anonymous_read else 'off'}",
        highlight=False,
    )
    since = now().date().isoformat()
    console.print("try:\n" + EXAMPLES.format(since=since), highlight=False, markup=False, soft_wrap=True)
    uvicorn.run(web, host=host, port=port, log_level=log_level, access_log=log_level in ("info", "debug", "trace"))


@click.command("export-schema")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File to write; default stdout.")
def export_schema(output: Path | None) -> None:
    """Print the GraphQL schema (SDL), as kept in schema.graphql."""
    from cmdb.graphql.schema import print_sdl

    text = print_sdl()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
