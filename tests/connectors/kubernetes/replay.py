"""A local stand-in for the Kubernetes API server, replaying recorded List objects.

It serves ``kubectl get -o json``-shaped List files (one per resource, kept
under ``tests/data/kubernetes/<estate>/``) the way kube-apiserver serves a list:
``limit`` cuts a page, ``metadata.continue`` carries an opaque token to the next
one and ``metadata.remainingItemCount`` says how many are left; a token from an
older generation of the listing is answered with a 410 ``Expired`` Status, an
unknown path with a 404 Status. Several clusters share one server, each under
its own path prefix (``http://127.0.0.1:PORT/<prefix>``).

Tests steer it by setting ``faults`` (listing path -> what to do) and read what
the client asked for in ``requests``; nothing in the client is patched.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

__all__ = ["LISTINGS", "Fault", "KubeReplay", "load_estate"]

# listing path -> data file name (without .json)
LISTINGS: dict[str, str] = {
    "/api/v1/namespaces": "namespaces",
    "/api/v1/nodes": "nodes",
    "/api/v1/persistentvolumes": "persistentvolumes",
    "/api/v1/persistentvolumeclaims": "persistentvolumeclaims",
    "/api/v1/configmaps": "configmaps",
    "/api/v1/serviceaccounts": "serviceaccounts",
    "/api/v1/pods": "pods",
    "/api/v1/services": "services",
    "/apis/apps/v1/deployments": "deployments",
    "/apis/apps/v1/statefulsets": "statefulsets",
    "/apis/apps/v1/daemonsets": "daemonsets",
    "/apis/apps/v1/replicasets": "replicasets",
    "/apis/networking.k8s.io/v1/ingresses": "ingresses",
}
_LIST_KINDS = {
    "namespaces": ("v1", "NamespaceList"),
    "nodes": ("v1", "NodeList"),
    "persistentvolumes": ("v1", "PersistentVolumeList"),
    "persistentvolumeclaims": ("v1", "PersistentVolumeClaimList"),
    "configmaps": ("v1", "ConfigMapList"),
    "serviceaccounts": ("v1", "ServiceAccountList"),
    "pods": ("v1", "PodList"),
    "services": ("v1", "ServiceList"),
    "deployments": ("apps/v1", "DeploymentList"),
    "statefulsets": ("apps/v1", "StatefulSetList"),
    "daemonsets": ("apps/v1", "DaemonSetList"),
    "replicasets": ("apps/v1", "ReplicaSetList"),
    "ingresses": ("networking.k8s.io/v1", "IngressList"),
}

DATA = Path(__file__).resolve().parents[2] / "data" / "kubernetes"


def load_estate(name: str, replace: dict[str, str] | None = None) -> dict[str, Any]:
    """The recorded files of one estate, keyed by file name; ``replace`` rewrites text first (a template)."""
    estate: dict[str, Any] = {}
    for path in sorted((DATA / name).glob("*.json")):
        text = path.read_text(encoding="utf-8")
        for old, new in (replace or {}).items():
            text = text.replace(old, new)
        estate[path.stem] = json.loads(text)
    return estate


@dataclass
class Fault:
    """What the server does to one listing of one cluster.

    ``status`` answers every request (or only those on ``page`` and later) with
    that HTTP status and a Status body; ``expire`` answers the next N requests
    that carry a continue token with 410 Expired; ``malformed_page`` answers that
    page (0-based) with ``body`` instead of a List.
    """

    status: int = 0
    page: int = 0
    times: int = 0  # with status: only the first N requests it applies to (0: all)
    expire: int = 0
    malformed_page: int = -1
    body: bytes = b'{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"48219001"},"items":{"metadata":'


@dataclass
class _Cluster:
    estate: dict[str, Any]
    generation: dict[str, int] = field(default_factory=dict)


def _status(code: int, reason: str, message: str, kind: str = "") -> bytes:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if kind:
        body["details"] = {"kind": kind}
    return json.dumps(body).encode()


class KubeReplay:
    """The replay server; use as a context manager or call start()/stop()."""

    def __init__(self) -> None:
        self.clusters: dict[str, _Cluster] = {}
        self.faults: dict[tuple[str, str], Fault] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="kube-replay", daemon=True)

    # --- set-up -------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.port}/{prefix}"

    def serve(self, prefix: str, estate: dict[str, Any]) -> str:
        """Serve ``estate`` under ``/prefix``; returns the server URL for a kubeconfig."""
        self.clusters[prefix] = _Cluster(estate)
        return self.url(prefix)

    def fault(self, prefix: str, path: str, fault: Fault) -> None:
        self.faults[(prefix, path)] = fault

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def listing_requests(self, prefix: str, path: str) -> list[dict[str, str]]:
        return [query for p, lp, query in self.requests if p == prefix and lp == path]

    # --- serving ------------------------------------------------------------
    def answer(self, raw_path: str) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        prefix, _, rest = parts.path.lstrip("/").partition("/")
        path = "/" + rest.rstrip("/") if rest else "/"
        with self._lock:
            self.requests.append((prefix, path, query))
        cluster = self.clusters.get(prefix)
        if cluster is None:
            return 404, _status(404, "NotFound", "the server could not find the requested resource"), {}
        if path == "/version":
            return 200, json.dumps(cluster.estate["version"]).encode(), {}
        name = LISTINGS.get(path)
        if name is None or name not in cluster.estate:
            return 404, _status(404, "NotFound", "the server could not find the requested resource"), {}
        return self.page(prefix, path, name, cluster, query)

    def page(
        self, prefix: str, path: str, name: str, cluster: _Cluster, query: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        items: list[Any] = cluster.estate[name]["items"]
        generation = cluster.generation.setdefault(path, 1)
        offset, page_number = 0, 0
        token = query.get("continue")
        fault = self.faults.get((prefix, path))
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                offset, page_number, token_generation = int(state["start"]), int(state["page"]), int(state["gen"])
            except (ValueError, KeyError, TypeError):
                return 400, _status(400, "BadRequest", "continue key is not valid: illegal base64 data"), {}
            if fault is not None and fault.expire > 0:
                fault.expire -= 1
                cluster.generation[path] = generation + 1  # the snapshot moved on; this token is now too old
            if token_generation != cluster.generation[path]:
                return (
                    410,
                    _status(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter, or use the continue token "
                        "in this response to retrieve the remainder of the results.",
                    ),
                    {},
                )
            generation = cluster.generation[path]
        if fault is not None and fault.status and page_number >= fault.page and fault.times >= 0:
            if fault.times:
                fault.times = -1 if fault.times == 1 else fault.times - 1
            resource = name
            reason = {401: "Unauthorized", 403: "Forbidden", 429: "TooManyRequests", 500: "InternalError"}.get(
                fault.status, "InternalError"
            )
            message = (
                f'{resource} is forbidden: User "system:serviceaccount:cmdb:reader" cannot list resource '
                f'"{resource}" in API group "{path.split("/")[2] if path.startswith("/apis/") else ""}" at the cluster scope'
                if fault.status == 403
                else f"{reason} while listing {resource}"
            )
            return (
                fault.status,
                _status(fault.status, reason, message, resource),
                ({"Retry-After": "0"} if fault.status in (429, 503) else {}),
            )
        if fault is not None and fault.malformed_page == page_number:
            return 200, fault.body, {}
        limit = int(query.get("limit", "0") or 0)
        end = len(items) if limit <= 0 else min(len(items), offset + limit)
        api_version, kind = _LIST_KINDS[name]
        resource_version = str(48219000 + 17 * generation + len(items))
        metadata: dict[str, Any] = {"resourceVersion": resource_version}
        if end < len(items):
            state = {
                "v": "meta.k8s.io/v1",
                "rv": int(resource_version),
                "start": end,
                "page": page_number + 1,
                "gen": generation,
            }
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            metadata["remainingItemCount"] = len(items) - end
        body = {"kind": kind, "apiVersion": api_version, "metadata": metadata, "items": items[offset:end]}
        return 200, json.dumps(body).encode(), {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                status, body, headers = replay.answer(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
