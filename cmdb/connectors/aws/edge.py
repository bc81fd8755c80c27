"""Load balancing and edge: ELBv2 load balancers, listeners and target groups
(with each target's health), classic ELBs, CloudFront distributions and Route53.

    (:LoadBalancer)-[:ROUTES_TO]->(:TargetGroup)-[:ROUTES_TO]->(:Instance|NetworkInterface|Function|EcsService)
    (:Listener)-[:MEMBER_OF]->(:LoadBalancer); (:Listener)-[:ROUTES_TO]->(:TargetGroup)
    (:LoadBalancer)-[:CONTAINED_IN]->(:Subnet); (:LoadBalancer)-[:SECURED_BY]->(:SecurityGroup)
    (:ClassicElb)-[:ROUTES_TO]->(:Instance)
    (:Distribution)-[:DEPENDS_ON]->(:Bucket|LoadBalancer)   one origin it needs
    (:Distribution)-[:ROUTES_TO]->(:Bucket|LoadBalancer)    origins of a failover origin group
    (:Record)-[:ROUTES_TO]->(:LoadBalancer|Distribution|...); (:Record)-[:CONTAINED_IN]->(:HostedZone)
"""

from __future__ import annotations

import re
from typing import Any

from cmdb.connectors.aws.base import GLOBAL, Context, Out, Record, items, tag_dict

__all__ = ["GLOBAL_UNITS", "UNITS", "bucket_from_host"]

_S3_HOST = re.compile(r"^(?P<bucket>.+?)\.s3(?:[.-](?:website[.-])?[a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?$")


def bucket_from_host(host: str) -> str | None:
    """The bucket a virtual-hosted S3 or S3 website hostname names, else None."""
    match = _S3_HOST.match(host.strip().rstrip(".").lower())
    return match.group("bucket") if match else None


def _dns(name: str) -> str:
    name = name.strip().rstrip(".").lower()
    return name.removeprefix("dualstack.")


