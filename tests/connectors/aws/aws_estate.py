"""Builds a realistic small estate in moto with boto3, and remembers its ids."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import boto3

ACCOUNT = "123456789012"
TAGS = {"Owner": "team-payments", "CostCenter": "cc-4711", "Environment": "production", "BusinessUnit": "retail"}


def _tags(name: str, **extra: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in {"Name": name, **TAGS, **extra}.items()]


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def trust(principal: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]})


@dataclass
class Estate:
    region: str
    account: str = ACCOUNT
    ids: dict[str, str] = field(default_factory=dict)

    def arn(self, kind: str, resource_id: str) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account}:{kind}/{resource_id}"


def build_network(session: Any, region: str, estate: Estate, prefix: str = "10.0") -> None:
    ec2 = session.client("ec2", region_name=region)
    ids = estate.ids
    ids["vpc"] = ec2.create_vpc(CidrBlock=f"{prefix}.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": _tags("prod-vpc")}])["Vpc"]["VpcId"]
    zones = [f"{region}a", f"{region}b"]
    for n, zone in enumerate(zones):
        ids[f"subnet{n}"] = ec2.create_subnet(VpcId=ids["vpc"], CidrBlock=f"{prefix}.{n}.0/24", AvailabilityZone=zone,
                                              TagSpecifications=[{"ResourceType": "subnet",
                                                                  "Tags": _tags(f"prod-{zone}")}])["Subnet"]["SubnetId"]
    ids["igw"] = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=ids["igw"], VpcId=ids["vpc"])
    ids["rt_public"] = ec2.create_route_table(VpcId=ids["vpc"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=ids["rt_public"], DestinationCidrBlock="0.0.0.0/0", GatewayId=ids["igw"])
    ec2.associate_route_table(RouteTableId=ids["rt_public"], SubnetId=ids["subnet0"])
    ids["nat_eip"] = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ids["nat"] = ec2.create_nat_gateway(SubnetId=ids["subnet0"], AllocationId=ids["nat_eip"])["NatGateway"]["NatGatewayId"]
    ids["rt_private"] = ec2.create_route_table(VpcId=ids["vpc"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=ids["rt_private"], DestinationCidrBlock="0.0.0.0/0", NatGatewayId=ids["nat"])
    ec2.associate_route_table(RouteTableId=ids["rt_private"], SubnetId=ids["subnet1"])
    ids["sg_web"] = ec2.create_security_group(GroupName="web", Description="web tier", VpcId=ids["vpc"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=ids["sg_web"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
    ])
    ids["sg_db"] = ec2.create_security_group(GroupName="db", Description="database tier", VpcId=ids["vpc"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=ids["sg_db"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": ids["sg_web"]}]},
    ])


def build_identity(session: Any, estate: Estate) -> None:
    iam = session.client("iam")
    ids = estate.ids
    ids["role_ec2"] = iam.create_role(RoleName="web-instance", AssumeRolePolicyDocument=trust(
        {"Service": "ec2.amazonaws.com"}), Tags=[{"Key": "Owner", "Value": "team-platform"}])["Role"]["Arn"]
    ids["profile"] = iam.create_instance_profile(InstanceProfileName="web-instance")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="web-instance", RoleName="web-instance")
    ids["role_lambda"] = iam.create_role(RoleName="orders-fn", AssumeRolePolicyDocument=trust(
        {"Service": "lambda.amazonaws.com"}))["Role"]["Arn"]
    ids["role_eks"] = iam.create_role(RoleName="eks-cluster", AssumeRolePolicyDocument=trust(
        {"Service": "eks.amazonaws.com"}))["Role"]["Arn"]
    ids["role_nodes"] = iam.create_role(RoleName="eks-nodes", AssumeRolePolicyDocument=trust(
        {"Service": "ec2.amazonaws.com"}))["Role"]["Arn"]
    ids["role_audit"] = iam.create_role(RoleName="audit", AssumeRolePolicyDocument=trust(
        {"AWS": "arn:aws:iam::210987654321:root"}))["Role"]["Arn"]


def build_compute(session: Any, region: str, estate: Estate) -> None:
    ec2 = session.client("ec2", region_name=region)
    ids = estate.ids
    run = ec2.run_instances(
        ImageId="ami-0abcdef1234567890", MinCount=2, MaxCount=2, InstanceType="t3.medium", SubnetId=ids["subnet0"],
        SecurityGroupIds=[ids["sg_web"]], IamInstanceProfile={"Arn": ids["profile"]},
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tags("web")}],
    )
    ids["web1"], ids["web2"] = (i["InstanceId"] for i in run["Instances"])
    ids["web1_dns"] = run["Instances"][0]["PrivateDnsName"]
    ids["web1_eni"] = run["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ids["ami"] = ec2.create_image(InstanceId=ids["web1"], Name="web-golden-2026-11")["ImageId"]
    ids["volume"] = ec2.create_volume(Size=50, AvailabilityZone=f"{region}a", Encrypted=True, VolumeType="gp3",
                                      TagSpecifications=[{"ResourceType": "volume",
                                                          "Tags": _tags("web1-data")}])["VolumeId"]
    ec2.attach_volume(VolumeId=ids["volume"], InstanceId=ids["web1"], Device="/dev/sdf")
    ids["snapshot"] = ec2.create_snapshot(VolumeId=ids["volume"], Description="nightly")["SnapshotId"]
    ids["eip"] = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=ids["eip"], InstanceId=ids["web1"])
    node = ec2.run_instances(
        ImageId=ids["ami"], MinCount=1, MaxCount=1, InstanceType="m5.large", SubnetId=ids["subnet1"],
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(
            "node", **{"eks:cluster-name": "payments", "eks:nodegroup-name": "general"})}],
    )
    ids["node"] = node["Instances"][0]["InstanceId"]


def build_edge(session: Any, region: str, estate: Estate) -> None:
    elbv2 = session.client("elbv2", region_name=region)
    ids = estate.ids
    lb = elbv2.create_load_balancer(Name="web-alb", Subnets=[ids["subnet0"], ids["subnet1"]],
                                    SecurityGroups=[ids["sg_web"]], Scheme="internet-facing",
                                    Tags=[{"Key": "Owner", "Value": "team-web"}])["LoadBalancers"][0]
    ids["alb"], ids["alb_dns"] = lb["LoadBalancerArn"], lb["DNSName"]
    tg = elbv2.create_target_group(Name="web-tg", Protocol="HTTP", Port=80, VpcId=ids["vpc"],
                                   TargetType="instance")["TargetGroups"][0]
    ids["tg"] = tg["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=ids["tg"], Targets=[{"Id": ids["web1"]}, {"Id": ids["web2"]}])
    ids["listener"] = elbv2.create_listener(LoadBalancerArn=ids["alb"], Protocol="HTTP", Port=80, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": ids["tg"]}])["Listeners"][0]["ListenerArn"]
    elb = session.client("elb", region_name=region)
    ids["clb_dns"] = elb.create_load_balancer(
        LoadBalancerName="legacy-web", Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}],
        Subnets=[ids["subnet0"]], SecurityGroups=[ids["sg_web"]], Tags=[{"Key": "team", "Value": "team-legacy"}],
    )["DNSName"]
    elb.register_instances_with_load_balancer(LoadBalancerName="legacy-web", Instances=[{"InstanceId": ids["web2"]}])


def build_data(session: Any, region: str, estate: Estate) -> None:
    rds = session.client("rds", region_name=region)
    ids = estate.ids
    rds.create_db_subnet_group(DBSubnetGroupName="prod-db", DBSubnetGroupDescription="prod",
                               SubnetIds=[ids["subnet0"], ids["subnet1"]])
    db = rds.create_db_instance(
        DBInstanceIdentifier="orders-db", Engine="postgres", DBInstanceClass="db.m5.large", AllocatedStorage=100,
        MasterUsername="app", MasterUserPassword="hunter2hunter2", StorageEncrypted=True, PubliclyAccessible=False,
        DBSubnetGroupName="prod-db", VpcSecurityGroupIds=[ids["sg_db"]], Tags=_tags("orders-db"),
    )["DBInstance"]
    ids["rds"] = db["DBInstanceArn"]
    ids["rds_endpoint"] = rds.describe_db_instances(DBInstanceIdentifier="orders-db")["DBInstances"][0]["Endpoint"][
        "Address"]
    cluster = rds.create_db_cluster(
        DBClusterIdentifier="ledger", Engine="aurora-postgresql", MasterUsername="app",
        MasterUserPassword="hunter2hunter2", StorageEncrypted=True, DBSubnetGroupName="prod-db",
        VpcSecurityGroupIds=[ids["sg_db"]], Tags=_tags("ledger"),
    )["DBCluster"]
    ids["aurora"], ids["aurora_endpoint"], ids["aurora_reader"] = (
        cluster["DBClusterArn"], cluster["Endpoint"], cluster["ReaderEndpoint"])
    for n in (1, 2):
        member = rds.create_db_instance(DBInstanceIdentifier=f"ledger-{n}", DBClusterIdentifier="ledger",
                                        Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")["DBInstance"]
        ids[f"aurora{n}"] = member["DBInstanceArn"]
    dynamodb = session.client("dynamodb", region_name=region)
    table = dynamodb.create_table(
        TableName=f"orders-{region}", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}, Tags=_tags("orders"),
    )["TableDescription"]
    ids["table"], ids["table_name"], ids["stream"] = table["TableArn"], table["TableName"], table["LatestStreamArn"]
    cache = session.client("elasticache", region_name=region)
    cc = cache.create_cache_cluster(CacheClusterId="sessions", Engine="redis", CacheNodeType="cache.t3.micro",
                                    NumCacheNodes=1, SecurityGroupIds=[ids["sg_db"]])["CacheCluster"]
    ids["cache"] = cc["ARN"]
    ids["cache_group"] = cache.create_replication_group(
        ReplicationGroupId="carts", ReplicationGroupDescription="shopping carts", Engine="redis",
        CacheNodeType="cache.t3.micro", NumCacheClusters=2,
    )["ReplicationGroup"]["ARN"]


def build_buckets(session: Any, estate: Estate, region: str) -> None:
    s3 = session.client("s3", region_name=region)
    ids = estate.ids
    where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    ids["bucket_web"] = f"acme-web-assets-{estate.account}"
    ids["bucket_data"] = f"acme-data-{estate.account}"
    s3.create_bucket(Bucket=ids["bucket_web"], **where)
    s3.put_bucket_policy(Bucket=ids["bucket_web"], Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{ids['bucket_web']}/*"}]}))
    s3.put_bucket_tagging(Bucket=ids["bucket_web"], Tagging={"TagSet": [{"Key": "owner", "Value": "team-web"}]})
    s3.create_bucket(Bucket=ids["bucket_data"], **where)
    s3.put_bucket_encryption(Bucket=ids["bucket_data"], ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/data"}}]})
    s3.put_bucket_versioning(Bucket=ids["bucket_data"], VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(Bucket=ids["bucket_data"], PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})


def build_apps(session: Any, region: str, estate: Estate) -> None:
    ids = estate.ids
    eks = session.client("eks", region_name=region)
    cluster = eks.create_cluster(name="payments", roleArn=ids["role_eks"], resourcesVpcConfig={
        "subnetIds": [ids["subnet0"], ids["subnet1"]], "securityGroupIds": [ids["sg_web"]]},
        tags={"Owner": "team-platform"})["cluster"]
    ids["eks"] = cluster["arn"]
    ids["eks_endpoint"] = cluster.get("endpoint", "")
    ids["nodegroup"] = eks.create_nodegroup(clusterName="payments", nodegroupName="general", nodeRole=ids["role_nodes"],
                                            subnets=[ids["subnet1"]], instanceTypes=["m5.large"],
                                            scalingConfig={"minSize": 1, "maxSize": 3, "desiredSize": 1})[
        "nodegroup"]["nodegroupArn"]
    ecs = session.client("ecs", region_name=region)
    ids["ecs_cluster"] = ecs.create_cluster(clusterName="shop")["cluster"]["clusterArn"]
    ecs.register_task_definition(family="shop-web", networkMode="awsvpc", containerDefinitions=[
        {"name": "web", "image": "nginx:1.27", "memory": 256, "portMappings": [{"containerPort": 80}]}])
    ids["ecs_service"] = ecs.create_service(
        cluster="shop", serviceName="shop-web", taskDefinition="shop-web", desiredCount=2, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [ids["subnet1"]], "securityGroups": [ids["sg_web"]]}},
        loadBalancers=[{"targetGroupArn": ids["tg"], "containerName": "web", "containerPort": 80}],
    )["service"]["serviceArn"]
    lam = session.client("lambda", region_name=region)
    fn = lam.create_function(
        FunctionName="orders-api", Runtime="python3.12", Role=ids["role_lambda"], Handler="handler.handler",
        Code={"ZipFile": _zip()}, MemorySize=512, Timeout=30,
        VpcConfig={"SubnetIds": [ids["subnet0"], ids["subnet1"]], "SecurityGroupIds": [ids["sg_web"]]},
        Environment={"Variables": {
            "DB_HOST": ids["rds_endpoint"],
            "LEDGER_URL": f"postgres://app:hunter2hunter2@{ids['aurora_endpoint']}:5432/ledger",
            "ORDERS_TABLE": ids["table_name"],
            "EXPORT_BUCKET": f"s3://{ids['bucket_data']}/exports/",
            "DB_PASSWORD": "hunter2hunter2",
            "CACHE_SECRET": ids["rds_endpoint"],
            "LOG_LEVEL": "info",
        }},
        Tags={"Owner": "team-orders", "cost-center": "cc-9"},
    )
    ids["lambda"] = fn["FunctionArn"]
    lam.create_event_source_mapping(EventSourceArn=ids["stream"], FunctionName="orders-api", StartingPosition="LATEST")


def build_global_edge(session: Any, estate: Estate) -> None:
    ids = estate.ids
    cloudfront = session.client("cloudfront")
    dist = cloudfront.create_distribution(DistributionConfig={
        "CallerReference": "web-1", "Comment": "web", "Enabled": True, "Aliases": {"Quantity": 1, "Items": ["www.example.com"]},
        "Origins": {"Quantity": 2, "Items": [
            {"Id": "assets", "DomainName": f"{ids['bucket_web']}.s3.amazonaws.com",
             "S3OriginConfig": {"OriginAccessIdentity": ""}},
            {"Id": "app", "DomainName": ids["alb_dns"],
             "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}},
        ]},
        "DefaultCacheBehavior": {"TargetOriginId": "assets", "ViewerProtocolPolicy": "redirect-to-https",
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                 "MinTTL": 0, "TrustedSigners": {"Enabled": False, "Quantity": 0}},
    })["Distribution"]
    ids["cloudfront"], ids["cloudfront_domain"] = dist["ARN"], dist["DomainName"]
    route53 = session.client("route53")
    zone = route53.create_hosted_zone(Name="example.com", CallerReference="zone-1")["HostedZone"]
    ids["zone"] = zone["Id"].rsplit("/", 1)[-1]
    route53.change_resource_record_sets(HostedZoneId=ids["zone"], ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": "app.example.com", "Type": "A", "AliasTarget": {
            "HostedZoneId": "Z32O12XQLNTSW2", "DNSName": f"dualstack.{ids['alb_dns']}", "EvaluateTargetHealth": True}}},
        {"Action": "CREATE", "ResourceRecordSet": {"Name": "www.example.com", "Type": "CNAME", "TTL": 300,
                                                   "ResourceRecords": [{"Value": ids["cloudfront_domain"]}]}},
    ]})


_IDENTITY = ("role_ec2", "profile", "role_lambda", "role_eks", "role_nodes", "role_audit")


def build(region: str = "eu-west-1", session: Any = None, *, account: str = ACCOUNT, full: bool = True,
          identity: Estate | None = None) -> Estate:
    """The whole estate in one region of one account (plus its global services).

    ``full=False``: only network, identity and compute. ``identity``: an estate
    built before in the same account, whose roles and profile to reuse."""
    session = session or boto3.Session()
    estate = Estate(region, account)
    build_network(session, region, estate)
    if identity is None:
        build_identity(session, estate)
    else:
        estate.ids.update({k: identity.ids[k] for k in _IDENTITY})
    build_compute(session, region, estate)
    if full:
        build_edge(session, region, estate)
        build_data(session, region, estate)
        build_buckets(session, estate, region)
        build_apps(session, region, estate)
        build_global_edge(session, estate)
    return estate
