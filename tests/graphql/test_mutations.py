"""Mutations with the write token: each goes through the sync engine and leaves a change
record whose actor is the token's name."""

from __future__ import annotations

from typing import Any

import pytest

from cmdb.connectors.base import Batch, ScopeDone
from cmdb.model import CI, Relationship
from cmdb.store import SqliteStore
from cmdb.store.base import ChangeFilter
from cmdb.sync import SyncEngine

from .conftest import Api

pytestmark = pytest.mark.anyio

VM = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc"
DB = "arn:aws:rds:eu-west-1:123456789012:db:orders"


@pytest.fixture
def estate(store: SqliteStore, engine: SyncEngine) -> SqliteStore:
    """Two discovered CIs with an inferred link between them."""
    batch = Batch(
        "123456789012/eu-west-1",
        [
            CI(VM, "aws.ec2.instance", name="orders-vm", provider="aws"),
            CI(DB, "aws.rds.db_instance", name="orders", provider="aws"),
        ],
        [Relationship(VM, "DEPENDS_ON", DB, inferred=True, confidence=0.7)],
    )
    engine.apply_events("aws", [batch, ScopeDone("123456789012/eu-west-1", True)], actor="sync:aws")
    return store


def _actors(store: SqliteStore, ci_id: str) -> list[tuple[str, str, str]]:
    return [
        (c.kind, c.field, c.actor) for c in store.iter_changes(ChangeFilter(ci_ids=(ci_id,))) if c.actor != "sync:aws"
    ]


CREATE = """mutation($input: CreateCIInput!) { createCI(input: $input) {
    __typename id name owner lifecycleState sources attributes ... on HardwareCI { serialNumber rack } } }"""


async def _create(api: Api, **fields: Any) -> dict[str, Any]:
    values = {"id": "srv-0042", "type": "hardware.server", "name": "rack 4 db server", "scope": "dc-london"}
    values.update(fields)
    data: dict[str, Any] = (await api.data(CREATE, {"input": values}))["createCI"]
    return data


async def test_create_a_hand_kept_ci(api: Api, store: SqliteStore) -> None:
    created = await _create(
        api,
        owner="team:dba",
        attributes={"serial_number": "SN-1", "rack": "R4"},
        tags=[{"key": "site", "value": "lon"}],
    )
    assert created["__typename"] == "HardwareCI"
    assert (created["serialNumber"], created["rack"], created["sources"]) == ("SN-1", "R4", ["manual"])
    stored = store.get_cis(["srv-0042"])["srv-0042"]
    assert (stored.owner, stored.scope, stored.tags) == ("team:dba", "dc-london", {"site": "lon"})
    assert _actors(store, "srv-0042") == [("ci.created", "", "ci-bot")]


async def test_create_refuses_an_existing_id_and_a_bad_type(api: Api) -> None:
    await _create(api)
    assert (await api.error(CREATE, {"input": {"id": "srv-0042", "type": "hardware.server"}}))["extensions"][
        "code"
    ] == "BAD_INPUT"
    bad = await api.error(CREATE, {"input": {"id": "x", "type": "no.such.type"}})
    assert bad["extensions"]["code"] == "BAD_INPUT" and "no.such.type" in bad["message"]


async def test_update_and_retire_a_hand_kept_ci(api: Api, store: SqliteStore) -> None:
    await _create(api)
    updated = (
        await api.data(
            'mutation { updateCI(id: "srv-0042", input: { name: "db server", attributes: { rack: "R5" }, tags: [{ key: "site", value: "man" }] }) { name attributes tags { key value } } }'
        )
    )["updateCI"]
    assert updated["name"] == "db server" and updated["attributes"]["rack"] == "R5"
    assert updated["tags"] == [{"key": "site", "value": "man"}]
    retired = (await api.data('mutation { retireCI(id: "srv-0042") { lifecycleState } }'))["retireCI"]
    assert retired["lifecycleState"] == "RETIRED"
    assert store.get_cis(["srv-0042"])["srv-0042"].lifecycle_state == "retired"
    changes = _actors(store, "srv-0042")
    assert ("ci.updated", "name", "ci-bot") in changes
    assert ("ci.updated", "attributes.rack", "ci-bot") in changes
    assert ("ci.lifecycle", "lifecycle_state", "ci-bot") in changes


async def test_discovered_cis_are_not_updated_or_retired_by_hand(api: Api, estate: SqliteStore) -> None:
    for mutation in (f'updateCI(id: "{VM}", input: {{ name: "x" }}) {{ id }}', f'retireCI(id: "{VM}") {{ id }}'):
        error = await api.error(f"mutation {{ {mutation} }}")
        assert error["extensions"]["code"] == "BAD_INPUT"
        assert "setCIFields" in error["extensions"]["hint"]
    assert estate.get_cis([VM])[VM].name == "orders-vm"


