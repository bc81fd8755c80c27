"""Build hand-made graphs through the real sync engine, with known answers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cmdb.model import CI, Relationship
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine
from tests.support import Clock

Edge = tuple[str, str, str]


def ci(ci_id: str, ci_type: str = "compute.vm", **fields: Any) -> CI:
    return CI(id=ci_id, type=ci_type, name=fields.pop("name", ci_id), **fields)


def build(
    engine: SyncEngine,
    nodes: Mapping[str, str] | Iterable[CI],
    edges: Iterable[Edge] = (),
    *,
    actor: str = "test",
) -> None:
    """Create CIs (id -> type, or CI objects) and relationships (from, TYPE, to)."""
    cis = [ci(i, t) for i, t in nodes.items()] if isinstance(nodes, Mapping) else list(nodes)
    rels = [Relationship(a, t, b) for a, t, b in edges]
    engine.edit(actor=actor, cis=cis, relationships=rels)


def settled_estate(
    store: SqliteStore, clock: Clock, nodes: Iterable[CI], edges: Iterable[Edge], *, days: float = 10
) -> SyncEngine:
    """Build the estate, then let ``days`` pass so that building it is no longer a recent change."""
    engine = SyncEngine(store, clock=clock)
    build(engine, nodes, edges)
    clock.advance(days=days)
    return engine
