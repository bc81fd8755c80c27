"""The GraphQL API under load: uvicorn with one worker over a demo store, driven over HTTP.

    python benchmarks/graphql_load.py                  # demo estate of 3,000 CIs
    python benchmarks/graphql_load.py --size 20000 --requests 8000

Builds a demo store in a temporary directory, starts ``cmdb serve`` (uvicorn,
one worker) on a free port of 127.0.0.1 in a subprocess, then drives it from a
second process: an asyncio httpx driver with a fixed number of concurrent
clients, a bounded number of requests and a time bound. Prints req/s and
p50/p95 latency for

- a ``ci(id)`` lookup (a different CI each request);
- a depth-3 dependency query whose answer is about 100 CIs, each with its path.

- the same dependency query from one client (one request's latency, no queue).

Also prints the CPU time per request of the server process and of the driver:
on a small machine the two share the cores, and the server's CPU per request
says what one worker can serve on a core of its own (1000 / ms = req/s).
uvicorn picks httptools and uvloop when they are installed (``uvicorn[standard]``);
the header line says which it runs.

Targets (issue #5): >= 1,000 req/s for the lookup, p95 <= 25 ms for the
dependency query, at 10 concurrent clients.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOKEN = "bench-read-token"
LOOKUP = "query($id: ID!) { ci(id: $id) { id type name owner lifecycleState } }"
DEPENDENCIES = """query($id: ID!) { ci(id: $id) { id name
    %s(depth: 3, first: 150) { depth ci { id type name owner } path { type fromId toId } } } }"""
FIELDS = {"out": "dependencies", "in": "dependents"}


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# --- the driver (second process) -----------------------------------------------------


async def drive(url: str, query: str, ids: list[str], requests: int, clients: int, seconds: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    sizes: list[int] = []
    issued = 0
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    # httpx's transport, without the client layer (redirects, cookies, auth flows, hooks): the
    # driver shares two cores with the server, and every microsecond it spends is one the
    # server does not get.
    transport = httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    )
    walk = "(depth: 3" in query

    async def post(ci_id: str) -> tuple[int, Any]:
        body = json.dumps({"query": query, "variables": {"id": ci_id}}).encode()
        request = httpx.Request("POST", url, content=body, headers=headers)
        response = await transport.handle_async_request(request)
        content = await response.aread()
        await response.aclose()
        return response.status_code, json.loads(content)

    async with transport:

        async def one_client(seed: int) -> None:
            nonlocal issued, errors
            rng = random.Random(seed)
            while issued < requests and time.perf_counter() < deadline:
                issued += 1
                began = time.perf_counter()
                status, payload = await post(rng.choice(ids))
                latencies.append((time.perf_counter() - began) * 1000)
                if status != 200 or payload.get("errors"):
                    errors += 1
                elif walk:
                    sizes.append(max(len(v) for v in payload["data"]["ci"].values() if isinstance(v, list)))

        # Warm up (connections, caches) before measuring.
        await asyncio.gather(*(post(ids[0]) for _ in range(clients)))
        started = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "driver_cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000 / max(1, len(latencies) + clients),
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50": percentile(ordered, 0.50),
        "p95": percentile(ordered, 0.95),
        "cis_per_answer": statistics.median(sizes) if sizes else None,
    }


# --- the orchestrator --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def build_store(path: Path, size: int) -> tuple[list[str], list[str], str]:
    """Load the demo estate; pick lookup ids and starts whose depth-3 walk reaches ~100 CIs.

    Walks down (dependencies) are preferred; the demo's estates are shallow below
    a workload, so the walk up (dependents, the blast radius) of a subnet or
    node is what usually reaches about 100 CIs within depth 3.
    """
    from cmdb.demo import DemoConnector
    from cmdb.store import CIFilter, SqliteStore
    from cmdb.sync import SyncEngine

    store = SqliteStore(path)
    try:
        SyncEngine(store).run(DemoConnector(size=size, seed=1))
        ids = [ci.id for ci in store.iter_cis(CIFilter())]
        rng = random.Random(5)
        lookups = rng.sample(ids, min(2000, len(ids)))
        sample = rng.sample(ids, min(3000, len(ids)))
        for direction in ("out", "in"):
            scored = sorted(
                (abs(len(store.traverse([ci_id], direction, max_depth=3, limit=151)) - 100), ci_id) for ci_id in sample
            )
            starts = [ci_id for distance, ci_id in scored[:20] if distance <= 25]
            if starts:
                return lookups, starts, direction
        raise SystemExit("no CI in this estate reaches about 100 CIs within depth 3; try a larger --size")
    finally:
        store.close()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the server process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_driver(
    url: str, query: str, ids: list[str], requests: int, clients: int, seconds: float, server_pid: int
) -> dict[str, Any]:
    job = json.dumps(
        {"url": url, "query": query, "ids": ids, "requests": requests, "clients": clients, "seconds": seconds}
    )
    before = cpu_seconds(server_pid)
    done = subprocess.run(
        [sys.executable, __file__, "--drive"],
        input=job,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    # Server CPU per request (warm-up included): what one worker could serve on a free core.
    result["cpu_ms"] = (cpu_seconds(server_pid) - before) * 1000 / (result["requests"] + clients)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=3000, help="demo estate size (CIs)")
    parser.add_argument("--clients", type=int, default=10, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=6000, help="most requests per scenario")
    parser.add_argument("--seconds", type=float, default=20.0, help="most seconds per scenario")
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.drive:
        job = json.loads(sys.stdin.read())
        print(json.dumps(asyncio.run(drive(**job))))
        return

    with tempfile.TemporaryDirectory(prefix="cmdb-graphql-load-") as folder:
        db = Path(folder) / "cmdb.db"
        began = time.perf_counter()
        lookups, starts, direction = build_store(db, args.size)
        print(f"demo estate of about {args.size:,} CIs loaded in {time.perf_counter() - began:.1f}s", flush=True)
        port = free_port()
        env = {**os.environ, "CMDB_TOKENS": f"bench:read:{TOKEN}", "CMDB_ANONYMOUS_READ": "false"}
        server = subprocess.Popen(
            [sys.executable, "-c", "from cmdb.cli import main; main()", "serve", "--db", str(db), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/graphql"
        try:
            wait_until_up(url, server)
            http = "httptools" if importlib.util.find_spec("httptools") else "h11"
            loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
            print(
                f"uvicorn (1 worker, {http}, {loop}) on {url}; {args.clients} concurrent clients in a second process\n",
                flush=True,
            )
            print(
                f"{'scenario':<44}{'requests':>9}{'errors':>7}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'CIs':>6}"
                f"{'server CPU ms/req':>19}{'driver CPU ms/req':>19}"
            )
            walk = f"{FIELDS[direction]}(depth: 3) ~100 CIs"
            walk_query = DEPENDENCIES % FIELDS[direction]
            for label, query, ids, requests, clients in (
                ("ci(id) lookup", LOOKUP, lookups, args.requests, args.clients),
                (walk, walk_query, starts, max(1, args.requests // 4), args.clients),
                # The same with one client: one request's latency, not queued behind nine others.
                (f"{walk}, 1 client", walk_query, starts, max(1, args.requests // 20), 1),
            ):
                result = run_driver(url, query, ids, requests, clients, args.seconds, server.pid)
                cis = "" if result["cis_per_answer"] is None else f"{result['cis_per_answer']:.0f}"
                print(
                    f"{label:<44}{result['requests']:>9}{result['errors']:>7}{result['rps']:>9.0f}"
                    f"{result['p50']:>9.1f}{result['p95']:>9.1f}{cis:>6}{result['cpu_ms']:>19.2f}{result['driver_cpu_ms']:>19.2f}",
                    flush=True,
                )
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print("\ntargets: lookup >= 1,000 req/s; dependency query p95 <= 25 ms")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def wait_until_up(url: str, server: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"cmdb serve exited with {server.returncode}")
        try:
            httpx.get(url.replace("/graphql", "/healthz"), timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("cmdb serve did not start within 60 s")


if __name__ == "__main__":
    main()
