"""schemathesis (GraphQL mode) against the served schema: generated queries and mutations,
with a write token, over a small demo estate, never make the server fail.

A domain error (NOT_FOUND, BAD_INPUT, LIMIT_EXCEEDED) is a correct answer to a
generated request; what must not happen is a 5xx or an error the server could
not classify (masked as INTERNAL_SERVER_ERROR). Each operation (every Query
field and Mutation) gets a bounded number of generated documents.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from cmdb.demo import DemoConnector
from cmdb.graphql.app import create_app
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .conftest import WRITE_TOKEN, api_settings

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
EXAMPLES = 15  # per operation: about 250 requests, well under a minute


def test_generated_operations_never_fail_the_server(store: SqliteStore, engine: SyncEngine) -> None:
    engine.run(DemoConnector(size=200, seed=11))
    app = create_app(store, api_settings())
    schema = schemathesis.graphql.from_asgi("/graphql", app, headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"Query.ci", "Query.cis", "Query.impact", "Mutation.createCI", "Mutation.reviewRelationship"} <= labels
    seen: dict[str, int] = {}

    for operation in operations:

        @given(operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,  # the same documents every run: a CI failure reproduces
        )
        def no_server_error(case: Any) -> None:
            response = case.call(headers=AUTH)
            assert response.status_code < 500, response.text
            for error in response.json().get("errors") or []:
                code = (error.get("extensions") or {}).get("code")
                assert code not in (None, "INTERNAL_SERVER_ERROR"), (case.body, error)
            seen[case.operation.label] = seen.get(case.operation.label, 0) + 1

        no_server_error()
    assert set(seen) == labels
