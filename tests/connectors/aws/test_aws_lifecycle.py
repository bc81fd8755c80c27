"""Re-syncs: what is deleted in AWS goes stale (an unchanged estate: test_aws_discovery)."""

from __future__ import annotations

import boto3

from cmdb.connectors.aws import AwsConnector
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .aws_estate import build

REGION = "eu-west-1"


def test_deleted_resources_go_stale_and_nothing_else(aws_env: str, engine: SyncEngine, store: SqliteStore) -> None:
    estate = build(REGION, full=False)
    ec2 = boto3.client("ec2", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(TableName="scratch", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    engine.run(AwsConnector(regions=[REGION]))
    web2 = estate.arn("instance", estate.ids["web2"])
    table = f"arn:aws:dynamodb:{REGION}:{estate.account}:table/scratch"
    assert store.get_cis([web2, table]).keys() == {web2, table}

    ec2.terminate_instances(InstanceIds=[estate.ids["web2"]])
    dynamodb.delete_table(TableName="scratch")
    report = engine.run(AwsConnector(regions=[REGION]))

    assert report.problems == [] and all(report.run.scopes.values())
    assert report.counts["created"] == 0
    stale = [c for c in store.iter_cis() if c.lifecycle_state == "stale"]
    # the instance, the table, and the root volume that went with the instance
    assert sorted(c.type for c in stale) == ["aws.dynamodb.table", "aws.ec2.instance", "aws.ec2.volume"]
    assert report.counts["stale"] == 3
    gone = store.get_cis([web2, table])
    assert {c.lifecycle_state for c in gone.values()} == {"stale"}
    assert all(c.stale_since is not None for c in gone.values())
    web1 = store.get_cis([estate.arn("instance", estate.ids["web1"])])
    assert [c.lifecycle_state for c in web1.values()] == ["active"]
    # its links went stale with it (marked, never erased)
    links = store.relationships([web2], "out", include_inactive=True)
    assert links and {r.lifecycle_state for r in links} == {"stale"}
