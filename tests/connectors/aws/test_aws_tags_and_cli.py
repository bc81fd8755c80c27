"""The tag map (defaults, a file through the CLI or the environment) and ``cmdb sync aws``."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from cmdb.cli import cli
from cmdb.connectors.aws import AwsConnector, TagMap
from cmdb.errors import ConfigError
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .aws_estate import ACCOUNT

REGION = "eu-west-1"


def test_default_tag_map_knows_several_spellings() -> None:
    fields = TagMap().fields({"team": "team-a", "cost-center": "cc-1", "ENV": "prod", "business_unit": "retail"})
    assert fields == {"owner": "team-a", "cost_centre": "cc-1", "environment": "prod", "business_unit": "retail"}
    # the first spelling in the map wins over a later one
    assert TagMap().fields({"team": "later", "Owner": "first"})["owner"] == "first"
    assert TagMap().fields({}) == {}


def test_a_tag_map_file_replaces_the_spellings_it_names(tmp_path: Path) -> None:
    path = tmp_path / "tags.yaml"
    path.write_text("owner: [squad]\nenvironment: lifecycle\n")
    tag_map = TagMap.load(path)
    assert tag_map.fields({"squad": "s1", "Owner": "ignored", "Lifecycle": "dev", "CostCenter": "cc"}) == {
        "owner": "s1", "environment": "dev", "cost_centre": "cc"}
    (tmp_path / "bad.json").write_text(json.dumps({"colour": ["x"]}))
    with pytest.raises(ConfigError, match="unknown field 'colour'"):
        TagMap.load(tmp_path / "bad.json")


def _instance(tags: dict[str, str]) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    reply = ec2.run_instances(ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{reply['Instances'][0]['InstanceId']}"


def test_tag_map_from_the_environment(aws_env: str, engine: SyncEngine, store: SqliteStore, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    instance = _instance({"squad": "squad-7", "Owner": "not-this", "Stage": "staging"})
    path = tmp_path / "tags.json"
    path.write_text(json.dumps({"owner": ["squad"]}))
    monkeypatch.setenv("CMDB_AWS_TAG_MAP", str(path))
    engine.run(AwsConnector(regions=[REGION]))
    (found,) = store.get_cis([instance]).values()
    assert (found.owner, found.environment) == ("squad-7", "staging")


def test_cli_sync_aws(aws_env: str, tmp_path: Path) -> None:
    instance = _instance({"Name": "cli-web", "owner": "team-cli"})
    tags = tmp_path / "tags.yaml"
    tags.write_text("cost_centre: [billing]\n")
    db = tmp_path / "cli.db"
    result = CliRunner().invoke(cli, ["--db", str(db), "sync", "aws", "--regions", REGION, "--tag-map", str(tags),
                                      "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "complete"
    assert summary["scopes"] == {f"aws:{ACCOUNT}:global": True, f"aws:{ACCOUNT}:{REGION}": True}
    assert summary["counts"]["created"] > 0
    store = SqliteStore(db)
    try:
        (found,) = store.get_cis([instance]).values()
        assert (found.name, found.owner) == ("cli-web", "team-cli")
    finally:
        store.close()
    bad = CliRunner().invoke(cli, ["--db", str(db), "sync", "aws", "--endpoint-url", "nonsense"])
    assert bad.exit_code != 0 and "REGION=URL" in str(bad.exception or bad.output)
