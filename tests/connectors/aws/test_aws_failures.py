"""Partial failure: a denied service or an unreachable region leaves its scope's
sweep incomplete, reported per service and region, and nothing there goes stale."""

from __future__ import annotations

import json

import boto3
import pytest

from cmdb.connectors.aws import AwsConnector
from cmdb.connectors.base import Problem
from cmdb.errors import ConnectorError
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine
from tests.support import moto_post

from .aws_estate import ACCOUNT, build

REGION = "eu-west-1"
OTHER = "us-west-2"


def _db(region: str) -> str:
    rds = boto3.client("rds", region_name=region)
    return rds.create_db_instance(DBInstanceIdentifier="billing", Engine="postgres", DBInstanceClass="db.t3.micro",
                                  AllocatedStorage=20, MasterUsername="app",
                                  MasterUserPassword="example-password-1")["DBInstance"]["DBInstanceArn"]


def ec2_reported_everything(problems: list[Problem], scope: str) -> bool:
    return not any(p.location.startswith(f"{scope}/ec2:") for p in problems)


def test_a_denied_service_is_reported_and_marks_nothing_stale(
    aws_env: str, engine: SyncEngine, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    estate = build(REGION, full=False)
    db = _db(REGION)
    iam = boto3.client("iam")
    iam.create_user(UserName="cmdb-reader")
    iam.put_user_policy(UserName="cmdb-reader", PolicyName="read-but-not-rds", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                      {"Effect": "Deny", "Action": "rds:*", "Resource": "*"}],
    }))
    key = iam.create_access_key(UserName="cmdb-reader")["AccessKey"]
    first = engine.run(AwsConnector(regions=[REGION]))
    assert first.problems == []
    web2 = estate.arn("instance", estate.ids["web2"])
    boto3.client("ec2", region_name=REGION).terminate_instances(InstanceIds=[estate.ids["web2"]])

    # from now on moto checks every request against IAM, as AWS does
    moto_post(aws_env, "/moto-api/reset-auth", b"0")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    report = engine.run(AwsConnector(regions=[REGION]))

    scope = f"aws:{ACCOUNT}:{REGION}"
    assert report.run.scopes[scope] is False and report.run.status == "partial"
    denied = [p for p in report.problems if p.location.startswith(f"{scope}/rds:")]
    assert {p.location for p in denied} == {f"{scope}/rds:db_subnet_groups", f"{scope}/rds:db_clusters",
                                           f"{scope}/rds:db_instances"}
    assert all(p.reason.startswith("AccessDenied in Describe") for p in denied)
    assert any(p.location == f"aws:{scope}" and "rds:db_instances AccessDenied" in p.reason for p in report.problems)
    # moto gap: with IAM checks on, moto cannot verify the signature of REST-protocol requests
    # (EKS, Lambda, CloudFront, Route53): AWS would answer them; each is reported, none is hidden
    rest = {"eks:clusters", "lambda:functions", "cloudfront:distributions", "route53:hosted_zones"}
    others = [p for p in report.problems if p not in denied and not p.location.startswith("aws:aws:")]
    assert {p.location.rsplit("/", 1)[1] for p in others} <= rest
    assert ec2_reported_everything(report.problems, scope)
    # nothing in the incomplete scope went stale: not the database, not even the terminated instance
    assert report.counts["stale"] == 0
    assert {c.lifecycle_state for c in store.get_cis([db, web2]).values()} == {"active"}
    # what could be read was read
    assert store.get_cis([estate.arn("instance", estate.ids["web1"])])


