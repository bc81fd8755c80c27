"""CloudFront: origins of a failover origin group are redundant (ROUTES_TO, any-of)."""

from __future__ import annotations

import boto3

from cmdb.connectors.aws import AwsConnector
from cmdb.model import Evidence
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

REGION = "eu-west-1"


def test_failover_origins_route_and_a_lone_origin_is_needed(aws_env: str, engine: SyncEngine, store: SqliteStore) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for name in ("site-primary", "site-secondary", "site-logs"):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    origin = {"S3OriginConfig": {"OriginAccessIdentity": ""}}
    dist = boto3.client("cloudfront").create_distribution(DistributionConfig={
        "CallerReference": "site", "Comment": "site", "Enabled": True,
        "Origins": {"Quantity": 3, "Items": [
            {"Id": "primary", "DomainName": "site-primary.s3.amazonaws.com", **origin},
            {"Id": "secondary", "DomainName": f"site-secondary.s3.{REGION}.amazonaws.com", **origin},
            {"Id": "logs", "DomainName": "site-logs.s3.amazonaws.com", **origin}]},
        "OriginGroups": {"Quantity": 1, "Items": [{
            "Id": "failover", "FailoverCriteria": {"StatusCodes": {"Quantity": 2, "Items": [500, 503]}},
            "Members": {"Quantity": 2, "Items": [{"OriginId": "primary"}, {"OriginId": "secondary"}]}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "primary", "ViewerProtocolPolicy": "https-only",
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                 "MinTTL": 0, "TrustedSigners": {"Enabled": False, "Quantity": 0}},
    })["Distribution"]["ARN"]

    report = engine.run(AwsConnector(regions=[REGION]))

    assert report.problems == []
    keys = [(dist, "ROUTES_TO", "arn:aws:s3:::site-primary"), (dist, "ROUTES_TO", "arn:aws:s3:::site-secondary"),
            (dist, "DEPENDS_ON", "arn:aws:s3:::site-logs")]
    found = store.get_relationships(keys)
    assert set(found) == set(keys)
    assert found[keys[1]].evidence == (
        Evidence("Origins.Items[].DomainName", f"site-secondary.s3.{REGION}.amazonaws.com"),)
    assert found[keys[1]].impact == "any" and found[keys[2]].impact == "all"
