"""Plain lists (``cmdb.graphql.execution``): the same answers as graphql-core's own completion,
errors included, for a fraction of the work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from cmdb.graphql.execution import PlainListExecutionContext
from cmdb.graphql.limits import Document, Validations
from cmdb.graphql.settings import Limits, ResponseCacheSettings
from cmdb.store import SqliteStore

from .conftest import Api, _api, api_settings

pytestmark = pytest.mark.anyio

WALK = """query($id: ID!) { ci(id: $id) { id name
    dependents(depth: 3, first: 150) { depth ci { id type name owner } path { type fromId toId } } } }"""

EVERYTHING_BELOW_A_WALK = """
query($id: ID!, $yes: Boolean!) { ci(id: $id) {
    down: dependencies(depth: 2) { ...hit }
    up: dependents(depth: 3, first: 80) {
        ...hit pathIds
        edges: path @include(if: $yes) { ...edge }
        hidden: path @skip(if: $yes) { type }
    } } }
fragment hit on Reached { depth ci { __typename id name
    ... on ComputeCI { zone os cpuCores memoryGb }
    ... on NetworkCI { cidr hosts dnsName }
    ... on ContainerCI { images replicas }
    aliases sources tags { key value } lifecycleState criticality ciClass firstSeen lastSeen staleSince attributes
    asOfTime } }
fragment edge on Relationship { __typename type impact direction fromId toId source scope confidence inferred
    review lifecycleState firstSeen lastSeen staleSince evidence { field value } }
