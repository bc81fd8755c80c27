"""The sync engine's promises: diffs, provenance, stale only after complete sweeps, never deletes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from cmdb.connectors.base import Batch, Event, ScopeDone
from cmdb.model import CI, Evidence, Relationship
from cmdb.store import ChangeFilter, CIFilter, SqliteStore
from cmdb.sync import SyncEngine
from tests.support import Clock, ListConnector


def vm(n: int, **fields: object) -> CI:
    return CI(id=f"i-{n:04d}", type="aws.ec2.instance", name=f"web-{n}", provider="aws", scope="aws:1:eu-west-1",
              attributes={"instance_type": "m6i.large"}, **fields)  # type: ignore[arg-type]


def engine_at(store: SqliteStore) -> tuple[SyncEngine, Clock]:
    clock = Clock()
    return SyncEngine(store, clock=clock, grace=timedelta(days=3)), clock


def test_create_then_unchanged_then_update_records_before_and_after(store: SqliteStore) -> None:
    engine, clock = engine_at(store)
    first = engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1), vm(2)]))
    assert first.counts["created"] == 2 and first.run.status == "complete"
    clock.advance(hours=1)
    again = engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1), vm(2)]))
    assert again.counts["unchanged"] == 2 and again.counts["created"] == again.counts["updated"] == 0
    assert store.get_cis(["i-0001"])["i-0001"].last_seen == clock.now
    clock.advance(hours=1)
    bigger = vm(1)
    bigger.attributes["instance_type"] = "m6i.xlarge"
    bigger.owner = "team-web"
    third = engine.run(ListConnector("aws", "aws:1:eu-west-1", [bigger, vm(2)]))
    assert third.counts["updated"] == 1
    changes = store.changes(ChangeFilter(ci_ids=("i-0001",), kinds=("ci.updated",))).items
    assert {(c.field, c.before, c.after) for c in changes} == {
        ("attributes.instance_type", "m6i.large", "m6i.xlarge"),
        ("owner", "", "team-web"),
    }
    assert all(c.sync_id == third.run.sync_id for c in changes)


def test_partial_sweep_marks_nothing_stale(store: SqliteStore) -> None:
    engine, clock = engine_at(store)
    engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1), vm(2), vm(3)]))
    clock.advance(days=10)
    partial = engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1)], complete=False))
    assert partial.run.status == "partial"
    assert partial.counts["stale"] == 0 and partial.counts["retired"] == 0
    assert {ci.lifecycle_state for ci in store.get_cis(["i-0002", "i-0003"]).values()} == {"active"}
    assert any("AccessDenied" in str(p) for p in partial.problems)


def test_complete_sweep_marks_unseen_stale_then_retired_after_grace_never_deleted(store: SqliteStore) -> None:
    engine, clock = engine_at(store)
    rel = Relationship("i-0001", "DEPENDS_ON", "i-0002", evidence=(Evidence("test", "i-0002"),))
    engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1), vm(2)], [rel]))
    clock.advance(hours=1)
    report = engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1)]))
    assert report.counts["stale"] == 1 and report.counts["relationships_removed"] == 1
    gone = store.get_cis(["i-0002"])["i-0002"]
    assert gone.lifecycle_state == "stale" and gone.stale_since == clock.now
    assert store.traverse(["i-0002"], "in", max_depth=1)[0].path[0].lifecycle_state == "stale"
    clock.advance(days=4)
    later = engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1)]))
    assert later.counts["retired"] == 1
    assert store.get_cis(["i-0002"])["i-0002"].lifecycle_state == "retired"
    assert store.count_cis(CIFilter()) == 2  # nothing deleted
    kinds = [c.kind for c in store.changes(ChangeFilter(ci_ids=("i-0002",))).items]
    assert kinds.count("ci.lifecycle") == 2


def test_stale_ci_seen_again_is_restored(store: SqliteStore) -> None:
    engine, clock = engine_at(store)
    engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1), vm(2)]))
    clock.advance(hours=1)
    engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1)]))
    clock.advance(hours=1)
    back = engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1), vm(2)]))
    assert back.counts["restored"] == 1
    restored = store.get_cis(["i-0002"])["i-0002"]
    assert restored.lifecycle_state == "active" and restored.stale_since is None


def test_same_ci_from_two_sources_is_one_ci_with_provenance(store: SqliteStore) -> None:
    engine, clock = engine_at(store)
    engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1)]))
    hand_kept = CI(id="i-0001", type="aws.ec2.instance", owner="team-payments", cost_centre="CC-1042",
                   criticality="high", tags={"service": "checkout"})
    clock.advance(minutes=5)
    engine.run(ListConnector("file", "file:owners.yaml", [hand_kept]))
    ci = store.get_cis(["i-0001"])["i-0001"]
    assert store.count_cis(CIFilter()) == 1
    assert ci.sources == ("aws", "file")
    assert ci.name == "web-1" and ci.owner == "team-payments"
    assert ci.provenance["name"] == "aws" and ci.provenance["owner"] == "file"
    assert ci.provenance["tags.service"] == "file"
    # One source no longer reporting it does not make it stale while the other still does.
    clock.advance(hours=1)
    engine.run(ListConnector("aws", "aws:1:eu-west-1", []))
    assert store.get_cis(["i-0001"])["i-0001"].lifecycle_state == "active"


def test_identity_reconciled_through_aliases(store: SqliteStore) -> None:
    engine, clock = engine_at(store)
    cloud = vm(7)
    cloud.aliases = ("ip-10-0-1-7.eu-west-1.compute.internal", "web-7.example.com")
    engine.run(ListConnector("aws", "aws:1:eu-west-1", [cloud]))
    clock.advance(minutes=1)
    same_host = CI(id="web-7.example.com", type="aws.ec2.instance", owner="team-web")
    app = CI(id="app:web", type="app.application", name="web")
    runs_on = Relationship("app:web", "RUNS_ON", "web-7.example.com")
    engine.run(ListConnector("file", "file:hosts.yaml", [same_host, app], [runs_on]))
    assert store.count_cis(CIFilter(types=("aws.ec2.instance",))) == 1
    assert store.get_cis(["i-0007"])["i-0007"].owner == "team-web"
    assert [r.to_id for r in store.relationships(["app:web"], "out")] == ["i-0007"]


def test_malformed_records_are_reported_and_the_rest_lands(store: SqliteStore) -> None:
    engine, _ = engine_at(store)
    bad_type = CI(id="x-1", type="aws.nothing")
    bad_attr = CI(id="i-0009", type="aws.ec2.instance", attributes={"instance_type": 3})
    dangling = Relationship("i-0001", "DEPENDS_ON", "vol-missing")
    report = engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1), bad_type, bad_attr], [dangling]))
    assert report.counts["created"] == 1 and report.counts["errors"] == 3
    reasons = " | ".join(str(p) for p in report.problems)
    assert "unknown CI type 'aws.nothing'" in reasons
    assert "instance_type" in reasons and "vol-missing" in reasons


def test_forward_references_within_a_run_resolve(store: SqliteStore) -> None:
    engine, _ = engine_at(store)

    class TwoBatches:
        source = "aws"

        def sweep(self) -> Iterator[Event]:
            yield Batch("s", [vm(1)], [Relationship("i-0001", "DEPENDS_ON", "i-0002")])
            yield Batch("s", [vm(2)], [])
            yield ScopeDone("s", True)

    report = engine.run(TwoBatches())
    assert report.counts["relationships_added"] == 1 and not report.problems


def test_a_failing_connector_leaves_the_last_committed_state(store: SqliteStore) -> None:
    engine, clock = engine_at(store)
    engine.run(ListConnector("aws", "aws:1:eu-west-1", [vm(1)]))

    class Crashes:
        source = "aws"

        def sweep(self) -> Iterator[Event]:
            changed = vm(1)
            changed.owner = "someone"
            yield Batch("aws:1:eu-west-1", [changed, vm(2)], [])
            raise ConnectionError("connection reset by peer")

    clock.advance(hours=1)
    try:
        engine.run(Crashes())
    except ConnectionError:
        pass
    assert store.count_cis(CIFilter()) == 1
    assert store.get_cis(["i-0001"])["i-0001"].owner == ""
    runs = store.sync_runs()
    assert runs[0].status == "failed" and "connection reset" in runs[0].errors[0]


def test_hand_edits_record_the_actor(store: SqliteStore) -> None:
    engine, _ = engine_at(store)
    engine.edit(actor="alice", cis=[CI(id="srv-1", type="hardware.server", name="db host")])
    engine.set_fields("srv-1", actor="bob", owner="team-data", lifecycle_state="optimise")
    changes = store.changes(ChangeFilter(ci_ids=("srv-1",))).items
    assert [(c.kind, c.actor) for c in changes] == [
        ("ci.created", "alice"), ("ci.updated", "bob"), ("ci.lifecycle", "bob"),
    ]
