"""Store contract: bounded traversals and shortest paths, on every backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cmdb.model import Relationship
from cmdb.store import Hit, NotInMemory, SqliteStore, Store
from tests.store.helpers import ci, put, rel

T = TypeVar("T")


def by_id(hits: list[Hit]) -> dict[str, Hit]:
    assert len({h.ci_id for h in hits}) == len(hits), "each CI is reached once"
    return {h.ci_id: h for h in hits}


def path_keys(path: tuple[Relationship, ...] | list[Relationship]) -> list[tuple[str, str, str]]:
    return [r.key for r in path]


def service_estate(store: Store) -> None:
    """checkout -> app -> pod -> node -> vm; app -> db; lb -> pod; team owns app."""
    put(
        store,
        [ci(i) for i in ("checkout", "app", "pod", "node", "vm", "db", "lb")] + [ci("team", "team.team")],
        [
            rel("checkout", "app", "DEPENDS_ON"),
            rel("app", "pod", "RUNS_ON"),
            rel("pod", "node", "RUNS_ON"),
            rel("node", "vm", "RUNS_ON"),
            rel("app", "db", "DEPENDS_ON"),
            rel("lb", "pod", "ROUTES_TO"),
            rel("app", "team", "OWNED_BY"),
        ],
    )


def test_blast_radius_walks_to_dependents_nearest_first_with_paths(store: Store) -> None:
    service_estate(store)
    hits = store.traverse(["vm"], "in", max_depth=10)
    assert [h.depth for h in hits] == sorted(h.depth for h in hits)
    found = by_id(hits)
    assert {k: h.depth for k, h in found.items()} == {"node": 1, "pod": 2, "app": 3, "lb": 3, "checkout": 4}
    assert path_keys(found["checkout"].path) == [
        ("node", "RUNS_ON", "vm"),
        ("pod", "RUNS_ON", "node"),
        ("app", "RUNS_ON", "pod"),
        ("checkout", "DEPENDS_ON", "app"),
    ]
    assert found["lb"].path[-1].type == "ROUTES_TO"  # the path carries whole stored edges
    assert found["lb"].path[-1].source == "file"
    for _ in range(2):  # a caller that only reads gets the same walk (a second time: what was kept)
        shared = store.traverse(["vm"], "in", max_depth=10, shared=True)
        assert [(h.ci_id, h.depth, h.path) for h in shared] == [(h.ci_id, h.depth, h.path) for h in hits]
    # the paths as a column, made without the hits; the same on a slice, and after the hits
    fresh = store.traverse(["vm"], "in", max_depth=10, shared=True)
    assert fresh.paths() == [h.path for h in hits]
    assert fresh[1:3].paths() == [h.path for h in hits[1:3]]
    assert store.traverse(["vm"], "in", max_depth=10).paths() == [h.path for h in hits]
    assert hits.paths() == [h.path for h in hits] and len(hits.paths()) == 5


def test_depth_bound_and_start_not_included(store: Store) -> None:
    service_estate(store)
    assert {h.ci_id for h in store.traverse(["vm"], "in", max_depth=2)} == {"node", "pod"}
    assert store.traverse(["vm"], "in", max_depth=0) == []
    assert "vm" not in {h.ci_id for h in store.traverse(["vm"], "in")}


def test_direction_out_and_both(store: Store) -> None:
    service_estate(store)
    out = by_id(store.traverse(["checkout"], "out", max_depth=10))
    assert {k: h.depth for k, h in out.items()} == {"app": 1, "pod": 2, "db": 2, "team": 2, "node": 3, "vm": 4}
    assert path_keys(out["db"].path) == [("checkout", "DEPENDS_ON", "app"), ("app", "DEPENDS_ON", "db")]
    both = by_id(store.traverse(["pod"], "both", max_depth=1))
    assert set(both) == {"app", "lb", "node"}
    assert path_keys(both["app"].path) == [("app", "RUNS_ON", "pod")]  # stored direction, whichever way walked


def test_type_filter_and_limit(store: Store) -> None:
    service_estate(store)
    assert {h.ci_id for h in store.traverse(["vm"], "in", types=["RUNS_ON"], max_depth=10)} == {"node", "pod", "app"}
    assert {h.ci_id for h in store.traverse(["checkout"], "out", types=["DEPENDS_ON"], max_depth=10)} == {"app", "db"}
    limited = store.traverse(["vm"], "in", max_depth=10, limit=2)
    assert [(h.ci_id, h.depth) for h in limited] == [("node", 1), ("pod", 2)]


def test_inactive_edges_are_not_walked(store: Store) -> None:
    put(
        store,
        [ci(i) for i in ("a", "b", "c", "d")],
        [
            rel("a", "b"),
            rel("b", "c", lifecycle_state="retired"),
            rel("a", "d", inferred=True, review="rejected"),
            rel("d", "c", lifecycle_state="stale"),  # stale is not gone: it is still walked
        ],
    )
    assert {h.ci_id for h in store.traverse(["a"], "out", max_depth=5)} == {"b"}
    assert {h.ci_id for h in store.traverse(["c"], "in", max_depth=5)} == {"d"}


def test_cycles_end_and_each_ci_is_reached_once(store: Store) -> None:
    put(
        store,
        [ci(i) for i in ("a", "b", "c")],
        [rel("a", "b"), rel("b", "c"), rel("c", "a"), rel("b", "a", "ROUTES_TO")],
    )
    hits = by_id(store.traverse(["a"], "out", max_depth=50))
    assert {k: h.depth for k, h in hits.items()} == {"b": 1, "c": 2}
    assert by_id(store.traverse(["a"], "both", max_depth=50)).keys() == {"b", "c"}


def test_many_starts_and_unknown_starts(store: Store) -> None:
    service_estate(store)
    hits = by_id(store.traverse(["db", "vm", "nowhere"], "in", max_depth=1))
    assert {k: h.depth for k, h in hits.items()} == {"app": 1, "node": 1}
    assert store.traverse(["nowhere"], "in") == []


def test_shortest_path_takes_the_fewest_hops(store: Store) -> None:
    put(
        store,
        [ci(i) for i in ("svc", "app", "pod", "node", "vm", "db")],
        [
            rel("svc", "app"),
            rel("app", "pod", "RUNS_ON"),
            rel("pod", "node", "RUNS_ON"),
            rel("node", "vm", "RUNS_ON"),
            rel("vm", "db"),
            rel("app", "db"),
        ],
    )
    assert path_keys(store.shortest_path("svc", "db") or []) == [
        ("svc", "DEPENDS_ON", "app"),
        ("app", "DEPENDS_ON", "db"),
    ]
    only_runs = store.shortest_path("app", "vm", types=["RUNS_ON"])
    assert only_runs is not None and [r.type for r in only_runs] == ["RUNS_ON"] * 3
    assert store.shortest_path("svc", "vm", types=["DEPENDS_ON"]) is None
    assert store.shortest_path("db", "svc") is None  # edges only go one way
    assert path_keys(store.shortest_path("db", "svc", direction="in") or []) == [
        ("app", "DEPENDS_ON", "db"),
        ("svc", "DEPENDS_ON", "app"),
    ]
    assert store.shortest_path("svc", "vm", max_depth=3) is None
    assert len(store.shortest_path("svc", "vm", max_depth=4) or []) == 4
    assert store.shortest_path("svc", "svc") == []
    assert store.shortest_path("svc", "nowhere") is None


def test_reads_in_memory_only_answer_as_any_read_or_say_they_need_the_file_or_network(store: Store) -> None:
    service_estate(store)

    def walk() -> list[tuple[str, int, list[tuple[str, str, str]]]]:
        return [(h.ci_id, h.depth, path_keys(h.path)) for h in store.traverse(["vm"], "in", max_depth=10)]

    def lookup() -> dict[str, object]:
        return dict(store.get_cis(["app", "db"], shared=True))

    def in_memory(read: Callable[[], T]) -> T | None:
        try:
            with store.memory_only():
                return read()
        except NotInMemory:
            return None

    expected_walk, expected_cis = walk(), lookup()
    answers = [(in_memory(walk), in_memory(lookup)) for _ in range(2)]
    for walked, looked_up in answers:  # what is answered in memory is what any read answers
        assert walked in (None, expected_walk) and looked_up in (None, expected_cis)
    holds_a_copy = isinstance(store, SqliteStore) and store.graph_cache_status() == "current"
    # A store with a current graph copy answers from memory what was read since the last commit.
    assert answers[-1] == ((expected_walk, expected_cis) if holds_a_copy else (None, None))
    put(store, [ci("app", name="renamed")], [])  # a commit: what was kept is read from the store again
    assert in_memory(lookup) is None
    assert store.get_cis(["app"])["app"].name == "renamed"  # a read refused midway left the store as it was
    assert walk() == expected_walk
