"""A small local HTTP(S) server that replays recorded API pages to real SDK clients.

Generic on purpose (GCP, Azure and Kubernetes tests share it): a route is a
method, an exact path, an optional query-string subset and an optional JSON-body
subset; the most specific matching route answers with a status and a body.

    with ReplayServer() as server:                       # http://127.0.0.1:<free port>
        server.add("GET", "/v1/projects/p/assets", {"assets": [...], "nextPageToken": "t1"})
        server.add("GET", "/v1/projects/p/assets", page2, query={"pageToken": "t1"})
        server.add("GET", "/v1/projects/p/assets", {"error": {...}}, status=403, query={"pageToken": "t2"})
        server.add("GET", "/broken", b"{not json")        # bytes and str are sent as they are
        ...
        server.requests                                   # what the client sent, in order

- ``query``: every named parameter must be present with that value (a list for a
  repeated parameter); ``None`` as a value means "must be absent".
- ``json``: a subset of the request's JSON body (nested mappings compared recursively).
- JSON bodies are serialised per request, with every ``rewrite`` prefix (e.g. a
  recorded ``https://management.azure.com``) replaced by the server's own address, so
  absolute ``nextLink`` values lead back here.
- ``tls=True`` serves HTTPS with a throw-away ``trustme`` CA for 127.0.0.1 and
  localhost; ``ca_path`` is its PEM for ``REQUESTS_CA_BUNDLE`` / ``connection_verify``.
- A request no route answers gets a 404 JSON error and is kept in ``unmatched``.
"""

from __future__ import annotations

import json
import socket
import ssl
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

__all__ = ["ReplayServer", "Route", "SeenRequest", "load_json"]


def load_json(path: str | Path) -> Any:
    """A recorded page from disk."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


@dataclass(slots=True)
class SeenRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(slots=True)
class Route:
    method: str
    path: str
    body: Any
    status: int = 200
    query: Mapping[str, str | list[str] | None] = field(default_factory=dict)
    json: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hits: int = 0

    def matches(self, request: SeenRequest) -> bool:
        if request.method != self.method or request.path != self.path:
            return False
        for name, wanted in self.query.items():
            got = request.query.get(name)
            if wanted is None:
                if got is not None:
                    return False
            elif got != (wanted if isinstance(wanted, list) else [wanted]):
                return False
        if self.json is not None:
            try:
                body = request.json()
            except ValueError:
                return False
            if not _subset(self.json, body):
                return False
        return True

    @property
    def specificity(self) -> int:
        return len(self.query) + (_size(self.json) if self.json is not None else 0)


def _subset(wanted: Any, got: Any) -> bool:
    if isinstance(wanted, Mapping):
        return isinstance(got, Mapping) and all(k in got and _subset(v, got[k]) for k, v in wanted.items())
    return bool(wanted == got)


def _size(wanted: Any) -> int:
    if isinstance(wanted, Mapping):
        return sum(1 + _size(v) for v in wanted.values())
    return 0


class ReplayServer:
    """Serves registered routes on 127.0.0.1 (port chosen by the OS) in a thread."""

    def __init__(self, *, tls: bool = False, rewrite: tuple[str, ...] = ()) -> None:
        self.routes: list[Route] = []
        self.requests: list[SeenRequest] = []
        self.unmatched: list[SeenRequest] = []
        self.rewrite = rewrite
        self.tls = tls
        self.ca_path = ""
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        if tls:
            self._wrap_tls()
        self._thread: threading.Thread | None = None

    # --- set-up -------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def add(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        status: int = 200,
        query: Mapping[str, str | list[str] | None] | None = None,
        json: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Route:
        route = Route(method.upper(), path, body, status, dict(query or {}), json, dict(headers or {}))
        with self._lock:
            self.routes.append(route)
        return route

    def clear(self) -> None:
        """Forget every route and request (between tests sharing one server)."""
        with self._lock:
            self.routes.clear()
            self.requests.clear()
            self.unmatched.clear()

    def start(self) -> ReplayServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="replay-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _wrap_tls(self) -> None:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self._tmp = tempfile.TemporaryDirectory(prefix="replay-ca-")
        self.ca_path = str(Path(self._tmp.name) / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)

    # --- serving ------------------------------------------------------------
    def _answer(self, request: SeenRequest) -> tuple[int, bytes, dict[str, str]]:
        with self._lock:
            self.requests.append(request)
            candidates = [r for r in self.routes if r.matches(request)]
            if not candidates:
                self.unmatched.append(request)
                body = {"error": {"code": 404, "message": f"no replay route for {request.method} {request.path}"}}
                return 404, json.dumps(body).encode(), {"Content-Type": "application/json"}
            route = max(candidates, key=lambda r: r.specificity)
            route.hits += 1
        headers = {"Content-Type": "application/json", **route.headers}
        if isinstance(route.body, bytes):
            return route.status, route.body, headers
        if isinstance(route.body, str):
            return route.status, route.body.encode(), headers
        text = json.dumps(route.body)
        for prefix in self.rewrite:
            text = text.replace(prefix.rstrip("/"), self.base_url)
        return route.status, text.encode(), headers

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out in separate writes: without this, Nagle's algorithm
                # and the client's delayed ACK add about 40 ms to every reply
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = SeenRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                status, payload, headers = server._answer(request)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        return Handler
