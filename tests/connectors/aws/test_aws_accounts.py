"""Several accounts (through sts:AssumeRole) and several regions in one run."""

from __future__ import annotations

import boto3

from cmdb.connectors.aws import AwsConnector
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .aws_estate import ACCOUNT, build

REGIONS = ["eu-west-1", "us-west-2"]
MEMBER = "111111111111"
ROLE = f"arn:aws:iam::{MEMBER}:role/cmdb-reader"


def test_assumed_role_accounts_and_regions_are_separate_scopes(
    aws_env: str, engine: SyncEngine, store: SqliteStore
) -> None:
    caller = build(REGIONS[0], full=False)
    creds = boto3.client("sts").assume_role(RoleArn=ROLE, RoleSessionName="estate-setup")["Credentials"]
    member_session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                   aws_session_token=creds["SessionToken"])
    member_here = build(REGIONS[0], member_session, account=MEMBER, full=False)
    member_there = build(REGIONS[1], member_session, account=MEMBER, full=False, identity=member_here)

    report = engine.run(AwsConnector(regions=REGIONS, assume_roles=[ROLE]))

    assert report.problems == []
    assert report.run.scopes == {f"aws:{account}:{where}": True
                                 for account in (ACCOUNT, MEMBER) for where in ("global", *REGIONS)}
    for estate, region in ((caller, REGIONS[0]), (member_here, REGIONS[0]), (member_there, REGIONS[1])):
        instance_id = estate.arn("instance", estate.ids["web1"])
        assert instance_id.startswith(f"arn:aws:ec2:{region}:{estate.account}:instance/i-")
        (found,) = store.get_cis([instance_id]).values()
        assert (found.scope, found.region) == (f"aws:{estate.account}:{region}", region)
        subnet = estate.arn("subnet", estate.ids["subnet0"])
        assert store.get_relationships([(instance_id, "CONTAINED_IN", subnet)])
    # each account's roles are its own CIs
    roles = {ci.id for ci in store.iter_cis() if ci.type == "aws.iam.role"}
    assert f"arn:aws:iam::{ACCOUNT}:role/web-instance" in roles
    assert f"arn:aws:iam::{MEMBER}:role/web-instance" in roles
    member_root = store.get_cis([f"arn:aws:iam::{MEMBER}:root"])
    assert [c.scope for c in member_root.values()] == [f"aws:{MEMBER}:global"]


def test_only_assumed_accounts_when_the_caller_is_left_out(aws_env: str, engine: SyncEngine) -> None:
    report = engine.run(AwsConnector(regions=REGIONS[:1], assume_roles=[ROLE], include_caller=False))
    assert set(report.run.scopes) == {f"aws:{MEMBER}:global", f"aws:{MEMBER}:{REGIONS[0]}"}


def test_default_regions_are_the_enabled_ones_of_the_callers_partition() -> None:
    from cmdb.connectors.aws.connector import in_partition

    assert in_partition("eu-west-1", "aws") and in_partition("il-central-1", "aws")
    assert not in_partition("cn-north-1", "aws") and not in_partition("us-gov-west-1", "aws")
    assert in_partition("cn-northwest-1", "aws-cn") and not in_partition("eu-west-1", "aws-cn")
    assert in_partition("us-gov-east-1", "aws-us-gov")


def _table(region: str, name: str) -> str:
    return boto3.client("dynamodb", region_name=region).create_table(
        TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]


def test_same_named_resources_in_two_regions_stay_two_cis(aws_env: str, engine: SyncEngine, store: SqliteStore) -> None:
    first, second = _table(REGIONS[0], "orders"), _table(REGIONS[1], "orders")
    for _ in range(2):
        report = engine.run(AwsConnector(regions=REGIONS))
        assert report.problems == []
    found = store.get_cis([first, second])
    assert {c.region for c in found.values()} == set(REGIONS)
    assert all(c.aliases == ("orders",) for c in found.values())


def test_a_hand_kept_ci_naming_an_instance_is_the_same_ci(aws_env: str, engine: SyncEngine, store: SqliteStore) -> None:
    from cmdb.model import CI

    reply = boto3.client("ec2", region_name=REGIONS[0]).run_instances(
        ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1)["Instances"][0]
    engine.edit(actor="alice", cis=[CI(id="legacy-billing-vm", type="compute.vm", name="billing",
                                       aliases=(reply["InstanceId"],), owner="team-billing")])
    for _ in range(2):
        engine.run(AwsConnector(regions=REGIONS[:1]))
    (merged,) = store.get_cis(["legacy-billing-vm"]).values()
    arn = f"arn:aws:ec2:{REGIONS[0]}:{ACCOUNT}:instance/{reply['InstanceId']}"
    assert merged.type == "aws.ec2.instance" and arn in merged.aliases and "aws" in merged.sources
    assert not store.get_cis([arn])  # folded into the hand-kept CI, not a second one