def _chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def load_balancers(ctx: Context, out: Out) -> None:
    client = ctx.client("elbv2")
    lbs = list(items(client, "describe_load_balancers", "LoadBalancers[]"))
    groups = list(items(client, "describe_target_groups", "TargetGroups[]"))
    arns = [lb["LoadBalancerArn"] for lb in lbs] + [tg["TargetGroupArn"] for tg in groups]
    tags: dict[str, dict[str, str]] = {}
    for chunk in _chunks(arns, 20):
        for desc in client.describe_tags(ResourceArns=chunk).get("TagDescriptions", []):
            tags[desc["ResourceArn"]] = tag_dict(desc.get("Tags"))
    routed: set[tuple[str, str]] = set()
    for lb in lbs:
        arn = lb["LoadBalancerArn"]
        dns = lb.get("DNSName", "")
        listeners: list[dict[str, Any]] = []
        for listener in items(client, "describe_listeners", "Listeners[]", LoadBalancerArn=arn):
            forwards = _forward_targets(listener.get("DefaultActions", []))
            listeners.append(
                {"arn": listener["ListenerArn"], "port": listener.get("Port"), "protocol": listener.get("Protocol", ""),
                 "target_groups": forwards}
            )
            out.ci(
                listener["ListenerArn"],
                "aws.elbv2.listener",
                f"{lb.get('LoadBalancerName', '')}:{listener.get('Port', '')}",
                attributes={
                    "port": listener.get("Port"),
                    "protocol": listener.get("Protocol", ""),
                    "load_balancer_arn": arn,
                    "default_actions": [{"type": a.get("Type", ""), "target_group_arn": a.get("TargetGroupArn", "")}
                                        for a in listener.get("DefaultActions", [])],
                    "ssl_policy": listener.get("SslPolicy", ""),
                    "certificates": [c["CertificateArn"] for c in listener.get("Certificates", [])
                                     if c.get("CertificateArn")],
                },
            )
            out.rel(listener["ListenerArn"], "MEMBER_OF", arn, "LoadBalancerArn", arn)
            for tg in forwards:
                out.rel(listener["ListenerArn"], "ROUTES_TO", tg, "DefaultActions[].TargetGroupArn", tg)
                if (arn, tg) not in routed:
                    routed.add((arn, tg))
                    out.rel(arn, "ROUTES_TO", tg, "Listeners[].DefaultActions[].TargetGroupArn", tg)
        zones = lb.get("AvailabilityZones", [])
        out.ci(
            arn,
            "aws.elbv2.load_balancer",
            lb.get("LoadBalancerName", arn),
            tags=tags.get(arn),
            aliases=(dns,),
            attributes={
                "name": lb.get("LoadBalancerName", ""),
                "scheme": lb.get("Scheme", ""),
                "lb_type": lb.get("Type", ""),
                "dns_name": dns,
                "state": (lb.get("State") or {}).get("Code", ""),
                "listeners": listeners,
                "vpc_id": lb.get("VpcId", ""),
                "availability_zones": [z.get("ZoneName", "") for z in zones],
                "public": lb.get("Scheme") == "internet-facing",
            },
        )
        ctx.index.add(arn, dns, region=ctx.place.region)
        for zone in zones:
            if zone.get("SubnetId"):
                subnet = ctx.place.ec2_arn("subnet", zone["SubnetId"])
                out.rel(arn, "CONTAINED_IN", subnet, "AvailabilityZones[].SubnetId", zone["SubnetId"])
        for group_id in lb.get("SecurityGroups", []):
            out.rel(arn, "SECURED_BY", ctx.place.ec2_arn("security-group", group_id), "SecurityGroups[]", group_id)
    eni_by_ip: dict[str, str] = ctx.shared.get("eni_by_ip", {})
    for tg in groups:
        tg_arn = tg["TargetGroupArn"]
        for lb_arn in tg.get("LoadBalancerArns", []):
            if (lb_arn, tg_arn) not in routed:  # forwarded to by a listener rule, not a default action
                routed.add((lb_arn, tg_arn))
                out.rel(lb_arn, "ROUTES_TO", tg_arn, "TargetGroup.LoadBalancerArns[]", lb_arn)
        health = client.describe_target_health(TargetGroupArn=tg_arn).get("TargetHealthDescriptions", [])
        targets: list[dict[str, Any]] = []
        for desc in health:
            target = desc.get("Target") or {}
            state = desc.get("TargetHealth") or {}
            target_id = str(target.get("Id", ""))
            targets.append({"id": target_id, "port": target.get("Port"), "health": state.get("State", ""),
                            "reason": state.get("Reason", "")})
            kind = tg.get("TargetType", "instance")
            to_id: str | None = None
            if kind == "instance" and target_id.startswith("i-"):
                to_id = ctx.place.ec2_arn("instance", target_id)
            elif kind == "lambda" or target_id.startswith("arn:"):
                to_id = target_id
            elif kind == "ip":
                to_id = eni_by_ip.get(target_id)
            if to_id:
                out.rel(tg_arn, "ROUTES_TO", to_id, "TargetHealthDescriptions[].Target.Id", target_id)
        out.ci(
            tg_arn,
            "aws.elbv2.target_group",
            tg.get("TargetGroupName", tg_arn),
            tags=tags.get(tg_arn),
            attributes={
                "name": tg.get("TargetGroupName", ""),
                "protocol": tg.get("Protocol", ""),
                "port": tg.get("Port"),
                "target_type": tg.get("TargetType", ""),
                "vpc_id": tg.get("VpcId", ""),
                "healthy_targets": sum(1 for t in targets if t["health"] == "healthy"),
                "unhealthy_targets": sum(1 for t in targets if t["health"] == "unhealthy"),
                "targets": targets,
                "load_balancer_arns": list(tg.get("LoadBalancerArns", [])),
            },
        )


