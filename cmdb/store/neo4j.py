"""The Neo4j store: the CMDB graph in Neo4j (or any Bolt server that speaks Neo4j 5 Cypher).

``bolt://`` reaches one server, ``neo4j://`` a cluster or Aura. Everything is
written inside ``store.transaction()``: one explicit Bolt transaction held by
the store for the calling thread, so a sync run lands whole or not at all and
its reads see its own writes. Reads outside a transaction are managed
transactions (``session.execute_read``), which the driver retries on transient
errors.

The graph::

    (:CI {id})-[:DEPENDS_ON|RUNS_ON|... {key, lifecycle_state, review, ...}]->(:CI)
    (:Alias {alias, ci_id})              another name of the CI ``ci_id``
    (:Observation {key, source, ci_id, scope, fingerprint, last_seen})
                                         what one source last reported of one CI
    (:Change {seq, at, kind, ci_id, ...}) (:SyncRun {sync_id, ...}) (:Counter {name, value})
    (:Document {key: kind \\x1f name, kind, name, body})

Relationships are real Neo4j relationships, typed by their CMDB type, so that a
person can write ``MATCH (a)-[:DEPENDS_ON]->(b)`` and the server expands by
type natively. Cypher cannot take a relationship type as a parameter, so the
type goes into the query text, but only after ``_rel_types`` has checked it
against the vocabulary (``cmdb.vocabulary``) and the identifier pattern: no
text from outside ever reaches a query unchecked; every value is a parameter.
Each relationship carries ``key`` = ``from \\x1f type \\x1f to``: a uniqueness
constraint per type backs its MERGE, and it orders relationship listings.

Aliases and observations point at their CI by id, not by an edge: a CI's id
never changes and a CI is never deleted, so the property is as safe as an edge
and saves a hop on every lookup.

Only Cypher that both Neo4j 5 and ArcadeDB's Bolt server accept is used: no
APOC, no ``CALL {} IN TRANSACTIONS``, no ``SHORTEST k``. Full-text search uses a
full-text index when the server can create one and a ``CONTAINS`` scan over a
normalised text property otherwise (ArcadeDB); both match the same thing:
every search term is the prefix of a word of the id, name or tags.

Walks are breadth-first, one query per level over the whole frontier (as in
the SQLite store): the depth and result bounds hold exactly, the path to each
hit comes for free, and no variable-length pattern can blow up on a hub.
Times are stored as fixed-width UTC ISO strings, which compare as times do on
every server (and as the SQLite store's do). The explicit transaction of
``transaction()`` is not retried by the driver: a transient failure there fails
the run, which leaves the last committed state, and the caller may run it again.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, LiteralString, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

import neo4j
import orjson
from neo4j import exceptions as neo4j_errors

from cmdb.errors import StoreError, ValidationError
from cmdb.model import CI, ChangeRecord, Direction, Evidence, Relationship, RelKey, SyncRun
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
    Traversal,
    walk_back,
)
from cmdb.vocabulary import vocabulary

__all__ = ["Neo4jStore"]

log = logging.getLogger(__name__)

CHUNK = 5000  # rows per UNWIND batch
SEP = "\x1f"  # joins the parts of a composite key; sorts below every printable character
_IDENTIFIER = re.compile(r"^[A-Z][A-Z0-9_]*$")
_WALKABLE = "r.lifecycle_state <> 'retired' AND r.review <> 'rejected'"
_FULLTEXT_INDEX = "cmdb_ci_text"

T = TypeVar("T")
Row = dict[str, Any]

# --- schema ---------------------------------------------------------------------
_CONSTRAINTS: tuple[str, ...] = (
    "CREATE CONSTRAINT cmdb_ci_id IF NOT EXISTS FOR (n:CI) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT cmdb_alias IF NOT EXISTS FOR (n:Alias) REQUIRE n.alias IS UNIQUE",
    "CREATE CONSTRAINT cmdb_observation IF NOT EXISTS FOR (n:Observation) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT cmdb_change_seq IF NOT EXISTS FOR (n:Change) REQUIRE n.seq IS UNIQUE",
    "CREATE CONSTRAINT cmdb_sync_run IF NOT EXISTS FOR (n:SyncRun) REQUIRE n.sync_id IS UNIQUE",
    "CREATE CONSTRAINT cmdb_counter IF NOT EXISTS FOR (n:Counter) REQUIRE n.name IS UNIQUE",
    "CREATE CONSTRAINT cmdb_document IF NOT EXISTS FOR (n:Document) REQUIRE n.key IS UNIQUE",
)
_INDEXES: tuple[str, ...] = (
    "CREATE INDEX cmdb_ci_type IF NOT EXISTS FOR (n:CI) ON (n.type)",
    "CREATE INDEX cmdb_ci_lifecycle IF NOT EXISTS FOR (n:CI) ON (n.lifecycle_state)",
    "CREATE INDEX cmdb_observation_scope IF NOT EXISTS FOR (n:Observation) ON (n.source, n.scope)",
    "CREATE INDEX cmdb_change_ci IF NOT EXISTS FOR (n:Change) ON (n.ci_id)",
    "CREATE INDEX cmdb_change_at IF NOT EXISTS FOR (n:Change) ON (n.at)",
    "CREATE INDEX cmdb_sync_run_source IF NOT EXISTS FOR (n:SyncRun) ON (n.source)",
    "CREATE INDEX cmdb_document_kind IF NOT EXISTS FOR (n:Document) ON (n.kind)",
)
_REL_CONSTRAINT = "CREATE CONSTRAINT cmdb_rel_{lower} IF NOT EXISTS FOR ()-[r:{type}]-() REQUIRE r.key IS UNIQUE"
_CREATE_FULLTEXT = (
    f"CREATE FULLTEXT INDEX {_FULLTEXT_INDEX} IF NOT EXISTS FOR (n:CI) ON EACH [n.search_text] "
    "OPTIONS {indexConfig: {`fulltext.analyzer`: 'whitespace'}}"
)
_AWAIT_FULLTEXT = f"CALL db.awaitIndex('{_FULLTEXT_INDEX}', 300)"

# --- CIs ------------------------------------------------------------------------
_CI_PUT = "UNWIND $rows AS row MERGE (n:CI {id: row.id}) SET n = row"
_CI_GET = "UNWIND $ids AS id MATCH (n:CI {id: id}) RETURN properties(n) AS p"
_CI_KNOWN = "UNWIND $ids AS id MATCH (n:CI {id: id}) RETURN n.id AS id"
# Listings order and cut before they project: only one page's properties are read.
_CI_LIST = (
    "MATCH (n:CI) WHERE n.id > $after AND {where} WITH n ORDER BY n.id LIMIT $limit RETURN properties(n) AS p"
)
_CI_COUNT = "MATCH (n:CI) WHERE {where} RETURN count(n) AS c"
_CI_SEARCH_FULLTEXT = (
    f"CALL db.index.fulltext.queryNodes('{_FULLTEXT_INDEX}', $query) YIELD node, score "
    "RETURN properties(node) AS p ORDER BY score DESC, size(node.search_text), node.id LIMIT $limit"
)
_CI_SEARCH_SCAN = (
    "MATCH (n:CI) WHERE {where} "
    "RETURN properties(n) AS p ORDER BY "
    "CASE WHEN n.id = $text OR toLower(n.name) = $lower THEN 0 "
    "WHEN toLower(n.name) STARTS WITH $lower THEN 1 ELSE 2 END, size(n.search_text), n.id LIMIT $limit"
)
_ALIAS_PUT = "UNWIND $rows AS row MERGE (a:Alias {alias: row.alias}) SET a.ci_id = row.ci_id"
_ALIAS_GET = "UNWIND $aliases AS alias MATCH (a:Alias {alias: alias}) RETURN a.alias AS alias, a.ci_id AS ci_id"
_STATS_CIS = "MATCH (n:CI) RETURN n.type AS type, n.provider AS provider, n.lifecycle_state AS state, count(*) AS c"
_STATS_RELS = "MATCH (:CI)-[r{types}]->(:CI) WHERE " + _WALKABLE + " RETURN type(r) AS type, count(*) AS c"

# --- relationships ----------------------------------------------------------------
_REL_RETURN = "RETURN a.id AS from_id, type(r) AS type, b.id AS to_id, properties(r) AS p"
_REL_PUT = (
    "UNWIND $rows AS row MATCH (a:CI {id: row.from_id}) MATCH (b:CI {id: row.to_id}) "
    "MERGE (a)-[r:{type} {key: row.key}]->(b) SET r += row.props"
)
_REL_TOUCH = (
    "UNWIND $rows AS row MATCH (a:CI {id: row.from_id})-[r:{type}]->(b:CI {id: row.to_id}) SET r.last_seen = $at"
)
_REL_OUT = "UNWIND $ids AS id MATCH (a:CI {id: id})-[r{types}]->(b:CI) WHERE {where} " + _REL_RETURN
_REL_IN = "UNWIND $ids AS id MATCH (b:CI {id: id})<-[r{types}]-(a:CI) WHERE {where} " + _REL_RETURN
_REL_LIST = (
    "MATCH (a:CI)-[r{types}]->(b:CI) WHERE r.key > $after AND {where} "
    "WITH a, r, b ORDER BY r.key LIMIT $limit " + _REL_RETURN
)
_REL_UNSEEN = (
    "MATCH (a:CI)-[r{types}]->(b:CI) WHERE r.source = $source AND r.scope = $scope "
    "AND r.lifecycle_state = 'active' AND r.last_seen < $before " + _REL_RETURN + " ORDER BY r.key"
)
_REL_STALE = (
    "MATCH (a:CI)-[r{types}]->(b:CI) WHERE r.lifecycle_state = 'stale' AND r.stale_since < $before "
    + _REL_RETURN
    + " ORDER BY r.key LIMIT $limit"
)
_CI_STALE = (
    "MATCH (n:CI) WHERE n.lifecycle_state = 'stale' AND n.stale_since < $before "
    "RETURN properties(n) AS p ORDER BY n.id LIMIT $limit"
)
# One query per BFS level over the whole frontier; ``here`` is on the frontier.
_STEP_RETURN = _REL_RETURN + ", a.type AS from_ci_type, b.type AS to_ci_type"
_STEP_IN = (
    "UNWIND $frontier AS fid MATCH (b:CI {id: fid})<-[r{types}]-(a:CI) WHERE " + _WALKABLE + " " + _STEP_RETURN
)
_STEP_OUT = (
    "UNWIND $frontier AS fid MATCH (a:CI {id: fid})-[r{types}]->(b:CI) WHERE " + _WALKABLE + " " + _STEP_RETURN
)

# --- source observations -------------------------------------------------------------
_OBS_PUT = (
    "UNWIND $rows AS row MATCH (n:CI {id: row.ci_id}) MERGE (o:Observation {key: row.key}) "
    "SET o.source = $source, o.ci_id = row.ci_id, o.scope = $scope, o.fingerprint = row.fingerprint, "
    "o.last_seen = row.last_seen"
)
_OBS_GET = (
    "UNWIND $keys AS key MATCH (o:Observation {key: key}) MATCH (n:CI {id: o.ci_id}) "
    "RETURN n.id AS id, o.fingerprint AS fingerprint, o.last_seen AS last_seen, n.lifecycle_state AS state"
)
_OBS_TOUCH = "UNWIND $keys AS key MATCH (o:Observation {key: key}) SET o.last_seen = $at"
_CI_TOUCH = "UNWIND $ids AS id MATCH (n:CI {id: id}) SET n.last_seen = $at"
_OBS_DROP = "UNWIND $keys AS key MATCH (o:Observation {key: key}) DELETE o"
_OBS_UNSEEN = (
    "MATCH (o:Observation) WHERE o.source = $source AND o.scope = $scope AND o.last_seen < $before "
    "RETURN o.ci_id AS id ORDER BY o.ci_id"
)

# --- history ------------------------------------------------------------------------
# ``seq`` comes from one counter node: setting it write-locks the node, so
# concurrent writers take consecutive, unique ranges.
_CHANGE_PUT = (
    "MERGE (c:Counter {name: 'changes'}) SET c.value = coalesce(c.value, 0) + size($rows) "
    "WITH c.value - size($rows) AS base UNWIND range(0, size($rows) - 1) AS i "
    "WITH base + i + 1 AS seq, $rows[i] AS row CREATE (x:Change) SET x = row, x.seq = seq"
)
_CHANGE_LIST = (
    "MATCH (x:Change) WHERE x.seq > $after AND {where} WITH x ORDER BY x.seq LIMIT $limit RETURN properties(x) AS p"
)
_RUN_PUT = "MERGE (s:SyncRun {sync_id: $run.sync_id}) SET s = $run"
_RUN_LIST = "MATCH (s:SyncRun) WHERE {where} RETURN properties(s) AS p ORDER BY s.started_at DESC LIMIT $limit"


# --- documents --------------------------------------------------------------------
_DOC_PUT = "MERGE (d:Document {key: $key}) SET d.kind = $kind, d.name = $name, d.body = $body"
_DOC_GET = "MATCH (d:Document {key: $key}) RETURN d.body AS body"
_DOC_LIST = "MATCH (d:Document) WHERE d.kind = $kind RETURN d.name AS name, d.body AS body ORDER BY d.name"

_CLEAR = (
    "MATCH (n) WHERE n:CI OR n:Alias OR n:Observation OR n:Change OR n:SyncRun OR n:Counter OR n:Document "
    "DETACH DELETE n"
)


def _cypher(text: str) -> LiteralString:
    """Query text for the driver. Only this module's constants, filled with checked names, come here.

    (mypy treats ``LiteralString`` as ``str``; the annotation documents the promise.)
    """
    return text


def _fill(template: str, **parts: str) -> str:
    """Put checked parts (a WHERE of parameters, a checked type alternation) into query text.

    Only ``{name}`` for the given names is replaced, so map literals in the
    template stay as they are.
    """
    for name, text in parts.items():
        template = template.replace("{" + name + "}", text)
    return template


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _time(value: datetime | None) -> str | None:
    """A fixed-width UTC ISO string: sorts as time does, in Cypher as in Python."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _key(from_id: str, rel_type: str, to_id: str) -> str:
    return f"{from_id}{SEP}{rel_type}{SEP}{to_id}"