"""

# Lists below fields that are not plain (async resolvers): graphql-core runs those, plans the rest.
PAGE = """query { cis(first: 60) { totalCount edges { cursor node { id tags { key value }
    relationships { type direction from { id } other { id name } evidence { field } }
    ownerTeam { id } } } pageInfo { hasNextPage endCursor } } }"""

# A single object of plain fields (a lookup) is completed by plan too.
LOOKUP = """query($id: ID!) { ci(id: $id) { __typename id type name owner lifecycleState criticality ciClass
    aliases sources tags { key value } firstSeen attributes } }"""

IMPACT = """query($ids: [ID!]!) { impact(ids: $ids, depth: 4, first: 200) {
    startIds owners truncated reached { id depth state reason path { type fromId toId } ci { id name } }
    services { id } } }"""


async def _apis(store: SqliteStore) -> AsyncIterator[tuple[Api, Api]]:
    off = ResponseCacheSettings(enabled=False)
    async for plain in _api(store, api_settings(response_cache=off)):
        async for general in _api(store, api_settings(response_cache=off, plain_lists=False)):
            yield plain, general


@pytest.fixture
async def apis(demo_store: SqliteStore) -> AsyncIterator[tuple[Api, Api]]:
    async for pair in _apis(demo_store):
        yield pair


_STARTS: dict[str, str] = {}


def _start(store: SqliteStore) -> str:
    """A CI whose depth-3 walk up reaches the most CIs (a subnet or a node in the demo estate)."""
    from cmdb.store import CIFilter

    if store.location not in _STARTS:
        reach, start = max(
            (len(store.traverse([ci.id], "in", max_depth=3, limit=200)), ci.id) for ci in store.iter_cis(CIFilter())
        )
        assert reach >= 30, (reach, start)
        _STARTS[store.location] = start
    return _STARTS[store.location]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (WALK, {}),
        (EVERYTHING_BELOW_A_WALK, {"yes": True}),
        (EVERYTHING_BELOW_A_WALK, {"yes": False}),
        (PAGE, None),
        (IMPACT, {}),
        (LOOKUP, {}),
    ],
    ids=["walk", "fragments-include", "fragments-skip", "page", "impact", "lookup"],
)
async def test_plain_lists_answer_what_graphql_core_answers(
    apis: tuple[Api, Api], demo_store: SqliteStore, query: str, variables: dict[str, Any] | None
) -> None:
    plain, general = apis
    start = _start(demo_store)
    if variables is not None:
        variables = {**variables, "ids": [start]} if "$ids" in query else {**variables, "id": start}
    fast = await plain.post(query, variables)
    slow = await general.post(query, variables)
    assert fast.status_code == slow.status_code == 200
    assert "errors" not in fast.json(), fast.json()
    assert fast.content == slow.content  # byte for byte: same keys, same order, same values
    assert len(fast.content) > (300 if query is LOOKUP else 2000)  # and there was something to complete


# --- irregular data, on a small schema of its own ---------------------------------------


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Item(Named):
    size: int | None
    kind: strawberry.Private[str] = "fine"

    @strawberry.field
    def shout(self) -> str:
        if self.kind == "raises":
            raise ValueError("cannot shout")
        return self.name.upper()

    @strawberry.field
    def parts(self) -> list[Part]:
        return [Part(name=f"{self.name}-{i}", label=None if self.kind == "null" else "x") for i in range(2)]  # type: ignore[arg-type]


@strawberry.type
class Part(Named):
    label: str


def _items(kind: str) -> list[Item]:
    items = [Item(name=f"i{n}", size=n or None, kind=kind if n == 3 else "fine") for n in range(6)]  # type: ignore[call-arg]
    if kind in ("number", "flag"):  # not a string in a String field: graphql-core coerces it ("7", "true")
        items[3].name = 7 if kind == "number" else True  # type: ignore[assignment]
    if kind in ("big", "whole-float"):  # beyond 32 bits: an error; a float with no fraction: coerced to 4
        items[3].size = 2**31 if kind == "big" else 4.0  # type: ignore[assignment]
    return items


@strawberry.type
class Query:
    @strawberry.field
    def items(self, kind: str = "fine") -> list[Item | None]:  # an item in error is null, the others stay
        return list(_items(kind))

    @strawberry.field
    def item(self, kind: str = "fine") -> Item | None:  # one object: null when in error
        return _items(kind)[3]

    @strawberry.field
    def named(self) -> list[Named]:
        return [*_items("fine")[:2], Part(name="p", label="q")]


class CountingPlainLists(PlainListExecutionContext):
    """Counts the fields graphql-core executes itself, and the plans compiled."""

    executed = 0
    compiled = 0

    def execute_field(self, *args: Any, **kwargs: Any) -> Any:
        type(self).executed += 1
        return super().execute_field(*args, **kwargs)

    def _compile(self, *args: Any, **kwargs: Any) -> Any:
        type(self).compiled += 1
        return super()._compile(*args, **kwargs)


class CountingGeneral(StrawberryGraphQLCoreExecutionContext):
    executed = 0

    def execute_field(self, *args: Any, **kwargs: Any) -> Any:
        type(self).executed += 1
        return super().execute_field(*args, **kwargs)


SMALL = {  # documents parsed once, as in the app (cmdb.graphql.limits.Document)
    "plain": strawberry.Schema(
        Query,
        types=[Item, Part],
        execution_context_class=CountingPlainLists,
        extensions=[lambda: Document(Limits(), (), Validations())],
    ),
    "general": strawberry.Schema(
        Query, types=[Item, Part], execution_context_class=CountingGeneral, extensions=[lambda: Document(Limits(), (), Validations())]
    ),
}


async def _run(name: str, query: str, variables: dict[str, Any] | None = None) -> tuple[Any, list[dict[str, Any]]]:
    result = await SMALL[name].execute(query, variable_values=variables)
    return result.data, [dict(error.formatted) for error in result.errors or []]


@pytest.mark.parametrize(
    "query",
    [
        "{ items { __typename name size shout parts { label name } } }",
        '{ items(kind: "raises") { name shout } }',  # a resolver raises on one item
        '{ items(kind: "null") { name parts { label } } }',  # a null in a non-null field, two lists down
        "{ named { __typename name ... on Item { size } ... on Part { label } } }",  # an interface
        '{ items(kind: "number") { name size } }',  # values coerced as graphql-core coerces them
        '{ items(kind: "flag") { name } }',
        "{ a: items { n: name } b: items { ...f } } fragment f on Item { shout size }",
        "{ items { value: name info: shout memo: size k0: name def: size class: name completed: shout } }",
        "{ item { __typename name size shout parts { label name } } }",
        '{ item(kind: "raises") { name shout } }',
        '{ item(kind: "null") { name parts { label } } }',
        '{ item(kind: "number") { name } }',
        '{ items(kind: "big") { name size } }',
        '{ items(kind: "whole-float") { size } }',
        '{ item(kind: "big") { size } }',
    ],
    ids=[
        "regular",
        "raises",
        "null",
        "interface",
        "coerced-number",
        "coerced-flag",
        "aliases-fragments",
        "aliases-like-the-generated-code",  # response keys are passed to plans, never written in their source
        "object",
        "object-raises",
        "object-null",
        "object-coerced",
        "int-beyond-32-bits",
        "int-from-float",
        "object-int-beyond-32-bits",
    ],
)
async def test_irregular_data_is_reported_as_graphql_core_reports_it(query: str) -> None:
    plain = await _run("plain", query)
    general = await _run("general", query)
    assert plain == general
    assert plain[0] is not None and plain[0] != {}


async def test_a_plain_list_is_completed_without_executing_its_fields_one_by_one() -> None:
    CountingPlainLists.executed = CountingGeneral.executed = 0
    query = "{ items { __typename name size shout parts { label name } } }"
    assert await _run("plain", query) == await _run("general", query)
    assert CountingPlainLists.executed == 1  # only the root field
    assert CountingGeneral.executed == 1 + 6 * (4 + 1 + 2 * 2)
    CountingPlainLists.executed = CountingGeneral.executed = 0
    query = "{ item { name size parts { label } } }"  # a single object too
    assert await _run("plain", query) == await _run("general", query)
    assert (CountingPlainLists.executed, CountingGeneral.executed) == (1, 1 + 3 + 2)


async def test_plans_are_compiled_once_per_operation_unless_variables_choose_the_fields() -> None:
    query = "query($k: String!) { items(kind: $k) { name parts { label } } named { name } }"
    CountingPlainLists.compiled = 0
    # The same operation, other variables: the same plans ("null" hands the list back to
    # graphql-core, whose single objects are planned too: compiled the first time only).
    for turn, kind in enumerate(("fine", "null", "fine", "null")):
        assert await _run("plain", query, {"k": kind}) == await _run("general", query, {"k": kind})
        assert (CountingPlainLists.compiled > 0) == (turn < 2)
        CountingPlainLists.compiled = 0
    chosen = "query($yes: Boolean!) { items { name size @include(if: $yes) parts @skip(if: $yes) { label } } }"
    for yes in (True, False, True):  # the fields depend on the variables: compiled per request
        assert await _run("plain", chosen, {"yes": yes}) == await _run("general", chosen, {"yes": yes})
        assert CountingPlainLists.compiled > 0
        CountingPlainLists.compiled = 0


async def test_a_shared_plan_answers_each_request_with_its_own_data(
    apis: tuple[Api, Api], demo_store: SqliteStore
) -> None:
    plain, general = apis
    start = _start(demo_store)
    others = [r.ci_id for r in demo_store.traverse([start], "in", max_depth=1)][:2]
    for ci_id in [start, *others, start]:
        fast, slow = await plain.post(WALK, {"id": ci_id}), await general.post(WALK, {"id": ci_id})
        assert fast.content == slow.content and ci_id in fast.text


async def test_the_cmdb_schema_completes_a_walk_by_plan(demo_store: SqliteStore) -> None:
    """Nothing in the schema (an extension with a resolve hook, a field extension) turns plans off."""
    from cmdb.graphql.auth import Principal, Role
    from cmdb.graphql.context import Context
    from cmdb.graphql.limits import extensions
    from cmdb.graphql.schema import CmdbSchema, Mutation
    from cmdb.graphql.schema import Query as CmdbQuery
    from cmdb.graphql.types import CI_TYPES
    from cmdb.sync import SyncEngine

    schema = CmdbSchema(
        query=CmdbQuery,
        mutation=Mutation,
        types=list(CI_TYPES),
        extensions=extensions(Limits()),
        execution_context_class=CountingPlainLists,
    )
    settings = api_settings()
    context = Context(demo_store, SyncEngine(demo_store), settings, Principal("alice", Role.READ))
    CountingPlainLists.executed = 0
    result = await schema.execute(WALK, variable_values={"id": _start(demo_store)}, context_value=context)
    assert not result.errors and result.data is not None
    assert len(result.data["ci"]["dependents"]) >= 30
    assert CountingPlainLists.executed == 4  # ci, its id and name, dependents: below it, plans


_SEEN: list[bool] = []


@strawberry.type
class Leaf:
    path: int
    other: int

    @strawberry.field
    def below(self) -> Leaf:
        return self


@strawberry.type
class Probe:
    @strawberry.field
    def probe(self, info: strawberry.Info) -> Leaf:
        from cmdb.graphql.types import _selects

        _SEEN.append(_selects(info, frozenset({"path"})))
        return Leaf(path=1, other=2)


async def test_a_walk_knows_from_the_document_whether_its_paths_are_read() -> None:
    """``_selects`` (which tells a walk to load its paths with it, in one read) sees the
    fields below one field through inline fragments and named ones, and no deeper."""
    schema = strawberry.Schema(Probe)
    for query, reads in (
        ("{ probe { other } }", False),
        ("{ probe { path } }", True),
        ("{ probe { ...F } } fragment F on Leaf { other ... on Leaf { path } }", True),
        ("{ probe { other ... on Leaf { other } } }", False),
        ("{ probe { below { path } } }", False),  # a field below another field is not this one's
        ("{ a: probe { other } b: probe { p: path } }", True),
    ):
        _SEEN.clear()
        result = await schema.execute(query)
        assert result.errors is None, result.errors
        assert _SEEN[-1] is reads, query
