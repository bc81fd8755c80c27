"""Stores: one protocol (``Store``), two backends, chosen by where the graph lives."""

from __future__ import annotations

from cmdb.config import Settings
from cmdb.store.base import (
    MAX_PAGE,
    ChangeFilter,
    CIFilter,
    Hit,
    NotInMemory,
    Page,
    RelFilter,
    SourceState,
    Stats,
    Store,
    Traversal,
)
from cmdb.store.sqlite import SqliteStore

__all__ = [
    "MAX_PAGE",
    "CIFilter",
    "ChangeFilter",
    "Hit",
    "NotInMemory",
    "Page",
    "RelFilter",
    "SourceState",
    "SqliteStore",
    "Stats",
    "Store",
    "Traversal",
    "open_store",
]


def open_store(target: str | None = None, settings: Settings | None = None, *, long_lived: bool = False) -> Store:
    """Open the store at ``target``: a ``bolt://``/``neo4j://`` URI or a file path.

    With no target, ``CMDB_NEO4J_URI`` wins when set, else ``CMDB_DB`` or the
    default file under the user's data directory. ``long_lived``: the caller
    will walk the graph many times (a server, a notebook), so the embedded
    store keeps a copy of it in memory unless ``CMDB_GRAPH_CACHE`` says otherwise.
    """
    settings = settings or Settings()
    target = target or settings.neo4j_uri or str(settings.db)
    if target.split("://", 1)[0] in ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"):
        from cmdb.store.neo4j import Neo4jStore

        return Neo4jStore(
            target,
            user=settings.neo4j_user,
            password=settings.neo4j_password.get_secret_value(),
            database=settings.neo4j_database,
        )
    mode = settings.graph_cache
    return SqliteStore(target, graph_cache=("background" if long_lived else "off") if mode == "auto" else mode)
