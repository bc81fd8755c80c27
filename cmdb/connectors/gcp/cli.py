"""``cmdb sync gcp``."""

from __future__ import annotations

from pathlib import Path

import click

from cmdb.cli import App, pass_app, run_sync
from cmdb.connectors.base import Connector
from cmdb.errors import ConfigError

__all__ = ["sync_gcp"]


@click.command("gcp")
@click.option("--project", help="Project id to sweep [env CMDB_SYNC_GCP_PROJECT].")
@click.option("--folder", help="Folder number: sweep every project below it.")
@click.option("--organization", help="Organisation number: sweep every project in it.")
@click.option(
    "--export-file",
    "export_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read a Cloud Asset Inventory export (JSON lines) instead of the API; repeatable.",
)
@click.option("--endpoint", envvar="CMDB_GCP_ENDPOINT", help="Cloud Asset API base URL [env CMDB_GCP_ENDPOINT].")
@click.option("--json", "json_output", is_flag=True, help="Print the summary as JSON.")
@pass_app
def sync_gcp(
    app: App,
    project: str | None,
    folder: str | None,
    organization: str | None,
    export_files: tuple[Path, ...],
    endpoint: str | None,
    json_output: bool,
) -> None:
    """Discover GCP resources through Cloud Asset Inventory (Application Default Credentials,
    or a bearer token in CMDB_GCP_TOKEN). One scope per project: gcp:<project-id>."""
    from cmdb.connectors.gcp.connector import GcpConnector, GcpExportConnector

    parents = [f"{kind}/{value}" for kind, value in (("projects", project), ("folders", folder), ("organizations", organization)) if value]
    connector: Connector
    if export_files:
        if folder or organization:
            raise ConfigError("--export-file reads a file; --folder and --organization do not apply")
        connector = GcpExportConnector(export_files, project=project or "")
    elif len(parents) != 1:
        raise ConfigError(
            "name exactly one of --project, --folder or --organization (or give --export-file)",
            hint="e.g. cmdb sync gcp --project my-project",
        )
    else:
        connector = GcpConnector(parents[0], endpoint=endpoint)
    run_sync(app, connector, json_output=json_output)
