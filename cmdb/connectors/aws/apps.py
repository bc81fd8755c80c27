"""Containers and functions: EKS clusters and node groups, ECS clusters and
services, Lambda functions.

    (:EksCluster)-[:COMPOSED_OF]->(:Nodegroup)-[:COMPOSED_OF]->(:Instance)
    (:EksCluster|Nodegroup|EcsService|Function)-[:CONTAINED_IN]->(:Subnet)
    (:EksCluster|EcsService|Function)-[:SECURED_BY]->(:SecurityGroup)
    (:EksCluster|Nodegroup|Function)-[:DEPENDS_ON]->(:Role)
    (:EcsService)-[:RUNS_ON]->(:EcsCluster); (:TargetGroup)-[:ROUTES_TO]->(:EcsService)
    (:Function)-[:DEPENDS_ON]->(:DbInstance|DbCluster|Table|Bucket|CacheCluster)  named by its configuration
    (:Function)-[:DEPENDS_ON]->(:Table)                                           an event source (stream)

Lambda environment values are read only here, in memory, to find the
endpoints they name; no value is ever stored or logged, and variables whose
names look like secrets are not even read.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from cmdb.connectors.aws.base import Context, Out, gone, host_of, items, tag_dict
from cmdb.connectors.aws.edge import bucket_from_host

__all__ = ["SECRET_NAME", "UNITS", "endpoint_names"]

SECRET_NAME = re.compile(
    r"PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|SIGNATURE|CERT|SALT|COOKIE|SESSION|PIN\b|OTP",
    re.IGNORECASE,
)
"""Environment variable names that look like they hold a secret."""


def _chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def eks_clusters(ctx: Context, out: Out) -> None:
    client = ctx.client("eks")
    instances: list[tuple[str, dict[str, str]]] = ctx.shared.get("instances", [])
    for name in items(client, "list_clusters", "clusters[]"):
        try:
            cluster = client.describe_cluster(name=name)["cluster"]
        except ClientError as exc:
            if gone(exc):
                continue  # deleted since it was listed
            raise
        arn = cluster["arn"]
        vpc = cluster.get("resourcesVpcConfig") or {}
        endpoint = cluster.get("endpoint", "")
        subnet_ids = list(vpc.get("subnetIds", []))
        groups = list(dict.fromkeys([*vpc.get("securityGroupIds", []), vpc.get("clusterSecurityGroupId", "")]))
        groups = [g for g in groups if g]
        out.ci(
            arn,
            "aws.eks.cluster",
            name,
            tags=tag_dict(cluster.get("tags")),
            aliases=(name, endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]),
            attributes={
                "version": cluster.get("version", ""),
                "endpoint": endpoint,
                "status": cluster.get("status", ""),
                "arn": arn,
                "role_arn": cluster.get("roleArn", ""),
                "vpc_id": vpc.get("vpcId", ""),
                "subnet_ids": subnet_ids,
                "security_group_ids": groups,
                "public_access": bool(vpc.get("endpointPublicAccess", True)),
                "private_access": bool(vpc.get("endpointPrivateAccess", False)),
                "public_access_cidrs": list(vpc.get("publicAccessCidrs", [])),
            },
        )
        for subnet_id in subnet_ids:
            subnet = ctx.place.ec2_arn("subnet", subnet_id)
            out.rel(arn, "CONTAINED_IN", subnet, "resourcesVpcConfig.subnetIds[]", subnet_id)
        for group_id in groups:
            out.rel(arn, "SECURED_BY", ctx.place.ec2_arn("security-group", group_id),
                    "resourcesVpcConfig.securityGroupIds[]", group_id)
        if cluster.get("roleArn"):
            out.rel(arn, "DEPENDS_ON", cluster["roleArn"], "roleArn", cluster["roleArn"])
        for group_name in items(client, "list_nodegroups", "nodegroups[]", clusterName=name):
            try:
                group = client.describe_nodegroup(clusterName=name, nodegroupName=group_name)["nodegroup"]
            except ClientError as exc:
                if gone(exc):
                    continue
                raise
            group_arn = group["nodegroupArn"]
            scaling = group.get("scalingConfig") or {}
            asgs = [a["name"] for a in (group.get("resources") or {}).get("autoScalingGroups", []) if a.get("name")]
            out.ci(
                group_arn,
                "aws.eks.nodegroup",
                group_name,
                tags=tag_dict(group.get("tags")),
                attributes={
                    "nodegroup_name": group_name,
                    "cluster_name": name,
                    "instance_types": list(group.get("instanceTypes") or []),
                    "desired_size": scaling.get("desiredSize"),
                    "min_size": scaling.get("minSize"),
                    "max_size": scaling.get("maxSize"),
                    "status": group.get("status", ""),
                    "node_role": group.get("nodeRole", ""),
                    "subnet_ids": list(group.get("subnets", [])),
                    "autoscaling_groups": asgs,
                    "ami_type": group.get("amiType", ""),
                    "capacity_type": group.get("capacityType", ""),
                },
            )
            out.rel(arn, "COMPOSED_OF", group_arn, "nodegroups[]", group_name)
            for subnet_id in group.get("subnets", []):
                out.rel(group_arn, "CONTAINED_IN", ctx.place.ec2_arn("subnet", subnet_id), "subnets[]", subnet_id)
            if group.get("nodeRole"):
                out.rel(group_arn, "DEPENDS_ON", group["nodeRole"], "nodeRole", group["nodeRole"])
            for instance_arn, tags in instances:
                if tags.get("eks:cluster-name") == name and tags.get("eks:nodegroup-name") == group_name:
                    out.rel(group_arn, "COMPOSED_OF", instance_arn, "Tags.eks:nodegroup-name", group_name)
                elif tags.get("aws:autoscaling:groupName") in asgs:
                    asg = tags["aws:autoscaling:groupName"]
                    out.rel(group_arn, "COMPOSED_OF", instance_arn, "resources.autoScalingGroups[].name", asg)


def ecs_clusters(ctx: Context, out: Out) -> None:
    client = ctx.client("ecs")
    cluster_arns = list(items(client, "list_clusters", "clusterArns[]"))
    for chunk in _chunks(cluster_arns, 100):
        for cluster in client.describe_clusters(clusters=chunk, include=["TAGS"]).get("clusters", []):
            arn = cluster["clusterArn"]
            out.ci(
                arn,
                "aws.ecs.cluster",
                cluster.get("clusterName", arn),
                tags=tag_dict(cluster.get("tags")),
                attributes={
                    "cluster_name": cluster.get("clusterName", ""),
                    "status": cluster.get("status", ""),
                    "active_services": int(cluster.get("activeServicesCount", 0)),
                    "running_tasks": int(cluster.get("runningTasksCount", 0)),
                    "container_instances": int(cluster.get("registeredContainerInstancesCount", 0)),
                },
            )
    for cluster_arn in cluster_arns:
        service_arns = list(items(client, "list_services", "serviceArns[]", cluster=cluster_arn))
        for chunk in _chunks(service_arns, 10):
            described = client.describe_services(cluster=cluster_arn, services=chunk, include=["TAGS"])
            for service in described.get("services", []):
                _ecs_service(ctx, out, cluster_arn, service)


def _ecs_service(ctx: Context, out: Out, cluster_arn: str, service: dict[str, Any]) -> None:
    arn = service["serviceArn"]
    network = (service.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    target_groups = [lb["targetGroupArn"] for lb in service.get("loadBalancers", []) if lb.get("targetGroupArn")]
    out.ci(
        arn,
        "aws.ecs.service",
        service.get("serviceName", arn),
        tags=tag_dict(service.get("tags")),
        attributes={
            "service_name": service.get("serviceName", ""),
            "cluster_arn": cluster_arn,
            "status": service.get("status", ""),
            "desired_count": service.get("desiredCount"),
            "running_count": service.get("runningCount"),
            "launch_type": service.get("launchType", ""),
            "task_definition": service.get("taskDefinition", ""),
            "subnet_ids": list(network.get("subnets", [])),
            "security_group_ids": list(network.get("securityGroups", [])),
            "target_group_arns": target_groups,
        },
    )
    out.rel(arn, "RUNS_ON", cluster_arn, "clusterArn", cluster_arn)
    for subnet_id in network.get("subnets", []):
        subnet = ctx.place.ec2_arn("subnet", subnet_id)
        out.rel(arn, "CONTAINED_IN", subnet, "networkConfiguration.awsvpcConfiguration.subnets[]", subnet_id)
    for group_id in network.get("securityGroups", []):
        out.rel(arn, "SECURED_BY", ctx.place.ec2_arn("security-group", group_id),
                "networkConfiguration.awsvpcConfiguration.securityGroups[]", group_id)
    for tg in target_groups:
        out.rel(tg, "ROUTES_TO", arn, "loadBalancers[].targetGroupArn", tg)


def endpoint_names(value: str) -> list[str]:
    """Names a configuration value may use for a resource: the value itself, each
    host in it (without user, password or port; ``jdbc:`` URLs and comma-separated
    lists too), an S3 URL's bucket. Never a whole value that carries credentials."""
    value = value.strip()
    if not value or len(value) > 4096:
        return []
    names: list[str] = []
    for part in [p for p in re.split(r"[,\s]+", value) if p][:20]:
        if part.lower().startswith("jdbc:"):
            part = part[5:]
        if "://" in part:
            try:
                host = urlsplit(part).hostname
            except ValueError:
                host = None
            if host:
                names.append(host)
        elif part.startswith("arn:"):
            names.append(part)
        else:
            host = host_of(part)
            names.append(host)
            if "@" not in part and ":" not in part and "/" not in part:
                names.append(part)  # a bare name: a table, a bucket
    for name in list(names):
        bucket = bucket_from_host(name)
        if bucket:
            names.append(bucket)
    return [n for n in dict.fromkeys(names) if n]


