"""Store contract: change records, sync runs, source observations and transactions, on every backend."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from cmdb.model import ChangeKind, ChangeRecord, SyncRun
from cmdb.store import ChangeFilter, CIFilter, RelFilter, Store
from tests.store.helpers import T0, ci, put, rel


def change(
    kind: ChangeKind, ci_id: str, hours: float, *, sync_id: str = "file-20261001T080000-a1b2c3", scope: str = "dc-lon1",
    **fields: Any,
) -> ChangeRecord:
    fields.setdefault("actor", "sync:file")
    return ChangeRecord(0, T0 + timedelta(hours=hours), kind, ci_id, sync_id=sync_id, scope=scope, **fields)


def history(store: Store) -> list[ChangeRecord]:
    records = [
        change("ci.created", "vm-1", 0, after={"type": "compute.vm", "name": "vm-1"}),
        change("ci.created", "db-1", 0, after={"type": "database.instance", "name": "db-1"}),
        change("rel.added", "vm-1", 0, rel_type="DEPENDS_ON", to_id="db-1"),
        change("ci.updated", "vm-1", 2, sync_id="aws-20261001T100000-d4e5f6", scope="aws:1:eu-west-1",
               field="attributes.cpu_cores", before=2, after=4),
        change("ci.updated", "vm-1", 2, sync_id="aws-20261001T100000-d4e5f6", scope="aws:1:eu-west-1",
               field="tags.env", before="dev", after=None),
        change("ci.lifecycle", "db-1", 5, field="lifecycle_state", before="active", after="stale"),
        change("rel.removed", "vm-1", 5, rel_type="DEPENDS_ON", to_id="db-1", field="lifecycle_state",
               before="active", after="stale"),
        change("ci.updated", "vm-2", 24, field="owner", before="", after="team-a",
               sync_id="", actor="manual:alice"),
    ]
    with store.transaction():
        store.append_changes(records[:3])
        store.append_changes([])
        store.append_changes(records[3:])
    return records


def seen(records: list[ChangeRecord]) -> list[tuple[str, str, str]]:
    return [(r.kind, r.ci_id, r.field) for r in records]


def test_changes_keep_order_and_every_field(store: Store) -> None:
    records = history(store)
    page = store.changes(ChangeFilter(), first=100)
    assert not page.has_next
    assert [r.seq for r in page.items] == sorted({r.seq for r in page.items})  # unique and increasing
    assert [replace(r, seq=0) for r in page.items] == records
    assert page.items[3].before == 2 and page.items[3].after == 4
    assert page.items[4].after is None
    assert page.items[2].rel_key == ("vm-1", "DEPENDS_ON", "db-1")


def test_later_changes_get_higher_sequence_numbers(store: Store) -> None:
    history(store)
    with store.transaction():
        store.append_changes([change("ci.created", "vm-9", 30)])
    items = store.changes(ChangeFilter(), first=100).items
    assert items[-1].ci_id == "vm-9" and items[-1].seq > items[-2].seq


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        (ChangeFilter(ci_ids=("db-1",)), [("ci.created", "db-1", ""), ("rel.added", "vm-1", ""),
                                           ("ci.lifecycle", "db-1", "lifecycle_state"),
                                           ("rel.removed", "vm-1", "lifecycle_state")]),
        (ChangeFilter(scope="aws:1:eu-west-1"), [("ci.updated", "vm-1", "attributes.cpu_cores"),
                                                 ("ci.updated", "vm-1", "tags.env")]),
        (ChangeFilter(sync_id="aws-20261001T100000-d4e5f6"), [("ci.updated", "vm-1", "attributes.cpu_cores"),
                                                             ("ci.updated", "vm-1", "tags.env")]),
        (ChangeFilter(kinds=("rel.added", "rel.removed")), [("rel.added", "vm-1", ""),
                                                            ("rel.removed", "vm-1", "lifecycle_state")]),
        (ChangeFilter(since=T0 + timedelta(hours=5)), [("ci.lifecycle", "db-1", "lifecycle_state"),
                                                       ("rel.removed", "vm-1", "lifecycle_state"),
                                                       ("ci.updated", "vm-2", "owner")]),
        (ChangeFilter(until=T0 + timedelta(hours=2)), [("ci.created", "vm-1", ""), ("ci.created", "db-1", ""),
                                                       ("rel.added", "vm-1", "")]),
        (ChangeFilter(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=5), ci_ids=("vm-1",)),
         [("ci.updated", "vm-1", "attributes.cpu_cores"), ("ci.updated", "vm-1", "tags.env")]),
        (ChangeFilter(ci_ids=("nobody",)), []),
    ],
)
def test_change_filters(store: Store, filter: ChangeFilter, expected: list[tuple[str, str, str]]) -> None:
    history(store)
    assert seen(store.changes(filter, first=100).items) == expected
    assert seen(list(store.iter_changes(filter, batch_size=1))) == expected


def test_change_filters_take_times_in_any_zone(store: Store) -> None:
    from datetime import timezone

    history(store)
    paris = timezone(timedelta(hours=1))
    since = (T0 + timedelta(hours=5)).astimezone(paris)
    assert len(store.changes(ChangeFilter(since=since)).items) == 3


def test_change_pages_join_up(store: Store) -> None:
    records = history(store)
    collected: list[ChangeRecord] = []
    page = store.changes(ChangeFilter(), first=3)
    collected += page.items
    while page.has_next:
        page = store.changes(ChangeFilter(), first=3, after=page.end_cursor)
        collected += page.items
    assert seen(collected) == seen(records)
    assert len({r.seq for r in collected}) == len(records)


def test_sync_runs_newest_first_by_source(store: Store) -> None:
    runs = [
        SyncRun("file-1", "file", T0, T0 + timedelta(seconds=3), "complete", {"dc-lon1": True},
                {"seen": 12, "created": 12}, [], "sync:file"),
        SyncRun("aws-1", "aws", T0 + timedelta(hours=1), None, "running", {}, {}, [], "sync:aws"),
        SyncRun("file-2", "file", T0 + timedelta(hours=2), T0 + timedelta(hours=2, seconds=1), "partial",
                {"dc-lon1": False}, {"errors": 1}, ["estate.yaml:4: missing type"], "sync:file"),
    ]
    with store.transaction():
        for run in runs:
            store.save_sync_run(run)
    assert [r.sync_id for r in store.sync_runs()] == ["file-2", "aws-1", "file-1"]
    assert store.sync_runs(source="file") == [runs[2], runs[0]]
    assert [r.sync_id for r in store.sync_runs(limit=1)] == ["file-2"]
    finished = SyncRun("aws-1", "aws", T0 + timedelta(hours=1), T0 + timedelta(hours=1, seconds=9), "complete",
                       {"aws:1:eu-west-1": True}, {"seen": 3}, [], "sync:aws")
    with store.transaction():
        store.save_sync_run(finished)
    assert store.sync_runs(source="aws") == [finished]


def test_source_states_touch_unseen_and_drop(store: Store) -> None:
    put(store, [ci("vm-1"), ci("vm-2"), ci("vm-3", lifecycle_state="stale", stale_since=T0)])
    later = T0 + timedelta(hours=1)
    with store.transaction():
        store.put_source_states("aws", "aws:1:eu-west-1", {"vm-1": ("fp1", T0), "vm-2": ("fp2", T0), "vm-3": ("fp3", T0)})
        store.put_source_states("file", "dc-lon1", {"vm-1": ("fpf", T0), "ghost": ("fpg", T0)})
    states = store.source_states(["vm-1", "vm-3", "ghost", "vm-9"], "aws")
    assert {k: (s.fingerprint, s.last_seen, s.lifecycle_state) for k, s in states.items()} == {
        "vm-1": ("fp1", T0, "active"),
        "vm-3": ("fp3", T0, "stale"),
    }
    assert store.source_states(["ghost"], "file") == {}  # observations only of CIs the store holds
    with store.transaction():
        store.touch(["vm-1"], "aws", later)
    assert store.source_states(["vm-1"], "aws")["vm-1"].last_seen == later
    assert store.source_states(["vm-1"], "file")["vm-1"].last_seen == T0  # another source's view is its own
    assert store.get_cis(["vm-1"])["vm-1"].last_seen == later
    assert store.unseen("aws:1:eu-west-1", "aws", later) == ["vm-2", "vm-3"]
    assert store.unseen("aws:1:eu-west-1", "aws", T0) == []
    assert store.unseen("dc-lon1", "aws", later) == []
    assert store.unseen("dc-lon1", "file", later) == ["vm-1"]
    with store.transaction():
        store.drop_source(["vm-2"], "aws")
    assert store.unseen("aws:1:eu-west-1", "aws", later) == ["vm-3"]
    assert "vm-2" not in store.source_states(["vm-2"], "aws")
    with store.transaction():  # reporting again moves the observation to the new scope
        store.put_source_states("aws", "aws:1:us-east-1", {"vm-3": ("fp3b", later)})
    assert store.unseen("aws:1:eu-west-1", "aws", later + timedelta(hours=1)) == ["vm-1"]
    assert store.source_states(["vm-3"], "aws")["vm-3"].fingerprint == "fp3b"


class Boom(Exception):
    pass


def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    put(store, [ci("vm-0", owner="team-a")])
    with pytest.raises(Boom), store.transaction():
        store.put_cis([ci("vm-1", aliases=("vm-1.example.com",)), ci("vm-0", owner="team-b")])
        store.put_relationships([rel("vm-1", "vm-0")], ["fp"])
        store.put_source_states("file", "dc-lon1", {"vm-1": ("fp", T0)})
        store.append_changes([change("ci.created", "vm-1", 0)])
        store.save_sync_run(SyncRun("file-x", "file", T0))
        store.put_document("note", "vm-1", {"text": "temporary"})
        # reads inside the transaction see its writes
        assert store.known_ids(["vm-1"]) == {"vm-1"}
        assert store.get_cis(["vm-0"])["vm-0"].owner == "team-b"
        assert store.rel_fingerprints([("vm-1", "DEPENDS_ON", "vm-0")]) == {("vm-1", "DEPENDS_ON", "vm-0"): ("fp", "active", "")}
        assert "vm-1" in store.source_states(["vm-1"], "file")
        assert store.count_cis(CIFilter()) == 2
        raise Boom("the connector crashed")
    assert store.get_cis(["vm-0", "vm-1"]) == {"vm-0": ci("vm-0", owner="team-a")}
    assert store.resolve_aliases(["vm-1.example.com"]) == {}
    assert store.list_relationships(RelFilter()).items == []
    assert store.source_states(["vm-1"], "file") == {}
    assert store.changes(ChangeFilter()).items == []
    assert store.sync_runs() == []
    assert store.get_document("note", "vm-1") is None


def test_nested_transactions_land_with_the_outer_one(store: Store) -> None:
    with pytest.raises(Boom), store.transaction():
        with store.transaction():
            store.put_cis([ci("inner")])
        store.put_cis([ci("outer")])
        raise Boom
    assert store.known_ids(["inner", "outer"]) == set()
    with store.transaction():
        with store.transaction():
            store.put_cis([ci("inner")])
        store.put_cis([ci("outer")])
    assert store.known_ids(["inner", "outer"]) == {"inner", "outer"}


def test_the_store_is_usable_after_a_failed_transaction(store: Store) -> None:
    with pytest.raises(Boom), store.transaction():
        store.put_cis([ci("vm-1")])
        raise Boom
    put(store, [ci("vm-2")])
    assert store.known_ids(["vm-1", "vm-2"]) == {"vm-2"}


def test_readers_on_other_threads_see_a_run_only_once_it_commits(store: Store) -> None:
    seen_during: list[set[str]] = []

    def read() -> None:  # another thread: a GraphQL request while a sync writes, say
        seen_during.append(store.known_ids(["vm-1"]))

    with store.transaction():
        store.put_cis([ci("vm-1")])
        reader = threading.Thread(target=read)
        reader.start()
        reader.join()
    read()
    assert seen_during == [set(), {"vm-1"}]