def _forward_targets(actions: list[Record]) -> list[str]:
    found: list[str] = []
    for action in actions:
        if action.get("TargetGroupArn"):
            found.append(action["TargetGroupArn"])
        for group in (action.get("ForwardConfig") or {}).get("TargetGroups", []):
            if group.get("TargetGroupArn"):
                found.append(group["TargetGroupArn"])
    return list(dict.fromkeys(found))


def classic_load_balancers(ctx: Context, out: Out) -> None:
    client = ctx.client("elb")
    lbs = list(items(client, "describe_load_balancers", "LoadBalancerDescriptions[]"))
    tags: dict[str, dict[str, str]] = {}
    for chunk in _chunks([lb["LoadBalancerName"] for lb in lbs], 20):
        for desc in client.describe_tags(LoadBalancerNames=chunk).get("TagDescriptions", []):
            tags[desc["LoadBalancerName"]] = tag_dict(desc.get("Tags"))
    for lb in lbs:
        name = lb["LoadBalancerName"]
        arn = ctx.place.arn("elasticloadbalancing", f"loadbalancer/{name}")
        dns = lb.get("DNSName", "")
        instance_ids = [i["InstanceId"] for i in lb.get("Instances", []) if i.get("InstanceId")]
        out.ci(
            arn,
            "aws.elb.load_balancer",
            name,
            tags=tags.get(name),
            aliases=(dns,),
            attributes={
                "name": name,
                "scheme": lb.get("Scheme", ""),
                "dns_name": dns,
                "vpc_id": lb.get("VPCId", ""),
                "listeners": [
                    {"protocol": d["Listener"].get("Protocol", ""), "port": d["Listener"].get("LoadBalancerPort"),
                     "instance_port": d["Listener"].get("InstancePort")}
                    for d in lb.get("ListenerDescriptions", []) if d.get("Listener")
                ],
                "instance_ids": instance_ids,
                "availability_zones": list(lb.get("AvailabilityZones", [])),
                "public": lb.get("Scheme") == "internet-facing",
            },
        )
        ctx.index.add(arn, dns, region=ctx.place.region)
        for instance_id in instance_ids:
            out.rel(arn, "ROUTES_TO", ctx.place.ec2_arn("instance", instance_id), "Instances[].InstanceId", instance_id)
        for subnet_id in lb.get("Subnets", []):
            out.rel(arn, "CONTAINED_IN", ctx.place.ec2_arn("subnet", subnet_id), "Subnets[]", subnet_id)
        for group_id in lb.get("SecurityGroups", []):
            out.rel(arn, "SECURED_BY", ctx.place.ec2_arn("security-group", group_id), "SecurityGroups[]", group_id)


def _origin_target(ctx: Context, domain: str) -> str | None:
    host = _dns(domain)
    found = ctx.index.find(host)
    if found is None:
        bucket = bucket_from_host(host)
        if bucket:
            found = ctx.index.find(bucket)
    return found


def distributions(ctx: Context, out: Out) -> None:
    client = ctx.client("cloudfront")
    for dist in items(client, "list_distributions", "DistributionList.Items[]"):
        arn = dist["ARN"]
        domain = dist.get("DomainName", "")
        aliases = list((dist.get("Aliases") or {}).get("Items") or [])
        origins_raw = (dist.get("Origins") or {}).get("Items") or []
        grouped = {
            member["OriginId"]
            for group in ((dist.get("OriginGroups") or {}).get("Items") or [])
            for member in ((group.get("Members") or {}).get("Items") or [])
        }
        origins: list[dict[str, str]] = []
        for origin in origins_raw:
            origin_domain = origin.get("DomainName", "")
            kind = "s3" if origin.get("S3OriginConfig") is not None or bucket_from_host(origin_domain) else "custom"
            origins.append({"id": origin.get("Id", ""), "domain_name": origin_domain,
                            "origin_path": origin.get("OriginPath", ""), "kind": kind})
            target = _origin_target(ctx, origin_domain)
            if target:
                rel_type = "ROUTES_TO" if origin.get("Id") in grouped else "DEPENDS_ON"
                out.rel(arn, rel_type, target, "Origins.Items[].DomainName", origin_domain)
        tags = tag_dict((client.list_tags_for_resource(Resource=arn).get("Tags") or {}).get("Items"))
        behaviour = dist.get("DefaultCacheBehavior") or {}
        out.ci(
            arn,
            "aws.cloudfront.distribution",
            aliases[0] if aliases else dist.get("Id", arn),
            tags=tags,
            region=GLOBAL,
            aliases=(domain, *aliases),
            attributes={
                "distribution_id": dist.get("Id", ""),
                "domain_name": domain,
                "aliases": aliases,
                "enabled": bool(dist.get("Enabled", False)),
                "origins": origins,
                "price_class": dist.get("PriceClass", ""),
                "status": dist.get("Status", ""),
                "viewer_protocol_policy": behaviour.get("ViewerProtocolPolicy", ""),
                "web_acl_id": dist.get("WebACLId", ""),
            },
        )
        ctx.index.add(arn, domain, *aliases)


