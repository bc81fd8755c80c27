"""On random graphs, the store's blast radius equals networkx reachability over the exported graph."""

from __future__ import annotations

import random
from pathlib import Path

import networkx as nx
import pytest

from cmdb.export import to_networkx
from cmdb.impact import blast_radius, dependencies, failure_impact
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine
from tests.impact.helpers import build

TYPES = ["DEPENDS_ON", "RUNS_ON", "ROUTES_TO", "COMPOSED_OF", "MEMBER_OF", "OWNED_BY"]


def random_estate(engine: SyncEngine, seed: int, nodes: int = 120, edges: int = 300) -> None:
    rng = random.Random(seed)
    kinds = ["compute.vm", "app.application", "service.business", "database.instance", "team.team"]
    cis = {f"n{i:03d}": rng.choice(kinds) for i in range(nodes)}
    rels: set[tuple[str, str, str]] = set()
    names = sorted(cis)
    while len(rels) < edges:
        a, b = rng.sample(names, 2)
        rels.add((a, rng.choice(TYPES), b))
    build(engine, cis, sorted(rels))


def reachable(graph: nx.MultiDiGraph, start: str, depth: int, types: set[str] | None, upstream: bool) -> dict[str, int]:
    view = nx.MultiDiGraph()
    view.add_nodes_from(graph.nodes)
    for u, v, key in graph.edges(keys=True):
        if types is None or key in types:
            view.add_edge(v, u) if upstream else view.add_edge(u, v)
    lengths = nx.single_source_shortest_path_length(view, start, cutoff=depth)
    lengths.pop(start)
    return dict(lengths)


@pytest.mark.parametrize("seed", range(6))
def test_blast_radius_matches_networkx(tmp_path: Path, seed: int) -> None:
    store = SqliteStore(tmp_path / f"r{seed}.db")
    try:
        random_estate(SyncEngine(store), seed)
        graph = to_networkx(store.iter_cis(), store.iter_relationships())
        rng = random.Random(1000 + seed)
        for _ in range(8):
            start = rng.choice(sorted(graph.nodes))
            depth = rng.randint(1, 6)
            types = set(rng.sample(TYPES, rng.randint(1, len(TYPES)))) if rng.random() < 0.5 else None
            expected_up = reachable(graph, start, depth, types, upstream=True)
            radius = blast_radius(store, start, max_depth=depth, types=sorted(types) if types else None)
            assert {r.ci_id: r.depth for r in radius.reached} == expected_up
            for r in radius.reached:  # every path is a real walk from the start, as long as the depth
                assert len(r.path) == r.depth and r.path_ids[0] == start and r.path_ids[-1] == r.ci_id
                assert all(graph.has_edge(e.from_id, e.to_id, key=e.type) for e in r.path)
            in_memory = blast_radius(graph, start, max_depth=depth, types=sorted(types) if types else None)
            assert {r.ci_id: r.depth for r in in_memory.reached} == expected_up
            expected_down = reachable(graph, start, depth, types, upstream=False)
            assert {
                r.ci_id: r.depth
                for r in dependencies(store, start, max_depth=depth, types=sorted(types) if types else None).reached
            } == expected_down
    finally:
        store.close()


def brute_force_down(graph: nx.MultiDiGraph, failing: set[str]) -> set[str]:
    """Greatest set consistent with the rules, computed the slow way: iterate 'up' to a fixpoint.

    Without cycles among any-of groups (the estates below are acyclic), the
    least fixpoint of down-propagation equals this straightforward evaluation.
    """
    order = list(reversed(list(nx.topological_sort(nx.DiGraph(graph)))))
    down: set[str] = set(failing)
    for node in order:
        if node in down:
            continue
        groups: dict[str, list[str]] = {}
        for _, target, key in graph.out_edges(node, keys=True):
            if key in ("DEPENDS_ON", "RUNS_ON") and target in down:
                down.add(node)
                break
            if key in ("ROUTES_TO", "COMPOSED_OF"):
                groups.setdefault(key, []).append(target)
        else:
            if any(all(t in down for t in targets) for targets in groups.values()):
                down.add(node)
    return down


@pytest.mark.parametrize("seed", range(4))
def test_failure_impact_matches_a_brute_force_evaluation_on_dags(tmp_path: Path, seed: int) -> None:
    store = SqliteStore(tmp_path / f"d{seed}.db")
    try:
        rng = random.Random(seed)
        cis = {f"n{i:03d}": "compute.vm" for i in range(80)}
        rels: set[tuple[str, str, str]] = set()
        while len(rels) < 200:
            a, b = sorted(rng.sample(range(80), 2))  # edges from lower to higher: acyclic
            rels.add((f"n{a:03d}", rng.choice(TYPES), f"n{b:03d}"))
        build(SyncEngine(store), cis, sorted(rels))
        graph = to_networkx(store.iter_cis(), store.iter_relationships())
        for _ in range(10):
            failing = set(rng.sample(sorted(cis), rng.randint(1, 6)))
            expected = brute_force_down(graph, failing)
            impact = failure_impact(store, sorted(failing), max_depth=20)
            assert set(impact.down) == expected
            assert set(failure_impact(graph, sorted(failing), max_depth=20).down) == expected
    finally:
        store.close()


@pytest.mark.parametrize("seed", range(3))
def test_failure_states_agree_between_the_store_and_networkx_on_cyclic_graphs(tmp_path: Path, seed: int) -> None:
    store = SqliteStore(tmp_path / f"c{seed}.db")
    try:
        random_estate(SyncEngine(store), 100 + seed, nodes=80, edges=240)
        graph = to_networkx(store.iter_cis(), store.iter_relationships())
        assert not nx.is_directed_acyclic_graph(graph)
        rng = random.Random(seed)
        for _ in range(10):
            failing = sorted(rng.sample(sorted(graph.nodes), rng.randint(1, 5)))
            from_store = failure_impact(store, failing, max_depth=20)
            from_graph = failure_impact(graph, failing, max_depth=20)
            assert {c: a.state for c, a in from_store.affected.items()} == {
                c: a.state for c, a in from_graph.affected.items()
            }
            # Every CI reported down has a failure path that starts at a failing CI.
            for affected in from_store.affected.values():
                if affected.state == "down" and affected.path:
                    assert affected.path[0].to_id in failing and affected.path[-1].from_id == affected.ci_id
    finally:
        store.close()