def test_an_unreachable_region_is_incomplete_while_the_others_complete(
    aws_env: str, engine: SyncEngine, store: SqliteStore, closed_port_url: str
) -> None:
    here = build(REGION, full=False)
    there = build(OTHER, full=False, identity=here)
    first = engine.run(AwsConnector(regions=[REGION, OTHER]))
    assert first.problems == [] and all(first.run.scopes.values())
    ec2_here, ec2_there = boto3.client("ec2", region_name=REGION), boto3.client("ec2", region_name=OTHER)
    ec2_here.terminate_instances(InstanceIds=[here.ids["web2"]])
    ec2_there.terminate_instances(InstanceIds=[there.ids["web2"]])

    report = engine.run(AwsConnector(regions=[REGION, OTHER], endpoint_urls={OTHER: closed_port_url}, max_attempts=2))

    # the global scope is incomplete too: DNS records and CloudFront origins may point into that region
    assert report.run.scopes == {
        f"aws:{ACCOUNT}:global": False, f"aws:{ACCOUNT}:{REGION}": True, f"aws:{ACCOUNT}:{OTHER}": False}
    assert any(p.location == f"aws:aws:{ACCOUNT}:global" and f"region {OTHER} incomplete" in p.reason
               for p in report.problems)
    failed = [p for p in report.problems if p.location.startswith(f"aws:{ACCOUNT}:{OTHER}/")]
    assert any(p.location.endswith("/ec2:instances") for p in failed)
    assert all("EndpointConnectionError" in p.reason for p in failed)
    states = {c.id: c.lifecycle_state for c in store.get_cis(
        [here.arn("instance", here.ids["web2"]), there.arn("instance", there.ids["web2"]),
         there.arn("vpc", there.ids["vpc"])]).values()}
    assert states == {here.arn("instance", here.ids["web2"]): "stale",  # its region was swept completely
                      there.arn("instance", there.ids["web2"]): "active",
                      there.arn("vpc", there.ids["vpc"]): "active"}


def test_a_role_that_cannot_be_assumed_leaves_its_account_incomplete(
    aws_env: str, engine: SyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    iam = boto3.client("iam")
    iam.create_user(UserName="no-hops")
    iam.put_user_policy(UserName="no-hops", PolicyName="no-assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                      {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"}],
    }))
    key = iam.create_access_key(UserName="no-hops")["AccessKey"]
    moto_post(aws_env, "/moto-api/reset-auth", b"0")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    role = "arn:aws:iam::111111111111:role/cmdb-reader"

    report = engine.run(AwsConnector(regions=[REGION], assume_roles=[role], include_caller=False))

    assert report.run.scopes == {"aws:111111111111:global": False, f"aws:111111111111:{REGION}": False}
    (problem,) = [p for p in report.problems if p.location == "aws:111111111111/sts"]
    assert problem.reason.startswith(f"cannot assume {role}: AccessDenied")
    assert report.counts["created"] == 0


def test_no_credentials_at_all_is_one_clear_error(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ConnectorError, match="no AWS credentials found") as caught:
        list(AwsConnector(regions=[REGION]).sweep())
    assert "--profile" in caught.value.hint


def test_one_unreadable_bucket_is_left_as_it_was_while_the_others_update(
    aws_env: str, engine: SyncEngine, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    for name in ("acme-open", "acme-locked"):
        s3.create_bucket(Bucket=name)
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "Owner", "Value": "team-a"}]})
    iam = boto3.client("iam")
    iam.create_user(UserName="scanner")
    iam.put_user_policy(UserName="scanner", PolicyName="not-that-bucket", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                      {"Effect": "Deny", "Action": "s3:GetBucketTagging", "Resource": "arn:aws:s3:::acme-locked"}],
    }))
    key = iam.create_access_key(UserName="scanner")["AccessKey"]
    engine.run(AwsConnector(regions=[REGION]))
    for name in ("acme-open", "acme-locked"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "Owner", "Value": "team-b"}]})

    moto_post(aws_env, "/moto-api/reset-auth", b"0")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    report = engine.run(AwsConnector(regions=[REGION]))

    scope = f"aws:{ACCOUNT}:global"
    assert report.run.scopes[scope] is False
    (problem,) = [p for p in report.problems if "/s3:" in p.location]
    assert problem.location == f"{scope}/s3:buckets/bucket acme-locked"
    assert problem.reason.startswith("AccessDenied in GetBucketTagging") and problem.ci_id == "arn:aws:s3:::acme-locked"
    found = store.get_cis(["arn:aws:s3:::acme-open", "arn:aws:s3:::acme-locked"])
    assert found["arn:aws:s3:::acme-open"].owner == "team-b"
    assert found["arn:aws:s3:::acme-locked"].owner == "team-a"  # as it was: not blanked, not stale
    assert found["arn:aws:s3:::acme-locked"].lifecycle_state == "active"
