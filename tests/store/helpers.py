"""Builders for the store contract suite: realistic CIs and relationships in few words."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from cmdb.model import CI, Evidence, Relationship
from cmdb.store import Store
from cmdb.store.neo4j import Neo4jStore

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
ARCADE_PASSWORD = "cmdb-contract-1"
ARCADE_DATABASE = "cmdb"


@dataclass(frozen=True)
class BoltTarget:
    uri: str
    user: str
    password: str
    database: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def open_bolt_store(target: BoltTarget, *, uri: str | None = None) -> Neo4jStore:
    return Neo4jStore(uri or target.uri, user=target.user, password=target.password, database=target.database)


def ci(ci_id: str, type: str = "compute.vm", **fields: Any) -> CI:
    fields.setdefault("name", ci_id.rsplit("/", 1)[-1])
    fields.setdefault("provider", "onprem")
    fields.setdefault("scope", "dc-lon1")
    fields.setdefault("first_seen", T0)
    fields.setdefault("last_seen", T0)
    return CI(id=ci_id, type=type, **fields)


def rel(from_id: str, to_id: str, type: str = "DEPENDS_ON", **fields: Any) -> Relationship:
    fields.setdefault("source", "file")
    fields.setdefault("scope", "dc-lon1")
    fields.setdefault("evidence", (Evidence("file", "estate.yaml:12"),))
    fields.setdefault("first_seen", T0)
    fields.setdefault("last_seen", T0)
    return Relationship(from_id=from_id, type=type, to_id=to_id, **fields)


def put(store: Store, cis: Sequence[CI] = (), rels: Sequence[Relationship] = ()) -> None:
    """Write CIs and relationships in one transaction, with a fingerprint per relationship."""
    with store.transaction():
        store.put_cis(list(cis))
        if rels:
            store.put_relationships(list(rels), [f"fp-{r.from_id}-{r.type}-{r.to_id}" for r in rels])


def chain(store: Store, ids: Sequence[str], type: str = "DEPENDS_ON") -> list[Relationship]:
    """CIs ids[0] -> ids[1] -> ... (each needs the next)."""
    rels = [rel(a, b, type) for a, b in pairwise(ids)]
    put(store, [ci(i) for i in ids], rels)
    return rels
