"""The embedded store at scale: load, re-sync and blast radius on a generated estate.

    python benchmarks/estate_1m.py                 # 1M CIs, about 4M relationships
    python benchmarks/estate_1m.py --size 100000   # a quicker look

Prints: fresh-load rate through the sync engine (CIs/s, with the generator's own
share), unchanged re-sync time, blast-radius p50/p95 at depth 3 and 6 from leaf
and hub starts (walks in SQL, and over the store's in-memory copy of the graph
as `cmdb serve` walks) next to an in-memory rustworkx BFS over the same graph in
the same run, and peak RSS of the cmdb work (before the in-memory graph is built).
Targets (issue #2): load >= 100k CIs/s, re-sync <= 30 s, hub depth-6 p95
within 2x the in-memory floor, peak RSS <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import rustworkx as rx

from cmdb.connectors.base import Batch
from cmdb.demo import DemoConnector
from cmdb.store import CIFilter, SqliteStore
from cmdb.sync import SyncEngine


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def timed(fn: Callable[[], object], starts: Sequence[str]) -> tuple[list[float], list[int]]:
    times, sizes = [], []
    for start in starts:
        began = time.perf_counter()
        result = fn.__call__(start)  # type: ignore[call-arg]
        times.append((time.perf_counter() - began) * 1000)
        sizes.append(len(result))  # type: ignore[arg-type]
    return times, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000, help="CIs to generate (default 1,000,000)")
    parser.add_argument("--fanout", type=int, default=24, help="service calls per workload (sets relationships per CI)")
    parser.add_argument("--samples", type=int, default=40, help="traversals per start kind and depth")
    parser.add_argument("--limit", type=int, default=100_000, help="most CIs one traversal returns")
    parser.add_argument("--db", type=Path, help="store file (default: a temporary directory)")
    parser.add_argument("--reuse", action="store_true", help="--db already holds this estate: skip the fresh load")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="cmdb-bench-")
    path = args.db or Path(folder) / "bench.db"
    print(f"estate: --size {args.size:,} --fanout {args.fanout}, store {path}")

    began = time.perf_counter()
    generated = sum(len(e.cis) for e in DemoConnector(args.size, fanout=args.fanout).sweep() if isinstance(e, Batch))
    generate_s = time.perf_counter() - began
    print(f"generator alone: {generated:,} CIs in {generate_s:.1f} s")

    store = SqliteStore(path)
    engine = SyncEngine(store)
    if not args.reuse:
        began = time.perf_counter()
        report = engine.run(DemoConnector(args.size, fanout=args.fanout))
        load_s = time.perf_counter() - began
        assert report.counts["errors"] == 0, report.problems[:5]
    stats = store.stats()
    print(f"estate: {stats.total:,} CIs, {stats.relationships:,} relationships ({stats.relationships / stats.total:.2f} per CI)")
    if not args.reuse:
        print(
            f"fresh load: {load_s:.1f} s = {stats.total / load_s:,.0f} CIs/s end to end; "
            f"{stats.total / max(load_s - generate_s, 1e-9):,.0f} CIs/s without the generator"
        )

    began = time.perf_counter()
    again = engine.run(DemoConnector(args.size, fanout=args.fanout))
    resync_s = time.perf_counter() - began
    print(
        f"unchanged re-sync: {resync_s:.1f} s ({max(resync_s - generate_s, 0):.1f} s without the generator); "
        f"created={again.counts['created']} updated={again.counts['updated']} unchanged={again.counts['unchanged']:,}"
    )
    rss_cmdb = peak_rss_mb()
    print(f"peak RSS of load + re-sync: {rss_cmdb:,.0f} MB")

    rng = random.Random(1)
    leaves = [ci.id for ci in store.list_cis(CIFilter(types=("aws.ec2.volume", "gcp.compute.disk", "k8s.configmap")), 5000).items]
    hubs = [ci.id for ci in store.list_cis(CIFilter(types=("aws.ec2.vpc", "gcp.compute.network", "azure.network.vnet")), 5000).items]
    leaf_starts = [rng.choice(leaves) for _ in range(args.samples)]
    hub_starts = [rng.choice(hubs) for _ in range(args.samples)]

    began = time.perf_counter()
    graph: rx.PyDiGraph = rx.PyDiGraph()
    index: dict[str, int] = {}
    for ci in store.iter_cis(batch_size=20_000):
        index[ci.id] = graph.add_node(ci.id)
    edges = [(index[r.from_id], index[r.to_id], None) for r in store.iter_relationships(batch_size=20_000)
             if r.lifecycle_state != "retired" and r.review != "rejected"]
    graph.add_edges_from(edges)
    del edges
    print(f"in-memory rustworkx graph built in {time.perf_counter() - began:.1f} s")

    def floor_bfs(start: str, depth: int) -> list[int]:
        """Dependents within depth: BFS over predecessors, the same walk as the store's, in memory."""
        seen = {index[start]}
        frontier = [index[start]]
        found: list[int] = []
        for _ in range(depth):
            nxt = []
            for node in frontier:
                for pred in graph.predecessor_indices(node):
                    if pred not in seen:
                        seen.add(pred)
                        nxt.append(pred)
            found.extend(nxt)
            if len(found) >= args.limit or not nxt:
                break
            frontier = nxt
        return found[: args.limit]

    # The same store as `cmdb serve` and notebooks open it: walks over its in-memory copy of the graph.
    memory = SqliteStore(path, graph_cache="blocking")
    began = time.perf_counter()
    memory.warm_graph_cache()
    print(f"store's in-memory graph read in {time.perf_counter() - began:.1f} s")

    print(f"{'start':5} {'depth':>5} {'walk':>9} {'store p50':>10} {'store p95':>10} {'floor p50':>10} {'floor p95':>10} {'p95 ratio':>9} {'CIs reached (median)':>21}")
    for label, starts in (("leaf", leaf_starts), ("hub", hub_starts)):
        for depth in (3, 6):
            floor_ms, floor_sizes = timed(lambda s, d=depth: floor_bfs(s, d), starts)
            f50, f95 = percentiles(floor_ms)
            for walk, walker in (("SQL", store), ("in memory", memory)):
                store_ms, sizes = timed(lambda s, d=depth, w=walker: w.traverse([s], "in", max_depth=d, limit=args.limit), starts)
                assert sizes == floor_sizes, "the store and the in-memory BFS disagree"
                s50, s95 = percentiles(store_ms)
                print(f"{label:5} {depth:>5} {walk:>9} {s50:>9.1f}ms {s95:>9.1f}ms {f50:>9.2f}ms {f95:>9.2f}ms {s95 / max(f95, 1e-6):>8.1f}x {statistics.median(sizes):>21,.0f}")
    print(f"peak RSS with both in-memory graphs (the store's and rustworkx's): {peak_rss_mb():,.0f} MB")
    memory.close()
    store.close()


if __name__ == "__main__":
    sys.exit(main())
