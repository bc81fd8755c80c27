"""impact, affectedServices and changeRisk answer what cmdb.impact answers; findings come
from cmdb.compliance."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cmdb.compliance import evaluate, open_findings
from cmdb.demo import DemoConnector
from cmdb.graphql.enums import ChangeType
from cmdb.impact import CHANGE_TYPES, blast_radius, change_risk, incident_impact
from cmdb.store import SqliteStore
from cmdb.store.base import CIFilter
from cmdb.sync import SyncEngine

from .conftest import Api, _api, api_settings

pytestmark = pytest.mark.anyio


def _database(store: SqliteStore) -> str:
    return store.list_cis(CIFilter(types=("aws.rds.db_instance",)), first=1).items[0].id


async def test_impact_is_the_blast_radius(demo_api: Api, demo_store: SqliteStore) -> None:
    db = _database(demo_store)
    data = await demo_api.data(
        """query($id: ID!) { impact(ids: [$id], depth: 4, first: 200) {
            startIds truncated owners
            reached { id depth state reason ci { id type } path { fromId toId } }
            services { id state ci { ciClass } }
        } }""",
        {"id": db},
    )
    expected = blast_radius(demo_store, db, max_depth=4, limit=200, states=True)
    result = data["impact"]
    assert result["startIds"] == [db]
    assert [(r["id"], r["depth"], r["state"]) for r in result["reached"]] == [
        (r.ci_id, r.depth, r.state.upper() if r.state else None) for r in expected.reached
    ]
    assert [s["id"] for s in result["services"]] == [s.ci_id for s in expected.services]
    assert result["services"] and all(s["ci"]["ciClass"] == "SERVICE" for s in result["services"])
    assert result["owners"] == expected.owners
    assert all(r["path"][0]["toId"] == db for r in result["reached"])


async def test_affected_services_of_a_failure(demo_api: Api, demo_store: SqliteStore) -> None:
    db = _database(demo_store)
    data = await demo_api.data(
        """query($id: ID!) { affectedServices(failing: [$id]) {
            failing services { id name state path ci { id } } applications { id state } notify { owner ciIds } unowned
        } }""",
        {"id": db},
    )
    expected = incident_impact(demo_store, db)
    result = data["affectedServices"]
    assert [(s["id"], s["state"]) for s in result["services"]] == [
        (s.ci_id, s.state.upper()) for s in expected.services
    ]
    assert [a["id"] for a in result["applications"]] == [a.ci_id for a in expected.applications]
    assert [n["owner"] for n in result["notify"]] == [n.owner for n in expected.notify]
    assert result["services"], "a database in the demo estate backs some business service"
    assert all(s["ci"]["id"] == s["id"] for s in result["services"])


async def test_change_risk_with_its_factors(demo_api: Api, demo_store: SqliteStore) -> None:
    db = _database(demo_store)
    at = datetime(2030, 1, 1, tzinfo=UTC)
    data = await demo_api.data(
        """query($id: ID!, $at: DateTime) { changeRisk(ids: [$id], change: DELETE, at: $at) {
            ciIds change score level down degraded explanation
            factors { name weight value points evidence } services { id state path }
        } }""",
        {"id": db, "at": at.isoformat()},
    )
    expected = change_risk(demo_store, db, "delete", at=at)
    risk = data["changeRisk"]
    assert (risk["score"], risk["level"], risk["down"], risk["degraded"]) == (
        expected.score,
        expected.level,
        expected.down,
        expected.degraded,
    )
    assert [(f["name"], f["points"]) for f in risk["factors"]] == [(f.name, f.points) for f in expected.factors]
    assert risk["explanation"] == expected.explanation
    assert risk["change"] == "DELETE"


async def test_impact_errors_carry_codes(demo_api: Api, demo_store: SqliteStore) -> None:
    missing = await demo_api.error('{ affectedServices(failing: ["no-such-ci"]) { unowned } }')
    assert missing["extensions"]["code"] == "NOT_FOUND"
    deep = await demo_api.error(f'{{ impact(ids: ["{_database(demo_store)}"], depth: 9) {{ truncated }} }}')
    assert deep["extensions"]["code"] == "LIMIT_EXCEEDED"


def test_change_types_follow_the_impact_module() -> None:
    assert {c.value for c in ChangeType} == set(CHANGE_TYPES)


async def test_findings_of_a_ci(store: SqliteStore, engine: SyncEngine) -> None:
    engine.run(DemoConnector(size=200, seed=3))
    evaluate(store)
    found = open_findings(store)
    assert found, "the demo estate breaks some bundled rule"
    ci_id = found[0].ci_id
    async for api in _api(store, api_settings()):
        data = await api.data(
            "query($id: ID!) { ci(id: $id) { findings { ruleId title severity status controls } } }", {"id": ci_id}
        )
    expected = open_findings(store, ci_ids=[ci_id])
    assert [(f["ruleId"], f["severity"]) for f in data["ci"]["findings"]] == [(f.rule_id, f.severity) for f in expected]
    assert all(f["status"] == "open" for f in data["ci"]["findings"])
