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
from tests.support import point_boto3_at, reset_moto

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


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """Real boto3 clients talk to the moto server (through the SDK's own settings); reset afterwards."""
    point_boto3_at(moto_url, monkeypatch, tmp_path)
    try:
        yield moto_url
    finally:
        reset_moto(moto_url)
