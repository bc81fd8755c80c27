"""Helpers for the compliance tests: estates written as files and swept by the file connector."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from cmdb.connectors.files import FileConnector
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine, SyncReport

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the engine: tests say when each run happened."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at = self.at + timedelta(**delta)
        return self.at


Loader = Callable[..., SyncReport]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed_engine(store: SqliteStore, clock: Clock) -> SyncEngine:
    return SyncEngine(store, clock=clock)


@pytest.fixture
def load(tmp_path: Path, timed_engine: SyncEngine) -> Loader:
    """Write an estate file (one scope) and sweep it; the same name again is the next sweep of that scope."""

    def loader(
        cis: list[dict[str, Any]],
        relationships: list[dict[str, Any]] | None = None,
        *,
        name: str = "estate",
        scope: str | None = None,
        defaults: dict[str, Any] | None = None,
    ) -> SyncReport:
        path = tmp_path / f"{name}.yaml"
        doc: dict[str, Any] = {"scope": scope or name, "cis": cis, "relationships": relationships or []}
        if defaults:
            doc["defaults"] = defaults
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        report = timed_engine.run(FileConnector([path]))
        assert not report.problems, report.problems
        return report

    return loader


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session, on a free port of 127.0.0.1."""
    from moto.server import ThreadedMotoServer

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


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """Real boto3 clients talk to the moto server (through the SDK's own settings); reset afterwards."""
    import urllib.request

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "CMDB_AWS_TAG_MAP"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY000002",
        "AWS_SECRET_ACCESS_KEY": "example/secret/access/key/0000000000000",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "false",
    }.items():
        monkeypatch.setenv(name, value)
    yield moto_endpoint
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
