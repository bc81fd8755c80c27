"""Fixtures shared by every part's tests: a real embedded store on disk and an engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    """A fresh embedded store in a file under the test's temporary directory."""
    db = SqliteStore(tmp_path / "cmdb.db")
    yield db
    db.close()


@pytest.fixture
def engine(store: SqliteStore) -> SyncEngine:
    return SyncEngine(store)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server for the session on a free port of 127.0.0.1; each user resets it after use."""
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
