"""The schema contract: schema.graphql is the printed schema; enums follow the vocabulary;
the CLI exports the schema and serves it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from cmdb.cli import cli
from cmdb.graphql.enums import CIClass, Criticality, Direction, LifecycleState, RelationshipType
from cmdb.graphql.schema import print_sdl
from cmdb.graphql.types import _BY_CLASS, CI_TYPES, Reached, Relationship, _maker, ci_node, rel_node
from cmdb.model import CI
from cmdb.model import Relationship as Edge
from cmdb.store import SqliteStore
from cmdb.vocabulary import vocabulary

from .conftest import READ_TOKEN, TOKENS

ROOT = Path(__file__).resolve().parents[2]


def test_schema_file_is_the_printed_schema() -> None:
    kept = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert kept == print_sdl(), "schema.graphql is out of date: run 'cmdb export-schema --output schema.graphql'"


def test_enums_follow_the_vocabulary() -> None:
    vocab = vocabulary()
    assert {c.value for c in CIClass} == set(vocab.classes)
    assert set(_BY_CLASS) == set(vocab.classes)  # every class has its CI implementation
    assert {s.value for s in LifecycleState} == set(vocab.lifecycle_states)
    assert {c.value for c in Criticality} == set(vocab.criticality_levels)
    assert {t.value for t in RelationshipType} == set(vocab.relationship_types)


def test_objects_made_by_position_are_those_strawberry_makes_by_keyword() -> None:
    """``ci_node``, ``rel_node`` and walks make their objects by position (``_maker``): the
    same objects, field for field; a maker that would leave a field unset is refused."""
    vocab = vocabulary()
    for ci_type in sorted(vocab.types):
        record = CI(id=f"id-{ci_type}", type=ci_type, name="n", owner="team-a", lifecycle_state="active")
        made = ci_node(record)
        by_keyword = type(made)(
            record=record, as_of=None, id=record.id, type=ci_type, ci_class=made.ci_class, name="n",
            environment=None, owner="team-a", lifecycle_state=LifecycleState.ACTIVE,
        )  # fmt: skip
        assert vars(made) == vars(by_keyword) and type(made) in CI_TYPES
    edge = Edge("a", "RUNS_ON", "b")
    assert vars(rel_node(edge, "b")) == vars(
        Relationship(record=edge, seen_from="b", as_of=None, type=RelationshipType.RUNS_ON,
                     direction=Direction.IN, from_id="a", to_id="b")
    )  # fmt: skip
    for names in (("ci", "depth"), ("ci", "depth", "hit", "way", "as_of", "edges", "extra")):
        with pytest.raises(TypeError, match="Reached is made from the fields"):
            _maker(Reached, names)


def test_export_schema_to_a_file_and_to_stdout(tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "schema.graphql"
    written = runner.invoke(cli, ["export-schema", "--output", str(target)])
    assert written.exit_code == 0, written.output
    printed = runner.invoke(cli, ["export-schema"])
    assert printed.exit_code == 0
    assert target.read_text(encoding="utf-8") == printed.stdout == print_sdl()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_prints_the_url_and_answers(demo_store: SqliteStore) -> None:
    port = _free_port()
    env = {**os.environ, "CMDB_TOKENS": TOKENS, "CMDB_ANONYMOUS_READ": "false"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from cmdb.cli import main; main()",
            "serve",
            "--db",
            str(demo_store.path),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.post(
                    url, json={"query": "{ stats { total } }"}, headers={"Authorization": f"Bearer {READ_TOKEN}"}
                )
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "cmdb serve did not start"
                time.sleep(0.1)
        assert response.json()["data"]["stats"]["total"] == demo_store.stats().total
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert url in err
    assert "stats" in err  # example queries
