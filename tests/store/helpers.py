"""Builders for the store contract suite: realistic CIs and relationships in few words."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from cmdb.model import CI, Evidence, Relationship
from cmdb.store import Store

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


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
