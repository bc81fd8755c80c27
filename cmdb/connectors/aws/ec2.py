"""EC2 compute and network: VPCs, subnets, route tables, gateways, security
groups, Elastic IPs, network interfaces, instances, volumes, snapshots and the
AMIs instances were launched from.

    (:Subnet)-[:CONTAINED_IN]->(:Vpc)
    (:Subnet)-[:DEPENDS_ON]->(:RouteTable)-[:DEPENDS_ON]->(:InternetGateway|NatGateway)
    (:RouteTable|SecurityGroup|InternetGateway)-[:CONTAINED_IN]->(:Vpc)
    (:NatGateway)-[:CONTAINED_IN]->(:Subnet); (:NatGateway)-[:DEPENDS_ON]->(:ElasticIp)
    (:NetworkInterface)-[:CONTAINED_IN]->(:Subnet); (:NetworkInterface)-[:SECURED_BY]->(:SecurityGroup)
    (:Instance)-[:CONTAINED_IN]->(:Subnet); (:Instance)-[:SECURED_BY]->(:SecurityGroup)
    (:Instance)-[:DEPENDS_ON]->(:Volume|NetworkInterface|Image|InstanceProfile|ElasticIp)
    (:Snapshot)-[:MEMBER_OF]->(:Volume)
"""

from __future__ import annotations

from typing import Any

from cmdb.connectors.aws.base import Context, Out, Record, items, tag_dict

__all__ = ["UNITS"]

_PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else ("" if value is None else str(value))


def vpcs(ctx: Context, out: Out) -> None:
    for vpc in items(ctx.client("ec2"), "describe_vpcs", "Vpcs[]"):
        out.ci(
            ctx.place.ec2_arn("vpc", vpc["VpcId"]),
            "aws.ec2.vpc",
            vpc["VpcId"],
            tags=tag_dict(vpc.get("Tags")),
            attributes={
                "vpc_id": vpc["VpcId"],
                "cidr_block": vpc.get("CidrBlock", ""),
                "is_default": bool(vpc.get("IsDefault", False)),
                "state": vpc.get("State", ""),
            },
        )


def subnets(ctx: Context, out: Out) -> None:
    subnet_vpc: dict[str, str] = ctx.shared.setdefault("subnet_vpc", {})
    for subnet in items(ctx.client("ec2"), "describe_subnets", "Subnets[]"):
        arn = ctx.place.ec2_arn("subnet", subnet["SubnetId"])
        subnet_vpc[subnet["SubnetId"]] = subnet.get("VpcId", "")
        out.ci(
            arn,
            "aws.ec2.subnet",
            subnet["SubnetId"],
            tags=tag_dict(subnet.get("Tags")),
            attributes={
                "subnet_id": subnet["SubnetId"],
                "cidr_block": subnet.get("CidrBlock", ""),
                "availability_zone": subnet.get("AvailabilityZone", ""),
                "map_public_ip_on_launch": bool(subnet.get("MapPublicIpOnLaunch", False)),
                "available_ips": int(subnet.get("AvailableIpAddressCount", 0)),
                "vpc_id": subnet.get("VpcId", ""),
                "default_for_az": bool(subnet.get("DefaultForAz", False)),
            },
        )
        if subnet.get("VpcId"):
            out.rel(arn, "CONTAINED_IN", ctx.place.ec2_arn("vpc", subnet["VpcId"]), "VpcId", subnet["VpcId"])


def internet_gateways(ctx: Context, out: Out) -> None:
    for igw in items(ctx.client("ec2"), "describe_internet_gateways", "InternetGateways[]"):
        arn = ctx.place.ec2_arn("internet-gateway", igw["InternetGatewayId"])
        vpc_ids = [a["VpcId"] for a in igw.get("Attachments", []) if a.get("VpcId")]
        out.ci(
            arn,
            "aws.ec2.internet_gateway",
            igw["InternetGatewayId"],
            tags=tag_dict(igw.get("Tags")),
            attributes={"internet_gateway_id": igw["InternetGatewayId"], "vpc_ids": vpc_ids},
        )
        for vpc_id in vpc_ids:
            out.rel(arn, "CONTAINED_IN", ctx.place.ec2_arn("vpc", vpc_id), "Attachments[].VpcId", vpc_id)