def hosted_zones(ctx: Context, out: Out) -> None:
    client = ctx.client("route53")
    for zone in items(client, "list_hosted_zones", "HostedZones[]"):
        zone_id = zone["Id"].rsplit("/", 1)[-1]
        zone_arn = ctx.place.arn("route53", f"hostedzone/{zone_id}", region="", account="")
        tags = tag_dict(
            (client.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id).get("ResourceTagSet")
              or {}).get("Tags")
        )
        config = zone.get("Config") or {}
        out.ci(
            zone_arn,
            "aws.route53.hosted_zone",
            zone.get("Name", zone_id).rstrip("."),
            tags=tags,
            region=GLOBAL,
            attributes={
                "zone_id": zone_id,
                "zone_name": zone.get("Name", "").rstrip("."),
                "private": bool(config.get("PrivateZone", False)),
                "record_count": int(zone.get("ResourceRecordSetCount", 0)),
            },
        )
        for record in items(client, "list_resource_record_sets", "ResourceRecordSets[]", HostedZoneId=zone_id):
            _record(ctx, out, zone_id, zone_arn, record)


def _record(ctx: Context, out: Out, zone_id: str, zone_arn: str, record: Record) -> None:
    kind = record.get("Type", "")
    if kind in ("SOA", "NS"):
        return  # the zone's own plumbing
    name = record.get("Name", "").rstrip(".").lower().replace("\\052", "*")
    set_id = record.get("SetIdentifier", "")
    resource = f"hostedzone/{zone_id}/recordset/{name}/{kind}" + (f"/{set_id}" if set_id else "")
    arn = ctx.place.arn("route53", resource, region="", account="")
    alias = record.get("AliasTarget") or {}
    values = [r["Value"] for r in record.get("ResourceRecords", []) if r.get("Value")]
    out.ci(
        arn,
        "aws.route53.record",
        f"{name} {kind}",
        region=GLOBAL,
        attributes={
            "record_type": kind,
            "record_name": name,
            "values": values,
            "alias_target": _dns(alias.get("DNSName", "")) if alias else "",
            "ttl": record.get("TTL"),
            "zone_id": zone_id,
            "set_identifier": set_id,
        },
    )
    out.rel(arn, "CONTAINED_IN", zone_arn, "HostedZoneId", zone_id)
    if alias.get("DNSName"):
        target = ctx.index.find(_dns(alias["DNSName"]))
        if target:
            out.rel(arn, "ROUTES_TO", target, "AliasTarget.DNSName", alias["DNSName"])
    if kind == "CNAME":
        for value in values:
            target = ctx.index.find(_dns(value))
            if target:
                out.rel(arn, "ROUTES_TO", target, "ResourceRecords[].Value", value)


UNITS = [
    ("elbv2", "load_balancers", load_balancers),
    ("elb", "classic_load_balancers", classic_load_balancers),
]
GLOBAL_UNITS = [
    ("cloudfront", "distributions", distributions),
    ("route53", "hosted_zones", hosted_zones),
]
