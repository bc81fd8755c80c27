"""``cmdb sync kubernetes``: sweep the clusters of a kubeconfig into the store."""

from __future__ import annotations

from pathlib import Path

import click

from cmdb.cli import App, pass_app, run_sync
from cmdb.connectors.kubernetes.connector import DEFAULT_PAGE_SIZE, KubernetesConnector

__all__ = ["sync_kubernetes"]


@click.command("kubernetes")
@click.option(
    "--kubeconfig",
    envvar="KUBECONFIG",
    type=click.Path(dir_okay=False, path_type=Path),
    help="kubeconfig file [env KUBECONFIG; default ~/.kube/config].",
)
@click.option(
    "--context",
    "contexts",
    multiple=True,
    help="Context to sweep (repeatable); default every context in the kubeconfig.",
)
@click.option("--page-size", default=DEFAULT_PAGE_SIZE, show_default=True, help="Objects per list call (limit).")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for one API reply.")
@click.option("--retries", default=3, show_default=True, help="Retries of a throttled or failed call.")
@click.option("--json", "json_output", is_flag=True, help="Print the summary as JSON.")
@pass_app
def sync_kubernetes(
    app: App,
    kubeconfig: Path | None,
    contexts: tuple[str, ...],
    page_size: int,
    timeout: float,
    retries: int,
    json_output: bool,
) -> None:
    """Discover namespaces, nodes, workloads, pods, services, ingresses, ConfigMaps (keys only),
    volumes and service accounts from Kubernetes clusters. Secrets are never read."""
    connector = KubernetesConnector(kubeconfig, contexts, page_size=page_size, timeout=timeout, retries=retries)
    report = run_sync(app, connector, json_output=json_output)
    if report.run.status == "failed":
        raise SystemExit(1)