def _encode_cursor(kind: str, value: str | int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


def _decode_cursor(cursor: str | None, kind: str) -> str | None:
    if not cursor:
        return None
    try:
        found, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if found != kind:
            raise ValueError(found)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(f"not a cursor this store issued: {cursor!r}") from None
    return value


def _words(text: str) -> list[str]:
    """Lower-case runs of letters and digits: how search text is split, on both sides."""
    return "".join(c if c.isalnum() else " " for c in text.lower()).split()


def _search_text(ci: CI) -> str:
    return " ".join(_words(" ".join([ci.id, ci.name, *(f"{k} {v}" for k, v in ci.tags.items())])))


def _rel_types(types: Sequence[str] | None) -> str:
    """A checked relationship-type alternation for a pattern, e.g. ``:DEPENDS_ON|RUNS_ON``.

    Relationship types cannot be Cypher parameters; each name is checked against
    the vocabulary (and an identifier pattern) before it enters query text.
    No types means every type in the vocabulary.
    """
    known = vocabulary().relationship_types
    names = sorted(set(types)) if types else sorted(known)
    for name in names:
        vocabulary().relationship_type(name)  # raises ValidationError for an unknown type
        if not _IDENTIFIER.match(name):
            raise ValidationError(f"relationship type {name!r} is not a plain identifier")
    return ":" + "|".join(names)


def _ci_row(ci: CI) -> Row:
    tag_items = sorted(ci.tags.items())
    return {
        "id": ci.id,
        "type": ci.type,
        "ci_class": vocabulary().class_of(ci.type),
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
        "tags": _dumps(ci.tags),
        "tag_keys": [k for k, _ in tag_items],
        "tag_pairs": [f"{k}{SEP}{v}" for k, v in tag_items],
        "attributes": _dumps(ci.attributes),
        "aliases": list(ci.aliases),
        "sources": list(ci.sources),
        "provenance": _dumps(ci.provenance),
        "first_seen": _time(ci.first_seen),
        "last_seen": _time(ci.last_seen),
        "stale_since": _time(ci.stale_since),
        "search_text": _search_text(ci),
    }


def _to_ci(p: Row) -> CI:
    return CI(
        id=p["id"],
        type=p["type"],
        name=p.get("name") or "",
        provider=p.get("provider") or "",
        scope=p.get("scope") or "",
        region=p.get("region") or "",
        environment=p.get("environment") or "",
        owner=p.get("owner") or "",
        cost_centre=p.get("cost_centre") or "",
        business_unit=p.get("business_unit") or "",
        criticality=p.get("criticality") or "",
        lifecycle_state=p["lifecycle_state"],
        tags=orjson.loads(p.get("tags") or "{}"),
        attributes=orjson.loads(p.get("attributes") or "{}"),
        aliases=tuple(p.get("aliases") or ()),
        sources=tuple(p.get("sources") or ()),
        provenance=orjson.loads(p.get("provenance") or "{}"),
        first_seen=_parse(p.get("first_seen")),
        last_seen=_parse(p.get("last_seen")),
        stale_since=_parse(p.get("stale_since")),
    )


def _rel_props(rel: Relationship, fingerprint: str) -> Row:
    return {
        "lifecycle_state": rel.lifecycle_state,
        "review": rel.review,
        "source": rel.source,
        "scope": rel.scope,
        "evidence": _dumps([(e.field, e.value) for e in rel.evidence]),
        "confidence": float(rel.confidence),
        "inferred": bool(rel.inferred),
        "fingerprint": fingerprint,
        "first_seen": _time(rel.first_seen),
        "last_seen": _time(rel.last_seen),
        "stale_since": _time(rel.stale_since),
    }


def _to_rel(row: Row) -> Relationship:
    p: Row = row["p"]
    return Relationship(
        from_id=row["from_id"],
        type=row["type"],
        to_id=row["to_id"],
        source=p.get("source") or "",
        scope=p.get("scope") or "",
        evidence=tuple(Evidence(e[0], e[1]) for e in orjson.loads(p.get("evidence") or "[]")),
        confidence=float(p.get("confidence", 1.0)),
        inferred=bool(p.get("inferred", False)),
        review=p.get("review") or "",
        lifecycle_state=p["lifecycle_state"],
        first_seen=_parse(p.get("first_seen")),
        last_seen=_parse(p.get("last_seen")),
        stale_since=_parse(p.get("stale_since")),
    )


def _change_row(c: ChangeRecord) -> Row:
    return {
        "at": _time(c.at),
        "kind": c.kind,
        "ci_id": c.ci_id,
        "sync_id": c.sync_id,
        "actor": c.actor,
        "scope": c.scope,
        "field": c.field,
        "before": None if c.before is None else _dumps(c.before),
        "after": None if c.after is None else _dumps(c.after),
        "rel_type": c.rel_type,
        "to_id": c.to_id,
    }


def _to_change(p: Row) -> ChangeRecord:
    return ChangeRecord(
        seq=int(p["seq"]),
        at=datetime.fromisoformat(p["at"]),
        kind=p["kind"],
        ci_id=p["ci_id"],
        sync_id=p.get("sync_id") or "",
        actor=p.get("actor") or "",
        scope=p.get("scope") or "",
        field=p.get("field") or "",
        before=orjson.loads(p["before"]) if p.get("before") is not None else None,
        after=orjson.loads(p["after"]) if p.get("after") is not None else None,
        rel_type=p.get("rel_type") or "",
        to_id=p.get("to_id") or "",
    )


def _public_uri(uri: str) -> str:
    """The URI without user or password, to show a person."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


_SCHEMA_READY: dict[tuple[str, str], bool] = {}  # (uri, database) -> has a full-text index
_SCHEMA_LOCK = threading.Lock()


class _Local(threading.local):
    session: neo4j.Session | None = None
    tx: neo4j.Transaction | None = None
    depth: int = 0


Step = tuple[str, str, str]  # (from_id, type, to_id) as stored


class Neo4jStore:
    """The store in a Neo4j database (``bolt://`` or ``neo4j://``)."""

    def __init__(self, uri: str, *, user: str = "neo4j", password: str = "", database: str = "neo4j") -> None:
        self.uri = uri
        self.user = user
        self.database = database
        self.location = f"{_public_uri(uri)} (database {database})"
        self._local = _Local()
        self.fulltext = False
        # One bookmark manager for every session: in a cluster a read sees what this store committed.
        self._bookmarks = neo4j.GraphDatabase.bookmark_manager()
        try:
            self._driver = neo4j.GraphDatabase.driver(uri, auth=(user, password) if user else None)
        except (neo4j_errors.ConfigurationError, ValueError) as exc:
            raise StoreError(f"not a usable Neo4j URI {self.location}: {exc}") from exc
        try:
            with self._errors("connecting"):
                self._driver.verify_connectivity()
            self._ensure_schema()
        except BaseException:
            self._driver.close()
            raise

    # --- life cycle -------------------------------------------------------------
    def close(self) -> None:
        self._driver.close()

    def generation(self) -> int | None:
        return None  # other writers to the server are invisible without a query per call

    def memory_only(self) -> AbstractContextManager[None]:
        raise NotInMemory(f"every read of {self.location} goes to the server")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn driver errors into StoreError with a message a person can act on."""
        try:
            yield
        except neo4j_errors.AuthError as exc:
            raise StoreError(
                f"Neo4j at {self.location} refused the credentials of user {self.user!r}",
                hint="check CMDB_NEO4J_USER and CMDB_NEO4J_PASSWORD",
            ) from exc
        except neo4j_errors.ServiceUnavailable as exc:
            raise StoreError(
                f"cannot reach Neo4j at {self.location}: {exc}",
                hint="check that the server runs and CMDB_NEO4J_URI names it",
            ) from exc
        except neo4j_errors.Neo4jError as exc:
            if exc.code == "Neo.ClientError.Database.DatabaseNotFound":
                raise StoreError(
                    f"Neo4j at {_public_uri(self.uri)} has no database {self.database!r}",
                    hint="create it, or set CMDB_NEO4J_DATABASE",
                ) from exc
            raise StoreError(f"Neo4j failed while {doing} ({exc.code}): {exc.message}") from exc
        except neo4j_errors.DriverError as exc:
            raise StoreError(f"Neo4j driver failed while {doing} on {self.location}: {exc}") from exc

    def _ensure_schema(self) -> None:
        """Create constraints and indexes (idempotent); once per process and database."""
        target = (self.uri, self.database)
        with _SCHEMA_LOCK:
            if target in _SCHEMA_READY:
                self.fulltext = _SCHEMA_READY[target]
                return
        for statement in (*_CONSTRAINTS, *_INDEXES):
            with self._errors("creating the schema"):
                self._driver.execute_query(_cypher(statement), database_=self.database, bookmark_manager_=self._bookmarks)
        for rel_type in _rel_types(None)[1:].split("|"):
            statement = _fill(_REL_CONSTRAINT, lower=rel_type.lower(), type=rel_type)
            try:
                self._driver.execute_query(_cypher(statement), database_=self.database, bookmark_manager_=self._bookmarks)
            except neo4j_errors.ClientError as exc:
                # A server before Neo4j 5.7 has no relationship uniqueness constraints;
                # the MERGE between two bound CIs still keys on (from, type, to).
                log.warning("%s cannot constrain %s relationships (%s): %s", self.location, rel_type, exc.code, exc.message)
        try:
            for statement in (_CREATE_FULLTEXT, _AWAIT_FULLTEXT):
                self._driver.execute_query(_cypher(statement), database_=self.database, bookmark_manager_=self._bookmarks)
            self.fulltext = True
        except neo4j_errors.Neo4jError as exc:
            log.info("no full-text index on %s, search scans instead: %s", self.location, exc.message)
        with _SCHEMA_LOCK:
            _SCHEMA_READY[target] = self.fulltext

    def clear(self) -> None:
        """Delete every node and relationship this store wrote (tests and demos)."""
        with self.transaction():
            self._write(_CLEAR, {})

    @contextmanager
    def transaction(self) -> Iterator[None]:
        local = self._local
        if local.depth:
            local.depth += 1
            try:
                yield
            finally:
                local.depth -= 1
            return
        with self._errors("starting a transaction"):
            session = self._driver.session(database=self.database, bookmark_manager=self._bookmarks)
            try:
                tx = session.begin_transaction()
            except BaseException:
                session.close()
                raise
        local.session, local.tx, local.depth = session, tx, 1
        try:
            yield
        except BaseException:
            try:
                tx.rollback()
            except (neo4j_errors.Neo4jError, neo4j_errors.DriverError) as exc:
                log.warning("rollback on %s failed (the server drops the transaction): %s", self.location, exc)
            raise
        else:
            with self._errors("committing"):
                tx.commit()
        finally:
            local.session, local.tx, local.depth = None, None, 0
            tx.close()
            session.close()

    def _read(self, query: str, params: Row) -> list[Row]:
        tx = self._local.tx
        with self._errors("reading"):
            if tx is not None:  # inside a transaction: see its writes
                return tx.run(_cypher(query), params).data()
            with self._driver.session(
                database=self.database, default_access_mode=neo4j.READ_ACCESS, bookmark_manager=self._bookmarks
            ) as session:
                return session.execute_read(lambda t: t.run(_cypher(query), params).data())

    def _write(self, query: str, params: Row) -> None:
        tx = self._local.tx
        if tx is None:
            raise StoreError("writes must happen inside store.transaction()")
        with self._errors("writing"):
            tx.run(_cypher(query), params).consume()

    # --- CIs ----------------------------------------------------------------------
    def get_cis(self, ids: Sequence[str], *, shared: bool = False) -> dict[str, CI]:
        found: dict[str, CI] = {}  # every read decodes its own objects: nothing to share
        for chunk in _chunks(list(dict.fromkeys(ids))):
            for row in self._read(_CI_GET, {"ids": list(chunk)}):
                ci = _to_ci(row["p"])
                found[ci.id] = ci
        return found

    @staticmethod
    def _where(f: CIFilter) -> tuple[str, Row]:
        clauses: list[str] = []
        params: Row = {}

        for prop, values in f.memberships():
            clauses.append(f"n.{prop} IN $f_{prop}")
            params[f"f_{prop}"] = list(values)
        for prop, value in f.equalities():
            clauses.append(f"n.{prop} = $f_{prop}")
            params[f"f_{prop}"] = value
        if f.tag_key is not None:
            if f.tag_value is not None:
                clauses.append("$f_tag_pair IN n.tag_pairs")
                params["f_tag_pair"] = f"{f.tag_key}{SEP}{f.tag_value}"
            else:
                clauses.append("$f_tag_key IN n.tag_keys")
                params["f_tag_key"] = f.tag_key
        if f.missing_owner is not None:
            clauses.append("n.owner = ''" if f.missing_owner else "n.owner <> ''")
        if f.text:
            for i, word in enumerate(_words(f.text)):
                # every word is the start of a word of the text: FTS prefix semantics
                clauses.append(f"(' ' + n.search_text) CONTAINS $f_word{i}")
                params[f"f_word{i}"] = " " + word
        return (" AND ".join(clauses) or "true"), params

    def list_cis(self, filter: CIFilter, first: int = 100, after: str | None = None) -> Page[CI]:
        first = max(0, min(first, MAX_PAGE))
        where, params = self._where(filter)
        rows = self._read(
            _fill(_CI_LIST, where=where), {**params, "after": _decode_cursor(after, "i") or "", "limit": first + 1}
        )
        items = [_to_ci(row["p"]) for row in rows[:first]]
        end = _encode_cursor("i", items[-1].id) if items else after
        return Page(items, end, len(rows) > first)

    def count_cis(self, filter: CIFilter) -> int:
        where, params = self._where(filter)
        return int(self._read(_fill(_CI_COUNT, where=where), params)[0]["c"])

    def iter_cis(self, filter: CIFilter | None = None, batch_size: int = 5000) -> Iterator[CI]:
        after: str | None = None
        while True:
            page = self.list_cis(filter or CIFilter(), batch_size, after)
            yield from page.items
            if not page.has_next:
                return
            after = page.end_cursor

    def known_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(ids))):
            found.update(row["id"] for row in self._read(_CI_KNOWN, {"ids": list(chunk)}))
        return found

    def search(self, text: str, limit: int = 20) -> list[CI]:
        words = _words(text)
        if not words:
            return []
        limit = max(0, min(limit, MAX_PAGE))
        if self.fulltext:
            # Lucene: every word must start a word of the text; a whole-word match ranks higher.
            # The words are letters and digits only, so nothing in them is Lucene syntax.
            query = " AND ".join(f"({word}^2 OR {word}*)" for word in words)
            rows = self._read(_CI_SEARCH_FULLTEXT, {"query": query, "limit": limit})
        else:
            where, params = self._where(CIFilter(text=text))
            rows = self._read(
                _fill(_CI_SEARCH_SCAN, where=where),
                {**params, "text": text.strip(), "lower": text.strip().lower(), "limit": limit},
            )
        return [_to_ci(row["p"]) for row in rows]

    def resolve_aliases(self, aliases: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(list(dict.fromkeys(aliases))):
            found.update((row["alias"], row["ci_id"]) for row in self._read(_ALIAS_GET, {"aliases": list(chunk)}))
        return found

    def stats(self) -> Stats:
        by_type: dict[str, int] = {}
        by_provider: dict[str, int] = {}
        by_lifecycle: dict[str, int] = {}
        for row in self._read(_STATS_CIS, {}):
            count = int(row["c"])
            for bucket, key in ((by_type, row["type"]), (by_provider, row["provider"]), (by_lifecycle, row["state"])):
                bucket[key or ""] = bucket.get(key or "", 0) + count
        rel_by_type = {
            row["type"]: int(row["c"]) for row in self._read(_fill(_STATS_RELS, types=_rel_types(None)), {})
        }
        return Stats.from_counts(by_type, by_provider, by_lifecycle, rel_by_type)

    # --- relationships ------------------------------------------------------------
    def relationships(
        self,
        ids: Sequence[str],
        direction: Direction = "out",
        types: Sequence[str] | None = None,
        include_inactive: bool = False,
    ) -> list[Relationship]:
        pattern = _rel_types(types)
        where = "true" if include_inactive else _WALKABLE
        templates = {"out": (_REL_OUT,), "in": (_REL_IN,), "both": (_REL_OUT, _REL_IN)}[direction]
        result: list[Relationship] = []
        for chunk in _chunks(list(dict.fromkeys(ids))):
            for template in templates:
                rows = self._read(_fill(template, types=pattern, where=where), {"ids": list(chunk)})
                result.extend(_to_rel(row) for row in rows)
        if direction == "both":  # an edge between two of the ids came back twice
            result = list({rel.key: rel for rel in result}.values())
        return result

    def get_relationships(self, keys: Sequence[RelKey]) -> dict[RelKey, Relationship]:
        wanted = set(keys)
        if not wanted:
            return {}
        found: dict[RelKey, Relationship] = {}
        types = sorted({k[1] for k in wanted})
        for rel in self.relationships(sorted({k[0] for k in wanted}), "out", types, include_inactive=True):
            if rel.key in wanted:
                found[rel.key] = rel
        return found

    @staticmethod
    def _rel_where(f: RelFilter) -> tuple[str, Row]:
        clauses: list[str] = []
        params: Row = {}
        for prop in ("source", "scope", "review"):
            value = getattr(f, prop)
            if value is not None:
                clauses.append(f"r.{prop} = $f_{prop}")
                params[f"f_{prop}"] = value
        if f.inferred is not None:
            clauses.append("r.inferred = $f_inferred")
            params["f_inferred"] = f.inferred
        if f.lifecycle_states is not None:
            clauses.append("r.lifecycle_state IN $f_lifecycle")
            params["f_lifecycle"] = list(f.lifecycle_states)
        if f.ci_id is not None:
            clauses.append("(a.id = $f_ci_id OR b.id = $f_ci_id)")
            params["f_ci_id"] = f.ci_id
        return (" AND ".join(clauses) or "true"), params

    def list_relationships(
        self, filter: RelFilter, first: int = 100, after: str | None = None
    ) -> Page[Relationship]:
        # Ordered by the key "from \x1f type \x1f to", which is also the cursor.
        first = max(0, min(first, MAX_PAGE))
        if filter.types is not None and not filter.types:
            return Page([], after, False)
        where, params = self._rel_where(filter)
        query = _fill(_REL_LIST, types=_rel_types(filter.types), where=where)
        rows = self._read(query, {**params, "after": _decode_cursor(after, "r") or "", "limit": first + 1})
        items = [_to_rel(row) for row in rows[:first]]
        end = _encode_cursor("r", _key(*items[-1].key)) if items else after
        return Page(items, end, len(rows) > first)

    def iter_relationships(self, filter: RelFilter | None = None, batch_size: int = 5000) -> Iterator[Relationship]:
        after: str | None = None
        while True:
            page = self.list_relationships(filter or RelFilter(), batch_size, after)
            yield from page.items
            if not page.has_next:
                return
            after = page.end_cursor

    # --- graph walks --------------------------------------------------------------
    def _bfs(
        self,
        start: Sequence[str],
        direction: Direction,
        types: Sequence[str] | None,
        max_depth: int,
        limit: int,
        goal: str | None = None,
    ) -> tuple[dict[str, tuple[int, Step | None]], dict[Step, Relationship], dict[str, str]]:
        """id -> (depth, edge that reached it), the edges, and the type of each CI reached.

        One query per level and direction over the frontier.
        """
        reached: dict[str, tuple[int, Step | None]] = {ci_id: (0, None) for ci_id in start}
        edges: dict[Step, Relationship] = {}
        ci_types: dict[str, str] = {}
        pattern = _rel_types(types)
        steps: list[tuple[str, str]] = []
        if direction in ("in", "both"):  # who needs the frontier: edges ending there
            steps.append(("in", _fill(_STEP_IN, types=pattern)))
        if direction in ("out", "both"):
            steps.append(("out", _fill(_STEP_OUT, types=pattern)))
        frontier = sorted(start)
        found = 0
        for depth in range(1, max_depth + 1):
            next_frontier: list[str] = []
            for chunk in _chunks(frontier):
                for way, query in steps:
                    rows = self._read(query, {"frontier": list(chunk)})
                    rows.sort(key=lambda row: (row["from_id"], row["type"], row["to_id"]))
                    for row in rows:
                        there = row["from_id"] if way == "in" else row["to_id"]
                        if there in reached:
                            continue
                        rel = _to_rel(row)
                        reached[there] = (depth, rel.key)
                        edges[rel.key] = rel
                        ci_types[there] = row["from_ci_type"] if way == "in" else row["to_ci_type"]
                        next_frontier.append(there)
                        found += 1
                        if found >= limit or there == goal:
                            return reached, edges, ci_types
            if not next_frontier:
                break
            frontier = sorted(next_frontier)
        return reached, edges, ci_types

    def traverse(
        self,
        start_ids: Sequence[str],
        direction: Direction = "in",
        types: Sequence[str] | None = None,
        max_depth: int = 3,
        limit: int = 10_000,
        *,
        shared: bool = False,  # every walk reads its relationships afresh
    ) -> Traversal:
        start = sorted(self.known_ids(start_ids))
        reached, edges, ci_types = self._bfs(start, direction, types, max_depth, limit)
        return Traversal.of(
            [
                Hit(ci_id, depth, tuple(edges[step] for step in walk_back(ci_id, reached)), ci_type=ci_types[ci_id])
                for ci_id, (depth, edge) in reached.items()
                if edge is not None
            ]
        ).nearest_first()

    def shortest_path(
        self,
        from_id: str,
        to_id: str,
        direction: Direction = "out",
        types: Sequence[str] | None = None,
        max_depth: int = 10,
    ) -> list[Relationship] | None:
        known = self.known_ids([from_id, to_id])
        if from_id not in known or to_id not in known:
            return None
        if from_id == to_id:
            return []
        reached, edges, _ = self._bfs([from_id], direction, types, max_depth, limit=10_000_000, goal=to_id)
        if to_id not in reached:
            return None
        return [edges[step] for step in walk_back(to_id, reached)]

    # --- history ------------------------------------------------------------------
    @staticmethod
    def _change_where(f: ChangeFilter) -> tuple[str, Row]:
        clauses: list[str] = []
        params: Row = {}
        if f.ci_ids is not None:
            clauses.append("(x.ci_id IN $f_ci_ids OR x.to_id IN $f_ci_ids)")
            params["f_ci_ids"] = list(f.ci_ids)
        for prop in ("scope", "sync_id"):
            value = getattr(f, prop)
            if value is not None:
                clauses.append(f"x.{prop} = $f_{prop}")
                params[f"f_{prop}"] = value
        if f.kinds is not None:
            clauses.append("x.kind IN $f_kinds")
            params["f_kinds"] = list(f.kinds)
        if f.since is not None:
            clauses.append("x.at >= $f_since")
            params["f_since"] = _time(f.since)
        if f.until is not None:
            clauses.append("x.at < $f_until")
            params["f_until"] = _time(f.until)
        return (" AND ".join(clauses) or "true"), params

    def changes(self, filter: ChangeFilter, first: int = 100, after: str | None = None) -> Page[ChangeRecord]:
        first = max(0, min(first, MAX_PAGE))
        where, params = self._change_where(filter)
        position = _decode_cursor(after, "n")
        try:
            seq = int(position or 0)
        except ValueError:
            raise ValidationError(f"not a cursor this store issued: {after!r}") from None
        rows = self._read(_fill(_CHANGE_LIST, where=where), {**params, "after": seq, "limit": first + 1})
        items = [_to_change(row["p"]) for row in rows[:first]]
        end = _encode_cursor("n", items[-1].seq) if items else after
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
        where, params = ("s.source = $source", {"source": source}) if source is not None else ("true", {})
        rows = self._read(_fill(_RUN_LIST, where=where), {**params, "limit": max(0, limit)})
        return [
            SyncRun(
                sync_id=p["sync_id"],
                source=p["source"],
                started_at=datetime.fromisoformat(p["started_at"]),
                finished_at=_parse(p.get("finished_at")),
                status=p["status"],
                scopes=orjson.loads(p["scopes"]),
                counts=orjson.loads(p["counts"]),
                errors=orjson.loads(p["errors"]),
                actor=p.get("actor") or "",
            )
            for p in (row["p"] for row in rows)
        ]

    # --- writes -------------------------------------------------------------------
    def source_states(self, ids: Sequence[str], source: str) -> dict[str, SourceState]:
        found: dict[str, SourceState] = {}
        for chunk in _chunks(list(dict.fromkeys(ids))):
            keys = [f"{source}{SEP}{ci_id}" for ci_id in chunk]
            for row in self._read(_OBS_GET, {"keys": keys}):
                found[row["id"]] = SourceState(row["fingerprint"], datetime.fromisoformat(row["last_seen"]), row["state"])
        return found

    def rel_fingerprints(self, keys: Sequence[RelKey]) -> dict[RelKey, tuple[str, str, str]]:
        wanted = set(keys)
        if not wanted:
            return {}
        found: dict[RelKey, tuple[str, str, str]] = {}
        pattern = _rel_types(sorted({k[1] for k in wanted}))
        for chunk in _chunks(sorted({k[0] for k in wanted})):
            for row in self._read(_fill(_REL_OUT, types=pattern, where="true"), {"ids": list(chunk)}):
                key = (row["from_id"], row["type"], row["to_id"])
                if key in wanted:
                    p = row["p"]
                    found[key] = (p.get("fingerprint") or "", p["lifecycle_state"], p.get("review") or "")
        return found

    def put_cis(self, cis: Sequence[CI]) -> None:
        if not cis:
            return
        rows = list({ci.id: _ci_row(ci) for ci in cis}.values())  # the last of one id wins, as in SQLite
        for chunk in _chunks(rows):
            self._write(_CI_PUT, {"rows": list(chunk)})
        aliases = list({alias: {"alias": alias, "ci_id": ci.id} for ci in cis for alias in ci.aliases}.values())
        for chunk in _chunks(aliases):
            self._write(_ALIAS_PUT, {"rows": list(chunk)})

    def put_source_states(self, source: str, scope: str, states: dict[str, tuple[str, datetime]]) -> None:
        rows = [
            {"key": f"{source}{SEP}{ci_id}", "ci_id": ci_id, "fingerprint": fp, "last_seen": _time(at)}
            for ci_id, (fp, at) in states.items()
        ]
        for chunk in _chunks(rows):
            self._write(_OBS_PUT, {"rows": list(chunk), "source": source, "scope": scope})

    def touch(self, ids: Sequence[str], source: str, at: datetime) -> None:
        stamp = _time(at)
        for chunk in _chunks(list(dict.fromkeys(ids))):
            self._write(_OBS_TOUCH, {"keys": [f"{source}{SEP}{ci_id}" for ci_id in chunk], "at": stamp})
            self._write(_CI_TOUCH, {"ids": list(chunk), "at": stamp})

    def drop_source(self, ids: Sequence[str], source: str) -> None:
        for chunk in _chunks(list(dict.fromkeys(ids))):
            self._write(_OBS_DROP, {"keys": [f"{source}{SEP}{ci_id}" for ci_id in chunk]})

    def unseen(self, scope: str, source: str, before: datetime) -> list[str]:
        rows = self._read(_OBS_UNSEEN, {"source": source, "scope": scope, "before": _time(before)})
        return [row["id"] for row in rows]

    def put_relationships(self, rels: Sequence[Relationship], fingerprints: Sequence[str]) -> None:
        by_type: dict[str, list[Row]] = {}
        for rel, fingerprint in zip(rels, fingerprints, strict=True):
            by_type.setdefault(rel.type, []).append(
                {
                    "from_id": rel.from_id,
                    "to_id": rel.to_id,
                    "key": _key(*rel.key),
                    "props": _rel_props(rel, fingerprint),
                }
            )
        if by_type and self._local.tx is None:
            raise StoreError("writes must happen inside store.transaction()")
        for rel_type, rows in sorted(by_type.items()):
            query = _fill(_REL_PUT, type=_rel_types([rel_type])[1:])
            for chunk in _chunks(rows):
                self._write(query, {"rows": list(chunk)})

    def touch_relationships(self, keys: Sequence[RelKey], at: datetime) -> None:
        by_type: dict[str, list[Row]] = {}
        for from_id, rel_type, to_id in keys:
            by_type.setdefault(rel_type, []).append({"from_id": from_id, "to_id": to_id})
        for rel_type, rows in sorted(by_type.items()):
            query = _fill(_REL_TOUCH, type=_rel_types([rel_type])[1:])
            for chunk in _chunks(rows):
                self._write(query, {"rows": list(chunk), "at": _time(at)})

    def unseen_relationships(self, scope: str, source: str, before: datetime) -> list[Relationship]:
        rows = self._read(
            _fill(_REL_UNSEEN, types=_rel_types(None)), {"source": source, "scope": scope, "before": _time(before)}
        )
        return [_to_rel(row) for row in rows]

    def stale_before(self, before: datetime, limit: int = 100_000) -> tuple[list[CI], list[Relationship]]:
        params = {"before": _time(before), "limit": max(0, limit)}
        cis = [_to_ci(row["p"]) for row in self._read(_CI_STALE, params)]
        rels = [_to_rel(row) for row in self._read(_fill(_REL_STALE, types=_rel_types(None)), params)]
        return cis, rels

    def append_changes(self, changes: Sequence[ChangeRecord]) -> None:
        if not changes:
            if self._local.tx is None:
                raise StoreError("writes must happen inside store.transaction()")
            return
        rows = [_change_row(c) for c in changes]
        for chunk in _chunks(rows):
            self._write(_CHANGE_PUT, {"rows": list(chunk)})

    def save_sync_run(self, run: SyncRun) -> None:
        self._write(
            _RUN_PUT,
            {
                "run": {
                    "sync_id": run.sync_id,
                    "source": run.source,
                    "started_at": _time(run.started_at),
                    "finished_at": _time(run.finished_at),
                    "status": run.status,
                    "scopes": _dumps(run.scopes),
                    "counts": _dumps(run.counts),
                    "errors": _dumps(run.errors),
                    "actor": run.actor,
                }
            },
        )

    # --- documents ----------------------------------------------------------------
    def put_document(self, kind: str, key: str, body: dict[str, Any]) -> None:
        self._write(_DOC_PUT, {"key": f"{kind}{SEP}{key}", "kind": kind, "name": key, "body": _dumps(body)})

    def get_document(self, kind: str, key: str) -> dict[str, Any] | None:
        rows = self._read(_DOC_GET, {"key": f"{kind}{SEP}{key}"})
        if not rows:
            return None
        body: dict[str, Any] = orjson.loads(rows[0]["body"])
        return body

    def list_documents(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(row["name"], orjson.loads(row["body"])) for row in self._read(_DOC_LIST, {"kind": kind})]
