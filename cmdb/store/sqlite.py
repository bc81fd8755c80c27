"""The embedded store: one SQLite file in WAL mode, no server.

Several processes may read while one writes; a sync run is one transaction.
CIs get an integer ``nid`` so that edges and traversals work on integers; the
public surface speaks CI ids only. All SQL lives in this module.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import orjson

from cmdb.errors import StoreError, ValidationError
from cmdb.model import CI, ChangeRecord, Direction, Evidence, Relationship, RelKey, SyncRun
from cmdb.store.adjacency import GraphCopy, Reached, Stopped
from cmdb.store.base import (
    MAX_PAGE,
    ChangeFilter,
    CIFilter,
    NotInMemory,
    Page,
    PathBatch,
    RelFilter,
    SourceState,
    Stats,
    Traversal,
    walk_back,
)
from cmdb.vocabulary import vocabulary

__all__ = ["GRAPH_CACHE_MODES", "GraphCache", "SqliteStore"]

ROW_CACHE_SIZE = 100_000
"""The most CIs, and relationships, a store with a graph copy keeps read between commits."""

KEPT_TYPES = ("service.business",)
"""CI types the graph copy holds, decoded: every blast radius and change risk reports
the business services it reaches, and they are few."""

GraphCache = Literal["off", "background", "blocking"]
GRAPH_CACHE_MODES: tuple[GraphCache, ...] = ("off", "background", "blocking")

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
CHUNK = 900  # ids per IN (...) list; well under SQLite's variable limit

_DOCUMENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cis (
    nid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    ci_class TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    provider TEXT NOT NULL DEFAULT '',
    scope TEXT NOT NULL DEFAULT '',
    region TEXT NOT NULL DEFAULT '',
    environment TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT '',
    cost_centre TEXT NOT NULL DEFAULT '',
    business_unit TEXT NOT NULL DEFAULT '',
    criticality TEXT NOT NULL DEFAULT '',
    lifecycle_state TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    attributes TEXT NOT NULL DEFAULT '{}',
    aliases TEXT NOT NULL DEFAULT '[]',
    sources TEXT NOT NULL DEFAULT '[]',
    provenance TEXT NOT NULL DEFAULT '{}',
    first_seen TEXT,
    last_seen TEXT,
    stale_since TEXT
);
CREATE INDEX IF NOT EXISTS cis_type ON cis(type);
CREATE INDEX IF NOT EXISTS cis_scope ON cis(scope, lifecycle_state);
CREATE INDEX IF NOT EXISTS cis_lifecycle ON cis(lifecycle_state, stale_since);
CREATE TABLE IF NOT EXISTS ci_sources (
    source TEXT NOT NULL,
    nid INTEGER NOT NULL,
    scope TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (source, nid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ci_sources_sweep ON ci_sources(source, scope, last_seen);
CREATE TABLE IF NOT EXISTS aliases (
    alias TEXT PRIMARY KEY,
    nid INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rels (
    src INTEGER NOT NULL,
    type TEXT NOT NULL,
    dst INTEGER NOT NULL,
    lifecycle_state TEXT NOT NULL,
    review TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    scope TEXT NOT NULL DEFAULT '',
    evidence TEXT NOT NULL DEFAULT '[]',
    confidence REAL NOT NULL DEFAULT 1.0,
    inferred INTEGER NOT NULL DEFAULT 0,
    fingerprint TEXT NOT NULL DEFAULT '',
    first_seen TEXT,
    last_seen TEXT,
    stale_since TEXT,
    PRIMARY KEY (src, type, dst)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rels_dst ON rels(dst, type, src, lifecycle_state, review);
CREATE INDEX IF NOT EXISTS rels_sweep ON rels(source, scope, lifecycle_state, last_seen);
CREATE INDEX IF NOT EXISTS rels_stale ON rels(lifecycle_state, stale_since) WHERE lifecycle_state = 'stale';
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    ci_id TEXT NOT NULL,
    sync_id TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT '',
    scope TEXT NOT NULL DEFAULT '',
    field TEXT NOT NULL DEFAULT '',
    before TEXT,
    after TEXT,
    rel_type TEXT NOT NULL DEFAULT '',
    to_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS changes_ci ON changes(ci_id);
CREATE INDEX IF NOT EXISTS changes_at ON changes(at);
CREATE INDEX IF NOT EXISTS changes_to ON changes(to_id);  -- "changes of these CIs" also matches edge targets
CREATE TABLE IF NOT EXISTS sync_runs (
    sync_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    scopes TEXT NOT NULL,
    counts TEXT NOT NULL,
    errors TEXT NOT NULL,
    actor TEXT NOT NULL DEFAULT ''
);
CREATE VIRTUAL TABLE IF NOT EXISTS ci_fts USING fts5(id, name, tags, tokenize = 'unicode61');
""" + _DOCUMENTS_SCHEMA

_CI_COLUMNS = (
    "id, type, ci_class, name, provider, scope, region, environment, owner, cost_centre, "
    "business_unit, criticality, lifecycle_state, tags, attributes, aliases, sources, provenance, "
    "first_seen, last_seen, stale_since"
)
_CI_UPSERT = (
    f"INSERT INTO cis ({_CI_COLUMNS}) VALUES ({', '.join('?' * 21)}) "
    "ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in _CI_COLUMNS.split(",")[1:])
)
_REL_COLUMNS = (
    "r.src, r.type, r.dst, r.lifecycle_state, r.review, r.source, r.scope, r.evidence, r.confidence, "
    "r.inferred, r.first_seen, r.last_seen, r.stale_since"
)
_REL_SELECT = (
    f"SELECT a.id, b.id, {_REL_COLUMNS} FROM rels r JOIN cis a ON a.nid = r.src JOIN cis b ON b.nid = r.dst"
)
_REL_UPSERT = """
INSERT INTO rels (src, type, dst, lifecycle_state, review, source, scope, evidence, confidence, inferred,
                  fingerprint, first_seen, last_seen, stale_since)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(src, type, dst) DO UPDATE SET
    lifecycle_state = excluded.lifecycle_state, review = excluded.review, source = excluded.source,
    scope = excluded.scope, evidence = excluded.evidence, confidence = excluded.confidence,
    inferred = excluded.inferred, fingerprint = excluded.fingerprint, first_seen = excluded.first_seen,
    last_seen = excluded.last_seen, stale_since = excluded.stale_since
"""
_WALKABLE = "r.lifecycle_state != 'retired' AND r.review != 'rejected'"

