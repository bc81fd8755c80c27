"""A moto server for the whole session, reset after each test; boto3 reaches it
through the environment only (AWS_ENDPOINT_URL), exactly as in production."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import point_boto3_at, reset_moto


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """boto3 pointed at a freshly reset moto server for one test."""
    point_boto3_at(moto_url, monkeypatch, tmp_path)
    try:
        yield moto_url
    finally:
        reset_moto(moto_url)


@pytest.fixture(scope="module")
def aws_module_env(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same for a module whose tests only read one estate, built once."""
    with pytest.MonkeyPatch.context() as env:
        point_boto3_at(moto_url, env, tmp_path_factory.mktemp("aws"))
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