def elastic_ips(ctx: Context, out: Out) -> None:
    for address in items(ctx.client("ec2"), "describe_addresses", "Addresses[]"):
        allocation = address.get("AllocationId") or address.get("PublicIp", "")
        arn = ctx.place.ec2_arn("elastic-ip", allocation)
        out.ci(
            arn,
            "aws.ec2.elastic_ip",
            address.get("PublicIp", allocation),
            tags=tag_dict(address.get("Tags")),
            attributes={
                "public_ip": address.get("PublicIp", ""),
                "allocation_id": address.get("AllocationId", ""),
                "association_id": address.get("AssociationId", ""),
                "instance_id": address.get("InstanceId", ""),
                "network_interface_id": address.get("NetworkInterfaceId", ""),
                "private_ip": address.get("PrivateIpAddress", ""),
                "domain": address.get("Domain", ""),
            },
        )
        if address.get("InstanceId"):
            instance = ctx.place.ec2_arn("instance", address["InstanceId"])
            out.rel(instance, "DEPENDS_ON", arn, "InstanceId", address["InstanceId"])


def nat_gateways(ctx: Context, out: Out) -> None:
    for nat in items(ctx.client("ec2"), "describe_nat_gateways", "NatGateways[]"):
        if nat.get("State") in ("deleted", "failed"):
            continue
        arn = ctx.place.ec2_arn("natgateway", nat["NatGatewayId"])
        addresses = nat.get("NatGatewayAddresses", [])
        out.ci(
            arn,
            "aws.ec2.nat_gateway",
            nat["NatGatewayId"],
            tags=tag_dict(nat.get("Tags")),
            attributes={
                "nat_gateway_id": nat["NatGatewayId"],
                "state": nat.get("State", ""),
                "connectivity_type": nat.get("ConnectivityType", "public"),
                "subnet_id": nat.get("SubnetId", ""),
                "vpc_id": nat.get("VpcId", ""),
                "public_ips": [a["PublicIp"] for a in addresses if a.get("PublicIp")],
                "private_ips": [a["PrivateIp"] for a in addresses if a.get("PrivateIp")],
            },
        )
        if nat.get("SubnetId"):
            out.rel(arn, "CONTAINED_IN", ctx.place.ec2_arn("subnet", nat["SubnetId"]), "SubnetId", nat["SubnetId"])
        for address in addresses:
            if address.get("AllocationId"):
                eip = ctx.place.ec2_arn("elastic-ip", address["AllocationId"])
                out.rel(arn, "DEPENDS_ON", eip, "NatGatewayAddresses[].AllocationId", address["AllocationId"])


def route_tables(ctx: Context, out: Out) -> None:
    for table in items(ctx.client("ec2"), "describe_route_tables", "RouteTables[]"):
        arn = ctx.place.ec2_arn("route-table", table["RouteTableId"])
        associations = table.get("Associations", [])
        routes: list[dict[str, str]] = []
        for route in table.get("Routes", []):
            target = next(
                (route[k] for k in ("GatewayId", "NatGatewayId", "TransitGatewayId", "VpcPeeringConnectionId",
                                    "NetworkInterfaceId", "InstanceId", "EgressOnlyInternetGatewayId") if route.get(k)),
                "",
            )
            routes.append(
                {
                    "destination": route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock")
                    or route.get("DestinationPrefixListId", ""),
                    "target": target,
                    "state": route.get("State", ""),
                }
            )
            if route.get("GatewayId", "").startswith("igw-"):
                igw = ctx.place.ec2_arn("internet-gateway", route["GatewayId"])
                out.rel(arn, "DEPENDS_ON", igw, "Routes[].GatewayId", route["GatewayId"])
            if route.get("NatGatewayId"):
                nat = ctx.place.ec2_arn("natgateway", route["NatGatewayId"])
                out.rel(arn, "DEPENDS_ON", nat, "Routes[].NatGatewayId", route["NatGatewayId"])
        subnet_ids = [a["SubnetId"] for a in associations if a.get("SubnetId")]
        out.ci(
            arn,
            "aws.ec2.route_table",
            table["RouteTableId"],
            tags=tag_dict(table.get("Tags")),
            attributes={
                "route_table_id": table["RouteTableId"],
                "vpc_id": table.get("VpcId", ""),
                "main": any(a.get("Main") for a in associations),
                "routes": routes,
                "subnet_ids": subnet_ids,
            },
        )
        if table.get("VpcId"):
            out.rel(arn, "CONTAINED_IN", ctx.place.ec2_arn("vpc", table["VpcId"]), "VpcId", table["VpcId"])
        for subnet_id in subnet_ids:
            subnet = ctx.place.ec2_arn("subnet", subnet_id)
            out.rel(subnet, "DEPENDS_ON", arn, "Associations[].SubnetId", subnet_id)