async def test_set_owner_cost_centre_criticality_and_lifecycle_of_any_ci(api: Api, estate: SqliteStore) -> None:
    data = await api.data(
        f'mutation {{ setCIFields(id: "{DB}", input: {{ owner: "team:orders", costCentre: "CC-17", criticality: HIGH, lifecycleState: OPTIMISE }}) {{ owner costCentre criticality lifecycleState }} }}'
    )
    assert data["setCIFields"] == {
        "owner": "team:orders",
        "costCentre": "CC-17",
        "criticality": "HIGH",
        "lifecycleState": "OPTIMISE",
    }
    assert sorted(_actors(estate, DB)) == [
        ("ci.lifecycle", "lifecycle_state", "ci-bot"),
        ("ci.updated", "cost_centre", "ci-bot"),
        ("ci.updated", "criticality", "ci-bot"),
        ("ci.updated", "owner", "ci-bot"),
    ]
    empty = await api.error(f'mutation {{ setCIFields(id: "{DB}", input: {{}}) {{ id }} }}')
    assert empty["extensions"]["code"] == "BAD_INPUT"
    missing = await api.error('mutation { setCIFields(id: "nope", input: { owner: "x" }) { id } }')
    assert missing["extensions"]["code"] == "NOT_FOUND"


async def test_add_and_remove_a_relationship(api: Api, estate: SqliteStore) -> None:
    await _create(api)
    added = await api.data(
        f'mutation {{ addRelationship(input: {{ fromId: "{DB}", type: RUNS_ON, toId: "srv-0042", evidence: "CHG-1234" }}) {{ type source lifecycleState evidence {{ field value }} }} }}'
    )
    assert added["addRelationship"] == {
        "type": "RUNS_ON",
        "source": "manual",
        "lifecycleState": "ACTIVE",
        "evidence": [{"field": "manual", "value": "CHG-1234"}],
    }
    assert [r.to_id for r in estate.relationships([DB], "out", ["RUNS_ON"])] == ["srv-0042"]
    removed = await api.data(
        f'mutation {{ removeRelationship(fromId: "{DB}", type: RUNS_ON, toId: "srv-0042") {{ lifecycleState }} }}'
    )
    assert removed["removeRelationship"]["lifecycleState"] == "RETIRED"
    assert estate.relationships([DB], "out", ["RUNS_ON"]) == []
    shown = await api.data(
        f'{{ ci(id: "{DB}") {{ now: relationships(types: [RUNS_ON]) {{ toId }} all: relationships(types: [RUNS_ON], includeInactive: true) {{ toId lifecycleState }} }} }}'
    )
    assert shown["ci"]["now"] == [] and shown["ci"]["all"] == [{"toId": "srv-0042", "lifecycleState": "RETIRED"}]
    kinds = [(c.kind, c.actor) for c in estate.iter_changes(ChangeFilter(ci_ids=(DB,))) if c.rel_type == "RUNS_ON"]
    assert kinds == [("rel.added", "ci-bot"), ("rel.removed", "ci-bot")]
    unknown = await api.error(
        f'mutation {{ addRelationship(input: {{ fromId: "{DB}", type: RUNS_ON, toId: "ghost" }}) {{ type }} }}'
    )
    assert unknown["extensions"]["code"] == "NOT_FOUND"


async def test_confirm_or_reject_an_inferred_relationship(api: Api, estate: SqliteStore) -> None:
    query = f'mutation($v: ReviewVerdict!) {{ reviewRelationship(fromId: "{VM}", type: DEPENDS_ON, toId: "{DB}", verdict: $v) {{ inferred review confidence }} }}'
    confirmed = (await api.data(query, {"v": "CONFIRMED"}))["reviewRelationship"]
    assert confirmed == {"inferred": True, "review": "CONFIRMED", "confidence": 0.7}
    rejected = (await api.data(query, {"v": "REJECTED"}))["reviewRelationship"]
    assert rejected["review"] == "REJECTED"
    assert estate.relationships([VM], "out") == []  # a rejected link is no longer walked
    reviews = [(c.after, c.actor) for c in estate.iter_changes(ChangeFilter(ci_ids=(VM,), kinds=("rel.reviewed",)))]
    assert reviews == [("confirmed", "ci-bot"), ("rejected", "ci-bot")]
    unknown = await api.error(
        f'mutation {{ reviewRelationship(fromId: "{VM}", type: ROUTES_TO, toId: "{DB}", verdict: CONFIRMED) {{ review }} }}'
    )
    assert unknown["extensions"]["code"] == "NOT_FOUND"


async def test_a_read_token_changes_nothing(api: Api, estate: SqliteStore) -> None:
    from .conftest import READ_TOKEN

    before = len(list(estate.iter_changes(ChangeFilter())))
    error = await api.error(
        f'mutation {{ setCIFields(id: "{DB}", input: {{ owner: "x" }}) {{ id }} }}', token=READ_TOKEN
    )
    assert error["extensions"]["code"] == "UNAUTHORIZED"
    assert len(list(estate.iter_changes(ChangeFilter()))) == before
    assert estate.get_cis([DB])[DB].owner == ""