T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@functools.lru_cache(maxsize=4096)  # every row of a run carries the run's one timestamp
def _time(value: datetime | None) -> str | None:
    """ISO text in UTC: text order is then time order, whatever zone a caller's time is in."""
    if value is None:
        return None
    return (value.astimezone(UTC) if value.tzinfo is not None else value).isoformat()


@functools.lru_cache(maxsize=4096)  # rows written by one run share its timestamps; datetimes are immutable
def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(f"n:{value}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "n":
            raise ValueError(kind)
        return int(number)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(f"not a cursor this store issued: {cursor!r}") from None


def _fts_query(text: str) -> str:
    """Turn free text into an FTS5 query of quoted prefix terms (no operators)."""
    terms = [t for t in "".join(c if c.isalnum() else " " for c in text).split() if t]
    return " ".join(f'"{t}"*' for t in terms)


def _tags_text(tags: dict[str, str]) -> str:
    return " ".join(f"{k} {v}" for k, v in tags.items())


# ``_row_to_ci`` passes a row's values in the order CI declares its fields (faster than by
# name, which shows on walks that load hundreds of CIs); this is that order.
_CI_FIELD_ORDER = (
    "id", "type", "name", "provider", "scope", "region", "environment", "owner", "cost_centre", "business_unit",
    "criticality", "lifecycle_state", "tags", "attributes", "aliases", "sources", "provenance", "first_seen",
    "last_seen", "stale_since",
)  # fmt: skip
if tuple(f.name for f in fields(CI)) != _CI_FIELD_ORDER:
    raise ImportError("cmdb.model.CI changed its fields: update _row_to_ci, _fresh_ci and _CI_FIELD_ORDER")
_REL_FIELD_ORDER = (
    "from_id", "type", "to_id", "source", "scope", "evidence", "confidence", "inferred", "review", "lifecycle_state",
    "first_seen", "last_seen", "stale_since",
)  # fmt: skip
if tuple(f.name for f in fields(Relationship)) != _REL_FIELD_ORDER:
    raise ImportError("cmdb.model.Relationship changed its fields: update _fresh_rel and _REL_FIELD_ORDER")


# Decoding repeats itself across CIs: the same sources and provenance stand in thousands of
# rows (as timestamps do, see ``_parse``). Tuples of names are shared, being immutable;
# provenance, a flat map of names, is copied for each CI.
_strings = functools.lru_cache(maxsize=4096)(lambda text: tuple(orjson.loads(text)))
_names = functools.lru_cache(maxsize=4096)(orjson.loads)


@functools.lru_cache(maxsize=4096)  # a connector states the same few kinds of evidence; Evidence is frozen
def _evidence(text: str) -> tuple[Evidence, ...]:
    return tuple(Evidence(e[0], e[1]) for e in orjson.loads(text))


def _row_to_ci(row: sqlite3.Row | tuple[Any, ...]) -> CI:
    """A CI from a row of ``_CI_COLUMNS`` (column 2, ci_class, is derived from the type).

    Empty objects and lists, most of the JSON columns, skip the parser.
    """
    loads = orjson.loads
    return CI(
        row[0], row[1], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10], row[11], row[12],
        loads(row[13]) if row[13] != "{}" else {},
        loads(row[14]) if row[14] != "{}" else {},
        _strings(row[15]) if row[15] != "[]" else (),
        _strings(row[16]) if row[16] != "[]" else (),
        dict(_names(row[17])) if row[17] != "{}" else {},
        _parse(row[18]), _parse(row[19]), _parse(row[20]),
    )  # fmt: skip


def _decoded_or_row(row: tuple[Any, ...]) -> CI | tuple[Any, ...]:
    """A CI the graph copy keeps, decoded once for every reader; a row that does not decode
    stays a row, so that the error meets whoever reads that CI, as without a copy."""
    try:
        return _row_to_ci(row)
    except (ValueError, TypeError):
        return row


def _ci_params(ci: CI) -> tuple[Any, ...]:
    return (
        ci.id,
        ci.type,
        vocabulary().class_of(ci.type),
        ci.name,
        ci.provider,
        ci.scope,
        ci.region,
        ci.environment,
        ci.owner,
        ci.cost_centre,
        ci.business_unit,
        ci.criticality,
        ci.lifecycle_state,
        _dumps(ci.tags),
        _dumps(ci.attributes),
        _dumps(list(ci.aliases)),
        _dumps(list(ci.sources)),
        _dumps(ci.provenance),
        _time(ci.first_seen),
        _time(ci.last_seen),
        _time(ci.stale_since),
    )


def _row_to_rel(row: tuple[Any, ...]) -> Relationship:
    # row: from_id, to_id, src, type, dst, lifecycle, review, source, scope, evidence, confidence,
    #      inferred, first_seen, last_seen, stale_since
    return Relationship(
        from_id=row[0],
        type=row[3],
        to_id=row[1],
        lifecycle_state=row[5],
        review=row[6],
        source=row[7],
        scope=row[8],
        evidence=_evidence(row[9]),
        confidence=row[10],
        inferred=bool(row[11]),
        first_seen=_parse(row[12]),
        last_seen=_parse(row[13]),
        stale_since=_parse(row[14]),
    )


def _row_to_change(row: tuple[Any, ...]) -> ChangeRecord:
    return ChangeRecord(
        seq=row[0],
        at=datetime.fromisoformat(row[1]),
        kind=row[2],
        ci_id=row[3],
        sync_id=row[4],
        actor=row[5],
        scope=row[6],
        field=row[7],
        before=orjson.loads(row[8]) if row[8] is not None else None,
        after=orjson.loads(row[9]) if row[9] is not None else None,
        rel_type=row[10],
        to_id=row[11],
    )


Row = tuple[Any, ...]
Key = TypeVar("Key")
Item = TypeVar("Item", CI, Relationship)


