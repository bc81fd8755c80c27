"""``cmdb sync aws``: discover AWS accounts into the store."""

from __future__ import annotations

from pathlib import Path

import click

from cmdb.cli import App, pass_app, run_sync
from cmdb.connectors.aws.tagmap import TAG_MAP_ENV, TagMap
from cmdb.errors import ConfigError

__all__ = ["sync_aws"]


def _endpoints(values: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        region, sep, url = value.partition("=")
        if not sep or not region or not url:
            raise ConfigError(f"--endpoint-url {value!r}: expected REGION=URL")
        found[region.strip()] = url.strip()
    return found


@click.command("aws")
@click.option("--profile", envvar="AWS_PROFILE", help="Named profile from ~/.aws/config [env AWS_PROFILE].")
@click.option("--regions", help="Comma-separated regions; default every enabled region.")
@click.option("--assume-role", "assume_roles", multiple=True, metavar="ARN",
              help="Also sweep the account of this role (repeatable).")
@click.option("--external-id", help="External id for --assume-role.")
@click.option("--caller-account/--no-caller-account", default=True, show_default=True,
              help="Sweep the account of the credentials themselves too.")
@click.option("--tag-map", type=click.Path(exists=True, dir_okay=False, path_type=Path), envvar=TAG_MAP_ENV,
              help=f"YAML/JSON file: which tags give owner, cost_centre, environment, business_unit [env {TAG_MAP_ENV}].")
@click.option("--endpoint-url", "endpoint_urls", multiple=True, metavar="REGION=URL",
              help="Endpoint to use for one region (repeatable).")
@click.option("--workers", default=4, show_default=True, help="Regions swept at once.")
@click.option("--max-attempts", default=8, show_default=True, help="Attempts per API call (throttling, errors).")
@click.option("--json", "json_output", is_flag=True, help="Print the summary as JSON.")
@pass_app
def sync_aws(
    app: App,
    profile: str | None,
    regions: str | None,
    assume_roles: tuple[str, ...],
    external_id: str | None,
    caller_account: bool,
    tag_map: Path | None,
    endpoint_urls: tuple[str, ...],
    workers: int,
    max_attempts: int,
    json_output: bool,
) -> None:
    """Discover AWS accounts, regions, resources and their dependencies."""
    from cmdb.connectors.aws.connector import AwsConnector

    region_list = [r.strip() for r in regions.split(",") if r.strip()] if regions else None
    connector = AwsConnector(
        profile=profile,
        regions=region_list,
        assume_roles=assume_roles,
        include_caller=caller_account,
        tag_map=TagMap.load(tag_map),
        endpoint_urls=_endpoints(endpoint_urls),
        workers=workers,
        max_attempts=max_attempts,
        external_id=external_id,
    )
    run_sync(app, connector, json_output=json_output)
