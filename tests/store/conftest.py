"""One contract suite, two backends: ``store`` is parametrised over SQLite and a Bolt server.

The Bolt server is a real Neo4j when ``CMDB_NEO4J_URI`` is set (with
``CMDB_NEO4J_USER``, ``CMDB_NEO4J_PASSWORD``, ``CMDB_NEO4J_DATABASE``);
otherwise ArcadeDB's Bolt server from the ``arcadedb-embedded`` wheel, started
once per test session on free ports and stopped at its end. The graph is
cleared before each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cmdb.store import SqliteStore, Store
from tests.store.helpers import ARCADE_DATABASE, ARCADE_PASSWORD, BoltTarget, free_port, open_bolt_store


@pytest.fixture(scope="session")
def bolt_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoltTarget]:
    uri = os.environ.get("CMDB_NEO4J_URI")
    if uri:
        yield BoltTarget(
            uri,
            os.environ.get("CMDB_NEO4J_USER", "neo4j"),
            os.environ.get("CMDB_NEO4J_PASSWORD", ""),
            os.environ.get("CMDB_NEO4J_DATABASE", "neo4j"),
        )
        return
    import arcadedb_embedded as arcade

    root = tmp_path_factory.mktemp("arcadedb")
    bolt_port = free_port()
    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "http_port": free_port(),
        "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
        "bolt_port": bolt_port,
    }
    server = arcade.create_server(root_path=str(root), root_password=ARCADE_PASSWORD, config=config)
    server.start()
    try:
        server.create_database(ARCADE_DATABASE)
        yield BoltTarget(f"bolt://127.0.0.1:{bolt_port}", "root", ARCADE_PASSWORD, ARCADE_DATABASE)
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "sqlite-in-memory-walks", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of each kind (the embedded one also with walks over its in-memory copy)."""
    if request.param == "sqlite":
        db: Store = SqliteStore(tmp_path / "cmdb.db")
    elif request.param == "sqlite-in-memory-walks":
        db = SqliteStore(tmp_path / "cmdb.db", graph_cache="blocking")
    else:
        target: BoltTarget = request.getfixturevalue("bolt_target")
        bolt = open_bolt_store(target)
        bolt.clear()
        db = bolt
    yield db
    db.close()


class Clock:
    """A clock the test moves by hand; the sync engine takes it as ``clock``."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()