def _fresh_ci(ci: CI) -> CI:
    """A copy of a kept CI sharing nothing a caller could change: its maps are copied, nested
    attribute values too (every other field is immutable)."""
    attributes = ci.attributes
    for value in attributes.values():
        if value.__class__ is dict or value.__class__ is list:
            attributes = {key: _copy_json(value) for key, value in attributes.items()}
            break
    else:
        attributes = attributes.copy()
    return CI(
        ci.id, ci.type, ci.name, ci.provider, ci.scope, ci.region, ci.environment, ci.owner, ci.cost_centre,
        ci.business_unit, ci.criticality, ci.lifecycle_state, ci.tags.copy(), attributes, ci.aliases, ci.sources,
        ci.provenance.copy(), ci.first_seen, ci.last_seen, ci.stale_since,
    )  # fmt: skip


def _copy_json(value: Any) -> Any:
    """A copy of a decoded JSON value: its objects and arrays new, its scalars (immutable) shared.
    (``copy.deepcopy`` does the same for any object, at several times the cost.)"""
    if value.__class__ is dict:
        return {key: _copy_json(item) for key, item in value.items()}
    if value.__class__ is list:
        return [_copy_json(item) for item in value]
    return value


def _fresh_rel(rel: Relationship) -> Relationship:
    """A copy of a kept relationship (its fields are all immutable: a new object is enough)."""
    return Relationship(
        rel.from_id, rel.type, rel.to_id, rel.source, rel.scope, rel.evidence, rel.confidence, rel.inferred,
        rel.review, rel.lifecycle_state, rel.first_seen, rel.last_seen, rel.stale_since,
    )  # fmt: skip


class _KeptRows:
    """What was read since one commit (``generation``): CIs by id, relationships by (src, type, dst).

    Each is kept as its row, then decoded once it is read a second time (``_read_through``);
    callers get copies of what is kept decoded (``_fresh_ci``, ``_fresh_rel``), so no caller
    shares an object another may change, except callers that say they only read (``shared``).
    The CIs start with those the graph copy of the same generation decoded (``KEPT_TYPES``).
    """

    __slots__ = ("cis", "generation", "rels")

    def __init__(self, generation: int, copied: dict[str, CI | Row]) -> None:
        self.generation = generation
        self.cis: dict[str, CI | Row] = dict(copied)
        self.rels: dict[tuple[int, str, int], Relationship | Row] = {}


def _read_through(
    kept: dict[Key, Item | Row] | None,
    keys: list[Key],
    read: Callable[[list[Key]], Iterator[tuple[Key, Row]]],
    decode: Callable[[Row], Item],
    fresh: Callable[[Item], Item],
    shared: bool = False,
) -> dict[Key, Item]:
    """The items of ``keys``: those ``kept``, then ``read(the others)``, whose rows are kept
    too (up to a bound). A row is decoded for its first caller; read again, it is kept
    decoded, and later callers get copies (cheaper than decoding). A ``shared`` caller (one
    that never changes what it gets) is handed what is kept decoded itself, and what it
    decodes is kept decoded at once."""
    if kept is None:
        return {key: decode(row) for key, row in read(keys)}
    found_kept = list(map(kept.get, keys))
    # the missing rows are read first: a read that cannot be made now (``memory_only``)
    # fails before anything is decoded
    missing = [key for key, found in zip(keys, found_kept, strict=True) if found is None]
    rows = list(read(missing)) if missing else []
    if shared and not missing and tuple not in set(map(type, found_kept)):
        return dict(zip(keys, found_kept, strict=True))  # type: ignore[arg-type]  # all kept decoded (no rows)
    items: dict[Key, Item] = {}
    for key, found in zip(keys, found_kept, strict=True):
        if found is None:
            continue
        if isinstance(found, tuple):  # read once before: kept decoded from now on
            found = kept[key] = decode(found)
        items[key] = found if shared else fresh(found)
    for key, row in rows:
        item = items[key] = decode(row)
        if len(kept) < ROW_CACHE_SIZE:
            kept[key] = item if shared else row
    return items


class _ThreadState(threading.local):
    """What each thread has of a store, set up the first time the thread touches it: its
    connection (opened when first needed), its transaction depth and, inside a write
    transaction, the node ids it looked up."""

    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.depth = 0
        self.memory_only = False  # inside ``memory_only()``: no connection may be used
        self.generation: int | None = None  # inside ``memory_only()``: the generation read once
        self.nid_cache: dict[str, int] = {}


