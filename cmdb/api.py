"""The Python API for notebooks: tables as records, subgraphs as networkx graphs.

    import cmdb, pandas as pd
    db = cmdb.open()
    pd.DataFrame(db.cis(provider="aws", lifecycle_state="stale"))
    g = db.subgraph(["arn:aws:rds:eu-west-1:412381904377:db:orders"], depth=3, direction="in")
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Self

import networkx as nx

from cmdb.config import Settings
from cmdb.export import ci_record, relationship_record, to_networkx
from cmdb.history import snapshot
from cmdb.model import CI, Direction, parse_time
from cmdb.store import ChangeFilter, CIFilter, Store, open_store
from cmdb.sync import SyncEngine

__all__ = ["Cmdb"]

_LIST_FIELDS = {"ids", "types", "classes", "lifecycle_states"}


class Cmdb:
    """A handle on one CMDB for interactive use."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def open(cls, target: str | None = None, **settings: Any) -> Cmdb:
        return cls(open_store(target, Settings(**settings), long_lived=True))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> SyncEngine:
        return SyncEngine(self.store)

    def get(self, ci_id: str) -> CI | None:
        return self.store.get_cis([ci_id]).get(ci_id)

    def cis(self, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """CIs as records (one flat dict each), filtered by any CIFilter field:
        ``db.cis(type="aws.rds.db_instance", environment="production")``."""
        if "type" in filters:
            filters["types"] = (filters.pop("type"),)
        if "ci_class" in filters:
            filters["classes"] = (filters.pop("ci_class"),)
        if "lifecycle_state" in filters:
            filters["lifecycle_states"] = (filters.pop("lifecycle_state"),)
        for name in _LIST_FIELDS & set(filters):
            if isinstance(filters[name], str):
                filters[name] = (filters[name],)
            else:
                filters[name] = tuple(filters[name])
        records = []
        for ci in self.store.iter_cis(CIFilter(**filters)):
            records.append(ci_record(ci))
            if limit is not None and len(records) >= limit:
                break
        return records

    def relationships(self, ids: Sequence[str], direction: Direction = "both") -> list[dict[str, Any]]:
        return [relationship_record(r) for r in self.store.relationships(ids, direction)]

    def changes(self, since: str | datetime | None = None, ci_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        filter = ChangeFilter(ci_ids=(ci_id,) if ci_id else None, since=parse_time(since) if since else None)
        return [
            {
                "seq": c.seq, "at": c.at, "kind": c.kind, "ci_id": c.ci_id, "rel_type": c.rel_type, "to_id": c.to_id,
                "field": c.field, "before": c.before, "after": c.after, "actor": c.actor, "sync_id": c.sync_id,
            }
            for c in self.store.changes(filter, first=limit).items
        ]

    def subgraph(
        self,
        ids: Sequence[str],
        depth: int = 2,
        direction: Direction = "both",
        types: Sequence[str] | None = None,
        limit: int = 10_000,
    ) -> nx.MultiDiGraph:
        """The CIs within ``depth`` of ``ids`` and the relationships among them."""
        hits = self.store.traverse(ids, direction, types, depth, limit)
        members = list(dict.fromkeys([*ids, *(hit.ci_id for hit in hits)]))
        cis = self.store.get_cis(members)
        inside = set(cis)
        rels = [r for r in self.store.relationships(members, "out", types) if r.to_id in inside]
        return to_networkx(cis.values(), rels)

    def to_networkx(self, as_of: str | datetime | None = None) -> nx.MultiDiGraph:
        """The whole graph (now, or as of a time) as a networkx MultiDiGraph."""
        if as_of is not None:
            snap = snapshot(self.store, parse_time(as_of))
            return to_networkx(snap.cis.values(), snap.relationships.values())
        return to_networkx(self.store.iter_cis(), self.store.iter_relationships())
