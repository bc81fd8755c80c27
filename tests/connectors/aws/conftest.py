"""A moto server for the whole session, reset after each test; boto3 reaches it
through the environment only (AWS_ENDPOINT_URL), exactly as in production."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        env.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def moto_post(url: str, path: str, body: bytes = b"") -> None:
    request = urllib.request.Request(f"{url}{path}", data=body, method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        reply.read()


def _point_boto3_at(url: str, env: pytest.MonkeyPatch, folder: Path) -> None:
    """The environment of a machine whose AWS is the moto server: no profile, dummy keys."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "CMDB_AWS_TAG_MAP"):
        env.delenv(name, raising=False)
    env.setenv("AWS_ENDPOINT_URL", url)
    env.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY000001")
    env.setenv("AWS_SECRET_ACCESS_KEY", "example/secret/access/key/0000000000000")
    env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    env.setenv("AWS_CONFIG_FILE", str(folder / "aws-config"))
    env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "aws-credentials"))
    env.setenv("AWS_EC2_METADATA_DISABLED", "true")


def reset_moto(url: str) -> None:
    moto_post(url, "/moto-api/reset-auth", b"inf")
    moto_post(url, "/moto-api/reset")


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """boto3 pointed at a freshly reset moto server for one test."""
    _point_boto3_at(moto_url, monkeypatch, tmp_path)
    try:
        yield moto_url
    finally:
        reset_moto(moto_url)


@pytest.fixture(scope="module")
def aws_module_env(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same for a module whose tests only read one estate, built once."""
    with pytest.MonkeyPatch.context() as env:
        _point_boto3_at(moto_url, env, tmp_path_factory.mktemp("aws"))
        try:
            yield moto_url
        finally:
            reset_moto(moto_url)


@pytest.fixture
def closed_port_url() -> str:
    """An endpoint nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