def lambda_functions(ctx: Context, out: Out) -> None:
    client = ctx.client("lambda")
    subnet_vpc: dict[str, str] = ctx.shared.get("subnet_vpc", {})
    sources: dict[str, list[str]] = {}
    for mapping in items(client, "list_event_source_mappings", "EventSourceMappings[]"):
        if mapping.get("FunctionArn") and mapping.get("EventSourceArn"):
            function = mapping["FunctionArn"].split(":$LATEST")[0]
            sources.setdefault(function, []).append(mapping["EventSourceArn"])
    functions = list(items(client, "list_functions", "Functions[]"))
    all_tags = ctx.each(lambda f: tag_dict(client.list_tags(Resource=f["FunctionArn"]).get("Tags")), functions)
    for fn, tags in zip(functions, all_tags, strict=True):
        if isinstance(tags, Exception):
            if isinstance(tags, ClientError) and gone(tags):
                continue  # deleted since it was listed
            raise tags
        arn = fn["FunctionArn"]
        vpc = fn.get("VpcConfig") or {}
        subnet_ids = list(vpc.get("SubnetIds") or [])
        group_ids = list(vpc.get("SecurityGroupIds") or [])
        # moto answers a fixed fake VpcId: the subnets say which VPC it really is
        vpc_id = next((subnet_vpc[s] for s in subnet_ids if subnet_vpc.get(s)), vpc.get("VpcId", "") if subnet_ids else "")
        variables: dict[str, str] = (fn.get("Environment") or {}).get("Variables") or {}
        names = sorted(n for n in variables if not SECRET_NAME.search(n))
        events = sources.get(arn, [])
        out.ci(
            arn,
            "aws.lambda.function",
            fn.get("FunctionName", arn),
            tags=tags,
            attributes={
                "function_name": fn.get("FunctionName", ""),
                "runtime": fn.get("Runtime", ""),
                "handler": fn.get("Handler", ""),
                "memory_mb": fn.get("MemorySize"),
                "timeout_s": fn.get("Timeout"),
                "env_var_names": names,
                "role_arn": fn.get("Role", ""),
                "vpc_id": vpc_id,
                "subnet_ids": subnet_ids,
                "security_group_ids": group_ids,
                "event_sources": events,
                "package_type": fn.get("PackageType", ""),
                "last_modified": str(fn.get("LastModified", "")),
                "architectures": list(fn.get("Architectures") or []),
            },
        )
        if fn.get("Role"):
            out.rel(arn, "DEPENDS_ON", fn["Role"], "Role", fn["Role"])
        for subnet_id in subnet_ids:
            out.rel(arn, "CONTAINED_IN", ctx.place.ec2_arn("subnet", subnet_id), "VpcConfig.SubnetIds[]", subnet_id)
        for group_id in group_ids:
            sg = ctx.place.ec2_arn("security-group", group_id)
            out.rel(arn, "SECURED_BY", sg, "VpcConfig.SecurityGroupIds[]", group_id)
        for source in events:
            target = ctx.index.find(source, ctx.place.region)
            if target:
                out.rel(arn, "DEPENDS_ON", target, "EventSourceMappings[].EventSourceArn", source)
        for name in names:  # secret-looking names were left out above: their values are never read
            for candidate in endpoint_names(variables[name]):
                target = ctx.index.find(candidate, ctx.place.region)
                if target:
                    # the evidence names the resource, never the value that named it
                    out.rel(arn, "DEPENDS_ON", target, f"Environment.Variables.{name}", target)
                    break


UNITS = [
    ("eks", "clusters", eks_clusters),
    ("ecs", "clusters", ecs_clusters),
    ("lambda", "functions", lambda_functions),
]
