"""Fixtures shared by every part's tests: a real embedded store on disk and an engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
