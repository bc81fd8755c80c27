"""Exports: JSON with every field, GraphML and node-link JSON (via networkx)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import IO, Any

import networkx as nx
import orjson

from cmdb.history import snapshot
from cmdb.model import CI, Relationship
from cmdb.store.base import Store
from cmdb.vocabulary import vocabulary

__all__ = ["ci_record", "export", "relationship_record", "to_networkx"]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def ci_record(ci: CI) -> dict[str, Any]:
    """A CI as a flat JSON-ready dict with every field."""
    return {
        "id": ci.id,
        "type": ci.type,
        "class": vocabulary().class_of(ci.type),
        "name": ci.name,
        "provider": ci.provider,
        "scope": ci.scope,
        "region": ci.region,
        "environment": ci.environment,
        "owner": ci.owner,
        "cost_centre": ci.cost_centre,
        "business_unit": ci.business_unit,
        "criticality": ci.criticality,
        "lifecycle_state": ci.lifecycle_state,
        "tags": ci.tags,
        "attributes": ci.attributes,
        "aliases": list(ci.aliases),
        "sources": list(ci.sources),
        "provenance": ci.provenance,
        "first_seen": _time(ci.first_seen),
        "last_seen": _time(ci.last_seen),
        "stale_since": _time(ci.stale_since),
    }


def relationship_record(rel: Relationship) -> dict[str, Any]:
    return {
        "from": rel.from_id,
        "type": rel.type,
        "to": rel.to_id,
        "impact": vocabulary().relationship_type(rel.type).impact,
        "source": rel.source,
        "scope": rel.scope,
        "evidence": [{"field": e.field, "value": e.value} for e in rel.evidence],
        "confidence": rel.confidence,
        "inferred": rel.inferred,
        "review": rel.review,
        "lifecycle_state": rel.lifecycle_state,
        "first_seen": _time(rel.first_seen),
        "last_seen": _time(rel.last_seen),
        "stale_since": _time(rel.stale_since),
    }


def to_networkx(cis: Iterable[CI], relationships: Iterable[Relationship]) -> nx.MultiDiGraph:
    """A MultiDiGraph: nodes are CI ids with their fields, edges from dependent to dependency keyed by type."""
    graph = nx.MultiDiGraph()
    for ci in cis:
        graph.add_node(ci.id, **ci_record(ci))
    for rel in relationships:
        record = relationship_record(rel)
        record.pop("from")
        record.pop("to")
        graph.add_edge(rel.from_id, rel.to_id, key=rel.type, **record)
    return graph


def _graphml_safe(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """GraphML holds scalars only: nested values become JSON text, None becomes ''."""
    safe = nx.MultiDiGraph()

    def flat(data: dict[str, Any]) -> dict[str, Any]:
        return {
            k: ("" if v is None else orjson.dumps(v).decode() if isinstance(v, (dict, list)) else v)
            for k, v in data.items()
        }

    for node, data in graph.nodes(data=True):
        safe.add_node(node, **flat(data))
    for u, v, key, data in graph.edges(keys=True, data=True):
        safe.add_edge(u, v, key=key, **flat(data))
    return safe


def export(store: Store, out: IO[bytes], fmt: str = "json", *, as_of: datetime | None = None) -> tuple[int, int]:
    """Write the graph (now, or as of a time) to ``out``; returns (CIs, relationships) written."""
    if as_of is not None:
        snap = snapshot(store, as_of)
        cis: Iterable[CI] = list(snap.cis.values())
        rels: Iterable[Relationship] = list(snap.relationships.values())
    else:
        cis = store.iter_cis()
        rels = store.iter_relationships()
    if fmt == "json":
        return _write_json(out, cis, rels)
    graph = to_networkx(cis, rels)
    if fmt == "graphml":
        nx.write_graphml(_graphml_safe(graph), out)
    elif fmt == "node-link":
        out.write(orjson.dumps(nx.node_link_data(graph, edges="links")))
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    return graph.number_of_nodes(), graph.number_of_edges()


def _write_json(out: IO[bytes], cis: Iterable[CI], rels: Iterable[Relationship]) -> tuple[int, int]:
    """Streams ``{"cis": [...], "relationships": [...]}`` without holding the graph in memory."""
    counts = [0, 0]
    out.write(b'{"cis": [')
    for i, ci in enumerate(cis):
        out.write((b",\n" if i else b"\n") + orjson.dumps(ci_record(ci)))
        counts[0] += 1
    out.write(b'\n], "relationships": [')
    for i, rel in enumerate(rels):
        out.write((b",\n" if i else b"\n") + orjson.dumps(relationship_record(rel)))
        counts[1] += 1
    out.write(b"\n]}\n")
    return counts[0], counts[1]
