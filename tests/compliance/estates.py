"""Known estates for the compliance tests, as file-connector records.

Each misconfigured CI has a fixed twin; ``BAD`` names which rule must fire on
which CI, and no rule may fire on a ``-ok`` CI.
"""

from __future__ import annotations

from typing import Any

ACCOUNT = "111122223333"


def arn(service: str, resource: str, region: str = "eu-west-1") -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


OWNED = {"owner": "team-payments"}


def aws_ci(ci_id: str, type_name: str, name: str, attributes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": ci_id,
        "type": type_name,
        "name": name,
        "provider": "aws",
        "region": "eu-west-1",
        "attributes": attributes,
    }
    record.update(OWNED)
    record.update(fields)
    return record


def sg_rule(port: int, cidr: str = "0.0.0.0/0", protocol: str = "tcp") -> dict[str, Any]:
    return {"protocol": protocol, "from_port": port, "to_port": port, "cidrs": [cidr], "ipv6_cidrs": []}


BAD: dict[str, str] = {}  # ci id -> rule id that must fire on it


def _bad(rule: str, record: dict[str, Any]) -> dict[str, Any]:
    BAD[record["id"]] = rule
    return record


def misconfigured_estate() -> list[dict[str, Any]]:
    """One bad and one fixed CI per rule (the fixed ones end in ``-ok``)."""
    return [
        _bad("storage.public-bucket", aws_ci("arn:aws:s3:::acme-public-exports", "aws.s3.bucket", "acme-public-exports", {"public": True, "encrypted": True})),
        aws_ci("arn:aws:s3:::acme-exports-ok", "aws.s3.bucket", "acme-exports-ok", {"public": False, "encrypted": True}),
        _bad("storage.public-bucket", {
            "id": "//storage.googleapis.com/projects/_/buckets/acme-gcs-public", "type": "gcp.storage.bucket",
            "provider": "gcp", "owner": "team-data", "attributes": {"public": True},
        }),
        {
            "id": "//storage.googleapis.com/projects/_/buckets/acme-gcs-ok", "type": "gcp.storage.bucket",
            "provider": "gcp", "owner": "team-data", "attributes": {"public": False},
        },
        _bad("storage.unencrypted-volume", aws_ci(arn("ec2", "volume/vol-0bad0000000000001"), "aws.ec2.volume", "vol-bad", {"encrypted": False, "size_gb": 100, "state": "in-use"})),
        aws_ci(arn("ec2", "volume/vol-0000000000000000ok"), "aws.ec2.volume", "vol-ok", {"encrypted": True, "size_gb": 100, "state": "in-use"}),
        _bad("database.unencrypted-storage", aws_ci(arn("rds", "db:orders-plain"), "aws.rds.db_instance", "orders-plain", {"storage_encrypted": False, "publicly_accessible": False, "instance_class": "db.m5.large", "engine": "postgres"})),
        _bad("aws.rds.publicly-accessible", aws_ci(arn("rds", "db:orders-public"), "aws.rds.db_instance", "orders-public", {"storage_encrypted": True, "publicly_accessible": True, "instance_class": "db.m5.large", "engine": "postgres"})),
        aws_ci(arn("rds", "db:orders-ok"), "aws.rds.db_instance", "orders-ok", {"storage_encrypted": True, "publicly_accessible": False, "instance_class": "db.m5.large", "engine": "postgres"}),
        _bad("network.open-admin-ports", aws_ci(arn("ec2", "security-group/sg-0ssh000000000001"), "aws.ec2.security_group", "ssh-open", {"ingress_rules": [sg_rule(22), sg_rule(443)]})),
        _bad("network.open-admin-ports", aws_ci(arn("ec2", "security-group/sg-0all000000000001"), "aws.ec2.security_group", "all-open", {"ingress_rules": [{"protocol": "-1", "from_port": None, "to_port": None, "cidrs": ["0.0.0.0/0"]}]})),
        _bad("network.open-database-ports", aws_ci(arn("ec2", "security-group/sg-0db0000000000001"), "aws.ec2.security_group", "pg-open", {"ingress_rules": [sg_rule(5432)]})),
        aws_ci(arn("ec2", "security-group/sg-0000000000000ok1"), "aws.ec2.security_group", "ssh-office", {"ingress_rules": [sg_rule(22, "203.0.113.0/24"), sg_rule(443), sg_rule(5432, "10.0.0.0/16")]}),
        _bad("network.open-admin-ports", {
            "id": "/subscriptions/0000/resourcegroups/rg-web/providers/microsoft.network/networksecuritygroups/nsg-rdp",
            "type": "azure.network.nsg", "provider": "azure", "owner": "team-web",
            "attributes": {"rules": [{"name": "rdp", "direction": "Inbound", "access": "Allow", "protocol": "Tcp", "source_address_prefix": "*", "destination_port_range": "3389"}]},
        }),
        {
            "id": "/subscriptions/0000/resourcegroups/rg-web/providers/microsoft.network/networksecuritygroups/nsg-ok",
            "type": "azure.network.nsg", "provider": "azure", "owner": "team-web",
            "attributes": {"rules": [{"name": "rdp", "direction": "Inbound", "access": "Deny", "protocol": "Tcp", "source_address_prefix": "*", "destination_port_range": "3389"},
                                     {"name": "https", "direction": "Inbound", "access": "Allow", "protocol": "Tcp", "source_address_prefix": "Internet", "destination_port_range": "443"}]},
        },
        _bad("network.open-admin-ports", {
            "id": "//compute.googleapis.com/projects/acme-prod/global/firewalls/allow-ssh", "type": "gcp.compute.firewall",
            "provider": "gcp", "owner": "team-data",
            "attributes": {"direction": "INGRESS", "source_ranges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "disabled": False},
        }),
        {
            "id": "//compute.googleapis.com/projects/acme-prod/global/firewalls/allow-ssh-ok", "type": "gcp.compute.firewall",
            "provider": "gcp", "owner": "team-data",
            "attributes": {"direction": "INGRESS", "source_ranges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}], "disabled": True},
        },
        _bad("aws.iam.role-trusts-any-principal", aws_ci(f"arn:aws:iam::{ACCOUNT}:role/open-door", "aws.iam.role", "open-door", {"trusted_principals": ["*"]}, region="")),
        aws_ci(f"arn:aws:iam::{ACCOUNT}:role/ci-deployer-ok", "aws.iam.role", "ci-deployer-ok", {"trusted_principals": ["arn:aws:iam::444455556666:root", "ec2.amazonaws.com"]}, region=""),
        _bad("network.lb-without-tls", aws_ci(arn("elasticloadbalancing", "loadbalancer/app/web-plain/50dc6c495c0c9188"), "aws.elbv2.load_balancer", "web-plain", {"lb_type": "application", "scheme": "internet-facing", "listeners": [{"protocol": "HTTP", "port": 80}]})),
        aws_ci(arn("elasticloadbalancing", "loadbalancer/app/web-ok/50dc6c495c0c9189"), "aws.elbv2.load_balancer", "web-ok", {"lb_type": "application", "scheme": "internet-facing", "listeners": [{"protocol": "HTTP", "port": 80}, {"protocol": "HTTPS", "port": 443}]}),
        _bad("k8s.mutable-image-tag", {
            "id": "prod-eu/web/Deployment/shop", "type": "k8s.deployment", "provider": "kubernetes", "owner": "team-web",
            "attributes": {"replicas": 3, "images": ["registry.example.com/shop:latest", "envoyproxy/envoy:v1.31.2"]},
        }),
        {
            "id": "prod-eu/web/Deployment/shop-ok", "type": "k8s.deployment", "provider": "kubernetes", "owner": "team-web",
            "attributes": {"replicas": 3, "images": ["registry.example.com/shop:1.4.2", "registry.example.com:5000/cart@sha256:" + "ab" * 32]},
        },
        _bad("azure.storage.public-blob-access", {
            "id": "/subscriptions/0000/resourcegroups/rg-web/providers/microsoft.storage/storageaccounts/acmepublicblobs",
            "type": "azure.storage.account", "provider": "azure", "owner": "team-web",
            "attributes": {"allow_blob_public_access": True, "https_only": True, "encrypted": True},
        }),
        {
            "id": "/subscriptions/0000/resourcegroups/rg-web/providers/microsoft.storage/storageaccounts/acmeblobsok",
            "type": "azure.storage.account", "provider": "azure", "owner": "team-web",
            "attributes": {"allow_blob_public_access": False, "https_only": True, "encrypted": True},
        },
        _bad("database.public-endpoint", {
            "id": "//sqladmin.googleapis.com/projects/acme-prod/instances/ledger-public", "type": "gcp.sqladmin.instance",
            "provider": "gcp", "owner": "team-data", "attributes": {"public_ip_enabled": True, "encrypted": True},
        }),
        {
            "id": "//sqladmin.googleapis.com/projects/acme-prod/instances/ledger-ok", "type": "gcp.sqladmin.instance",
            "provider": "gcp", "owner": "team-data", "attributes": {"public_ip_enabled": False, "encrypted": True},
        },
        _bad("database.public-endpoint", {
            "id": "/subscriptions/0000/resourcegroups/rg-data/providers/microsoft.sql/servers/sql-public", "type": "azure.sql.server",
            "provider": "azure", "owner": "team-data", "attributes": {"public_network_access": "Enabled"},
        }),
        {
            "id": "/subscriptions/0000/resourcegroups/rg-data/providers/microsoft.sql/servers/sql-ok", "type": "azure.sql.server",
            "provider": "azure", "owner": "team-data", "attributes": {"public_network_access": "Disabled"},
        },
        _bad("governance.missing-owner", aws_ci(arn("ec2", "instance/i-0noowner000000001"), "aws.ec2.instance", "orphan", {"instance_type": "t3.micro"}, owner="")),
        aws_ci(arn("ec2", "instance/i-0tagged0000000001"), "aws.ec2.instance", "tagged-ok", {"instance_type": "t3.micro"}, owner="", tags={"Owner": "team-web"}),
    ]
