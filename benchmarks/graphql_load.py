"""The GraphQL API under load: uvicorn with one worker over a demo store, driven over HTTP.

    python benchmarks/graphql_load.py                  # demo estate of 3,000 CIs
    python benchmarks/graphql_load.py --size 20000 --requests 8000
    python benchmarks/graphql_load.py --driver httpx   # the same through httpx's transport

Builds a demo store in a temporary directory, then for each response-cache
setting starts ``cmdb serve`` (uvicorn, one worker) on a free port of
127.0.0.1 in a subprocess and drives it from a second process with a fixed
number of concurrent keep-alive clients, a bounded number of requests and a
time bound. Prints req/s and p50/p95 latency for

- a ``ci(id)`` lookup, a different CI each request (a pool of 2,000);
- a depth-3 dependency query whose answer is about 100 CIs, each with its
  path, rotating over a pool of start CIs that each reach about 100 CIs;
- the same dependency query from one client (one request's latency, no queue);

first with the response cache off (``CMDB_RESPONSE_CACHE__ENABLED=false``:
every request parses, checks and executes), then on (the rotating pools are
answered from memory until the data changes). Each scenario is measured after
one warm-up pass over every id of its pool, as a server that has been running
a while answers: its plans compiled, its graph copy read, the rows it has read
decoded (and, cache on, the answers kept). ``--cold`` warms connections only.

Also prints the CPU time per request of the server process and of the driver:
on a small machine the two share the cores, and the server's CPU per request
says what one worker can serve on a core of its own (1000 / ms = req/s).

The driver. By default it speaks HTTP/1.1 itself over asyncio streams: one
keep-alive connection a client, each request's bytes prepared before the clock
starts, each answer read by its Content-Length and parsed with orjson (status
and ``errors`` are checked on every answer). On a two-core machine the
driver's own CPU is a ceiling on what it can measure, and httpx's client costs
several times as much per request as the server's cached answer;
``--driver httpx`` drives through httpx's transport instead, for comparison.
uvicorn picks httptools and uvloop when they are installed
(``uvicorn[standard]``); the header line says which it runs.

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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TOKEN = "bench-read-token"
LOOKUP = "query($id: ID!) { ci(id: $id) { id type name owner lifecycleState } }"
DEPENDENCIES = """query($id: ID!) { ci(id: $id) { id name
    %s(depth: 3, first: 150) { depth ci { id type name owner } path { type fromId toId } } } }"""
FIELDS = {"out": "dependencies", "in": "dependents"}


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# --- the driver (second process) -----------------------------------------------------

Post = Callable[[int], Awaitable[tuple[int, bytes]]]


class RawConnection:
    """One HTTP/1.1 keep-alive connection: writes prepared requests, reads answers by Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = dict(line.split(b":", 1) for line in lines[1:] if b":" in line)
        length = {k.strip().lower(): v.strip() for k, v in headers.items()}.get(b"content-length")
        if length is not None:
            return status, await self.reader.readexactly(int(length))
        body = bytearray()  # chunked (the API does not stream, but be correct)
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await self.reader.readexactly(size + 2)
            if not size:
                return status, bytes(body)
            body += chunk[:-2]

    def close(self) -> None:
        self.writer.close()


