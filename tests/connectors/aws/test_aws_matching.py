"""How a function's configuration values are read for the endpoints they name."""

from __future__ import annotations

from cmdb.connectors.aws.apps import SECRET_NAME, endpoint_names


def test_hosts_are_taken_from_urls_without_their_credentials() -> None:
    assert endpoint_names("postgres://app:hunter2@ledger.cluster-abc.eu-west-1.rds.amazonaws.com:5432/ledger") == [
        "ledger.cluster-abc.eu-west-1.rds.amazonaws.com"]
    assert endpoint_names("jdbc:mysql://db.internal:3306/app?user=x") == ["db.internal"]
    assert endpoint_names("rediss://:s3cret@carts.abc.cache.amazonaws.com:6379") == ["carts.abc.cache.amazonaws.com"]
    assert "hunter2" not in " ".join(endpoint_names("mysql://root:hunter2@db:3306"))


def test_bare_names_host_port_lists_and_buckets() -> None:
    assert endpoint_names("orders-eu-west-1") == ["orders-eu-west-1"]
    assert endpoint_names("db1.example.com:5432, db2.example.com:5432") == ["db1.example.com", "db2.example.com"]
    assert endpoint_names("s3://acme-data/exports/") == ["acme-data"]
    assert endpoint_names("https://acme-web.s3.eu-west-1.amazonaws.com/index.html") == [
        "acme-web.s3.eu-west-1.amazonaws.com", "acme-web"]
    assert endpoint_names("arn:aws:dynamodb:eu-west-1:123456789012:table/orders") == [
        "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"]
    assert endpoint_names("") == []


def test_secret_looking_names() -> None:
    for name in ("DB_PASSWORD", "API_KEY", "GITHUB_TOKEN", "client_secret", "PRIVATE_CERT", "AUTH_HEADER", "DB_PWD"):
        assert SECRET_NAME.search(name), name
    for name in ("DB_HOST", "ORDERS_TABLE", "EXPORT_BUCKET", "LOG_LEVEL", "REDIS_URL"):
        assert not SECRET_NAME.search(name), name
