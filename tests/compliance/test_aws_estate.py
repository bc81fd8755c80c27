"""The rules, optimisation and classification on an estate discovered by the AWS connector from moto.

The estate is built with boto3 in moto, swept by ``cmdb.connectors.aws``, then
fixed in moto and swept again: every rule fires on the misconfiguration and
not on the fixed twin, and each finding is resolved at the second sweep.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from cmdb.compliance import evaluate, list_findings
from cmdb.compliance.classification import classify
from cmdb.compliance.metrics import CloudWatchCpu
from cmdb.compliance.optimisation import recommend
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .conftest import Clock

aws_connector = pytest.importorskip("cmdb.connectors.aws.connector", reason="the AWS connector is not in this installation")

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account


def _trust(principal: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]})


def _tags(**tags: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def build(ids: dict[str, str]) -> None:
    """Each misconfiguration next to its fixed twin."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{n}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
        for n, zone in enumerate("ab")
    ]
    ids["sg_ssh_open"] = ec2.create_security_group(GroupName="ssh-open", Description="bad", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=ids["sg_ssh_open"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ids["sg_pg_open"] = ec2.create_security_group(GroupName="pg-open", Description="bad", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=ids["sg_pg_open"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ids["sg_ok"] = ec2.create_security_group(GroupName="ssh-office", Description="good", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=ids["sg_ok"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.0/24"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

    run = ec2.run_instances(ImageId="ami-0abcdef1234567890", MinCount=2, MaxCount=2, InstanceType="m5.large",
                            SubnetId=subnets[0], SecurityGroupIds=[ids["sg_ok"]])
    ids["orphan"], ids["owned"] = (i["InstanceId"] for i in run["Instances"])
    ec2.create_tags(Resources=[ids["owned"]], Tags=_tags(Owner="team-web", Environment="production"))
    ids["vol_plain"] = ec2.create_volume(Size=20, AvailabilityZone=f"{REGION}a", Encrypted=False, VolumeType="gp3")["VolumeId"]
    ids["vol_ok"] = ec2.create_volume(Size=20, AvailabilityZone=f"{REGION}a", Encrypted=True, VolumeType="gp3")["VolumeId"]
    ec2.attach_volume(VolumeId=ids["vol_plain"], InstanceId=ids["owned"], Device="/dev/sdf")
    ec2.attach_volume(VolumeId=ids["vol_ok"], InstanceId=ids["owned"], Device="/dev/sdg")

    s3 = boto3.client("s3", region_name=REGION)
    for name in ("acme-public-site", "acme-private-data"):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(Owner="team-data")})
    s3.put_bucket_policy(Bucket="acme-public-site", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acme-public-site/*"}]}))

    rds = boto3.client("rds", region_name=REGION)
    rds.create_db_subnet_group(DBSubnetGroupName="db", DBSubnetGroupDescription="db", SubnetIds=subnets)
    for name, public, encrypted in (("orders-exposed", True, False), ("orders-ok", False, True)):
        rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
                               AllocatedStorage=20, MasterUsername="app", MasterUserPassword="not-a-secret-1",
                               DBSubnetGroupName="db", PubliclyAccessible=public, StorageEncrypted=encrypted,
                               Tags=_tags(Owner="team-data"))

    iam = boto3.client("iam")
    iam.create_role(RoleName="open-door", AssumeRolePolicyDocument=_trust({"AWS": "*"}), Tags=_tags(Owner="team-sec"))
    iam.create_role(RoleName="partner-audit", AssumeRolePolicyDocument=_trust({"AWS": "arn:aws:iam::210987654321:root"}),
                    Tags=_tags(Owner="team-sec"))

    elbv2 = boto3.client("elbv2", region_name=REGION)
    for name in ("web-plain", "web-tls"):
        lb = elbv2.create_load_balancer(Name=name, Subnets=subnets, Scheme="internet-facing", Tags=_tags(Owner="team-web"))
        ids[name] = lb["LoadBalancers"][0]["LoadBalancerArn"]
    ids["tg"] = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    for name in ("web-plain", "web-tls"):
        elbv2.create_listener(LoadBalancerArn=ids[name], Protocol="HTTP", Port=80,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": ids["tg"]}])
    acm = boto3.client("acm", region_name=REGION)
    ids["cert"] = acm.request_certificate(DomainName="shop.example.com")["CertificateArn"]
    elbv2.create_listener(LoadBalancerArn=ids["web-tls"], Protocol="HTTPS", Port=443, Certificates=[{"CertificateArn": ids["cert"]}],
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": ids["tg"]}])


def fix(ids: dict[str, str]) -> None:
    """What the owners did after reading the findings."""
    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.revoke_security_group_ingress(GroupId=ids["sg_ssh_open"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.revoke_security_group_ingress(GroupId=ids["sg_pg_open"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.create_tags(Resources=[ids["orphan"]], Tags=_tags(Owner="team-batch"))
    ec2.detach_volume(VolumeId=ids["vol_plain"], InstanceId=ids["owned"], Device="/dev/sdf")
    ec2.delete_volume(VolumeId=ids["vol_plain"])  # EBS cannot encrypt in place: replaced
    boto3.client("s3", region_name=REGION).delete_bucket_policy(Bucket="acme-public-site")
    rds = boto3.client("rds", region_name=REGION)
    rds.delete_db_instance(DBInstanceIdentifier="orders-exposed", SkipFinalSnapshot=True)  # restored encrypted elsewhere
    boto3.client("iam").update_assume_role_policy(RoleName="open-door", PolicyDocument=_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))
    boto3.client("elbv2", region_name=REGION).create_listener(
        LoadBalancerArn=ids["web-plain"], Protocol="HTTPS", Port=443, Certificates=[{"CertificateArn": ids["cert"]}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": ids["tg"]}])


def sweep(engine: SyncEngine) -> None:
    report = engine.run(aws_connector.AwsConnector(regions=[REGION]))
    assert report.run.status == "complete", report.problems


def ec2_arn(kind: str, resource: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/{resource}"


def test_rules_on_a_discovered_aws_estate_fire_and_resolve(aws: str, store: SqliteStore, clock: Clock) -> None:
    ids: dict[str, str] = {}
    build(ids)
    engine = SyncEngine(store, clock=clock)
    sweep(engine)
    classify(store, engine)  # the attached, untagged volume takes its instance's owner
    first = clock()
    evaluate(store, at=first)
    found = {(f.rule_id, f.ci_id) for f in list_findings(store, at=first)}
    expected = {
        ("network.open-admin-ports", ec2_arn("security-group", ids["sg_ssh_open"])),
        ("network.open-database-ports", ec2_arn("security-group", ids["sg_pg_open"])),
        ("storage.unencrypted-volume", ec2_arn("volume", ids["vol_plain"])),
        ("storage.public-bucket", "arn:aws:s3:::acme-public-site"),
        ("database.unencrypted-storage", f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders-exposed"),
        ("aws.rds.publicly-accessible", f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders-exposed"),
        ("aws.iam.role-trusts-any-principal", f"arn:aws:iam::{ACCOUNT}:role/open-door"),
        ("network.lb-without-tls", ids["web-plain"]),
        ("governance.missing-owner", ec2_arn("instance", ids["orphan"])),
    }
    assert expected <= found, expected - found
    twins = {ec2_arn("security-group", ids["sg_ok"]), ec2_arn("volume", ids["vol_ok"]), "arn:aws:s3:::acme-private-data",
             f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders-ok", f"arn:aws:iam::{ACCOUNT}:role/partner-audit", ids["web-tls"],
             ec2_arn("instance", ids["owned"])}
    assert not [f for f in found if f[1] in twins], [f for f in found if f[1] in twins]

    fix(ids)
    clock.advance(hours=4)
    sweep(engine)
    second = clock()
    report = evaluate(store, at=second)
    resolved = {(f.rule_id, f.ci_id): f for f in report.resolved}
    assert expected <= set(resolved), expected - set(resolved)
    assert all(f.resolved_at == second and f.first_seen == first for f in resolved.values())
    still = {(f.rule_id, f.ci_id) for f in list_findings(store, at=second)}
    assert not still & expected


def test_idle_instances_and_owner_inheritance_on_a_discovered_estate(aws: str, store: SqliteStore) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    run = ec2.run_instances(ImageId="ami-0abcdef1234567890", MinCount=2, MaxCount=2, InstanceType="m5.large",
                            TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(Owner="team-batch")}])
    idle, busy = (i["InstanceId"] for i in run["Instances"])
    volume = ec2.create_volume(Size=100, AvailabilityZone=run["Instances"][0]["Placement"]["AvailabilityZone"], VolumeType="gp3")["VolumeId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=idle, Device="/dev/sdf")
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    end = datetime.now(UTC)
    for instance, level in ((idle, 1.0), (busy, 30.0)):
        cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=[
            {"MetricName": "CPUUtilization", "Dimensions": [{"Name": "InstanceId", "Value": instance}],
             "Timestamp": end - timedelta(days=day, hours=3), "Value": level + day % 3 * 0.5, "Unit": "Percent"}
            for day in range(14)])
    engine = SyncEngine(store)
    sweep(engine)

    found = recommend(store, cpu=[CloudWatchCpu()], kinds=["idle-compute"])
    assert [r.ci_id for r in found] == [ec2_arn("instance", idle)]
    assert found[0].owner == "team-batch" and found[0].monthly_cost is not None

    # The volume has no tags of its own: it inherits its instance's owner along DEPENDS_ON.
    classify(store, engine)
    stored = store.get_cis([ec2_arn("volume", volume)])[ec2_arn("volume", volume)]
    assert stored.owner == "team-batch"
    assert stored.provenance["owner"] == f"inherited:{ec2_arn('instance', idle)}"