def _rules(permissions: list[Record]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for perm in permissions:
        protocol = str(perm.get("IpProtocol", "-1")).lower()
        protocol = _PROTOCOLS.get(protocol, protocol)
        everything = protocol == "-1"
        from_port = perm.get("FromPort")
        to_port = perm.get("ToPort")
        rules.append(
            {
                "protocol": protocol,
                "from_port": 0 if everything or from_port is None else int(from_port),
                "to_port": 65535 if everything or to_port is None else int(to_port),
                "cidrs": [r["CidrIp"] for r in perm.get("IpRanges", []) if r.get("CidrIp")],
                "ipv6_cidrs": [r["CidrIpv6"] for r in perm.get("Ipv6Ranges", []) if r.get("CidrIpv6")],
                "security_groups": [g["GroupId"] for g in perm.get("UserIdGroupPairs", []) if g.get("GroupId")],
                "prefix_lists": [p["PrefixListId"] for p in perm.get("PrefixListIds", []) if p.get("PrefixListId")],
            }
        )
    return rules


def security_groups(ctx: Context, out: Out) -> None:
    for group in items(ctx.client("ec2"), "describe_security_groups", "SecurityGroups[]"):
        arn = ctx.place.ec2_arn("security-group", group["GroupId"])
        ingress = _rules(group.get("IpPermissions", []))
        out.ci(
            arn,
            "aws.ec2.security_group",
            group.get("GroupName", group["GroupId"]),
            tags=tag_dict(group.get("Tags")),
            attributes={
                "group_id": group["GroupId"],
                "group_name": group.get("GroupName", ""),
                "description": group.get("Description", ""),
                "vpc_id": group.get("VpcId", ""),
                "ingress_rules": ingress,
                "egress_rules": _rules(group.get("IpPermissionsEgress", [])),
                "open_to_world": any(
                    "0.0.0.0/0" in rule["cidrs"] or "::/0" in rule["ipv6_cidrs"] for rule in ingress
                ),
            },
        )
        if group.get("VpcId"):
            out.rel(arn, "CONTAINED_IN", ctx.place.ec2_arn("vpc", group["VpcId"]), "VpcId", group["VpcId"])


def network_interfaces(ctx: Context, out: Out) -> None:
    by_ip: dict[str, str] = ctx.shared.setdefault("eni_by_ip", {})
    for eni in items(ctx.client("ec2"), "describe_network_interfaces", "NetworkInterfaces[]"):
        arn = ctx.place.ec2_arn("network-interface", eni["NetworkInterfaceId"])
        attachment = eni.get("Attachment") or {}
        association = eni.get("Association") or {}
        for address in eni.get("PrivateIpAddresses", []):
            if address.get("PrivateIpAddress"):
                by_ip[address["PrivateIpAddress"]] = arn
        out.ci(
            arn,
            "aws.ec2.network_interface",
            eni["NetworkInterfaceId"],
            tags=tag_dict(eni.get("TagSet") or eni.get("Tags")),
            attributes={
                "interface_id": eni["NetworkInterfaceId"],
                "interface_type": eni.get("InterfaceType", "interface"),
                "status": eni.get("Status", ""),
                "private_ip": eni.get("PrivateIpAddress", ""),
                "public_ip": association.get("PublicIp", ""),
                "mac_address": eni.get("MacAddress", ""),
                "availability_zone": eni.get("AvailabilityZone", ""),
                "attached_instance": attachment.get("InstanceId", ""),
                "requester_managed": bool(eni.get("RequesterManaged", False)),
                "description": eni.get("Description", ""),
            },
        )
        if eni.get("SubnetId"):
            out.rel(arn, "CONTAINED_IN", ctx.place.ec2_arn("subnet", eni["SubnetId"]), "SubnetId", eni["SubnetId"])
        for group in eni.get("Groups", []):
            sg = ctx.place.ec2_arn("security-group", group["GroupId"])
            out.rel(arn, "SECURED_BY", sg, "Groups[].GroupId", group["GroupId"])


def instances(ctx: Context, out: Out) -> None:
    seen: list[tuple[str, dict[str, str]]] = ctx.shared.setdefault("instances", [])
    images: dict[str, list[str]] = ctx.shared.setdefault("instance_images", {})
    for inst in items(ctx.client("ec2"), "describe_instances", "Reservations[].Instances[]"):
        state = (inst.get("State") or {}).get("Name", "")
        if state in ("terminated", "shutting-down"):
            continue  # gone, or going: not part of the estate
        instance_id = inst["InstanceId"]
        arn = ctx.place.ec2_arn("instance", instance_id)
        tags = tag_dict(inst.get("Tags"))
        seen.append((arn, tags))
        profile = (inst.get("IamInstanceProfile") or {}).get("Arn", "")
        groups = [g["GroupId"] for g in inst.get("SecurityGroups", []) if g.get("GroupId")]
        metadata = inst.get("MetadataOptions") or {}
        out.ci(
            arn,
            "aws.ec2.instance",
            instance_id,
            tags=tags,
            aliases=(instance_id, inst.get("PrivateDnsName", "")),
            attributes={
                "instance_id": instance_id,
                "instance_type": inst.get("InstanceType", ""),
                "state": state,
                "image_id": inst.get("ImageId", ""),
                "private_ip": inst.get("PrivateIpAddress", ""),
                "public_ip": inst.get("PublicIpAddress", ""),
                "private_dns_name": inst.get("PrivateDnsName", ""),
                "public_dns_name": inst.get("PublicDnsName", ""),
                "availability_zone": (inst.get("Placement") or {}).get("AvailabilityZone", ""),
                "launch_time": _iso(inst.get("LaunchTime")),
                "platform": inst.get("PlatformDetails") or inst.get("Platform") or "",
                "monitoring": (inst.get("Monitoring") or {}).get("State", ""),
                "vpc_id": inst.get("VpcId", ""),
                "subnet_id": inst.get("SubnetId", ""),
                "security_group_ids": groups,
                "instance_profile_arn": profile,
                "key_name": inst.get("KeyName", ""),
                "imdsv2_required": metadata.get("HttpTokens") == "required",
                "ebs_optimized": bool(inst.get("EbsOptimized", False)),
            },
        )
        if inst.get("SubnetId"):
            out.rel(arn, "CONTAINED_IN", ctx.place.ec2_arn("subnet", inst["SubnetId"]), "SubnetId", inst["SubnetId"])
        for group_id in groups:
            out.rel(arn, "SECURED_BY", ctx.place.ec2_arn("security-group", group_id), "SecurityGroups[].GroupId", group_id)
        for mapping in inst.get("BlockDeviceMappings", []):
            volume_id = (mapping.get("Ebs") or {}).get("VolumeId")
            if volume_id:
                volume = ctx.place.ec2_arn("volume", volume_id)
                out.rel(arn, "DEPENDS_ON", volume, "BlockDeviceMappings[].Ebs.VolumeId", volume_id)
        for eni in inst.get("NetworkInterfaces", []):
            eni_id = eni.get("NetworkInterfaceId")
            if eni_id:
                target = ctx.place.ec2_arn("network-interface", eni_id)
                out.rel(arn, "DEPENDS_ON", target, "NetworkInterfaces[].NetworkInterfaceId", eni_id)
        if profile:
            out.rel(arn, "DEPENDS_ON", profile, "IamInstanceProfile.Arn", profile)
        if inst.get("ImageId"):
            images.setdefault(inst["ImageId"], []).append(arn)


def images(ctx: Context, out: Out) -> None:
    """The AMIs that instances here were launched from (those still visible)."""
    wanted: dict[str, list[str]] = ctx.shared.get("instance_images", {})
    ids = sorted(wanted)
    client = ctx.client("ec2")
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        for image in items(client, "describe_images", "Images[]", Filters=[{"Name": "image-id", "Values": chunk}]):
            image_id = image["ImageId"]
            owner = str(image.get("OwnerId", ""))
            arn = ctx.place.arn("ec2", f"image/{image_id}", account="")
            # an AMI may be used by several swept accounts: it belongs to its owner's scope
            scope = f"aws:{owner}:{ctx.place.region}" if owner.isdigit() else None
            out.ci(
                arn,
                "aws.ec2.image",
                image.get("Name") or image_id,
                tags=tag_dict(image.get("Tags")),
                scope=scope,
                aliases=(image_id,),
                attributes={
                    "image_id": image_id,
                    "image_name": image.get("Name", ""),
                    "owner_id": owner,
                    "state": image.get("State", ""),
                    "public": bool(image.get("Public", False)),
                    "architecture": image.get("Architecture", ""),
                    "platform": image.get("PlatformDetails", ""),
                    "creation_date": _iso(image.get("CreationDate")),
                    "root_device_type": image.get("RootDeviceType", ""),
                },
            )
            for instance in wanted.get(image_id, []):
                out.rel(instance, "DEPENDS_ON", arn, "ImageId", image_id)


def volumes(ctx: Context, out: Out) -> None:
    known: set[str] = ctx.shared.setdefault("volume_ids", set())
    for volume in items(ctx.client("ec2"), "describe_volumes", "Volumes[]"):
        volume_id = volume["VolumeId"]
        known.add(volume_id)
        out.ci(
            ctx.place.ec2_arn("volume", volume_id),
            "aws.ec2.volume",
            volume_id,
            tags=tag_dict(volume.get("Tags")),
            attributes={
                "volume_id": volume_id,
                "size_gb": int(volume.get("Size", 0)),
                "volume_type": volume.get("VolumeType", ""),
                "encrypted": bool(volume.get("Encrypted", False)),
                "state": volume.get("State", ""),
                "iops": int(volume.get("Iops") or 0),
                "availability_zone": volume.get("AvailabilityZone", ""),
                "kms_key_id": volume.get("KmsKeyId", ""),
                "snapshot_id": volume.get("SnapshotId", ""),
                "attached_instances": [a["InstanceId"] for a in volume.get("Attachments", []) if a.get("InstanceId")],
            },
        )


def snapshots(ctx: Context, out: Out) -> None:
    known: set[str] = ctx.shared.get("volume_ids", set())
    for snap in items(ctx.client("ec2"), "describe_snapshots", "Snapshots[]", OwnerIds=["self"]):
        snapshot_id = snap["SnapshotId"]
        arn = ctx.place.arn("ec2", f"snapshot/{snapshot_id}", account="")
        out.ci(
            arn,
            "aws.ec2.snapshot",
            snapshot_id,
            tags=tag_dict(snap.get("Tags")),
            attributes={
                "snapshot_id": snapshot_id,
                "volume_id": snap.get("VolumeId", ""),
                "size_gb": int(snap.get("VolumeSize", 0)),
                "encrypted": bool(snap.get("Encrypted", False)),
                "state": snap.get("State", ""),
                "start_time": _iso(snap.get("StartTime")),
                "owner_id": str(snap.get("OwnerId", "")),
                "description": snap.get("Description", ""),
            },
        )
        if snap.get("VolumeId") in known:
            volume = ctx.place.ec2_arn("volume", snap["VolumeId"])
            out.rel(arn, "MEMBER_OF", volume, "VolumeId", snap["VolumeId"])


UNITS = [
    ("ec2", "vpcs", vpcs),
    ("ec2", "subnets", subnets),
    ("ec2", "internet_gateways", internet_gateways),
    ("ec2", "elastic_ips", elastic_ips),
    ("ec2", "nat_gateways", nat_gateways),
    ("ec2", "route_tables", route_tables),
    ("ec2", "security_groups", security_groups),
    ("ec2", "network_interfaces", network_interfaces),
    ("ec2", "instances", instances),
    ("ec2", "images", images),
    ("ec2", "volumes", volumes),
    ("ec2", "snapshots", snapshots),
]