def raw_request(host: str, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def drive(
    url: str, query: str, ids: list[str], requests: int, clients: int, seconds: float, driver: str, warm: bool
) -> dict[str, Any]:
    import orjson

    bodies = [orjson.dumps({"query": query, "variables": {"id": ci_id}}) for ci_id in ids]
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    posts: list[Post] = []
    closers: list[Callable[[], Any]] = []
    if driver == "raw":
        prepared = [raw_request(parts.netloc, parts.path, body) for body in bodies]
        for _ in range(clients):
            connection = await RawConnection.open(host, port)
            closers.append(connection.close)

            async def post(index: int, connection: RawConnection = connection) -> tuple[int, bytes]:
                return await connection.exchange(prepared[index])

            posts.append(post)
    else:
        import httpx

        # httpx's transport, without the client layer (redirects, cookies, auth flows, hooks).
        transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        )
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

        async def post_httpx(index: int) -> tuple[int, bytes]:
            request = httpx.Request("POST", url, content=bodies[index], headers=headers)
            response = await transport.handle_async_request(request)
            content = await response.aread()
            await response.aclose()
            return response.status_code, content

        posts = [post_httpx] * clients
        closers.append(lambda: None)

    latencies: list[float] = []
    errors = 0
    sizes: list[int] = []
    walk = "(depth: 3" in query

    def check(status: int, content: bytes) -> bool:
        nonlocal errors
        payload = orjson.loads(content)
        if status != 200 or payload.get("errors"):
            errors += 1
            return False
        if walk:
            sizes.append(max(len(v) for v in payload["data"]["ci"].values() if isinstance(v, list)))
        return True

    # Warm up: connections, the server's caches (a pass over every id when `warm`).
    warmup = list(range(len(ids))) if warm else [0] * clients
    for start in range(0, len(warmup), clients):
        await asyncio.gather(*(posts[i % clients](index) for i, index in enumerate(warmup[start : start + clients])))
    sizes.clear()

    print("measuring", flush=True)  # the orchestrator counts the server's CPU from here
    issued = 0
    deadline = time.perf_counter() + seconds
    usage_before = resource.getrusage(resource.RUSAGE_SELF)

    async def one_client(seed: int) -> None:
        nonlocal issued
        rng = random.Random(seed)
        post = posts[seed]
        while issued < requests and time.perf_counter() < deadline:
            issued += 1
            index = rng.randrange(len(ids))
            began = time.perf_counter()
            status, content = await post(index)
            latencies.append((time.perf_counter() - began) * 1000)
            check(status, content)

    started = time.perf_counter()
    await asyncio.gather(*(one_client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    for close in closers:
        close()
    if driver == "httpx":
        await transport.aclose()
    ordered = sorted(latencies)
    cpu = (usage.ru_utime + usage.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    return {
        "driver_cpu_ms": cpu * 1000 / max(1, len(latencies)),
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


def run_driver(server_pid: int, **job: Any) -> dict[str, Any]:
    done = subprocess.Popen(
        [sys.executable, __file__, "--drive"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert done.stdin is not None and done.stdout is not None
    done.stdin.write(json.dumps(job))
    done.stdin.close()
    # The driver warms up first and reports when it starts measuring; count server CPU from there.
    ready = done.stdout.readline()
    if ready.strip() != "measuring":
        raise SystemExit(f"driver failed: {ready}{done.stderr.read() if done.stderr else ''}")
    before = cpu_seconds(server_pid)
    out = done.stdout.read()
    if done.wait(timeout=job["seconds"] + 120) != 0:
        raise SystemExit(f"driver failed: {done.stderr.read() if done.stderr else ''}")
    after = cpu_seconds(server_pid)
    result: dict[str, Any] = json.loads(out)
    result["cpu_ms"] = (after - before) * 1000 / max(1, result["requests"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=3000, help="demo estate size (CIs)")
    parser.add_argument("--clients", type=int, default=10, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=6000, help="most requests per scenario")
    parser.add_argument("--seconds", type=float, default=20.0, help="most seconds per scenario")
    parser.add_argument("--driver", choices=("raw", "httpx"), default="raw", help="HTTP client of the driver")
    parser.add_argument("--cache", choices=("off", "on", "both"), default="both", help="response cache settings")
    parser.add_argument("--cold", action="store_true", help="no warm-up pass (connections only)")
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
        print(
            f"demo estate of about {args.size:,} CIs loaded in {time.perf_counter() - began:.1f}s; {calibration()}",
            flush=True,
        )
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        print(
            f"uvicorn (1 worker, {http}, {loop}); {args.clients} concurrent clients in a second process "
            f"({args.driver} driver); pools: {len(lookups)} lookup ids, {len(starts)} walk starts; "
            f"{'no warm-up' if args.cold else 'one warm-up pass over each pool'}\n",
            flush=True,
        )
        print(
            f"{'scenario':<52}{'requests':>9}{'errors':>7}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'CIs':>6}"
            f"{'server CPU ms/req':>19}{'driver CPU ms/req':>19}",
            flush=True,
        )
        walk = f"{FIELDS[direction]}(depth: 3) ~100 CIs"
        walk_query = DEPENDENCIES % FIELDS[direction]
        for cache in ("off", "on") if args.cache == "both" else (args.cache,):
            with serving(db, cache) as (url, pid):
                for label, query, ids, requests, clients in (
                    ("ci(id) lookup", LOOKUP, lookups, args.requests, args.clients),
                    (walk, walk_query, starts, max(1, args.requests // 4), args.clients),
                    # The same with one client: one request's latency, not queued behind nine others.
                    (f"{walk}, 1 client", walk_query, starts, max(1, args.requests // 20), 1),
                ):
                    result = run_driver(
                        pid,
                        url=url,
                        query=query,
                        ids=ids,
                        requests=requests,
                        clients=clients,
                        seconds=args.seconds,
                        driver=args.driver,
                        warm=not args.cold,
                    )
                    cis = "" if result["cis_per_answer"] is None else f"{result['cis_per_answer']:.0f}"
                    print(
                        f"{label + ', cache ' + cache:<52}{result['requests']:>9}{result['errors']:>7}"
                        f"{result['rps']:>9.0f}{result['p50']:>9.1f}{result['p95']:>9.1f}{cis:>6}"
                        f"{result['cpu_ms']:>19.2f}{result['driver_cpu_ms']:>19.2f}",
                        flush=True,
                    )
    print("\ntargets: lookup >= 1,000 req/s; dependency query p95 <= 25 ms (10 clients)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {calibration()}")


def calibration() -> str:
    """How fast this machine runs Python right now: shared and virtual machines vary by a third or more."""
    import timeit

    best = min(timeit.repeat("sum(range(100_000))", number=20, repeat=5)) / 20
    return f"sum(range(100_000)) takes {best * 1000:.2f} ms"


@contextmanager
def serving(db: Path, cache: str) -> Iterator[tuple[str, int]]:
    """``cmdb serve`` over ``db`` in a subprocess with the response cache ``on`` or ``off``: its URL and pid."""
    port = free_port()
    env = {
        **os.environ,
        "CMDB_TOKENS": f"bench:read:{TOKEN}",
        "CMDB_ANONYMOUS_READ": "false",
        "CMDB_RESPONSE_CACHE__ENABLED": "true" if cache == "on" else "false",
    }
    server = subprocess.Popen(
        [sys.executable, "-c", "from cmdb.cli import main; main()", "serve", "--db", str(db), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        wait_until_up(url, server)
        yield url, server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


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
