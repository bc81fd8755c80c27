"""Across clouds: an EKS cluster, its EC2 nodes and an RDS instance built in moto's server,
and the cluster's API replayed with the ids moto handed out; after syncing both the graph
reads from a business service down to the EC2 instance, and to the database.

The AWS side is discovered by the AWS connector (boto3 against moto) when it is part of
this installation; the ``file`` variant loads the same ARNs and aliases through the file
connector, so the inference is proven either way.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from cmdb.connectors.files import FileConnector
from cmdb.connectors.kubernetes import KubernetesConnector
from cmdb.inference import infer_links
from cmdb.model import Relationship
from cmdb.store import SqliteStore
from cmdb.store.base import RelFilter
from cmdb.sync import SyncEngine
from tests.support import point_boto3_at, reset_moto

from .conftest import write_kubeconfig
from .replay import KubeReplay, load_estate

REGION = "eu-west-1"
# what the recorded estate names, replaced by what moto hands out
RECORDED_INSTANCES = {
    "eu-west-1a": "i-0a1b2c3d4e5f60718",
    "eu-west-1b": "i-0b2c3d4e5f6071829",
    "eu-west-1c": "i-0c3d4e5f607182930",
}
RECORDED_RDS = "payments-db.c9akciq32xyz.eu-west-1.rds.amazonaws.com"
NODES = {"eu-west-1a": "ip-10-0-1-23", "eu-west-1b": "ip-10-0-2-57", "eu-west-1c": "ip-10-0-3-91"}
HAS_AWS_CONNECTOR = importlib.util.find_spec("cmdb.connectors.aws") is not None


@dataclass
class AwsEstate:
    account: str
    instances: dict[str, str]  # zone -> instance id
    instance_arns: dict[str, str]
    eks_arn: str
    eks_endpoint: str
    rds_arn: str
    rds_endpoint: str


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AwsEstate]:
    point_boto3_at(moto_url, monkeypatch, tmp_path, REGION)
    try:
        yield build_aws()
    finally:
        reset_moto(moto_url)


def build_aws() -> AwsEstate:
    session = boto3.session.Session(region_name=REGION)
    account = session.client("sts").get_caller_identity()["Account"]
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {
        zone: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for n, zone in enumerate(NODES, start=1)
    }
    instances: dict[str, str] = {}
    for zone, subnet in subnets.items():
        run = ec2.run_instances(
            ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1, InstanceType="m6i.large", SubnetId=subnet,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": "Name", "Value": f"general-{zone}"}, {"Key": "eks:cluster-name", "Value": "prod-eu"}]}],
        )  # fmt: skip
        instances[zone] = run["Instances"][0]["InstanceId"]
    role = session.client("iam").create_role(
        RoleName="eks-cluster",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    cluster = session.client("eks").create_cluster(
        name="prod-eu", roleArn=role, resourcesVpcConfig={"subnetIds": list(subnets.values())}
    )["cluster"]
    rds = session.client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="payments-db", Engine="postgres", DBInstanceClass="db.m6g.large", AllocatedStorage=100,
        MasterUsername="payments_admin", MasterUserPassword="never-in-the-cmdb-0", StorageEncrypted=True,
    )  # fmt: skip
    db = rds.describe_db_instances(DBInstanceIdentifier="payments-db")["DBInstances"][0]
    return AwsEstate(
        account=account,
        instances=instances,
        instance_arns={z: f"arn:aws:ec2:{REGION}:{account}:instance/{i}" for z, i in instances.items()},
        eks_arn=cluster["arn"],
        eks_endpoint=cluster["endpoint"],
        rds_arn=db["DBInstanceArn"],
        rds_endpoint=db["Endpoint"]["Address"],
    )


def aws_as_file(aws: AwsEstate, folder: Path) -> Path:
    """The AWS CIs as the AWS connector names them, for an installation without it."""
    host = aws.eks_endpoint.split("://", 1)[-1].split("/", 1)[0].lower()
    cis: list[dict[str, Any]] = [
        *({"id": aws.instance_arns[zone], "type": "aws.ec2.instance", "provider": "aws", "region": REGION,
           "aliases": [instance]} for zone, instance in aws.instances.items()),
        {"id": aws.eks_arn, "type": "aws.eks.cluster", "provider": "aws", "region": REGION, "aliases": ["prod-eu", host],
         "attributes": {"endpoint": aws.eks_endpoint}},
        {"id": aws.rds_arn, "type": "aws.rds.db_instance", "provider": "aws", "region": REGION,
         "aliases": [aws.rds_endpoint], "attributes": {"endpoint": aws.rds_endpoint, "engine": "postgres"}},
    ]  # fmt: skip
    path = folder / "aws.yaml"
    path.write_text(yaml.safe_dump({"scope": f"aws:{aws.account}:{REGION}", "cis": cis}), encoding="utf-8")
    return path


def sync_aws(engine: SyncEngine, aws: AwsEstate, how: str, folder: Path) -> None:
    if how == "aws-connector":
        from cmdb.connectors.aws import AwsConnector

        report = engine.run(AwsConnector(regions=[REGION]))
    else:
        report = engine.run(FileConnector([aws_as_file(aws, folder)]))
    assert report.run.status == "complete", report.problems


def template(aws: AwsEstate) -> dict[str, Any]:
    """The recorded cluster with the instance ids and database endpoint moto handed out."""
    replace = {RECORDED_INSTANCES[zone]: aws.instances[zone] for zone in NODES}
    replace[RECORDED_RDS] = aws.rds_endpoint
    return load_estate("prod-eu", replace)


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("aws-connector", marks=pytest.mark.skipif(not HAS_AWS_CONNECTOR, reason="no AWS connector here")),
        "file",
    ],
)
def test_business_service_to_ec2_instance_and_rds_across_sources(
    how: str, aws: AwsEstate, replay: KubeReplay, store: SqliteStore, tmp_path: Path
) -> None:
    engine = SyncEngine(store, inferrer=infer_links)
    sync_aws(engine, aws, how, tmp_path)
    # aws eks update-kubeconfig names the cluster by its ARN
    cluster = aws.eks_arn
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {cluster: replay.serve("eks", template(aws))})
    report = engine.run(KubernetesConnector(kubeconfig, page_size=3))
    assert report.run.status == "complete", report.problems
    deployment = f"{cluster}/payments/deployment/payments-api"
    services = tmp_path / "services.yaml"
    services.write_text(yaml.safe_dump({
        "cis": [{"id": "svc-payments", "type": "service.business", "name": "Payments", "criticality": "critical"}],
        "relationships": [{"from": "svc-payments", "type": "DEPENDS_ON", "to": deployment, "evidence": "service catalogue"}],
    }), encoding="utf-8")  # fmt: skip
    assert engine.run(FileConnector([services])).run.status == "complete"

    # business service -> deployment -> replicaset -> pod -> node -> EC2 instance
    path = store.shortest_path("svc-payments", aws.instance_arns["eu-west-1a"], "out", max_depth=6)
    assert path is not None
    assert [r.type for r in path] == ["DEPENDS_ON", "DEPENDS_ON", "COMPOSED_OF", "RUNS_ON", "RUNS_ON"]
    assert path[1].to_id == f"{cluster}/payments/replicaset/payments-api-7d9f8b6c5"
    assert path[3].to_id == f"{cluster}/node/ip-10-0-1-23.eu-west-1.compute.internal"
    to_vm = path[-1]
    assert to_vm.inferred and to_vm.source == "inference" and 0.9 <= to_vm.confidence <= 1.0
    assert [(e.field, e.value) for e in to_vm.evidence] == [
        ("spec.providerID", f"aws:///eu-west-1a/{aws.instances['eu-west-1a']}")
    ]
    nodes = {
        rel.from_id: rel.to_id
        for rel in store.relationships(list(aws.instance_arns.values()), "in", types=["RUNS_ON"])
        if rel.inferred
    }
    assert nodes == {
        f"{cluster}/node/{NODES[z]}.eu-west-1.compute.internal": arn for z, arn in aws.instance_arns.items()
    }

    # deployment -> RDS, from the endpoint its env and ConfigMap name
    to_db = {r.to_id: r for r in store.relationships([deployment], "out") if r.inferred}
    assert set(to_db) == {aws.rds_arn}
    db_link: Relationship = to_db[aws.rds_arn]
    assert db_link.type == "DEPENDS_ON" and 0.8 <= db_link.confidence <= 1.0
    assert db_link.evidence[0].value == aws.rds_endpoint
    assert "env[" in db_link.evidence[0].field
    # the Kubernetes cluster runs on the EKS cluster it is named after
    to_eks = store.get_relationships([(f"k8s:{cluster}", "RUNS_ON", aws.eks_arn)])
    assert to_eks and next(iter(to_eks.values())).evidence[0].field == "cluster_name"
    # what the database's failure reaches: the deployment, and through it the business service
    reached = {hit.ci_id for hit in store.traverse([aws.rds_arn], "in", max_depth=3)}
    assert {deployment, "svc-payments", f"{cluster}/payments/service/payments-db"} <= reached
    # and nothing else was inferred: 6 links, 6 right
    everything = {r.key for r in store.iter_relationships(RelFilter(inferred=True))}
    assert everything == {
        *(
            (f"{cluster}/node/{NODES[z]}.eu-west-1.compute.internal", "RUNS_ON", arn)
            for z, arn in aws.instance_arns.items()
        ),
        (f"k8s:{cluster}", "RUNS_ON", aws.eks_arn),
        (deployment, "DEPENDS_ON", aws.rds_arn),
        (f"{cluster}/payments/service/payments-db", "DEPENDS_ON", aws.rds_arn),
    }
