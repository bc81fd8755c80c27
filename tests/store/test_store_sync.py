"""The real sync engine and file connector, through each backend: what a person syncing a file sees."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cmdb.connectors.base import Event, ScopeDone
from cmdb.connectors.files import FileConnector
from cmdb.errors import ConnectorError
from cmdb.store import ChangeFilter, CIFilter, RelFilter, Store
from cmdb.sync import SyncEngine

ESTATE = """\
defaults: {{provider: onprem, environment: production}}
cis:
  - {{id: srv-lon1-001, type: hardware.server, name: lon1-db-01, owner: {owner}, tags: {{rack: A3}},
     attributes: {{serial_number: CZ2341, cpu_cores: {cores}}}, aliases: [CZ2341]}}
  - {{id: app-payments, type: app.application, name: payments, owner: team-payments,
     attributes: {{language: java, version: "4.2"}}}}
{service}relationships:
  - {{from: app-payments, type: RUNS_ON, to: srv-lon1-001, evidence: "CMDB import 2026-10"}}
{service_rel}"""

SERVICE = """\
  - {id: svc-checkout, type: service.business, name: Checkout, owner: team-web, criticality: critical}
"""
SERVICE_REL = """\
  - {from: svc-checkout, type: DEPENDS_ON, to: app-payments}
"""


def write(path: Path, *, owner: str = "team-data", cores: int = 32, service: bool = True) -> None:
    path.write_text(
        ESTATE.format(
            owner=owner, cores=cores, service=SERVICE if service else "", service_rel=SERVICE_REL if service else ""
        ),
        encoding="utf-8",
    )


def kinds(store: Store, sync_id: str) -> list[tuple[str, str, str]]:
    return [(c.kind, c.ci_id, c.field) for c in store.iter_changes(ChangeFilter(sync_id=sync_id))]


def test_syncing_a_file_creates_updates_and_marks_stale(store: Store, tmp_path: Path, clock: Any) -> None:
    path = tmp_path / "estate.yaml"
    write(path)
    engine = SyncEngine(store, clock=clock)

    first = engine.run(FileConnector([path]))
    assert first.run.status == "complete", first.problems
    assert (first.counts["created"], first.counts["relationships_added"]) == (3, 2)
    assert store.count_cis(CIFilter(lifecycle_states=("active",))) == 3
    server = store.get_cis(["srv-lon1-001"])["srv-lon1-001"]
    assert (server.owner, server.environment, server.tags, server.sources) == ("team-data", "production", {"rack": "A3"}, ("file",))
    assert store.resolve_aliases(["CZ2341"]) == {"CZ2341": "srv-lon1-001"}
    assert sorted(kinds(store, first.run.sync_id)) == [
        ("ci.created", "app-payments", ""),
        ("ci.created", "srv-lon1-001", ""),
        ("ci.created", "svc-checkout", ""),
        ("rel.added", "app-payments", ""),
        ("rel.added", "svc-checkout", ""),
    ]
    assert [h.ci_id for h in store.traverse(["srv-lon1-001"], "in")] == ["app-payments", "svc-checkout"]

    clock.advance(hours=1)
    again = engine.run(FileConnector([path]))
    assert (again.counts["created"], again.counts["updated"], again.counts["unchanged"]) == (0, 0, 3)
    assert kinds(store, again.run.sync_id) == []
    assert store.get_cis(["app-payments"])["app-payments"].last_seen == clock.now

    clock.advance(hours=1)
    write(path, owner="team-platform", cores=48)
    changed = engine.run(FileConnector([path]))
    assert changed.counts["updated"] == 1
    records = list(store.iter_changes(ChangeFilter(sync_id=changed.run.sync_id)))
    assert sorted((r.kind, r.ci_id, r.field, r.before, r.after) for r in records) == [
        ("ci.updated", "srv-lon1-001", "attributes.cpu_cores", 32, 48),
        ("ci.updated", "srv-lon1-001", "owner", "team-data", "team-platform"),
    ]
    server = store.get_cis(["srv-lon1-001"])["srv-lon1-001"]
    assert (server.owner, server.attributes["cpu_cores"]) == ("team-platform", 48)

    clock.advance(hours=1)
    write(path, owner="team-platform", cores=48, service=False)  # the service's lines were removed from the file
    removed = engine.run(FileConnector([path]))
    assert (removed.counts["stale"], removed.counts["relationships_removed"]) == (1, 1)
    service = store.get_cis(["svc-checkout"])["svc-checkout"]
    assert (service.lifecycle_state, service.stale_since) == ("stale", clock.now)  # marked, never erased
    assert sorted(kinds(store, removed.run.sync_id)) == [
        ("ci.lifecycle", "svc-checkout", "lifecycle_state"),
        ("rel.removed", "svc-checkout", "lifecycle_state"),
    ]
    stale_rel = store.list_relationships(RelFilter(lifecycle_states=("stale",))).items
    assert [r.key for r in stale_rel] == [("svc-checkout", "DEPENDS_ON", "app-payments")]

    clock.advance(hours=1)
    path.write_text("cis:\n  - {id: srv-lon1-001, type: hardware.server\n", encoding="utf-8")  # half-saved
    partial = engine.run(FileConnector([path]))
    assert partial.run.status == "partial"
    assert (partial.counts["stale"], partial.counts["relationships_removed"]) == (0, 0)
    assert {c.id: c.lifecycle_state for c in store.iter_cis()} == {
        "srv-lon1-001": "active",
        "app-payments": "active",
        "svc-checkout": "stale",
    }
    assert [r.status for r in store.sync_runs(source="file")] == ["partial", "complete", "complete", "complete", "complete"]


def test_a_restored_line_brings_its_ci_back(store: Store, tmp_path: Path, clock: Any) -> None:
    path = tmp_path / "estate.yaml"
    engine = SyncEngine(store, clock=clock)
    write(path)
    engine.run(FileConnector([path]))
    clock.advance(hours=1)
    write(path, service=False)
    engine.run(FileConnector([path]))
    clock.advance(hours=1)
    write(path)
    back = engine.run(FileConnector([path]))
    assert back.counts["restored"] == 1
    service = store.get_cis(["svc-checkout"])["svc-checkout"]
    assert (service.lifecycle_state, service.stale_since) == ("active", None)
    assert {r.lifecycle_state for r in store.relationships(["svc-checkout"], "out", include_inactive=True)} == {"active"}


class CrashingConnector:
    """The file connector's sweep, cut short by the source failing mid-way (a real Connector)."""

    source = "file"

    def __init__(self, path: Path) -> None:
        self.inner = FileConnector([path])

    def sweep(self) -> Iterator[Event]:
        for event in self.inner.sweep():
            if isinstance(event, ScopeDone):
                raise ConnectorError("the source went away mid-sweep")
            yield event


def test_a_crash_mid_sync_keeps_the_last_committed_state(store: Store, tmp_path: Path, clock: Any) -> None:
    path = tmp_path / "estate.yaml"
    engine = SyncEngine(store, clock=clock)
    write(path)
    first = engine.run(FileConnector([path]))
    before = {c.id: c for c in store.iter_cis()}
    clock.advance(hours=1)
    write(path, owner="team-platform", service=False)
    with pytest.raises(ConnectorError):
        engine.run(CrashingConnector(path))
    assert {c.id: c for c in store.iter_cis()} == before
    assert [c.sync_id for c in store.iter_changes(ChangeFilter())] == [first.run.sync_id] * 5
    runs = store.sync_runs(source="file")
    assert [r.status for r in runs] == ["failed", "complete"]
    assert "the source went away" in runs[0].errors[0]
