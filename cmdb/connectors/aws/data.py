"""Data: RDS instances, Aurora clusters and subnet groups, DynamoDB tables,
ElastiCache clusters and replication groups, S3 buckets.

    (:DbInstance|DbCluster)-[:CONTAINED_IN]->(:DbSubnetGroup)-[:CONTAINED_IN]->(:Subnet)
    (:DbInstance|DbCluster|CacheCluster)-[:SECURED_BY]->(:SecurityGroup)
    (:DbCluster)-[:COMPOSED_OF]->(:DbInstance)            any member keeps it up
    (:ReplicationGroup)-[:COMPOSED_OF]->(:CacheCluster)
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from cmdb.connectors.aws.base import Context, Out, gone, items, tag_dict, why

__all__ = ["GLOBAL_UNITS", "UNITS", "bucket_aliases"]

_PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else ("" if value is None else str(value))


def db_subnet_groups(ctx: Context, out: Out) -> None:
    names: dict[str, str] = ctx.shared.setdefault("db_subnet_groups", {})
    for group in items(ctx.client("rds"), "describe_db_subnet_groups", "DBSubnetGroups[]"):
        name = group["DBSubnetGroupName"]
        arn = group.get("DBSubnetGroupArn") or ctx.place.arn("rds", f"subgrp:{name}")
        names[name] = arn
        subnet_ids = [s["SubnetIdentifier"] for s in group.get("Subnets", []) if s.get("SubnetIdentifier")]
        out.ci(
            arn,
            "aws.rds.db_subnet_group",
            name,
            attributes={
                "name": name,
                "vpc_id": group.get("VpcId", ""),
                "subnet_ids": subnet_ids,
                "status": group.get("SubnetGroupStatus", ""),
                "description": group.get("DBSubnetGroupDescription", ""),
            },
        )
        for subnet_id in subnet_ids:
            out.rel(arn, "CONTAINED_IN", ctx.place.ec2_arn("subnet", subnet_id), "Subnets[].SubnetIdentifier", subnet_id)


def _subnet_group(ctx: Context, name: str) -> str:
    known: dict[str, str] = ctx.shared.get("db_subnet_groups", {})
    return known.get(name) or ctx.place.arn("rds", f"subgrp:{name}")


def db_clusters(ctx: Context, out: Out) -> None:
    members: dict[str, str] = ctx.shared.setdefault("db_cluster_of", {})
    for cluster in items(ctx.client("rds"), "describe_db_clusters", "DBClusters[]"):
        arn = cluster["DBClusterArn"]
        identifier = cluster["DBClusterIdentifier"]
        member_list = cluster.get("DBClusterMembers", [])
        writer = next((m["DBInstanceIdentifier"] for m in member_list if m.get("IsClusterWriter")), "")
        endpoint = cluster.get("Endpoint", "")
        reader = cluster.get("ReaderEndpoint", "")
        out.ci(
            arn,
            "aws.rds.db_cluster",
            identifier,
            tags=tag_dict(cluster.get("TagList")),
            aliases=(endpoint, reader),
            attributes={
                "identifier": identifier,
                "engine": cluster.get("Engine", ""),
                "engine_version": cluster.get("EngineVersion", ""),
                "endpoint": endpoint,
                "reader_endpoint": reader,
                "port": cluster.get("Port"),
                "storage_encrypted": bool(cluster.get("StorageEncrypted", False)),
                "status": cluster.get("Status", ""),
                "multi_az": bool(cluster.get("MultiAZ", False)),
                "members": [m["DBInstanceIdentifier"] for m in member_list],
                "writer": writer,
                "deletion_protection": bool(cluster.get("DeletionProtection", False)),
                "backup_retention_days": cluster.get("BackupRetentionPeriod"),
                "kms_key_id": cluster.get("KmsKeyId", ""),
            },
        )
        ctx.index.add(arn, endpoint, reader, region=ctx.place.region)
        for member in member_list:
            instance = ctx.place.arn("rds", f"db:{member['DBInstanceIdentifier']}")
            members[member["DBInstanceIdentifier"]] = arn
            out.rel(arn, "COMPOSED_OF", instance, "DBClusterMembers[].DBInstanceIdentifier", member["DBInstanceIdentifier"])
        for group in cluster.get("VpcSecurityGroups", []):
            sg = ctx.place.ec2_arn("security-group", group["VpcSecurityGroupId"])
            out.rel(arn, "SECURED_BY", sg, "VpcSecurityGroups[].VpcSecurityGroupId", group["VpcSecurityGroupId"])
        if cluster.get("DBSubnetGroup"):
            name = cluster["DBSubnetGroup"]
            out.rel(arn, "CONTAINED_IN", _subnet_group(ctx, name), "DBSubnetGroup", name)


def db_instances(ctx: Context, out: Out) -> None:
    for db in items(ctx.client("rds"), "describe_db_instances", "DBInstances[]"):
        arn = db["DBInstanceArn"]
        identifier = db["DBInstanceIdentifier"]
        endpoint = db.get("Endpoint") or {}
        address = endpoint.get("Address", "")
        group = db.get("DBSubnetGroup") or {}
        out.ci(
            arn,
            "aws.rds.db_instance",
            identifier,
            tags=tag_dict(db.get("TagList")),
            aliases=(address,),
            attributes={
                "identifier": identifier,
                "engine": db.get("Engine", ""),
                "engine_version": db.get("EngineVersion", ""),
                "instance_class": db.get("DBInstanceClass", ""),
                "endpoint": address,
                "port": endpoint.get("Port"),
                "storage_encrypted": bool(db.get("StorageEncrypted", False)),
                "publicly_accessible": bool(db.get("PubliclyAccessible", False)),
                "multi_az": bool(db.get("MultiAZ", False)),
                "allocated_storage_gb": db.get("AllocatedStorage"),
                "status": db.get("DBInstanceStatus", ""),
                "cluster_identifier": db.get("DBClusterIdentifier", ""),
                "subnet_group": group.get("DBSubnetGroupName", ""),
                "vpc_id": group.get("VpcId", ""),
                "backup_retention_days": db.get("BackupRetentionPeriod"),
                "deletion_protection": bool(db.get("DeletionProtection", False)),
                "iam_auth": bool(db.get("IAMDatabaseAuthenticationEnabled", False)),
                "kms_key_id": db.get("KmsKeyId", ""),
            },
        )
        ctx.index.add(arn, address, region=ctx.place.region)
        for sg in db.get("VpcSecurityGroups", []):
            sg_arn = ctx.place.ec2_arn("security-group", sg["VpcSecurityGroupId"])
            out.rel(arn, "SECURED_BY", sg_arn, "VpcSecurityGroups[].VpcSecurityGroupId", sg["VpcSecurityGroupId"])
        if group.get("DBSubnetGroupName"):
            name = group["DBSubnetGroupName"]
            out.rel(arn, "CONTAINED_IN", _subnet_group(ctx, name), "DBSubnetGroup.DBSubnetGroupName", name)


def dynamodb_tables(ctx: Context, out: Out) -> None:
    client = ctx.client("dynamodb")
    region = ctx.place.region

    def describe(name: str) -> tuple[dict[str, Any], dict[str, str], bool]:
        table = client.describe_table(TableName=name)["Table"]
        tags = tag_dict(list(items(client, "list_tags_of_resource", "Tags[]", ResourceArn=table["TableArn"])))
        backups = client.describe_continuous_backups(TableName=name).get("ContinuousBackupsDescription") or {}
        pitr = (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus") == "ENABLED"
        return table, tags, pitr

    names = list(items(client, "list_tables", "TableNames[]"))
    for name, found in zip(names, ctx.each(describe, names), strict=True):
        if isinstance(found, Exception):
            if isinstance(found, ClientError) and gone(found):
                continue  # deleted since it was listed
            raise found
        table, tags, pitr = found
        arn = table["TableArn"]
        sse = table.get("SSEDescription") or {}
        stream = table.get("LatestStreamArn", "")
        out.ci(
            arn,
            "aws.dynamodb.table",
            name,
            tags=tags,
            aliases=(name,),
            attributes={
                "table_name": name,
                "status": table.get("TableStatus", ""),
                "billing_mode": (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED"),
                "item_count": int(table.get("ItemCount", 0)),
                "size_bytes": int(table.get("TableSizeBytes", 0)),
                # DynamoDB encrypts every table at rest; SSEDescription appears only for KMS keys
                "encrypted": True,
                "sse_type": sse.get("SSEType", "AES256") if sse.get("Status", "ENABLED") == "ENABLED" else "AES256",
                "stream_arn": stream,
                "point_in_time_recovery": pitr,
            },
        )
        ctx.index.add(arn, name, arn, stream, region=region)


def cache_clusters(ctx: Context, out: Out) -> None:
    client = ctx.client("elasticache")
    seen: set[str] = ctx.shared.setdefault("cache_clusters", set())
    for cluster in items(client, "describe_cache_clusters", "CacheClusters[]", ShowCacheNodeInfo=True):
        cluster_id = cluster["CacheClusterId"]
        seen.add(cluster_id)
        arn = cluster.get("ARN") or ctx.place.arn("elasticache", f"cluster:{cluster_id}")
        endpoints = [
            n["Endpoint"]["Address"] for n in cluster.get("CacheNodes", []) if (n.get("Endpoint") or {}).get("Address")
        ]
        config = (cluster.get("ConfigurationEndpoint") or {}).get("Address", "")
        if config:
            endpoints.insert(0, config)
        tags = tag_dict(client.list_tags_for_resource(ResourceName=arn).get("TagList"))
        out.ci(
            arn,
            "aws.elasticache.cluster",
            cluster_id,
            tags=tags,
            aliases=endpoints,
            attributes={
                "cluster_id": cluster_id,
                "engine": cluster.get("Engine", ""),
                "engine_version": cluster.get("EngineVersion", ""),
                "node_type": cluster.get("CacheNodeType", ""),
                "num_nodes": int(cluster.get("NumCacheNodes", 0)),
                "status": cluster.get("CacheClusterStatus", ""),
                "endpoints": endpoints,
                "replication_group_id": cluster.get("ReplicationGroupId", ""),
                "subnet_group": cluster.get("CacheSubnetGroupName", ""),
                "transit_encryption": bool(cluster.get("TransitEncryptionEnabled", False)),
                "at_rest_encryption": bool(cluster.get("AtRestEncryptionEnabled", False)),
            },
        )
        ctx.index.add(arn, *endpoints, region=ctx.place.region)
        for group in cluster.get("SecurityGroups", []):
            sg = ctx.place.ec2_arn("security-group", group["SecurityGroupId"])
            out.rel(arn, "SECURED_BY", sg, "SecurityGroups[].SecurityGroupId", group["SecurityGroupId"])


def replication_groups(ctx: Context, out: Out) -> None:
    client = ctx.client("elasticache")
    for group in items(client, "describe_replication_groups", "ReplicationGroups[]"):
        group_id = group["ReplicationGroupId"]
        arn = group.get("ARN") or ctx.place.arn("elasticache", f"replicationgroup:{group_id}")
        node_groups = group.get("NodeGroups", [])
        primary = next(((g.get("PrimaryEndpoint") or {}).get("Address", "") for g in node_groups), "")
        reader = next(((g.get("ReaderEndpoint") or {}).get("Address", "") for g in node_groups), "")
        config = (group.get("ConfigurationEndpoint") or {}).get("Address", "")
        members = list(group.get("MemberClusters", []))
        node_endpoints = [
            m["ReadEndpoint"]["Address"]
            for g in node_groups
            for m in g.get("NodeGroupMembers", [])
            if (m.get("ReadEndpoint") or {}).get("Address")
        ]
        out.ci(
            arn,
            "aws.elasticache.replication_group",
            group_id,
            aliases=(primary, reader, config, *node_endpoints),
            attributes={
                "replication_group_id": group_id,
                "status": group.get("Status", ""),
                "primary_endpoint": primary,
                "reader_endpoint": reader,
                "configuration_endpoint": config,
                "members": members,
                "transit_encryption": bool(group.get("TransitEncryptionEnabled", False)),
                "at_rest_encryption": bool(group.get("AtRestEncryptionEnabled", False)),
                "automatic_failover": group.get("AutomaticFailover", ""),
                "multi_az": group.get("MultiAZ", ""),
            },
        )
        ctx.index.add(arn, primary, reader, config, *node_endpoints, region=ctx.place.region)
        for member in members:
            if member not in ctx.shared.get("cache_clusters", ()):
                continue  # not (yet) a cluster of its own
            cluster = ctx.place.arn("elasticache", f"cluster:{member}")
            out.rel(arn, "COMPOSED_OF", cluster, "MemberClusters[]", member)


def bucket_aliases(bucket: str, region: str) -> tuple[str, ...]:
    return (bucket, f"{bucket}.s3.amazonaws.com", f"{bucket}.s3.{region}.amazonaws.com")


def _absent(exc: ClientError, *codes: str) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in codes


def buckets(ctx: Context, out: Out) -> None:
    client = ctx.client("s3")
    listed = list(items(client, "list_buckets", "Buckets[]"))
    for bucket, found in zip(listed, ctx.each(lambda b: _bucket(ctx, client, b), listed), strict=True):
        name = bucket["Name"]
        arn = ctx.place.arn("s3", name, region="", account="")
        ctx.index.add(arn, arn, name)  # known by name even when its settings cannot be read
        if isinstance(found, ClientError):  # one bucket's policy may deny us its settings: the others go on
            if not gone(found):
                out.failed(f"bucket {name}", why(found), arn)
            continue
        if isinstance(found, Exception):
            raise found
        location, tags, attributes = found
        aliases = bucket_aliases(name, location)
        out.ci(arn, "aws.s3.bucket", name, tags=tags, region=location, aliases=aliases, attributes=attributes)
        ctx.index.add(arn, *aliases)


def _bucket(ctx: Context, client: Any, bucket: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """One bucket's region, tags and settings."""
    name = bucket["Name"]
    location = client.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
    if location == "EU":
        location = "eu-west-1"
    regional = ctx.client("s3", location)
    try:
        tags = tag_dict(regional.get_bucket_tagging(Bucket=name).get("TagSet"))
    except ClientError as exc:
        if not _absent(exc, "NoSuchTagSet", "NoSuchTagSetError"):
            raise
        tags = {}
    try:
        status = regional.get_bucket_policy_status(Bucket=name).get("PolicyStatus") or {}
        policy_public = bool(status.get("IsPublic", False))
    except ClientError as exc:
        if not _absent(exc, "NoSuchBucketPolicy"):
            raise
        policy_public = False
    try:
        block = regional.get_public_access_block(Bucket=name).get("PublicAccessBlockConfiguration") or {}
    except ClientError as exc:
        if not _absent(exc, "NoSuchPublicAccessBlockConfiguration"):
            raise
        block = {}
    flags = {k: bool(block.get(k, False)) for k in
             ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}
    try:
        rules = (regional.get_bucket_encryption(Bucket=name).get("ServerSideEncryptionConfiguration") or {}).get(
            "Rules", []
        )
    except ClientError as exc:
        if not _absent(exc, "ServerSideEncryptionConfigurationNotFoundError"):
            raise
        rules = []  # AWS applies SSE-S3 (AES256) to every bucket without a rule of its own
    default = next((r.get("ApplyServerSideEncryptionByDefault") or {} for r in rules), {})
    versioning = regional.get_bucket_versioning(Bucket=name).get("Status") or "Disabled"
    acl = regional.get_bucket_acl(Bucket=name)
    acl_public = any((g.get("Grantee") or {}).get("URI") in _PUBLIC_GRANTEES for g in acl.get("Grants", []))
    public = (policy_public and not flags["RestrictPublicBuckets"]) or (acl_public and not flags["IgnorePublicAcls"])
    return location, tags, {
        "bucket_name": name,
        "public": public,
        "policy_public": policy_public,
        "acl_public": acl_public,
        "encrypted": True,
        "encryption_algorithm": default.get("SSEAlgorithm", "AES256"),
        "kms_key_id": default.get("KMSMasterKeyID", ""),
        "versioning": versioning,
        "block_public_access": all(flags.values()),
        "public_access_block": flags,
        "region": location,
        "creation_date": _iso(bucket.get("CreationDate")),
    }


UNITS = [
    ("rds", "db_subnet_groups", db_subnet_groups),
    ("rds", "db_clusters", db_clusters),
    ("rds", "db_instances", db_instances),
    ("dynamodb", "tables", dynamodb_tables),
    ("elasticache", "cache_clusters", cache_clusters),
    ("elasticache", "replication_groups", replication_groups),
]
GLOBAL_UNITS = [("s3", "buckets", buckets)]
