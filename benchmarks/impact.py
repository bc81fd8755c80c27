"""The impact module at scale: blast radius, change risk and what-if on the demo estate.

    python benchmarks/impact.py                  # 1M CIs (fanout 24, about 4M relationships)
    python benchmarks/impact.py --size 100000    # a quicker look
    python benchmarks/impact.py --db est.db      # reuse a store file (loaded once if empty)

Loads the demo estate (``cmdb.demo.DemoConnector``, the generator of
``benchmarks/estate_1m.py``) through the sync engine, then times, each over
``--samples`` starts: blast radius at depth 6 from leaf starts (volumes, disks,
config maps), hub starts (networks, as in estate_1m.py) and the widest starts
(the largest upstream reach among 3,000 random CIs) — the store's own
``traverse`` over SQL and over its in-memory copy of the graph (as ``cmdb
serve`` and notebooks walk), ``blast_radius(details=False)`` (every CI reached
with its depth and type, the business services loaded, their owners), the same
with a ``ReachedCI`` record made per CI, with the relationships of every path
loaded, with every reached CI loaded and with down/degraded states — next to an
in-memory rustworkx BFS over the same graph in the same run (the floor; also
networkx with ``--networkx``; the floor and ``blast_radius`` are timed in
pairs, start by start, taking turns at going first); change risk of hubs and
leaves; what-if (remove a database under services) and the single points of
failure of a service.
Targets (issue #6): hub depth-6 p95 within 2x the in-memory floor; change risk
of a hub p95 <= 200 ms.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
import rustworkx as rx

from cmdb.demo import DemoConnector
from cmdb.graphql.app import GC_THRESHOLD
from cmdb.impact import blast_radius, change_risk, single_points_of_failure, what_if
from cmdb.store import CIFilter, SqliteStore
from cmdb.sync import SyncEngine

LEAF_TYPES = ("aws.ec2.volume", "gcp.compute.disk", "azure.compute.disk", "k8s.configmap")
HUB_TYPES = ("aws.ec2.vpc", "gcp.compute.network", "azure.network.vnet")
DB_TYPES = ("aws.rds.db_instance", "gcp.sqladmin.instance", "azure.sql.database")


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(fn: Callable[[str], Any], starts: Sequence[str]) -> tuple[list[float], list[Any]]:
    times: list[float] = []
    results: list[Any] = []
    for start in starts:
        began = time.perf_counter()
        results.append(fn(start))
        times.append((time.perf_counter() - began) * 1000)
    return times, results


def paired(
    floor: Callable[[str], Any], fn: Callable[[str], Any], starts: Sequence[str]
) -> tuple[list[float], list[Any], list[float], list[Any]]:
    """Both timed start by start, taking turns at going first: a slow moment of the host, or
    caches the other left warm or cold, weigh on both alike."""
    floor_times: list[float] = []
    floor_results: list[Any] = []
    times: list[float] = []
    results: list[Any] = []
    for i, start in enumerate(starts):
        pair = [(floor, floor_times, floor_results), (fn, times, results)]
        for function, timings, answers in pair if i % 2 == 0 else pair[::-1]:
            began = time.perf_counter()
            answers.append(function(start))
            timings.append((time.perf_counter() - began) * 1000)
    return floor_times, floor_results, times, results


def row(label: str, times: list[float], extra: str = "", floor: list[float] | None = None) -> None:
    p50, p95 = percentiles(times)
    line = f"{label:42} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms"
    if floor is not None:
        f50, f95 = percentiles(floor)
        line += f"   floor p50 {f50:7.2f} ms  p95 {f95:7.2f} ms  p95 ratio {p95 / max(f95, 1e-6):5.2f}x"
    print(line + (f"   {extra}" if extra else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000, help="CIs to generate (default 1,000,000)")
    parser.add_argument("--fanout", type=int, default=24, help="service calls per workload (sets relationships per CI)")
    parser.add_argument("--samples", type=int, default=40, help="starts per measurement")
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--limit", type=int, default=10_000, help="most CIs one blast radius returns")
    parser.add_argument("--db", type=Path, help="store file (default: a temporary directory); loaded if empty")
    parser.add_argument("--networkx", action="store_true", help="also time an in-memory networkx BFS (slow to build)")
    args = parser.parse_args()

    path = args.db or Path(tempfile.mkdtemp(prefix="cmdb-impact-bench-")) / "bench.db"
    sql_store = SqliteStore(path)  # walks query the file
    if sql_store.count_cis(CIFilter()) == 0:
        began = time.perf_counter()
        SyncEngine(sql_store).run(DemoConnector(args.size, fanout=args.fanout))
        print(f"loaded the demo estate into {path} in {time.perf_counter() - began:.1f} s", flush=True)
    stats = sql_store.stats()
    print(f"estate: {stats.total:,} CIs, {stats.relationships:,} relationships ({path})", flush=True)
    # Walks over the store's in-memory copy of the graph, as `cmdb serve` and notebooks run them.
    store = SqliteStore(path, graph_cache="blocking")
    rss_before = psutil.Process().memory_info().rss
    began = time.perf_counter()
    store.warm_graph_cache()
    print(
        f"store's in-memory graph read in {time.perf_counter() - began:.1f} s, "
        f"RSS +{(psutil.Process().memory_info().rss - rss_before) / 2**20:,.0f} MB",
        flush=True,
    )

    rng = random.Random(6)

    def sample(types: Sequence[str]) -> list[str]:
        ids = [ci.id for ci in store.list_cis(CIFilter(types=tuple(types)), 5000).items]
        return [rng.choice(ids) for _ in range(args.samples)]

    leaves, hubs, dbs = sample(LEAF_TYPES), sample(HUB_TYPES), sample(DB_TYPES)
    services = sample(("service.business",))
    warm_up = {"leaf": sample(LEAF_TYPES), "hub": sample(HUB_TYPES)}  # other starts of the same kinds

    began = time.perf_counter()
    graph: rx.PyDiGraph = rx.PyDiGraph()
    index: dict[str, int] = {}
    for ci in store.iter_cis(batch_size=20_000):
        index[ci.id] = graph.add_node(ci.id)
    graph.add_edges_from(
        [
            (index[r.from_id], index[r.to_id], None)
            for r in store.iter_relationships(batch_size=20_000)
            if r.lifecycle_state != "retired" and r.review != "rejected"
        ]
    )
    print(f"in-memory rustworkx graph built in {time.perf_counter() - began:.1f} s", flush=True)

    def floor_bfs(start: str) -> int:
        """Dependents within depth, up to the limit: the same walk, in memory."""
        seen = {index[start]}
        frontier = [index[start]]
        found = 0
        for _ in range(args.depth):
            nxt: list[int] = []
            for node in frontier:
                for pred in graph.predecessor_indices(node):
                    if pred not in seen:
                        seen.add(pred)
                        nxt.append(pred)
                        found += 1
                        if found >= args.limit:
                            return found
            if not nxt:
                break
            frontier = nxt
        return found

    nx_floor: Callable[[str], int] | None = None
    if args.networkx:
        import networkx as nx

        began = time.perf_counter()
        g = nx.DiGraph()
        g.add_edges_from((r.from_id, r.to_id) for r in store.iter_relationships(batch_size=20_000))
        print(f"in-memory networkx graph built in {time.perf_counter() - began:.1f} s", flush=True)

        def nx_floor(start: str) -> int:
            found = 0
            for _ in nx.bfs_edges(g, start, reverse=True, depth_limit=args.depth):
                found += 1
                if found >= args.limit:
                    break
            return found

    # The widest starts: of 3,000 random CIs, those whose depth-limited upstream is largest.
    every = list(index)
    probe = [every[rng.randrange(len(every))] for _ in range(3000)]
    reach = sorted(((floor_bfs(s), s) for s in probe), reverse=True)
    widest = [s for _, s in reach[: args.samples]]
    warm_up["widest"] = [s for _, s in reach[args.samples : 2 * args.samples]]
    print(
        f"widest starts reach {reach[args.samples - 1][0]:,}..{reach[0][0]:,} CIs within depth {args.depth}", flush=True
    )

    # As `cmdb serve` runs (create_app(freeze_gc=True)): what lives for the whole run (the
    # store's copy, the floor's graphs) is kept out of the collector's passes, and the young
    # generation grows to GC_THRESHOLD objects before a collection, which would otherwise land
    # inside random timings, the floor's and the store's alike.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)

    # As in a server that has been answering for a while: the store's page cache holds the
    # rows walks keep coming back to (business services). Warmed with other starts than the
    # timed ones, so no timed answer is already in any cache.
    began = time.perf_counter()
    for starts in warm_up.values():
        for start in starts:
            floor_bfs(start)
            blast_radius(store, start, max_depth=args.depth, limit=args.limit)
    print(f"warmed up with {sum(map(len, warm_up.values()))} other starts in {time.perf_counter() - began:.1f} s")

    for label, starts in (("leaf", leaves), ("hub", hubs), ("widest", widest)):
        # The target row first, paired with the floor; the floor's times stand beside every row.
        floor_ms, floor_sizes, store_ms, radii = paired(
            floor_bfs, lambda s: blast_radius(store, s, max_depth=args.depth, limit=args.limit, details=False), starts
        )
        sql_ms, _ = timed(lambda s: sql_store.traverse([s], "in", max_depth=args.depth, limit=args.limit), starts)
        row(f"store.traverse {label} depth {args.depth}, SQL", sql_ms, floor=floor_ms)
        raw_ms, _ = timed(lambda s: store.traverse([s], "in", max_depth=args.depth, limit=args.limit), starts)
        row(f"store.traverse {label} depth {args.depth}, in memory", raw_ms, floor=floor_ms)
        sizes = [len(r.reached) for r in radii]
        assert sizes == floor_sizes, f"the store and the in-memory BFS disagree: {sizes[:5]} vs {floor_sizes[:5]}"
        services_hit = statistics.median(len(r.services) for r in radii)
        row(
            f"blast radius {label} depth {args.depth}",
            store_ms,
            f"CIs reached median {statistics.median(sizes):,.0f}, services {services_hit:,.0f}",
            floor_ms,
        )
        if nx_floor is not None:
            nx_ms, _ = timed(nx_floor, starts)
            row(f"  networkx floor {label}", nx_ms)
        records_ms, _ = timed(
            lambda s: blast_radius(store, s, max_depth=args.depth, limit=args.limit, details=False).reached, starts
        )
        row(f"blast radius {label} depth {args.depth}, a record per CI", records_ms, floor=floor_ms)
        paths_ms, _ = timed(
            lambda s: [
                r.path for r in blast_radius(store, s, max_depth=args.depth, limit=args.limit, details=False).reached
            ],
            starts,
        )
        row(f"blast radius {label} depth {args.depth}, paths loaded", paths_ms, floor=floor_ms)
        full_ms, _ = timed(lambda s: blast_radius(store, s, max_depth=args.depth, limit=args.limit), starts)
        row(f"blast radius {label} depth {args.depth}, CIs loaded", full_ms)
        states_ms, _ = timed(
            lambda s: blast_radius(store, s, max_depth=args.depth, limit=args.limit, details=False, states=True), starts
        )
        row(f"blast radius {label} depth {args.depth}, with states", states_ms)

    for label, starts in (("hub", hubs), ("widest", widest), ("database", dbs), ("leaf", leaves)):
        risk_ms, risks = timed(lambda s: change_risk(store, s, "modify"), starts)
        scores = [r.score for r in risks]
        row(
            f"change risk {label}",
            risk_ms,
            f"score median {statistics.median(scores):.0f} (min {min(scores)}, max {max(scores)}), "
            f"truncated {sum(r.truncated for r in risks)}/{len(risks)}",
        )

    whatif_ms, results = timed(lambda s: what_if(store, remove=[s]), dbs)
    row(
        "what-if: remove a database",
        whatif_ms,
        f"services down median {statistics.median(len(r.services_down) for r in results):.0f}",
    )
    spof_ms, points = timed(lambda s: single_points_of_failure(store, s), services[: max(5, args.samples // 4)])
    row(
        "single points of failure of a service",
        spof_ms,
        f"single points median {statistics.median(len(p) for p in points):.0f}",
    )
    store.close()
    sql_store.close()


if __name__ == "__main__":
    main()
