"""Which endpoint hosts a configuration value names, and that no secret survives the reading."""

from __future__ import annotations

import pytest

from cmdb.connectors.kubernetes.hosts import host_references, is_secret_name

RDS = "payments-db.c9akciq32xyz.eu-west-1.rds.amazonaws.com"


@pytest.mark.parametrize(
    ("name", "value", "hosts"),
    [
        ("DATABASE_URL", f"postgres://app:s3cr3t.example.org@{RDS}:5432/payments?sslmode=require", [f"{RDS}:5432"]),
        ("JDBC_URL", "jdbc:mysql://app:pw@orders.cluster-ro-c1x2.eu-west-1.rds.amazonaws.com:3306/orders",
         ["orders.cluster-ro-c1x2.eu-west-1.rds.amazonaws.com:3306"]),
        ("ConnectionStrings__Ledger",
         ("Server=tcp:orders-sql.database.windows.net,1433;Initial Catalog=ledger;User ID=app@orders-sql;"
         "Password=hunter2.example.com;Encrypt=True"),
         ["orders-sql.database.windows.net"]),
        ("application.yaml", ("cache:\n  endpoint: shop-cache.x7kq2n.ng.0001.euw1.cache.amazonaws.com:6379\n"
         "  auth_token: tok.en.example.com\nlogging.level: info\nconfig: /etc/app/settings.yaml\n"),
         ["shop-cache.x7kq2n.ng.0001.euw1.cache.amazonaws.com:6379"]),
        ("settings.json", '{"db": {"host": "10.20.0.3", "port": 5432, "password": "10.9.9.9"}}', ["10.20.0.3"]),
        ("REDIS_HOST", "redis", ["redis"]),
        ("DB_ADDR", "postgres:5432", ["postgres:5432"]),
        ("LOG_LEVEL", "info", []),
        ("BROKER", "amqp://guest:guest@rabbitmq.messaging:5672/", ["rabbitmq.messaging:5672"]),
        ("SPRING_CONFIG_LOCATION", "file:/etc/shop/application.yaml", []),
        ("Corefile", "forward . /etc/resolv.conf\nkubernetes cluster.local in-addr.arpa ip6.arpa", []),
    ],
)  # fmt: skip
def test_hosts_named_in_values(name: str, value: str, hosts: list[str]) -> None:
    assert host_references(name, value) == hosts


@pytest.mark.parametrize(
    "name",
    ["DB_PASSWORD", "STRIPE_WEBHOOK_SECRET", "GITHUB_TOKEN", "STRIPE_API_KEY", "AWS_SECRET_ACCESS_KEY",
     "GOOGLE_APPLICATION_CREDENTIALS", "db.password", "tls.key", "passwd"],
)  # fmt: skip
def test_values_under_secret_names_are_not_read(name: str) -> None:
    assert is_secret_name(name)
    assert host_references(name, f"postgres://app@{RDS}:5432/db") == []


def test_no_part_of_a_credential_is_returned() -> None:
    value = "mongodb://admin:Pa55.w0rd.example.net@mongo-0.mongo.data.svc.cluster.local:27017/?authSource=admin"
    found = host_references("MONGO_URI", value)
    assert found == ["mongo-0.mongo.data.svc.cluster.local:27017"]
    assert not any("pa55" in host or "admin" in host for host in found)
