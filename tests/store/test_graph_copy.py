"""The embedded store's in-memory copy of the graph: same walks as SQL, never outdated."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cmdb.config import Settings
from cmdb.errors import StoreError, ValidationError
from cmdb.model import Direction
from cmdb.store import Hit, SqliteStore, Traversal, open_store
from cmdb.vocabulary import vocabulary
from tests.store.helpers import ci, put, rel

CI_TYPES = ("compute.vm", "service.business", "team.team", "k8s.pod")


def random_estate(store: SqliteStore, seed: int, size: int = 300, edges: int = 1200) -> list[str]:
    rng = random.Random(seed)
    ids = [f"ci-{n:04d}" for n in range(size)]
    rel_types = sorted(vocabulary().relationship_types)
    seen: set[tuple[str, str, str]] = set()
    rels = []
    for _ in range(edges):
        a, b, kind = rng.choice(ids), rng.choice(ids), rng.choice(rel_types)
        if a == b or (a, kind, b) in seen:
            continue
        seen.add((a, kind, b))
        roll = rng.random()
        fields = {"lifecycle_state": "retired"} if roll < 0.05 else {"review": "rejected"} if roll < 0.1 else {}
        rels.append(rel(a, b, kind, **fields))
    put(store, [ci(i, rng.choice(CI_TYPES)) for i in ids], rels)
    return ids


def shape(hits: list[Hit]) -> list[tuple[str, int, str | None, list[tuple[str, str, str]]]]:
    return [(h.ci_id, h.depth, h.ci_type, [r.key for r in h.path]) for h in hits]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_walks_in_memory_equal_walks_in_sql_step_for_step(tmp_path: Path, seed: int) -> None:
    """Same CIs, depths, types and paths, in the same order, whichever way and however bounded."""
    path = tmp_path / "cmdb.db"
    with SqliteStore(path) as sql, SqliteStore(path, graph_cache="blocking") as memory:
        ids = random_estate(sql, seed)
        rng = random.Random(seed)
        rel_types = sorted(vocabulary().relationship_types)
        directions: tuple[Direction, ...] = ("in", "out", "both")
        for _ in range(60):
            starts = rng.sample(ids, rng.choice((1, 1, 3)))
            direction = rng.choice(directions)
            types = rng.sample(rel_types, 3) if rng.random() < 0.3 else None
            depth, limit = rng.choice((1, 2, 3, 6)), rng.choice((5, 40, 10_000))
            expected = shape(sql.traverse(starts, direction, types, depth, limit))
            assert shape(memory.traverse(starts, direction, types, depth, limit)) == expected
            a, b = rng.sample(ids, 2)
            assert memory.shortest_path(a, b, direction, types) == sql.shortest_path(a, b, direction, types)
        assert memory.graph_cache_status() == "current"
        assert sql.graph_cache_status() == "off"


def wait_until_current(store: SqliteStore) -> None:
    deadline = time.monotonic() + 30
    while store.graph_cache_status() != "current":
        assert time.monotonic() < deadline, f"the copy is still {store.graph_cache_status()}"
        store.traverse(["a"], "in")  # a walk starts a new copy when none is being read
        time.sleep(0.02)


def test_a_commit_from_another_process_is_seen_at_once_and_the_copy_catches_up(tmp_path: Path) -> None:
    path = tmp_path / "cmdb.db"
    with SqliteStore(path, graph_cache="background") as store:
        put(store, [ci("a"), ci("b"), ci("c")], [rel("b", "a")])
        wait_until_current(store)
        assert [h.ci_id for h in store.traverse(["a"], "in")] == ["b"]
        generation = store.generation()

        writer = (
            "from tests.store.helpers import ci, put, rel\n"
            "from cmdb.store import SqliteStore\n"
            f"with SqliteStore({str(path)!r}) as other:\n"
            "    put(other, [ci('d')], [rel('c', 'a', 'RUNS_ON'), rel('d', 'c')])\n"
        )
        subprocess.run([sys.executable, "-c", writer], check=True, cwd=Path(__file__).parents[2])

        assert store.generation() != generation
        assert store.graph_cache_status() != "current"
        # The walk right after the commit already has the new edges (from the file) ...
        assert [(h.ci_id, h.depth) for h in store.traverse(["a"], "in")] == [("b", 1), ("c", 1), ("d", 2)]
        # ... and once the new copy is read, from memory.
        wait_until_current(store)
        hits = store.traverse(["a"], "in")
        assert [(h.ci_id, h.depth, h.ci_type) for h in hits] == [
            ("b", 1, "compute.vm"),
            ("c", 1, "compute.vm"),
            ("d", 2, "compute.vm"),
        ]
        assert [r.key for r in hits[2].path] == [("c", "RUNS_ON", "a"), ("d", "DEPENDS_ON", "c")]


def test_a_walk_inside_a_write_transaction_sees_its_own_edges(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "cmdb.db", graph_cache="blocking") as store:
        put(store, [ci("a"), ci("b")], [])
        assert store.traverse(["a"], "in") == []
        with store.transaction():
            put(store, [], [rel("b", "a")])
            assert [h.ci_id for h in store.traverse(["a"], "in")] == ["b"]
        assert [h.ci_id for h in store.traverse(["a"], "in")] == ["b"]


def test_paths_load_once_for_the_whole_walk_and_after_close(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cmdb.db", graph_cache="blocking")
    put(store, [ci(i) for i in "abcd"], [rel("b", "a"), rel("c", "b", "RUNS_ON"), rel("d", "c")])
    hits = store.traverse(["a"], "in")
    store.close()  # the paths are read on demand: the store reopens its file for them
    assert [[r.key for r in h.path] for h in hits][-1] == [
        ("b", "DEPENDS_ON", "a"),
        ("c", "RUNS_ON", "b"),
        ("d", "DEPENDS_ON", "c"),
    ]
    assert hits[-1].path[0].evidence[0].value == "estate.yaml:12"  # whole stored edges
    store.close()


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="graph_cache must be one of off, background, blocking"):
        SqliteStore(tmp_path / "cmdb.db", graph_cache="always")  # type: ignore[arg-type]


def test_long_lived_processes_keep_the_graph_in_memory_unless_configured_off(tmp_path: Path) -> None:
    path = str(tmp_path / "cmdb.db")
    stores = {
        "one-shot": open_store(path, Settings()),
        "serving": open_store(path, Settings(), long_lived=True),
        "serving, CMDB_GRAPH_CACHE=off": open_store(path, Settings(graph_cache="off"), long_lived=True),
        "one-shot, CMDB_GRAPH_CACHE=blocking": open_store(path, Settings(graph_cache="blocking")),
    }
    try:
        assert all(isinstance(s, SqliteStore) for s in stores.values())
        assert {name: s.graph_cache_status() for name, s in stores.items() if isinstance(s, SqliteStore)} == {
            "one-shot": "off",
            "serving": "outdated",  # nothing walked yet
            "serving, CMDB_GRAPH_CACHE=off": "off",
            "one-shot, CMDB_GRAPH_CACHE=blocking": "outdated",
        }
    finally:
        for s in stores.values():
            s.close()


def test_a_walk_comes_as_columns_nearest_first_then_by_id(tmp_path: Path) -> None:
    """The copy and SQL both order a walk by depth, then id; hits are made only when read."""
    path = tmp_path / "cmdb.db"
    with SqliteStore(path) as sql, SqliteStore(path, graph_cache="blocking") as memory:
        put(
            sql,
            [ci("a"), ci("z"), ci("y", "service.business"), ci("x"), ci("w", "service.business")],
            [rel("z", "a"), rel("y", "a"), rel("x", "z"), rel("w", "y")],
        )
        vm, service = "compute.vm", "service.business"
        for store in (sql, memory):
            walk = store.traverse(["a"], "in")
            assert (walk.ids, walk.depths, walk.types) == (["y", "z", "w", "x"], [1, 1, 2, 2], [service, vm, service, vm])
            assert [r.key for r in walk[2].path] == [("y", "DEPENDS_ON", "a"), ("w", "DEPENDS_ON", "y")]
            assert walk[1:].ids == ["z", "w", "x"] and walk[1:].nearest_first().ids == ["z", "w", "x"]
            assert [h.ci_id for h in walk] == walk.ids and [h.ci_type for h in walk] == walk.types
            # the types of a slice, and where a type stands, however the walk holds them
            fresh = store.traverse(["a"], "in")
            assert fresh[1:].types == [vm, service, vm] and fresh[2].ci_type == service
            assert store.traverse(["a"], "in").positions_of_type(service) == [0, 2]
            assert store.traverse(["a"], "in")[1:].positions_of_type(service) == [1]
            assert store.traverse(["a"], "in").positions_of_type("team") == []
            assert [(h.ci_id, h.ci_type, len(h.path)) for h in store.traverse(["a"], "in").hits_at([3, 0])] == [
                ("x", vm, 2),
                ("y", service, 1),
            ]
            assert walk.hits_at([1]) == [walk[1]]


def test_a_walk_says_which_of_its_starts_the_store_holds(tmp_path: Path) -> None:
    """So a caller need not look the starts up again; slices and orderings keep the answer."""
    path = tmp_path / "cmdb.db"
    with SqliteStore(path) as sql, SqliteStore(path, graph_cache="blocking") as memory:
        put(sql, [ci("a"), ci("b"), ci("c")], [rel("b", "a"), rel("c", "b")])
        for store in (sql, memory):
            walk = store.traverse(["a", "nowhere", "c"], "in")
            assert walk.found_starts == frozenset({"a", "c"})
            assert walk.ids == ["b"] and walk[:0].found_starts == walk.nearest_first().found_starts == {"a", "c"}
            assert store.traverse(["nowhere"], "out").found_starts == frozenset()
        assert Traversal(["x"], [1]).found_starts is None  # a backend that does not tell


def test_a_walk_given_a_label_names_only_the_cis_read() -> None:
    """A backend may hand over nodes and a way to name them: a hit names its own node
    only, a slice stays unnamed, and the whole list of ids is made once, when first read."""
    asked: list[list[int]] = []

    def label(nodes: list[int]) -> list[str]:
        asked.append(list(nodes))
        return [f"ci-{n}" for n in nodes]

    walk = Traversal(None, [1, 1, 2], nodes=[7, 3, 9], nearest_first=True, label=label)
    assert [h.ci_id for h in walk.hits_at([2, 0])] == ["ci-9", "ci-7"] and asked == [[9, 7]]
    assert len(walk) == 3 and len(walk[1:]) == 2 and asked == [[9, 7]]
    assert walk[1:].ids == ["ci-3", "ci-9"] and asked[-1] == [3, 9]
    assert walk.ids == ["ci-7", "ci-3", "ci-9"] and walk.ids is walk.ids
    assert len(asked) == 3
    with pytest.raises(ValueError, match="needs its nodes and a label"):
        Traversal(None, [1])


def test_rows_read_with_a_copy_are_kept_only_until_the_next_commit(tmp_path: Path) -> None:
    path = tmp_path / "cmdb.db"
    with SqliteStore(path) as writer, SqliteStore(path, graph_cache="background") as reader:
        put(writer, [ci("a", owner="team-a")], [])
        first = reader.get_cis(["a"])["a"]
        first.owner = "changed by a caller"  # a caller's own object: the next read is unaffected
        first.tags["x"] = "y"
        again = reader.get_cis(["a", "a"])["a"]
        assert (again.owner, again.tags) == ("team-a", {})
        put(writer, [ci("a", owner="team-b"), ci("b")], [])  # a commit on another connection
        assert {i: c.owner for i, c in reader.get_cis(["a", "b", "missing"]).items()} == {"a": "team-b", "b": ""}
        with reader.transaction():  # inside a write transaction, its own writes are read
            put(reader, [ci("a", owner="team-c")], [])
            assert reader.get_cis(["a"])["a"].owner == "team-c"
        assert reader.get_cis(["a"])["a"].owner == "team-c"


def test_what_a_store_keeps_each_caller_gets_as_its_own_copy(tmp_path: Path) -> None:
    """Kept CIs (held by the copy as rows, or read through) and relationships are decoded once
    and handed out as copies: what one caller changes, nested attributes included, no other sees."""
    path = tmp_path / "cmdb.db"
    nested = {"sla": {"hours": [9, 17]}, "tier": "gold"}
    with SqliteStore(path) as writer, SqliteStore(path, graph_cache="blocking") as reader:
        put(
            writer,
            [
                ci("svc", "service.business", attributes=nested, provenance={"owner": "file"}, tags={"env": "prod"}),
                ci("vm", attributes=nested, provenance={"owner": "aws"}),
            ],
            [rel("svc", "vm")],
        )
        reader.warm_graph_cache()
        for ci_id in ("svc", "vm"):  # svc: a row the copy holds; vm: read through, then kept
            for _ in range(2):
                mine = reader.get_cis([ci_id])[ci_id]
                mine.attributes["sla"]["hours"].append(23)
                mine.attributes["tier"] = "changed"
                mine.provenance["owner"] = "me"
                mine.tags["env"] = "changed"
            again = reader.get_cis([ci_id])[ci_id]
            assert again.attributes == nested and again.provenance["owner"] in ("file", "aws")
            assert again.tags == ({"env": "prod"} if ci_id == "svc" else {})
        first = reader.traverse(["vm"], "in")[0].path[0]
        first.confidence = 0.1
        again_rel = reader.traverse(["vm"], "in")[0].path[0]
        assert again_rel.confidence == 1.0 and again_rel.key == ("svc", "DEPENDS_ON", "vm")


def test_callers_that_only_read_share_what_the_store_keeps_and_others_still_get_copies(tmp_path: Path) -> None:
    path = tmp_path / "cmdb.db"
    with SqliteStore(path) as writer, SqliteStore(path, graph_cache="blocking") as reader:
        put(writer, [ci("svc", "service.business", attributes={"sla": [9, 17]}), ci("vm")], [rel("svc", "vm")])
        reader.warm_graph_cache()
        for ci_id in ("svc", "vm", "svc", "vm"):  # first reads decode, later ones find them kept
            shared = reader.get_cis([ci_id], shared=True)[ci_id]
            assert reader.get_cis([ci_id], shared=True)[ci_id] is shared  # one object, decoded once
            own = reader.get_cis([ci_id])[ci_id]
            assert own == shared and own is not shared and own.attributes is not shared.attributes
            own.attributes["sla"] = "mine"
            assert reader.get_cis([ci_id], shared=True)[ci_id].attributes == shared.attributes != "mine"
        for _ in range(2):  # the same for the relationships along a walk's paths
            shared_edge = reader.traverse(["vm"], "in", shared=True)[0].path[0]
            assert reader.traverse(["vm"], "in", shared=True)[0].path[0] is shared_edge
            own_edge = reader.traverse(["vm"], "in")[0].path[0]
            assert own_edge == shared_edge and own_edge is not shared_edge
        put(writer, [ci("vm", name="renamed")], [])  # a commit: what was kept is read again
        assert reader.get_cis(["vm"], shared=True)["vm"].name == "renamed"
        assert writer.get_cis(["svc", "nowhere"], shared=True).keys() == {"svc"}  # no copy of the graph: same answers


def test_a_row_the_copy_cannot_decode_fails_only_its_readers_as_without_a_copy(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "cmdb.db"
    with SqliteStore(path) as writer:
        put(writer, [ci("svc", "service.business"), ci("ok", "service.business"), ci("vm")], [rel("svc", "vm")])
    with sqlite3.connect(path) as raw:  # damaged outside the store
        raw.execute("UPDATE cis SET attributes = '{not json' WHERE id = 'svc'")
    with SqliteStore(path) as sql, SqliteStore(path, graph_cache="blocking") as memory:
        with pytest.raises(ValueError) as without_copy:
            sql.get_cis(["svc"])
        memory.warm_graph_cache()
        assert memory.graph_cache_status() == "current"  # the copy was made: walks go on in memory
        assert memory.traverse(["vm"], "in").ids == ["svc"]
        for shared in (False, True):
            with pytest.raises(type(without_copy.value)):
                memory.get_cis(["svc"], shared=shared)
            assert memory.get_cis(["ok"], shared=shared)["ok"].type == "service.business"


def test_paths_read_with_a_copy_see_a_relationship_changed_by_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "cmdb.db"
    with SqliteStore(path) as writer, SqliteStore(path, graph_cache="blocking") as reader:
        put(writer, [ci("a"), ci("b")], [rel("b", "a")])
        assert [r.confidence for r in reader.traverse(["a"], "in")[0].path] == [1.0]
        assert [r.confidence for r in reader.traverse(["a"], "in")[0].path] == [1.0]  # the kept row
        put(writer, [], [rel("b", "a", confidence=0.4)])
        assert [r.confidence for r in reader.traverse(["a"], "in")[0].path] == [0.4]


def test_ids_are_found_in_memory_as_in_sql_whatever_their_characters(tmp_path: Path) -> None:
    path = tmp_path / "cmdb.db"
    names = ["a", "Z", "é", "ä/b", "k8s/ns/pod/x", "日本", "🙂", "a b", "A"]
    with SqliteStore(path) as sql, SqliteStore(path, graph_cache="blocking") as memory:
        put(sql, [ci(n) for n in names], [rel(n, "a") for n in names if n != "a"])
        asked = [*names, "missing", "é ", ""]
        assert memory.known_ids(asked) == sql.known_ids(asked) == set(names)
        assert memory.graph_cache_status() == "current"
        assert memory.traverse(["日本", "🙂"], "out").ids == sql.traverse(["日本", "🙂"], "out").ids == ["a"]


def test_a_thread_that_never_read_before_can_walk_and_read_from_the_copy(tmp_path: Path) -> None:
    """A server's worker thread may first touch the store with a walk answered wholly in memory."""
    path = tmp_path / "cmdb.db"
    with SqliteStore(path) as writer, SqliteStore(path, graph_cache="blocking") as reader:
        put(writer, [ci("a"), ci("b")], [rel("b", "a")])
        reader.warm_graph_cache()
        with ThreadPoolExecutor(max_workers=1) as fresh:
            assert fresh.submit(lambda: reader.traverse(["a"], "in").ids).result() == ["b"]
        with ThreadPoolExecutor(max_workers=1) as fresh:
            assert list(fresh.submit(lambda: reader.get_cis(["a"])).result()) == ["a"]
        with ThreadPoolExecutor(max_workers=1) as fresh, pytest.raises(StoreError, match="inside store.transaction"):
            fresh.submit(lambda: reader.put_cis([ci("c")])).result()
