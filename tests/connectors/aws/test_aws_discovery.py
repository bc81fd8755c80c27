"""Discovery of a whole estate: every CI type, relationship and attribute the issue names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cmdb.connectors.aws import AwsConnector
from cmdb.model import CI, Evidence
from cmdb.store import SqliteStore
from cmdb.store.base import CIFilter
from cmdb.sync import SyncEngine, SyncReport
from cmdb.vocabulary import vocabulary

from .aws_estate import ACCOUNT, Estate, build

REGION = "eu-west-1"
SCOPE = f"aws:{ACCOUNT}:{REGION}"
GLOBAL_SCOPE = f"aws:{ACCOUNT}:global"


@pytest.fixture(scope="module")
def discovered(aws_module_env: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Estate, SqliteStore, SyncReport, Path]]:
    """One estate, discovered once through the real sync engine; the tests below only read it."""
    estate = build(REGION)
    folder = tmp_path_factory.mktemp("store")
    store = SqliteStore(folder / "cmdb.db")
    # pages of 5 (RDS and ElastiCache: 20): every paginator is followed over several pages
    report = SyncEngine(store).run(AwsConnector(regions=[REGION], page_size=5))
    yield estate, store, report, folder
    store.close()


@pytest.fixture
def estate(discovered: tuple[Estate, SqliteStore, SyncReport, Path]) -> Estate:
    return discovered[0]


@pytest.fixture
def store(discovered: tuple[Estate, SqliteStore, SyncReport, Path]) -> SqliteStore:
    return discovered[1]


@pytest.fixture
def synced(discovered: tuple[Estate, SqliteStore, SyncReport, Path]) -> SyncReport:
    return discovered[2]


def ci(store: SqliteStore, ci_id: str) -> CI:
    found = store.get_cis([ci_id])
    assert ci_id in found, f"no CI {ci_id}; have {sorted(c.id for c in store.iter_cis())}"
    return found[ci_id]


def evidence(store: SqliteStore, from_id: str, rel_type: str, to_id: str) -> tuple[Evidence, ...]:
    rels = store.get_relationships([(from_id, rel_type, to_id)])
    assert (from_id, rel_type, to_id) in rels, (
        f"no {from_id} -{rel_type}-> {to_id}; out of it: "
        f"{[(r.type, r.to_id) for r in store.relationships([from_id], 'out')]}"
    )
    rel = rels[(from_id, rel_type, to_id)]
    assert rel.lifecycle_state == "active" and rel.source == "aws"
    return rel.evidence


def test_a_complete_sweep_of_region_and_global_scopes(synced: SyncReport) -> None:
    assert synced.problems == []
    assert synced.run.scopes == {GLOBAL_SCOPE: True, SCOPE: True}
    assert synced.run.status == "complete"


def test_every_ci_type_is_discovered(synced: SyncReport, store: SqliteStore) -> None:
    by_type = store.stats().by_type
    expected = {
        "aws.account", "aws.ec2.instance", "aws.ec2.image", "aws.ec2.volume", "aws.ec2.snapshot",
        "aws.ec2.network_interface", "aws.ec2.vpc", "aws.ec2.subnet", "aws.ec2.route_table",
        "aws.ec2.internet_gateway", "aws.ec2.nat_gateway", "aws.ec2.security_group", "aws.ec2.elastic_ip",
        "aws.elbv2.load_balancer", "aws.elbv2.listener", "aws.elbv2.target_group", "aws.elb.load_balancer",
        "aws.cloudfront.distribution", "aws.route53.hosted_zone", "aws.route53.record", "aws.rds.db_instance",
        "aws.rds.db_cluster", "aws.rds.db_subnet_group", "aws.dynamodb.table", "aws.s3.bucket",
        "aws.elasticache.cluster", "aws.eks.cluster", "aws.eks.nodegroup", "aws.ecs.cluster", "aws.ecs.service",
        "aws.lambda.function", "aws.iam.role", "aws.iam.instance_profile",
    }
    assert expected <= set(by_type), expected - set(by_type)
    # and every AWS type the vocabulary declares is one the connector fills
    declared = {name for name in vocabulary().types if name.startswith("aws.")}
    assert declared == set(by_type), declared ^ set(by_type)
    assert by_type["aws.ec2.instance"] == 3
    assert by_type["aws.rds.db_instance"] == 3  # orders-db and two Aurora members


def test_instance_ids_aliases_tags_and_attributes(synced: SyncReport, store: SqliteStore, estate: Estate) -> None:
    web1 = ci(store, estate.arn("instance", estate.ids["web1"]))
    assert web1.type == "aws.ec2.instance" and web1.provider == "aws"
    assert web1.scope == SCOPE and web1.region == REGION and web1.name == "web"
    assert estate.ids["web1"] in web1.aliases and estate.ids["web1_dns"] in web1.aliases
    assert (web1.owner, web1.cost_centre, web1.environment, web1.business_unit) == (
        "team-payments", "cc-4711", "production", "retail")
    assert web1.tags["Owner"] == "team-payments"
    assert web1.attributes["instance_type"] == "t3.medium"
    assert web1.attributes["state"] == "running"
    assert web1.attributes["subnet_id"] == estate.ids["subnet0"]


def test_compute_and_network_relationships(synced: SyncReport, store: SqliteStore, estate: Estate) -> None:
    ids, arn = estate.ids, estate.arn
    web1 = arn("instance", ids["web1"])
    subnet, vpc = arn("subnet", ids["subnet0"]), arn("vpc", ids["vpc"])
    assert evidence(store, web1, "CONTAINED_IN", subnet) == (Evidence("SubnetId", ids["subnet0"]),)
    assert evidence(store, subnet, "CONTAINED_IN", vpc) == (Evidence("VpcId", ids["vpc"]),)
    assert evidence(store, web1, "SECURED_BY", arn("security-group", ids["sg_web"])) == (
        Evidence("SecurityGroups[].GroupId", ids["sg_web"]),)
    assert evidence(store, web1, "DEPENDS_ON", arn("volume", ids["volume"])) == (
        Evidence("BlockDeviceMappings[].Ebs.VolumeId", ids["volume"]),)
    assert evidence(store, web1, "DEPENDS_ON", arn("network-interface", ids["web1_eni"])) == (
        Evidence("NetworkInterfaces[].NetworkInterfaceId", ids["web1_eni"]),)
    assert evidence(store, web1, "DEPENDS_ON", ids["profile"]) == (Evidence("IamInstanceProfile.Arn", ids["profile"]),)
    assert evidence(store, ids["profile"], "DEPENDS_ON", ids["role_ec2"]) == (Evidence("Roles[].Arn", ids["role_ec2"]),)
    assert evidence(store, web1, "DEPENDS_ON", arn("elastic-ip", ids["eip"])) == (Evidence("InstanceId", ids["web1"]),)
    eni = arn("network-interface", ids["web1_eni"])
    assert evidence(store, eni, "CONTAINED_IN", subnet) == (Evidence("SubnetId", ids["subnet0"]),)
    # the node was launched from an AMI made of web1
    image = f"arn:aws:ec2:{REGION}::image/{ids['ami']}"
    node = arn("instance", ids["node"])
    assert evidence(store, node, "DEPENDS_ON", image) == (Evidence("ImageId", ids["ami"]),)
    assert ci(store, image).attributes["image_name"] == "web-golden-2026-11"
    snapshot = f"arn:aws:ec2:{REGION}::snapshot/{ids['snapshot']}"
    assert evidence(store, snapshot, "MEMBER_OF", arn("volume", ids["volume"])) == (Evidence("VolumeId", ids["volume"]),)
    volume = ci(store, arn("volume", ids["volume"]))
    assert volume.attributes["encrypted"] is True and volume.attributes["size_gb"] == 50
    # routing: public subnet -> route table -> internet gateway; private -> NAT -> its EIP
    public_rt, private_rt = arn("route-table", ids["rt_public"]), arn("route-table", ids["rt_private"])
    assert evidence(store, subnet, "DEPENDS_ON", public_rt) == (Evidence("Associations[].SubnetId", ids["subnet0"]),)
    assert evidence(store, public_rt, "DEPENDS_ON", arn("internet-gateway", ids["igw"])) == (
        Evidence("Routes[].GatewayId", ids["igw"]),)
    assert evidence(store, public_rt, "CONTAINED_IN", vpc)
    nat = arn("natgateway", ids["nat"])
    assert evidence(store, private_rt, "DEPENDS_ON", nat) == (Evidence("Routes[].NatGatewayId", ids["nat"]),)
    assert evidence(store, nat, "CONTAINED_IN", subnet)
    assert evidence(store, nat, "DEPENDS_ON", arn("elastic-ip", ids["nat_eip"])) == (
        Evidence("NatGatewayAddresses[].AllocationId", ids["nat_eip"]),)
    assert evidence(store, arn("internet-gateway", ids["igw"]), "CONTAINED_IN", vpc)


def test_security_group_rules_are_typed(synced: SyncReport, store: SqliteStore, estate: Estate) -> None:
    web = ci(store, estate.arn("security-group", estate.ids["sg_web"]))
    rules = {(r["protocol"], r["from_port"], r["to_port"]): r for r in web.attributes["ingress_rules"]}
    assert rules[("tcp", 443, 443)]["cidrs"] == ["0.0.0.0/0"]
    assert rules[("tcp", 22, 22)]["cidrs"] == ["10.0.0.0/8"]
    assert web.attributes["open_to_world"] is True
    egress = web.attributes["egress_rules"]
    assert egress and egress[0]["protocol"] == "-1" and (egress[0]["from_port"], egress[0]["to_port"]) == (0, 65535)
    db = ci(store, estate.arn("security-group", estate.ids["sg_db"]))
    (rule,) = db.attributes["ingress_rules"]
    assert rule["security_groups"] == [estate.ids["sg_web"]] and rule["cidrs"] == []
    assert db.attributes["open_to_world"] is False


def test_load_balancing_relationships(synced: SyncReport, store: SqliteStore, estate: Estate) -> None:
    ids, arn = estate.ids, estate.arn
    alb = ci(store, ids["alb"])
    assert ids["alb_dns"] in alb.aliases
    assert alb.owner == "team-web" and alb.attributes["public"] is True
    assert alb.attributes["listeners"][0]["port"] == 80
    assert evidence(store, ids["alb"], "ROUTES_TO", ids["tg"]) == (
        Evidence("Listeners[].DefaultActions[].TargetGroupArn", ids["tg"]),)
    assert evidence(store, ids["listener"], "ROUTES_TO", ids["tg"])
    assert evidence(store, ids["listener"], "MEMBER_OF", ids["alb"])
    for name in ("web1", "web2"):
        assert evidence(store, ids["tg"], "ROUTES_TO", arn("instance", ids[name])) == (
            Evidence("TargetHealthDescriptions[].Target.Id", ids[name]),)
    assert evidence(store, ids["alb"], "CONTAINED_IN", arn("subnet", ids["subnet1"]))
    assert evidence(store, ids["alb"], "SECURED_BY", arn("security-group", ids["sg_web"]))
    tg = ci(store, ids["tg"])
    assert {t["id"] for t in tg.attributes["targets"]} == {ids["web1"], ids["web2"]}
    assert all(t["health"] for t in tg.attributes["targets"])
    assert tg.attributes["healthy_targets"] + tg.attributes["unhealthy_targets"] <= 2
    clb_id = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/legacy-web"
    clb = ci(store, clb_id)
    assert ids["clb_dns"] in clb.aliases and clb.owner == "team-legacy"
    assert evidence(store, clb_id, "ROUTES_TO", arn("instance", ids["web2"])) == (
        Evidence("Instances[].InstanceId", ids["web2"]),)
    assert evidence(store, ids["tg"], "ROUTES_TO", ids["ecs_service"]) == (
        Evidence("loadBalancers[].targetGroupArn", ids["tg"]),)


def test_edge_cloudfront_and_route53(synced: SyncReport, store: SqliteStore, estate: Estate) -> None:
    ids = estate.ids
    dist = ci(store, ids["cloudfront"])
    assert dist.scope == GLOBAL_SCOPE
    assert ids["cloudfront_domain"] in dist.aliases and "www.example.com" in dist.aliases
    bucket = f"arn:aws:s3:::{ids['bucket_web']}"
    assert evidence(store, ids["cloudfront"], "DEPENDS_ON", bucket) == (
        Evidence("Origins.Items[].DomainName", f"{ids['bucket_web']}.s3.amazonaws.com"),)
    assert evidence(store, ids["cloudfront"], "DEPENDS_ON", ids["alb"]) == (
        Evidence("Origins.Items[].DomainName", ids["alb_dns"]),)
    zone = f"arn:aws:route53:::hostedzone/{ids['zone']}"
    app = f"{zone}/recordset/app.example.com/A"
    www = f"{zone}/recordset/www.example.com/CNAME"
    assert ci(store, zone).attributes["zone_name"] == "example.com"
    assert evidence(store, app, "ROUTES_TO", ids["alb"]) == (Evidence("AliasTarget.DNSName", f"dualstack.{ids['alb_dns']}"),)
    assert evidence(store, www, "ROUTES_TO", ids["cloudfront"]) == (
        Evidence("ResourceRecords[].Value", ids["cloudfront_domain"]),)
    assert evidence(store, app, "CONTAINED_IN", zone) == (Evidence("HostedZoneId", ids["zone"]),)
    assert ci(store, www).attributes["ttl"] == 300


def test_databases(synced: SyncReport, store: SqliteStore, estate: Estate) -> None:
    ids, arn = estate.ids, estate.arn
    db = ci(store, ids["rds"])
    assert ids["rds_endpoint"] in db.aliases
    assert db.attributes["storage_encrypted"] is True and db.attributes["publicly_accessible"] is False
    assert db.attributes["engine"] == "postgres" and db.owner == "team-payments"
    group = f"arn:aws:rds:{REGION}:{ACCOUNT}:subgrp:prod-db"
    assert evidence(store, ids["rds"], "CONTAINED_IN", group) == (
        Evidence("DBSubnetGroup.DBSubnetGroupName", "prod-db"),)
    for n in (0, 1):
        subnet = ids[f"subnet{n}"]
        assert evidence(store, group, "CONTAINED_IN", arn("subnet", subnet)) == (
            Evidence("Subnets[].SubnetIdentifier", subnet),)
    assert evidence(store, ids["rds"], "SECURED_BY", arn("security-group", ids["sg_db"])) == (
        Evidence("VpcSecurityGroups[].VpcSecurityGroupId", ids["sg_db"]),)
    aurora = ci(store, ids["aurora"])
    assert ids["aurora_endpoint"] in aurora.aliases and ids["aurora_reader"] in aurora.aliases
    assert aurora.attributes["storage_encrypted"] is True
    for n in (1, 2):
        assert evidence(store, ids["aurora"], "COMPOSED_OF", ids[f"aurora{n}"]) == (
            Evidence("DBClusterMembers[].DBInstanceIdentifier", f"ledger-{n}"),)
    table = ci(store, ids["table"])
    assert table.aliases == (ids["table_name"],) and table.attributes["billing_mode"] == "PAY_PER_REQUEST"
    assert table.attributes["encrypted"] is True and table.attributes["stream_arn"] == ids["stream"]
    cache = ci(store, ids["cache"])
    assert cache.attributes["engine"] == "redis"
    # (moto leaves SecurityGroups out of describe_cache_clusters: that link is not checked here)
    group = ci(store, ids["cache_group"])
    assert group.attributes["primary_endpoint"] and group.attributes["primary_endpoint"] in group.aliases
    assert any(alias.startswith("carts-001.") for alias in group.aliases)  # a member's read endpoint
    # (moto does not list a group's member clusters as clusters: COMPOSED_OF to them is not checked here)


def test_buckets(synced: SyncReport, store: SqliteStore, estate: Estate) -> None:
    web_name, data_name = estate.ids["bucket_web"], estate.ids["bucket_data"]
    web = ci(store, f"arn:aws:s3:::{web_name}")
    assert web.scope == GLOBAL_SCOPE and web.region == REGION and web.owner == "team-web"
    assert set(web.aliases) == {web_name, f"{web_name}.s3.amazonaws.com", f"{web_name}.s3.{REGION}.amazonaws.com"}
    assert web.attributes["public"] is True and web.attributes["policy_public"] is True
    assert web.attributes["block_public_access"] is False
    assert web.attributes["encrypted"] is True and web.attributes["encryption_algorithm"] == "AES256"
    assert web.attributes["versioning"] == "Disabled"
    data = ci(store, f"arn:aws:s3:::{data_name}")
    assert data.attributes["public"] is False and data.attributes["block_public_access"] is True
    assert data.attributes["encryption_algorithm"] == "aws:kms" and data.attributes["kms_key_id"] == "alias/data"
    assert data.attributes["versioning"] == "Enabled"


def test_containers_and_functions(synced: SyncReport, store: SqliteStore, estate: Estate) -> None:
    ids, arn = estate.ids, estate.arn
    eks = ci(store, ids["eks"])
    assert "payments" in eks.aliases and eks.owner == "team-platform"
    if ids["eks_endpoint"]:
        assert ids["eks_endpoint"].split("://", 1)[-1].split("/")[0] in eks.aliases
    assert evidence(store, ids["eks"], "COMPOSED_OF", ids["nodegroup"]) == (Evidence("nodegroups[]", "general"),)
    assert evidence(store, ids["nodegroup"], "COMPOSED_OF", arn("instance", ids["node"])) == (
        Evidence("Tags.eks:nodegroup-name", "general"),)
    assert evidence(store, ids["eks"], "CONTAINED_IN", arn("subnet", ids["subnet0"]))
    assert evidence(store, ids["eks"], "DEPENDS_ON", ids["role_eks"]) == (Evidence("roleArn", ids["role_eks"]),)
    assert evidence(store, ids["nodegroup"], "DEPENDS_ON", ids["role_nodes"])
    assert evidence(store, ids["ecs_service"], "RUNS_ON", ids["ecs_cluster"])
    fn_id = ids["lambda"]
    fn = ci(store, fn_id)
    assert fn.owner == "team-orders" and fn.cost_centre == "cc-9"
    assert fn.attributes["vpc_id"] == ids["vpc"]  # from the subnets, not moto's fixed fake VpcId
    assert fn.attributes["env_var_names"] == ["DB_HOST", "EXPORT_BUCKET", "LEDGER_URL", "LOG_LEVEL", "ORDERS_TABLE"]
    assert evidence(store, fn_id, "DEPENDS_ON", ids["role_lambda"]) == (Evidence("Role", ids["role_lambda"]),)
    assert evidence(store, fn_id, "CONTAINED_IN", arn("subnet", ids["subnet1"])) == (
        Evidence("VpcConfig.SubnetIds[]", ids["subnet1"]),)
    assert evidence(store, fn_id, "SECURED_BY", arn("security-group", ids["sg_web"]))
    # what its configuration names; the evidence names the resource, never the value
    assert evidence(store, fn_id, "DEPENDS_ON", ids["rds"]) == (Evidence("Environment.Variables.DB_HOST", ids["rds"]),)
    assert evidence(store, fn_id, "DEPENDS_ON", ids["aurora"]) == (
        Evidence("Environment.Variables.LEDGER_URL", ids["aurora"]),)
    bucket = f"arn:aws:s3:::{ids['bucket_data']}"
    assert evidence(store, fn_id, "DEPENDS_ON", bucket) == (Evidence("Environment.Variables.EXPORT_BUCKET", bucket),)
    # named twice, by its configuration and as its event source: one link, both reasons
    assert set(evidence(store, fn_id, "DEPENDS_ON", ids["table"])) == {
        Evidence("Environment.Variables.ORDERS_TABLE", ids["table"]),
        Evidence("EventSourceMappings[].EventSourceArn", ids["stream"])}
    assert fn.attributes["event_sources"] == [ids["stream"]]


def test_secrets_and_environment_values_are_never_stored(discovered: tuple[Estate, SqliteStore, SyncReport, Path]) -> None:
    folder = discovered[3]
    raw = b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("cmdb.db"))
    assert raw, "the store's files"
    for secret in (b"hunter2", b"DB_PASSWORD", b"CACHE_SECRET", b"postgres://"):
        assert secret not in raw


def test_who_can_assume_which_role(synced: SyncReport, store: SqliteStore, estate: Estate) -> None:
    ec2_role = ci(store, estate.ids["role_ec2"])
    assert ec2_role.attributes["trusted_services"] == ["ec2.amazonaws.com"]
    assert ec2_role.attributes["cross_account"] is False and ec2_role.owner == "team-platform"
    audit = ci(store, estate.ids["role_audit"])
    assert audit.attributes["trusted_accounts"] == ["210987654321"]
    assert audit.attributes["trusted_principals"] == ["arn:aws:iam::210987654321:root"]
    assert audit.attributes["cross_account"] is True
    account = ci(store, f"arn:aws:iam::{ACCOUNT}:root")
    assert account.type == "aws.account" and account.attributes["account_id"] == ACCOUNT


def test_attributes_are_the_declared_ones_with_their_kinds(synced: SyncReport, store: SqliteStore) -> None:
    vocab = vocabulary()
    for item in store.iter_cis(CIFilter(provider="aws")):
        declared = vocab.ci_type(item.type).attributes
        undeclared = set(item.attributes) - set(declared)
        assert not undeclared, f"{item.type} fills undeclared attributes {undeclared}"
        vocab.check_attributes(item.type, item.attributes)


def test_every_ci_is_in_a_known_scope_with_a_region(synced: SyncReport, store: SqliteStore) -> None:
    for item in store.iter_cis(CIFilter(provider="aws")):
        assert item.scope in (SCOPE, GLOBAL_SCOPE) or item.type == "aws.ec2.image", item
        assert item.region, item.id
        assert item.id.startswith("arn:aws:"), item.id


def test_resync_of_the_unchanged_estate_changes_nothing(synced: SyncReport, store: SqliteStore) -> None:
    again = SyncEngine(store).run(AwsConnector(regions=[REGION]))
    assert again.problems == []
    counts = again.counts
    assert (counts["created"], counts["updated"], counts["stale"], counts["restored"]) == (0, 0, 0, 0), counts
    assert (counts["relationships_added"], counts["relationships_updated"], counts["relationships_removed"]) == (0, 0, 0)
    assert counts["unchanged"] == synced.counts["created"]
