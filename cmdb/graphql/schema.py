"""The schema: a root Query composed from per-part mixins, the Mutation, and the extensions.

Resolvers translate GraphQL arguments into store, engine, history and impact
calls, run in worker threads; they hold no business rules. Permissions are
checked once per operation (``cmdb.graphql.auth.Permissions``), limits are set
once (``cmdb.graphql.limits.extensions``), errors are coded in one place
(``cmdb.graphql.errors``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext, Info

from cmdb import model
from cmdb.errors import NotFound, ValidationError
from cmdb.graphql.context import Context
from cmdb.graphql.enums import ChangeKind, Direction, RelationshipType, ReviewVerdict
from cmdb.graphql.execution import PlainListExecutionContext
from cmdb.graphql.filters import (
    ChangeFilterInput,
    CIFilterInput,
    CreateCIInput,
    RelationshipInput,
    SetCIFieldsInput,
    UpdateCIInput,
)
from cmdb.graphql.impact import ImpactQuery
from cmdb.graphql.limits import extensions
from cmdb.graphql.pagination import change_connection, ci_connection
from cmdb.graphql.settings import Limits
from cmdb.graphql.types import (
    CI,
    CI_TYPES,
    ChangeConnection,
    CIConnection,
    CountEntry,
    Path,
    Relationship,
    Stats,
    ci_node,
    rel_node,
)
from cmdb.store.base import Stats as StoreStats
from cmdb.store.base import Store

__all__ = ["Mutation", "Query", "build_schema", "print_sdl"]

log = logging.getLogger(__name__)

Ctx = Info[Context, None]
AsOf = Annotated[
    datetime | None,
    strawberry.argument(description="read the graph as it was at this time (from the change records)"),
]


# --- queries, one mixin a part --------------------------------------------------


@strawberry.type
class CIQuery:
    @strawberry.field(description="One CI by id (null when there is none, or none at asOf).")
    async def ci(self, info: Ctx, id: strawberry.ID, as_of: AsOf = None) -> CI | None:
        found = await info.context.ci(str(id), as_of)
        return ci_node(found, as_of) if found is not None else None

    @strawberry.field(description="CIs that pass the filter, a page at a time.")
    async def cis(
        self,
        info: Ctx,
        filter: CIFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
        as_of: AsOf = None,
    ) -> CIConnection:
        store_filter = (filter or CIFilterInput()).to_store()
        return await ci_connection(info.context, store_filter, first, after, as_of)


@strawberry.type
class GraphQuery:
    @strawberry.field(description="A shortest path from one CI to another (null when there is none within maxDepth).")
    async def path(
        self,
        info: Ctx,
        from_: Annotated[strawberry.ID, strawberry.argument(name="from")],
        to: strawberry.ID,
        direction: Direction = Direction.OUT,
        types: list[RelationshipType] | None = None,
        max_depth: int = 8,
        as_of: AsOf = None,
    ) -> Path | None:
        context = info.context
        limit = context.settings.graphql.max_path_depth
        if not 1 <= max_depth <= limit:
            from cmdb.errors import LimitExceeded

            raise LimitExceeded(f"maxDepth must be within 1..{limit}, got {max_depth}")
        start, end = str(from_), str(to)
        type_names = [t.value for t in types] if types is not None else None
        known = await context.cis([start, end], as_of)
        for ci_id in (start, end):
            if ci_id not in known:
                raise NotFound(f"no CI with id {ci_id!r}" + (f" at {as_of.isoformat()}" if as_of else ""))
        if as_of is None:
            edges = await context.run(context.store.shortest_path, start, end, direction.value, type_names, max_depth)
        else:
            edges = await context.run(_path_as_of, context, start, end, direction.value, type_names, max_depth, as_of)
        if edges is None:
            return None
        order = [start]
        for rel in edges:
            order.append(rel.to_id if rel.from_id == order[-1] else rel.from_id)
        cis = await context.cis(order, as_of)
        return Path(
            relationships=[rel_node(rel, None, as_of) for rel in edges],
            cis=[ci_node(cis[ci_id], as_of) for ci_id in order if ci_id in cis],
        )


def _path_as_of(
    context: Context,
    start: str,
    end: str,
    direction: model.Direction,
    types: list[str] | None,
    max_depth: int,
    at: datetime,
) -> list[model.Relationship] | None:
    from cmdb.impact.graph import AsOfView

    if start == end:
        return []
    hits, _ = AsOfView(context.store, at).traverse([start], direction, types, max_depth, 1_000_000)
    for hit in hits:
        if hit.ci_id == end:
            return list(hit.path)
    return None


@strawberry.type
class ChangeQuery:
    @strawberry.field(description="Change records in [since, until), oldest first, optionally of one scope.")
    async def changes(
        self,
        info: Ctx,
        since: datetime | None = None,
        until: datetime | None = None,
        scope: str | None = None,
        kinds: list[ChangeKind] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> ChangeConnection:
        store_filter = ChangeFilterInput(since=since, until=until, scope=scope, kinds=kinds).to_store()
        return await change_connection(info.context, store_filter, first, after)


def _counts(counts: dict[str, int]) -> list[CountEntry]:
    return [CountEntry(key=key, count=count) for key, count in counts.items()]


@strawberry.type(description="The caller, as the API sees it.")
class Viewer:
    name: str | None
    role: str | None


@strawberry.type
class StatsQuery:
    @strawberry.field(description="Counts of CIs by class, provider, lifecycle state and type, and of relationships.")
    async def stats(self, info: Ctx) -> Stats:
        found: StoreStats = await info.context.run(info.context.store.stats)
        return Stats(
            total=found.total,
            relationships=found.relationships,
            by_class=_counts(found.by_class),
            by_provider=_counts(found.by_provider),
            by_lifecycle=_counts(found.by_lifecycle),
            by_type=_counts(found.by_type),
            relationships_by_type=_counts(found.relationships_by_type),
        )

    @strawberry.field(description="Who the request's token belongs to, and its role.")
    def viewer(self, info: Ctx) -> Viewer:
        principal = info.context.principal
        return Viewer(name=principal.name if principal else None, role=principal.role.value if principal else None)


@strawberry.type(description="Reads of the CMDB graph.")
class Query(CIQuery, GraphQuery, ChangeQuery, ImpactQuery, StatsQuery):
    pass


# --- mutations -------------------------------------------------------------------


def _hand_kept(store: Store, ci_id: str) -> model.CI:
    found = store.get_cis([ci_id]).get(ci_id)
    if found is None:
        raise NotFound(f"no CI with id {ci_id!r}")
    if "manual" not in found.sources:
        raise ValidationError(
            f"{ci_id} is discovered by {', '.join(found.sources) or 'a source'}, not kept by hand",
            hint="change its owner, cost centre, criticality or lifecycle state with setCIFields",
        )
    return found


def _json_object(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError("attributes must be a JSON object")
    return dict(value)


def _relationship(store: Store, key: model.RelKey) -> model.Relationship:
    found = store.get_relationships([key]).get(key)
    if found is None:
        raise NotFound(f"no relationship {key[0]} -{key[1]}-> {key[2]}")
    return found


@strawberry.type(description="Changes by hand; each writes a change record with the token's name as the actor.")
class Mutation:
    @strawberry.mutation(name="createCI", description="Create a hand-kept CI.")
    async def create_ci(self, info: Ctx, input: CreateCIInput) -> CI:
        context = info.context
        ci = model.CI(
            id=input.id,
            type=input.type,
            name=input.name,
            provider=input.provider,
            scope=input.scope,
            region=input.region,
            environment=input.environment,
            owner=input.owner,
            cost_centre=input.cost_centre,
            business_unit=input.business_unit,
            criticality=input.criticality.value if input.criticality else "",
            lifecycle_state=input.lifecycle_state.value,
            tags={t.key: t.value for t in input.tags},
            attributes=_json_object(input.attributes),
            aliases=tuple(input.aliases),
        )

        def create() -> model.CI:
            if context.store.known_ids([ci.id]):
                raise ValidationError(f"a CI with id {ci.id!r} exists", hint="change it with updateCI or setCIFields")
            context.engine.edit(actor=context.actor, cis=[ci], scope=ci.scope or "manual")
            return context.store.get_cis([ci.id])[ci.id]

        return ci_node(await context.run(create))

    @strawberry.mutation(name="updateCI", description="Change a hand-kept CI's name, place, tags or attributes.")
    async def update_ci(self, info: Ctx, id: strawberry.ID, input: UpdateCIInput) -> CI:
        context = info.context

        def update() -> model.CI:
            before = _hand_kept(context.store, str(id))
            after = before.copy(
                tags={**before.tags, **{t.key: t.value for t in input.tags or []}},
                attributes={**before.attributes, **_json_object(input.attributes)},
                aliases=tuple(dict.fromkeys((*before.aliases, *(input.aliases or [])))),
            )
            for name in ("name", "region", "environment", "business_unit"):
                value = getattr(input, name)
                if value is not None:
                    setattr(after, name, value)
            context.engine.edit(actor=context.actor, cis=[after], scope=before.scope or "manual")
            return context.store.get_cis([before.id])[before.id]

        return ci_node(await context.run(update))

    @strawberry.mutation(name="retireCI", description="Retire a hand-kept CI (it is kept, in lifecycle state retired).")
    async def retire_ci(self, info: Ctx, id: strawberry.ID) -> CI:
        context = info.context

        def retire() -> model.CI:
            _hand_kept(context.store, str(id))
            return context.engine.set_fields(str(id), actor=context.actor, lifecycle_state="retired")

        return ci_node(await context.run(retire))

    @strawberry.mutation(
        name="setCIFields", description="Set the owner, cost centre, criticality or lifecycle state of any CI."
    )
    async def set_ci_fields(self, info: Ctx, id: strawberry.ID, input: SetCIFieldsInput) -> CI:
        context = info.context
        values: dict[str, str] = {}
        if input.owner is not None:
            values["owner"] = input.owner
        if input.cost_centre is not None:
            values["cost_centre"] = input.cost_centre
        if input.criticality is not None:
            values["criticality"] = input.criticality.value
        if input.lifecycle_state is not None:
            values["lifecycle_state"] = input.lifecycle_state.value
        if not values:
            raise ValidationError("give at least one of owner, costCentre, criticality, lifecycleState")
        found = await context.run(context.engine.set_fields, str(id), actor=context.actor, **values)
        return ci_node(found)

    @strawberry.mutation(description="Add (or restore) a relationship kept by hand.")
    async def add_relationship(self, info: Ctx, input: RelationshipInput) -> Relationship:
        context = info.context
        rel = model.Relationship(
            from_id=input.from_id,
            type=input.type.value,
            to_id=input.to_id,
            source="manual",
            scope="manual",
            evidence=(model.Evidence("manual", input.evidence),) if input.evidence else (),
        )

        def add() -> model.Relationship:
            missing = {input.from_id, input.to_id} - context.store.known_ids([input.from_id, input.to_id])
            if missing:
                raise NotFound(f"no CI with id {min(missing)!r}")
            context.engine.edit(actor=context.actor, relationships=[rel], scope="manual")
            return _relationship(context.store, rel.key)

        return rel_node(await context.run(add))

    @strawberry.mutation(description="Retire a relationship (it is kept, in lifecycle state retired).")
    async def remove_relationship(
        self, info: Ctx, from_id: strawberry.ID, type: RelationshipType, to_id: strawberry.ID
    ) -> Relationship:
        context = info.context
        key = (str(from_id), type.value, str(to_id))
        return rel_node(await context.run(context.engine.remove_relationship, key, actor=context.actor))

    @strawberry.mutation(description="Confirm or reject an inferred relationship; a rejection holds across syncs.")
    async def review_relationship(
        self,
        info: Ctx,
        from_id: strawberry.ID,
        type: RelationshipType,
        to_id: strawberry.ID,
        verdict: ReviewVerdict,
    ) -> Relationship:
        context = info.context
        key = (str(from_id), type.value, str(to_id))
        found = await context.run(context.engine.review_relationship, key, verdict.value, actor=context.actor)
        return rel_node(found)


# --- the schema ------------------------------------------------------------------


class CmdbSchema(strawberry.Schema):
    """Logs only what ``ErrorCodes`` masks (client errors are the client's)."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        return None


def build_schema(limits: Limits | None = None, *, plain_lists: bool = True) -> strawberry.Schema:
    """The schema; ``plain_lists`` completes lists of plain objects by compiled plans
    (``cmdb.graphql.execution``), the same answers at a fraction of the cost."""
    return CmdbSchema(
        query=Query,
        mutation=Mutation,
        types=list(CI_TYPES),
        extensions=extensions(limits or Limits()),
        execution_context_class=PlainListExecutionContext if plain_lists else None,
    )


def print_sdl() -> str:
    """The printed schema, as kept in ``schema.graphql``."""
    from strawberry.printer import print_schema

    return print_schema(build_schema()) + "\n"
