"""cmdb: a graph-backed configuration management database.

For notebooks::

    import cmdb
    db = cmdb.open()                       # the embedded store, or cmdb.open("neo4j://...")
    db.cis(type="aws.rds.db_instance")     # records, ready for pandas.DataFrame
    g = db.subgraph(["arn:aws:rds:..."], depth=3)   # a networkx.MultiDiGraph
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cmdb.errors import CmdbError
from cmdb.model import CI, ChangeRecord, Relationship

if TYPE_CHECKING:
    from cmdb.api import Cmdb

__all__ = ["CI", "ChangeRecord", "CmdbError", "Relationship", "open"]
__version__ = "0.1.0"


def open(target: str | None = None, **settings: Any) -> Cmdb:
    """Open a CMDB: a file path, a ``bolt://``/``neo4j://`` URI, or the configured default."""
    from cmdb.api import Cmdb

    return Cmdb.open(target, **settings)