class SqliteStore:
    """The embedded default store. ``path`` is created if missing."""

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL", graph_cache: GraphCache = "off"
    ) -> None:
        """``graph_cache``: whether walks use a copy of the graph in memory (``GraphCopy``),
        which pays off in long-lived processes. The copy is used only while nothing has
        been committed since it was read. ``background``: when it is missing or outdated,
        walks query the file while a new copy is read in a background thread;
        ``blocking``: the walk reads the new copy first; ``off``: always query the file.
        With a copy, CIs and relationships read by id or key (``get_cis``, paths) are
        also kept, decoded, until the next commit (up to ``ROW_CACHE_SIZE``; callers get
        copies), starting from the CIs of ``KEPT_TYPES`` the copy decoded."""
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self._synchronous = synchronous
        self._local = _ThreadState()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._watch: sqlite3.Connection | None = None  # never writes: sees every other connection's commits
        if graph_cache not in GRAPH_CACHE_MODES:
            raise ValidationError(f"graph_cache must be one of {', '.join(GRAPH_CACHE_MODES)}, not {graph_cache!r}")
        self._graph_cache = graph_cache
        self._copy: GraphCopy | None = None
        self._copier: threading.Thread | None = None
        self._stop_copy = threading.Event()
        self._rows: _KeptRows | None = None
        self._copy_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._conn()
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the CMDB database {self.path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot create the CMDB database {self.path}: {exc}") from exc
        if version is None or version[0] != SCHEMA_VERSION:
            found = version[0] if version else "none"
            raise StoreError(f"{self.path} has schema version {found}, this cmdb needs {SCHEMA_VERSION}")

    # --- connections --------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._local.memory_only:
            raise NotInMemory(f"this read of {self.path} needs the file")
        conn = self._local.conn
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA cache_size = -131072")  # 128 MiB
            conn.execute("PRAGMA mmap_size = 268435456")  # 256 MiB: mapped pages count in RSS
            self._ensure_schema(conn)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @staticmethod
    def _ensure_schema(conn: sqlite3.Connection) -> None:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'documents'").fetchone():
                conn.executescript(_DOCUMENTS_SCHEMA)  # a file made before documents existed
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'changes_to'").fetchone():
                conn.execute("CREATE INDEX IF NOT EXISTS changes_to ON changes(to_id)")  # a file made before it existed
            return
        # One script in one transaction; IF NOT EXISTS makes a concurrent creator harmless.
        conn.executescript(
            "BEGIN IMMEDIATE;"
            + _SCHEMA
            + f"INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');"
            + "COMMIT;"
        )

    def close(self) -> None:
        self._stop_copy.set()
        copier = self._copier
        if copier is not None:
            copier.join()
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
            if self._watch is not None:
                self._watch.close()
                self._watch = None
            self._copy = self._copier = self._rows = None
        self._stop_copy.clear()
        self._local = _ThreadState()

    def generation(self) -> int:
        """SQLite's ``data_version`` as seen by a connection that never writes.

        It changes whenever any other connection commits, in this process or another.
        Also read inside ``memory_only()``: the version is in WAL's shared memory, not the file.
        There, it is read once: the block's reads are one read, of one generation.
        """
        state = self._local
        if state.memory_only and state.generation is not None:
            return state.generation
        with self._lock:
            if self._watch is None:
                self._watch = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            version: int = self._watch.execute("PRAGMA data_version").fetchone()[0]
        if state.memory_only:
            state.generation = version
        return version

    # --- the in-memory copy of the graph ----------------------------------------
    def warm_graph_cache(self) -> None:
        """Read the graph into memory now, unless the copy is current (walks use it until the next commit)."""
        with self._copy_lock:  # one reader at a time; the others then find the copy current
            if self._copy is not None and self._copy.generation == self.generation():
                return
            copy = self._read_copy()
            if copy is not None:
                self._copy = copy
                self._rows = None  # the next read starts from the rows the copy holds

    def graph_cache_status(self) -> str:
        """``off``, ``current`` (walks run in memory), ``reading`` or ``outdated`` (walks query the file)."""
        if self._graph_cache == "off":
            return "off"
        copy = self._copy
        if copy is not None and copy.generation == self.generation():
            return "current"
        copier = self._copier
        return "reading" if copier is not None and copier.is_alive() else "outdated"

    def _current_copy(self) -> GraphCopy | None:
        """The in-memory graph if it is up to date; otherwise start reading a new one and say None."""
        if self._graph_cache == "off" or self._in_transaction():  # a write transaction sees its own edges
            return None
        copy = self._copy
        if copy is not None and copy.generation == self.generation():
            return copy
        if self._graph_cache == "blocking":
            if self._local.memory_only:
                raise NotInMemory(f"the graph copy of {self.path} is out of date")
            self.warm_graph_cache()
            return self._copy
        with self._lock:
            if self._copier is None or not self._copier.is_alive():
                self._copier = threading.Thread(target=self.warm_graph_cache, name="cmdb-graph-copy", daemon=True)
                self._copier.start()
        return None

    def _read_copy(self) -> GraphCopy | None:
        # The generation is read before the copy's read transaction starts, so the copy is
        # at least that recent; a commit in between only makes it look older than it is.
        generation = self.generation()
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        try:
            kept = (f"SELECT {_CI_COLUMNS} FROM cis WHERE type IN ({_marks(len(KEPT_TYPES))})", KEPT_TYPES)
            return GraphCopy.read(conn, generation, self._stop_copy, kept, _decoded_or_row)
        except Stopped:
            return None
        except (sqlite3.Error, StoreError, MemoryError) as exc:
            log.warning("could not copy the graph of %s into memory; walks query the file: %s", self.path, exc)
            return None
        finally:
            conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path} is busy: {exc}") from exc
        self._local.depth = 1
        self._local.nid_cache = {}
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._local.depth = 0
            self._local.nid_cache = {}

    @contextmanager
    def memory_only(self) -> Iterator[None]:
        # In memory: the graph copy while it is current, and the CIs and relationships kept
        # since the last commit (``_KeptRows``); every read of the file goes through ``_conn``.
        if self._graph_cache == "off":
            raise NotInMemory(f"{self.path} is read without a graph copy: every read queries the file")
        state = self._local
        if state.memory_only:
            yield
            return
        state.memory_only = True
        try:
            yield
        finally:
            state.memory_only = False
            state.generation = None

    def _in_transaction(self) -> bool:
        """Whether this thread is inside ``transaction()``."""
        return self._local.depth > 0

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreError(f"query failed on {self.path}: {exc}") from exc

    def _write_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if not self._in_transaction():
            raise StoreError("writes must happen inside store.transaction()")
        self._conn().executemany(sql, rows)

    # --- CIs ----------------------------------------------------------------
    def get_cis(self, ids: Sequence[str], *, shared: bool = False) -> dict[str, CI]:
        kept = self._kept()

        def read(missing: list[str]) -> Iterator[tuple[str, tuple[Any, ...]]]:
            for chunk in _chunks(missing):
                for row in self._query(f"SELECT {_CI_COLUMNS} FROM cis WHERE id IN ({_marks(len(chunk))})", chunk):
                    yield row[0], row

        unique = list(dict.fromkeys(ids))
        return _read_through(kept.cis if kept else None, unique, read, _row_to_ci, _fresh_ci, shared)

    def _kept(self) -> _KeptRows | None:
        """The rows read since the last commit, when this store keeps them (see ``__init__``)."""
        if self._graph_cache == "off" or self._in_transaction():  # a write transaction sees its own writes
            return None
        generation = self.generation()
        kept = self._rows
        if kept is None or kept.generation != generation:
            copy = self._copy
            kept = self._rows = _KeptRows(generation, copy.rows if copy and copy.generation == generation else {})
        return kept

    def _where(self, f: CIFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []

        for column, values in f.memberships():
            clauses.append(f"{column} IN ({_marks(len(values))})")
            params.extend(values)
        for column, value in f.equalities():
            clauses.append(f"{column} = ?")
            params.append(value)
        if f.tag_key is not None:
            if f.tag_value is not None:
                clauses.append("json_extract(tags, '$.' || json_quote(?)) = ?")
                params.extend([f.tag_key, f.tag_value])
            else:
                clauses.append("json_type(tags, '$.' || json_quote(?)) IS NOT NULL")
                params.append(f.tag_key)
        if f.missing_owner is not None:
            clauses.append("owner = ''" if f.missing_owner else "owner != ''")
        if f.text:
            query = _fts_query(f.text)
            if query:
                clauses.append("nid IN (SELECT rowid FROM ci_fts WHERE ci_fts MATCH ?)")
                params.append(query)
        return (" AND ".join(clauses) or "1"), params

    def list_cis(self, filter: CIFilter, first: int = 100, after: str | None = None) -> Page[CI]:
        first = max(0, min(first, MAX_PAGE))
        where, params = self._where(filter)
        rows = self._query(
            f"SELECT nid, {_CI_COLUMNS} FROM cis WHERE nid > ? AND {where} ORDER BY nid LIMIT ?",
            [_decode_cursor(after), *params, first + 1],
        )
        items = [_row_to_ci(row[1:]) for row in rows[:first]]
        end = _encode_cursor(rows[len(items) - 1][0]) if items else after
        return Page(items, end, len(rows) > first)

    def count_cis(self, filter: CIFilter) -> int:
        where, params = self._where(filter)
        return int(self._query(f"SELECT count(*) FROM cis WHERE {where}", params)[0][0])

    def iter_cis(self, filter: CIFilter | None = None, batch_size: int = 5000) -> Iterator[CI]:
        after: str | None = None
        while True:
            page = self.list_cis(filter or CIFilter(), batch_size, after)
            yield from page.items
            if not page.has_next:
                return
            after = page.end_cursor

    def known_ids(self, ids: Sequence[str]) -> set[str]:
        return set(self._nids(ids))

    def search(self, text: str, limit: int = 20) -> list[CI]:
        query = _fts_query(text)
        if not query:
            return []
        rows = self._query(
            f"SELECT {_CI_COLUMNS} FROM cis JOIN "
            "(SELECT rowid AS hit, rank FROM ci_fts WHERE ci_fts MATCH ? ORDER BY rank LIMIT ?) ON nid = hit "
            "ORDER BY rank",
            [query, min(limit, MAX_PAGE)],
        )
        return [_row_to_ci(row) for row in rows]

    def resolve_aliases(self, aliases: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(list(dict.fromkeys(aliases))):
            rows = self._query(
                f"SELECT a.alias, c.id FROM aliases a JOIN cis c ON c.nid = a.nid "
                f"WHERE a.alias IN ({_marks(len(chunk))})",
                chunk,
            )
            found.update((alias, ci_id) for alias, ci_id in rows)
        return found

    def stats(self) -> Stats:
        def grouped(sql: str) -> dict[str, int]:
            return {key: count for key, count in self._query(sql)}

        return Stats.from_counts(
            by_type=grouped("SELECT type, count(*) FROM cis GROUP BY type"),
            by_provider=grouped("SELECT provider, count(*) FROM cis GROUP BY provider"),
            by_lifecycle=grouped("SELECT lifecycle_state, count(*) FROM cis GROUP BY lifecycle_state"),
            relationships_by_type=grouped(f"SELECT type, count(*) FROM rels r WHERE {_WALKABLE} GROUP BY type"),
        )

    # --- relationships ------------------------------------------------------
    def relationships(
        self,
        ids: Sequence[str],
        direction: Direction = "out",
        types: Sequence[str] | None = None,
        include_inactive: bool = False,
    ) -> list[Relationship]:
        result: list[Relationship] = []
        sides = {"out": ("a",), "in": ("b",), "both": ("a", "b")}[direction]
        for chunk in _chunks(list(dict.fromkeys(ids))):
            for side in sides:
                sql = f"{_REL_SELECT} WHERE {side}.id IN ({_marks(len(chunk))})"
                params: list[Any] = list(chunk)
                if types:
                    sql += f" AND r.type IN ({_marks(len(types))})"
                    params.extend(types)
                if not include_inactive:
                    sql += f" AND {_WALKABLE}"
                result.extend(_row_to_rel(row) for row in self._query(sql, params))
        if direction == "both":  # an edge between two of the ids came back twice
            result = list({rel.key: rel for rel in result}.values())
        return result

    def get_relationships(self, keys: Sequence[RelKey]) -> dict[RelKey, Relationship]:
        wanted = set(keys)
        found: dict[RelKey, Relationship] = {}
        for rel in self.relationships(sorted({k[0] for k in wanted}), "out", include_inactive=True):
            if rel.key in wanted:
                found[rel.key] = rel
        return found

    def _rel_where(self, f: RelFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if f.types is not None:
            clauses.append(f"r.type IN ({_marks(len(f.types))})")
            params.extend(f.types)
        for column in ("source", "scope", "review"):
            value = getattr(f, column)
            if value is not None:
                clauses.append(f"r.{column} = ?")
                params.append(value)
        if f.inferred is not None:
            clauses.append("r.inferred = ?")
            params.append(int(f.inferred))
        if f.lifecycle_states is not None:
            clauses.append(f"r.lifecycle_state IN ({_marks(len(f.lifecycle_states))})")
            params.extend(f.lifecycle_states)
        if f.ci_id is not None:
            clauses.append("(a.id = ? OR b.id = ?)")
            params.extend([f.ci_id, f.ci_id])
        return (" AND ".join(clauses) or "1"), params

    def list_relationships(
        self, filter: RelFilter, first: int = 100, after: str | None = None
    ) -> Page[Relationship]:
        # Cursor over the clustered key (src, type, dst), packed as "src|type|dst".
        first = max(0, min(first, MAX_PAGE))
        where, params = self._rel_where(filter)
        position = ""
        if after:
            try:
                position = base64.urlsafe_b64decode(after.encode()).decode()
                src_text, rel_type, dst_text = position.split("|")
                cursor = (int(src_text), rel_type, int(dst_text))
            except (ValueError, UnicodeDecodeError):
                raise ValidationError(f"not a cursor this store issued: {after!r}") from None
            where += " AND (r.src, r.type, r.dst) > (?, ?, ?)"
            params.extend(cursor)
        rows = self._query(
            f"{_REL_SELECT} WHERE {where} ORDER BY r.src, r.type, r.dst LIMIT ?", [*params, first + 1]
        )
        items = [_row_to_rel(row) for row in rows[:first]]
        end = after
        if items:
            last = rows[len(items) - 1]
            end = base64.urlsafe_b64encode(f"{last[2]}|{last[3]}|{last[4]}".encode()).decode()
        return Page(items, end, len(rows) > first)

    def iter_relationships(self, filter: RelFilter | None = None, batch_size: int = 5000) -> Iterator[Relationship]:
        after: str | None = None
        while True:
            page = self.list_relationships(filter or RelFilter(), batch_size, after)
            yield from page.items
            if not page.has_next:
                return
            after = page.end_cursor

    # --- graph walks --------------------------------------------------------
    def _nids(self, ids: Sequence[str]) -> dict[str, int]:
        """Node ids of the CIs among ``ids``: from the graph copy when it is current.

        Inside a write transaction the answers are kept for the rest of it: CIs are never
        deleted, so a CI's nid cannot change while the transaction lasts (a rollback drops them).
        """
        copy = self._current_copy()
        if copy is not None:
            return copy.find(list(dict.fromkeys(ids)))
        cache: dict[str, int] | None = self._local.nid_cache if self._in_transaction() else None
        found: dict[str, int] = {}
        missing: list[str] = []
        for ci_id in dict.fromkeys(ids):
            nid = cache.get(ci_id) if cache is not None else None
            if nid is None:
                missing.append(ci_id)
            else:
                found[ci_id] = nid
        for chunk in _chunks(missing):
            rows = self._query(f"SELECT id, nid FROM cis WHERE id IN ({_marks(len(chunk))})", chunk)
            found.update(rows)
            if cache is not None:
                cache.update(rows)
        return found

    def _bfs(
        self,
        start: Sequence[int],
        direction: Direction,
        types: Sequence[str] | None,
        max_depth: int,
        limit: int,
        goal: int | None = None,
    ) -> Reached:
        """nid -> (depth, edge that reached it as (src, type, dst)); starts have no edge."""
        reached: Reached = {n: (0, None) for n in start}
        frontier = list(start)
        type_clause = f" AND r.type IN ({_marks(len(types))})" if types else ""
        type_params = list(types or ())
        queries: list[tuple[str, str]] = []
        if direction in ("in", "both"):  # who needs the frontier: edges ending there
            queries.append(("in", f"SELECT r.dst, r.type, r.src FROM rels r WHERE r.dst IN ({{}}){type_clause} AND {_WALKABLE}"))
        if direction in ("out", "both"):
            queries.append(("out", f"SELECT r.src, r.type, r.dst FROM rels r WHERE r.src IN ({{}}){type_clause} AND {_WALKABLE}"))
        found = 0
        conn = self._conn()
        for depth in range(1, max_depth + 1):
            next_frontier: list[int] = []
            for chunk in _chunks(frontier):
                for way, template in queries:
                    sql = template.format(_marks(len(chunk)))
                    for here, rel_type, there in conn.execute(sql, [*chunk, *type_params]):
                        if there in reached:
                            continue
                        edge = (there, rel_type, here) if way == "in" else (here, rel_type, there)
                        reached[there] = (depth, edge)
                        next_frontier.append(there)
                        found += 1
                        if found >= limit or there == goal:
                            return reached
            if not next_frontier:
                break
            next_frontier.sort()  # a sorted IN list walks the index in order
            frontier = next_frontier
        return reached

    def _edges(
        self, triples: Iterable[tuple[int, str, int]], shared: bool = False
    ) -> dict[tuple[int, str, int], Relationship]:
        """The relationships with these exact keys, each looked up by its primary key."""

        def read(wanted: list[tuple[int, str, int]]) -> Iterator[tuple[tuple[int, str, int], tuple[Any, ...]]]:
            for chunk in _chunks(sorted(wanted), CHUNK // 3):
                keys = ",".join("(?, ?, ?)" for _ in chunk)
                rows = self._query(
                    f"WITH k(src, type, dst) AS (VALUES {keys}) "
                    f"SELECT a.id, b.id, {_REL_COLUMNS} FROM k CROSS JOIN rels r ON r.src = k.src AND r.type = k.type "
                    "AND r.dst = k.dst JOIN cis a ON a.nid = r.src JOIN cis b ON b.nid = r.dst",
                    [value for triple in chunk for value in triple],
                )
                for row in rows:
                    yield (row[2], row[3], row[4]), row

        kept = self._kept()
        keys = list(set(triples))
        return _read_through(kept.rels if kept else None, keys, read, _row_to_rel, _fresh_rel, shared)

    def _walk(
        self,
        start: Sequence[int],
        direction: Direction,
        types: Sequence[str] | None,
        max_depth: int,
        limit: int,
        goal: int | None = None,
    ) -> Reached:
        """The breadth-first walk as ``_bfs`` gives it, in memory when the copy is current, else in SQL."""
        copy = self._current_copy()
        if copy is not None:
            return copy.walk(start, direction, types, max_depth, limit, CHUNK, goal).reached()
        return self._bfs(start, direction, types, max_depth, limit, goal)

    def traverse(
        self,
        start_ids: Sequence[str],
        direction: Direction = "in",
        types: Sequence[str] | None = None,
        max_depth: int = 3,
        limit: int = 10_000,
        *,
        shared: bool = False,
    ) -> Traversal:
        edges = functools.partial(self._edges, shared=shared)
        copy = self._current_copy()
        if copy is not None:  # in memory: the walk's columns, ordered by arrays
            starts = copy.find(start_ids)
            walk = copy.walk(sorted(set(starts.values())), direction, types, max_depth, limit, CHUNK)
            nodes, levels, type_codes = copy.nearest_first(walk)
            paths = PathBatch(walk.reached, edges)
            return Traversal(
                None,  # named when first asked: many callers need only some of the ids
                levels.tolist(),
                None,
                paths,
                nodes.tolist(),
                nearest_first=True,
                type_codes=type_codes,
                type_names=copy.type_names,
                label=copy.ids_of,
                found_starts=frozenset(starts),
            )
        starts = self._nids(start_ids)
        reached = self._bfs(sorted(set(starts.values())), direction, types, max_depth, limit)
        found = [nid for nid, (_, edge) in reached.items() if edge is not None]
        ids, ci_types = self._labels(found)
        depths = [reached[nid][0] for nid in found]
        paths = PathBatch(lambda: reached, edges)
        return Traversal(ids, depths, ci_types, paths, found, found_starts=frozenset(starts)).nearest_first()

    def _labels(self, nids: Sequence[int]) -> tuple[list[str], list[str]]:
        """The CI id and the CI type of each node id."""
        found: dict[int, tuple[str, str]] = {}
        for chunk in _chunks(list(nids)):
            rows = self._query(f"SELECT nid, id, type FROM cis WHERE nid IN ({_marks(len(chunk))})", chunk)
            found.update((nid, (ci_id, ci_type)) for nid, ci_id, ci_type in rows)
        return [found[nid][0] for nid in nids], [found[nid][1] for nid in nids]

    def shortest_path(
        self,
        from_id: str,
        to_id: str,
        direction: Direction = "out",
        types: Sequence[str] | None = None,
        max_depth: int = 10,
    ) -> list[Relationship] | None:
        nids = self._nids([from_id, to_id])
        if from_id not in nids or to_id not in nids:
            return None
        if from_id == to_id:
            return []
        goal = nids[to_id]
        reached = self._walk([nids[from_id]], direction, types, max_depth, limit=10_000_000, goal=goal)
        if goal not in reached:
            return None
        steps = walk_back(goal, reached)
        edges = self._edges(steps)
        return [edges[step] for step in steps]

    # --- history ------------------------------------------------------------
    def _change_where(self, f: ChangeFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if f.ci_ids is not None:
            clauses.append(f"(ci_id IN ({_marks(len(f.ci_ids))}) OR to_id IN ({_marks(len(f.ci_ids))}))")
            params.extend(f.ci_ids)
            params.extend(f.ci_ids)
        for column in ("scope", "sync_id"):
            value = getattr(f, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if f.kinds is not None:
            clauses.append(f"kind IN ({_marks(len(f.kinds))})")
            params.extend(f.kinds)
        if f.since is not None:
            clauses.append("at >= ?")
            params.append(_time(f.since))
        if f.until is not None:
            clauses.append("at < ?")
            params.append(_time(f.until))
        return (" AND ".join(clauses) or "1"), params

    def changes(self, filter: ChangeFilter, first: int = 100, after: str | None = None) -> Page[ChangeRecord]:
        first = max(0, min(first, MAX_PAGE))
        where, params = self._change_where(filter)
        rows = self._query(
            f"SELECT seq, at, kind, ci_id, sync_id, actor, scope, field, before, after, rel_type, to_id "
            f"FROM changes WHERE seq > ? AND {where} ORDER BY seq LIMIT ?",
            [_decode_cursor(after), *params, first + 1],
        )
        items = [_row_to_change(row) for row in rows[:first]]
        end = _encode_cursor(items[-1].seq) if items else after
        return Page(items, end, len(rows) > first)

    def iter_changes(self, filter: ChangeFilter, batch_size: int = 5000) -> Iterator[ChangeRecord]:
        after: str | None = None
        while True:
            page = self.changes(filter, batch_size, after)
            yield from page.items
            if not page.has_next:
                return
            after = page.end_cursor

    def sync_runs(self, limit: int = 20, source: str | None = None) -> list[SyncRun]:
        sql = "SELECT sync_id, source, started_at, finished_at, status, scopes, counts, errors, actor FROM sync_runs"
        params: list[Any] = []
        if source is not None:
            sql += " WHERE source = ?"
            params.append(source)
        sql += " ORDER BY started_at DESC LIMIT ?"
        params.append(limit)
        return [
            SyncRun(
                sync_id=row[0],
                source=row[1],
                started_at=datetime.fromisoformat(row[2]),
                finished_at=_parse(row[3]),
                status=row[4],
                scopes=orjson.loads(row[5]),
                counts=orjson.loads(row[6]),
                errors=orjson.loads(row[7]),
                actor=row[8],
            )
            for row in self._query(sql, params)
        ]

    # --- writes -------------------------------------------------------------
    def source_states(self, ids: Sequence[str], source: str) -> dict[str, SourceState]:
        found: dict[str, SourceState] = {}
        for chunk in _chunks(list(dict.fromkeys(ids))):
            rows = self._query(
                # CROSS JOIN keeps cis (by id) as the outer loop; the planner otherwise scans the source's rows
                "SELECT c.id, s.fingerprint, s.last_seen, c.lifecycle_state FROM cis c "
                f"CROSS JOIN ci_sources s ON s.source = ? AND s.nid = c.nid WHERE c.id IN ({_marks(len(chunk))})",
                [source, *chunk],
            )
            for ci_id, fingerprint, last_seen, state in rows:
                found[ci_id] = SourceState(fingerprint, datetime.fromisoformat(last_seen), state)
        return found

    def rel_fingerprints(self, keys: Sequence[RelKey]) -> dict[RelKey, tuple[str, str, str]]:
        nids = self._nids([end for key in keys for end in (key[0], key[2])])
        wanted = {
            (nids[f], t, nids[d]): (f, t, d) for f, t, d in keys if f in nids and d in nids
        }  # compared as integer triples: no join back to the CIs' text ids
        found: dict[RelKey, tuple[str, str, str]] = {}
        for chunk in _chunks(sorted({triple[0] for triple in wanted})):
            rows = self._query(
                "SELECT src, type, dst, fingerprint, lifecycle_state, review FROM rels "
                f"WHERE src IN ({_marks(len(chunk))})",
                chunk,
            )
            for src, rel_type, dst, fingerprint, state, review in rows:
                key = wanted.get((src, rel_type, dst))
                if key is not None:
                    found[key] = (fingerprint, state, review)
        return found

    def put_cis(self, cis: Sequence[CI]) -> None:
        if not cis:
            return
        self._write_many(_CI_UPSERT, (_ci_params(ci) for ci in cis))
        conn = self._conn()
        ids = [ci.id for ci in cis]
        nids = self._nids(ids)
        for chunk in _chunks(list(nids.values())):
            conn.execute(f"DELETE FROM ci_fts WHERE rowid IN ({_marks(len(chunk))})", chunk)
        conn.executemany(
            "INSERT INTO ci_fts (rowid, id, name, tags) VALUES (?, ?, ?, ?)",
            ((nids[ci.id], ci.id, ci.name, _tags_text(ci.tags)) for ci in cis),
        )
        alias_rows = [(alias, nids[ci.id]) for ci in cis for alias in ci.aliases]
        if alias_rows:
            conn.executemany("INSERT OR REPLACE INTO aliases (alias, nid) VALUES (?, ?)", alias_rows)

    def put_source_states(self, source: str, scope: str, states: dict[str, tuple[str, datetime]]) -> None:
        nids = self._nids(list(states))
        self._write_many(
            "INSERT OR REPLACE INTO ci_sources (source, nid, scope, fingerprint, last_seen) VALUES (?, ?, ?, ?, ?)",
            ((source, nids[ci_id], scope, fp, _time(at)) for ci_id, (fp, at) in states.items() if ci_id in nids),
        )

    def touch(self, ids: Sequence[str], source: str, at: datetime) -> None:
        stamp = _time(at)
        nids = sorted(self._nids(ids).values())
        for chunk in _chunks(nids):
            self._write_many(
                f"UPDATE ci_sources SET last_seen = ? WHERE source = ? AND nid IN ({_marks(len(chunk))})",
                [[stamp, source, *chunk]],
            )
            self._write_many(f"UPDATE cis SET last_seen = ? WHERE nid IN ({_marks(len(chunk))})", [[stamp, *chunk]])

    def drop_source(self, ids: Sequence[str], source: str) -> None:
        for chunk in _chunks(list(ids)):
            self._write_many(
                f"DELETE FROM ci_sources WHERE source = ? AND nid IN "
                f"(SELECT nid FROM cis WHERE id IN ({_marks(len(chunk))}))",
                [[source, *chunk]],
            )

    def unseen(self, scope: str, source: str, before: datetime) -> list[str]:
        rows = self._query(
            "SELECT c.id FROM ci_sources s JOIN cis c ON c.nid = s.nid "
            "WHERE s.source = ? AND s.scope = ? AND s.last_seen < ? ORDER BY c.nid",
            [source, scope, _time(before)],
        )
        return [row[0] for row in rows]

    def put_relationships(self, rels: Sequence[Relationship], fingerprints: Sequence[str]) -> None:
        nids = self._nids([end for rel in rels for end in (rel.from_id, rel.to_id)])
        self._write_many(
            _REL_UPSERT,
            (
                (
                    nids[rel.from_id],
                    rel.type,
                    nids[rel.to_id],
                    rel.lifecycle_state,
                    rel.review,
                    rel.source,
                    rel.scope,
                    _dumps([(e.field, e.value) for e in rel.evidence]),
                    rel.confidence,
                    int(rel.inferred),
                    fingerprint,
                    _time(rel.first_seen),
                    _time(rel.last_seen),
                    _time(rel.stale_since),
                )
                for rel, fingerprint in zip(rels, fingerprints, strict=True)
                if rel.from_id in nids and rel.to_id in nids
            ),
        )

    def touch_relationships(self, keys: Sequence[RelKey], at: datetime) -> None:
        stamp = _time(at)
        nids = self._nids([end for key in keys for end in (key[0], key[2])])
        self._write_many(
            "UPDATE rels SET last_seen = ? WHERE src = ? AND type = ? AND dst = ?",
            sorted((stamp, nids[f], t, nids[d]) for f, t, d in keys if f in nids and d in nids),
        )

    def unseen_relationships(self, scope: str, source: str, before: datetime) -> list[Relationship]:
        rows = self._query(
            f"{_REL_SELECT} WHERE r.source = ? AND r.scope = ? AND r.lifecycle_state = 'active' "
            "AND r.last_seen < ?",
            [source, scope, _time(before)],
        )
        return [_row_to_rel(row) for row in rows]

    def stale_before(self, before: datetime, limit: int = 100_000) -> tuple[list[CI], list[Relationship]]:
        rows = self._query(
            f"SELECT {_CI_COLUMNS} FROM cis WHERE lifecycle_state = 'stale' AND stale_since < ? LIMIT ?",
            [_time(before), limit],
        )
        rel_rows = self._query(
            f"{_REL_SELECT} WHERE r.lifecycle_state = 'stale' AND r.stale_since < ? LIMIT ?",
            [_time(before), limit],
        )
        return [_row_to_ci(row) for row in rows], [_row_to_rel(row) for row in rel_rows]

    def append_changes(self, changes: Sequence[ChangeRecord]) -> None:
        self._write_many(
            "INSERT INTO changes (at, kind, ci_id, sync_id, actor, scope, field, before, after, rel_type, to_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    _time(c.at),
                    c.kind,
                    c.ci_id,
                    c.sync_id,
                    c.actor,
                    c.scope,
                    c.field,
                    None if c.before is None else _dumps(c.before),
                    None if c.after is None else _dumps(c.after),
                    c.rel_type,
                    c.to_id,
                )
                for c in changes
            ),
        )

    def save_sync_run(self, run: SyncRun) -> None:
        self._write_many(
            "INSERT OR REPLACE INTO sync_runs (sync_id, source, started_at, finished_at, status, scopes, counts, "
            "errors, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run.sync_id,
                    run.source,
                    _time(run.started_at),
                    _time(run.finished_at),
                    run.status,
                    _dumps(run.scopes),
                    _dumps(run.counts),
                    _dumps(run.errors),
                    run.actor,
                )
            ],
        )

    # --- documents ----------------------------------------------------------
    def put_document(self, kind: str, key: str, body: dict[str, Any]) -> None:
        self._write_many(
            "INSERT OR REPLACE INTO documents (kind, key, body) VALUES (?, ?, ?)", [(kind, key, _dumps(body))]
        )

    def get_document(self, kind: str, key: str) -> dict[str, Any] | None:
        rows = self._query("SELECT body FROM documents WHERE kind = ? AND key = ?", (kind, key))
        if not rows:
            return None
        body: dict[str, Any] = orjson.loads(rows[0][0])
        return body

    def list_documents(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        rows = self._query("SELECT key, body FROM documents WHERE kind = ? ORDER BY key", (kind,))
        return [(row[0], orjson.loads(row[1])) for row in rows]
