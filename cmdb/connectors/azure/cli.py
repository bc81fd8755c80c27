"""``cmdb sync azure``."""

from __future__ import annotations

import click

from cmdb.cli import App, pass_app, run_sync

__all__ = ["sync_azure"]


@click.command("azure")
@click.option(
    "--subscription",
    "subscriptions",
    multiple=True,
    help="Subscription id to sweep; repeatable. Default: every subscription the credential can see.",
)
@click.option(
    "--endpoint",
    envvar="CMDB_AZURE_ENDPOINT",
    help="Azure Resource Manager base URL [env CMDB_AZURE_ENDPOINT; default https://management.azure.com].",
)
@click.option("--json", "json_output", is_flag=True, help="Print the summary as JSON.")
@pass_app
def sync_azure(app: App, subscriptions: tuple[str, ...], endpoint: str | None, json_output: bool) -> None:
    """Discover Azure resources (DefaultAzureCredential, or a bearer token in CMDB_AZURE_TOKEN).
    One scope per subscription: azure:<subscription-id>. REQUESTS_CA_BUNDLE is honoured."""
    from cmdb.connectors.azure.connector import AzureConnector

    run_sync(app, AzureConnector(subscriptions, endpoint=endpoint), json_output=json_output)
