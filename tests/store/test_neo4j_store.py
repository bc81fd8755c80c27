"""What is particular to the Neo4j backend: URIs, errors a person can act on, the schema on the server."""

from __future__ import annotations

import neo4j
import pytest

from cmdb.config import Settings
from cmdb.errors import StoreError, ValidationError
from cmdb.store import Store, open_store
from cmdb.store.neo4j import Neo4jStore
from tests.store.helpers import BoltTarget, ci, free_port, open_bolt_store, put, rel

pytestmark = pytest.mark.neo4j


@pytest.fixture
def bolt(bolt_target: BoltTarget) -> Neo4jStore:
    db = open_bolt_store(bolt_target)
    db.clear()
    return db


def test_open_store_routes_bolt_and_neo4j_uris(bolt_target: BoltTarget, bolt: Neo4jStore) -> None:
    put(bolt, [ci("vm-1")])
    bolt.close()
    for scheme in ("bolt", "neo4j"):  # neo4j:// routes, through a one-server "cluster" here
        uri = f"{scheme}://{bolt_target.uri.split('://', 1)[1]}"
        settings = Settings(
            neo4j_uri=uri,
            neo4j_user=bolt_target.user,
            neo4j_password=bolt_target.password,
            neo4j_database=bolt_target.database,
        )
        store = open_store(settings=settings)
        try:
            assert isinstance(store, Neo4jStore) and isinstance(store, Store)
            assert store.known_ids(["vm-1"]) == {"vm-1"}
            assert bolt_target.password not in store.location
        finally:
            store.close()


def test_wrong_credentials_are_a_store_error_that_says_so(bolt_target: BoltTarget) -> None:
    with pytest.raises(StoreError, match="refused the credentials") as caught:
        Neo4jStore(bolt_target.uri, user=bolt_target.user, password="not-the-password", database=bolt_target.database)
    assert "not-the-password" not in str(caught.value)
    assert "CMDB_NEO4J_PASSWORD" in caught.value.hint


def test_an_unreachable_server_is_a_store_error_that_says_so() -> None:
    with pytest.raises(StoreError, match="cannot reach Neo4j at bolt://127.0.0.1"):
        Neo4jStore(f"bolt://127.0.0.1:{free_port()}", user="neo4j", password="secret", database="neo4j")


def test_a_missing_database_is_a_store_error(bolt_target: BoltTarget) -> None:
    with pytest.raises(StoreError, match="no database 'cmdb_no_such_db'"):
        Neo4jStore(bolt_target.uri, user=bolt_target.user, password=bolt_target.password, database="cmdb_no_such_db")


def test_every_merge_key_has_a_uniqueness_constraint(bolt_target: BoltTarget, bolt: Neo4jStore) -> None:
    with neo4j.GraphDatabase.driver(bolt_target.uri, auth=(bolt_target.user, bolt_target.password)) as driver:
        records = driver.execute_query("SHOW CONSTRAINTS", database_=bolt_target.database).records
    unique = {(tuple(r["labelsOrTypes"]), tuple(r["properties"])) for r in records}
    for label, prop in [("CI", "id"), ("Alias", "alias"), ("Observation", "key"), ("Change", "seq"),
                        ("SyncRun", "sync_id"), ("Counter", "name"), ("Document", "key")]:
        assert ((label,), (prop,)) in unique
    for rel_type in ("DEPENDS_ON", "RUNS_ON", "ROUTES_TO", "OWNED_BY"):
        assert ((rel_type,), ("key",)) in unique


def test_relationships_are_real_typed_relationships(bolt_target: BoltTarget, bolt: Neo4jStore) -> None:
    put(bolt, [ci("app"), ci("vm"), ci("db")], [rel("app", "vm", "RUNS_ON"), rel("app", "db")])
    with neo4j.GraphDatabase.driver(bolt_target.uri, auth=(bolt_target.user, bolt_target.password)) as driver:
        records = driver.execute_query(
            "MATCH (a:CI)-[r]->(b:CI) RETURN a.id AS a, type(r) AS t, b.id AS b ORDER BY t",
            database_=bolt_target.database,
        ).records
    assert [(r["a"], r["t"], r["b"]) for r in records] == [("app", "DEPENDS_ON", "db"), ("app", "RUNS_ON", "vm")]


def test_a_relationship_type_outside_the_vocabulary_never_reaches_a_query(bolt: Neo4jStore) -> None:
    put(bolt, [ci("a"), ci("b")], [rel("a", "b")])
    hostile = "DEPENDS_ON]->() DETACH DELETE a //"
    with pytest.raises(ValidationError, match="unknown relationship type"):
        bolt.relationships(["a"], "out", types=[hostile])
    with pytest.raises(ValidationError), bolt.transaction():
        bolt.put_relationships([rel("a", "b", hostile)], ["fp"])
    assert bolt.known_ids(["a", "b"]) == {"a", "b"}
