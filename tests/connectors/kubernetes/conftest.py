"""One replay API server for the session; each test serves its own estates on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .replay import KubeReplay


@pytest.fixture(scope="session")
def replay_server() -> Iterator[KubeReplay]:
    with KubeReplay() as server:
        yield server


@pytest.fixture
def replay(replay_server: KubeReplay) -> Iterator[KubeReplay]:
    """The session's replay server, emptied after the test."""
    yield replay_server
    replay_server.clusters.clear()
    replay_server.faults.clear()
    replay_server.requests.clear()


def write_kubeconfig(path: Path, clusters: dict[str, str], contexts: dict[str, str] | None = None) -> Path:
    """A kubeconfig with one context a cluster (or ``contexts``: context -> cluster), token users."""
    contexts = contexts or {name: name for name in clusters}
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}} for name, server in clusters.items()],
        "users": [{"name": "cmdb-reader", "user": {"token": "eyJhbGciOiJSUzI1NiIsImtpZCI6ImNtZGIifQ.cmdb-reader"}}],
        "contexts": [
            {"name": context, "context": {"cluster": cluster, "user": "cmdb-reader"}}
            for context, cluster in contexts.items()
        ],
        "current-context": next(iter(contexts)),
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
