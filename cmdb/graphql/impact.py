"""The impact part of the API: blast radius, affected services and change risk (``cmdb.impact``).

The resolvers translate arguments to ``blast_radius``, ``incident_impact`` and
``change_risk`` calls over the store (run in a worker thread) and their results
to GraphQL types; every rule lives in ``cmdb.impact``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from cmdb.graphql.context import Context
from cmdb.graphql.enums import ChangeType, ImpactState, RelationshipType
from cmdb.graphql.limits import page_size, traversal_depth
from cmdb.graphql.types import CI, Relationship, ci_node, rel_node
from cmdb.impact import (
    AffectedItem,
    BlastRadius,
    IncidentImpact,
    ReachedCI,
    RiskAssessment,
    blast_radius,
    change_risk,
    incident_impact,
)

__all__ = ["ImpactQuery"]

log = logging.getLogger(__name__)

Ctx = Info[Context, None]
Ids = Annotated[list[strawberry.ID], strawberry.argument(description="the CIs that fail or change")]
AsOf = Annotated[
    datetime | None,
    strawberry.argument(description="read the graph as it was at this time (from the change records)"),
]


async def _ci(info: Ctx, ci_id: str, as_of: datetime | None) -> CI | None:
    found = await info.context.ci(ci_id, as_of)
    return ci_node(found, as_of) if found is not None else None


@strawberry.type(description="A CI a failure reaches: how far, along which path, and how badly.")
class ImpactedCI:
    id: strawberry.ID
    depth: int
    state: ImpactState | None = strawberry.field(description="null when states were not asked for")
    reason: str
    path: list[Relationship] = strawberry.field(description="edges from a failing CI up to this one, walking order")
    as_of: strawberry.Private[datetime | None] = None

    @strawberry.field
    async def ci(self, info: Ctx) -> CI | None:
        return await _ci(info, str(self.id), self.as_of)


@strawberry.type(description="Everything upstream of the failing CIs, nearest first.")
class BlastRadiusResult:
    start_ids: list[strawberry.ID]
    reached: list[ImpactedCI]
    services: list[ImpactedCI] = strawberry.field(description="business services reached")
    owners: list[str] = strawberry.field(description="owners of the CIs reached, to notify")
    truncated: bool = strawberry.field(description="`first` cut the walk short")
    depth: int


def _blast(result: BlastRadius, as_of: datetime | None) -> BlastRadiusResult:
    def item(reached: ReachedCI) -> ImpactedCI:
        return ImpactedCI(
            id=strawberry.ID(reached.ci_id),
            depth=reached.depth,
            state=ImpactState(reached.state) if reached.state else None,
            reason=reached.reason,
            path=[rel_node(r, None, as_of) for r in reached.path],
            as_of=as_of,
        )

    return BlastRadiusResult(
        start_ids=[strawberry.ID(i) for i in result.start_ids],
        reached=[item(r) for r in result.reached],
        services=[item(r) for r in result.services],
        owners=list(result.owners),
        truncated=result.truncated,
        depth=result.max_depth,
    )


@strawberry.type(description="A business service or application a failure reaches.")
class AffectedService:
    id: strawberry.ID
    name: str
    type: str
    state: ImpactState
    owner: str | None
    criticality: str | None
    path: str = strawberry.field(description="from it down to a failing CI: `a -DEPENDS_ON-> b -> ...`")
    reason: str

    @strawberry.field
    async def ci(self, info: Ctx) -> CI | None:
        return await _ci(info, str(self.id), None)


@strawberry.type(description="An owner to notify and the affected CIs they own.")
class Notify:
    owner: str
    ci_ids: list[strawberry.ID]


@strawberry.type(description="The services and applications failing CIs take down or degrade.")
class AffectedServices:
    failing: list[strawberry.ID]
    services: list[AffectedService]
    applications: list[AffectedService]
    notify: list[Notify]
    unowned: list[strawberry.ID] = strawberry.field(description="affected CIs with no owner")


def _affected(result: IncidentImpact) -> AffectedServices:
    def item(a: AffectedItem) -> AffectedService:
        return AffectedService(
            id=strawberry.ID(a.ci_id),
            name=a.name,
            type=a.type,
            state=ImpactState(a.state),
            owner=a.owner or None,
            criticality=a.criticality or None,
            path=a.path,
            reason=a.reason,
        )

    return AffectedServices(
        failing=[strawberry.ID(i) for i in result.failing],
        services=[item(a) for a in result.services],
        applications=[item(a) for a in result.applications],
        notify=[Notify(owner=n.owner, ci_ids=[strawberry.ID(i) for i in n.ci_ids]) for n in result.notify],
        unowned=[strawberry.ID(i) for i in result.unowned],
    )


@strawberry.type(description="One named part of a risk score: points = weight x value, with its evidence.")
class RiskFactor:
    name: str
    weight: int
    value: float
    points: float
    evidence: list[str]


@strawberry.type(description="A business service a change puts at risk.")
class ServiceAtRisk:
    id: strawberry.ID
    name: str
    state: ImpactState
    criticality: str | None
    environment: str | None
    owner: str | None
    path: str
    reason: str

    @strawberry.field
    async def ci(self, info: Ctx) -> CI | None:
        return await _ci(info, str(self.id), None)


@strawberry.type(description="How risky a change is: a score out of 100 made of named, explained factors.")
class ChangeRisk:
    ci_ids: list[strawberry.ID]
    change: ChangeType
    at: datetime
    score: int
    level: str = strawberry.field(description="low, medium, high or critical")
    factors: list[RiskFactor]
    services: list[ServiceAtRisk]
    paths: list[str] = strawberry.field(description="the paths that carry the risk")
    down: int = strawberry.field(description="CIs that go down if the change goes wrong")
    degraded: int = strawberry.field(description="CIs that only lose redundancy")
    truncated: bool
    explanation: str


def _risk(result: RiskAssessment) -> ChangeRisk:
    return ChangeRisk(
        ci_ids=[strawberry.ID(i) for i in result.ci_ids],
        change=ChangeType(result.change),
        at=result.at,
        score=result.score,
        level=result.level,
        factors=[
            RiskFactor(name=f.name, weight=f.weight, value=f.value, points=f.points, evidence=list(f.evidence))
            for f in result.factors
        ],
        services=[
            ServiceAtRisk(
                id=strawberry.ID(s.ci_id),
                name=s.name,
                state=ImpactState(s.state),
                criticality=s.criticality or None,
                environment=s.environment or None,
                owner=s.owner or None,
                path=s.path,
                reason=s.reason,
            )
            for s in result.services
        ],
        paths=list(result.paths),
        down=result.down,
        degraded=result.degraded,
        truncated=result.truncated,
        explanation=result.explanation,
    )


@strawberry.type
class ImpactQuery:
    @strawberry.field(description="Blast radius: the CIs that depend on these, with the path to each and how badly.")
    async def impact(
        self,
        info: Ctx,
        ids: Ids,
        depth: int = 6,
        types: list[RelationshipType] | None = None,
        first: Annotated[int | None, strawberry.argument(description="at most this many CIs")] = None,
        states: Annotated[bool, strawberry.argument(description="whether each goes down or only degrades")] = True,
        as_of: AsOf = None,
    ) -> BlastRadiusResult:
        context = info.context
        limits = context.settings.graphql
        result = await context.run(
            blast_radius,
            context.store,
            [str(i) for i in ids],
            max_depth=traversal_depth(depth, limits),
            types=[t.value for t in types] if types is not None else None,
            limit=page_size(first, limits),
            states=states,
            details=False,
            as_of=as_of,
        )
        return _blast(result, as_of)

    @strawberry.field(description="The business services and applications that failing CIs take down or degrade.")
    async def affected_services(self, info: Ctx, failing: Ids, depth: int = 8) -> AffectedServices:
        context = info.context
        limits = context.settings.graphql
        result = await context.run(
            incident_impact,
            context.store,
            [str(i) for i in failing],
            max_depth=traversal_depth(depth, limits),
            limit=limits.impact_walk_limit,
        )
        return _affected(result)

    @strawberry.field(description="How risky a change of these CIs is, and why.")
    async def change_risk(
        self,
        info: Ctx,
        ids: Ids,
        change: ChangeType = ChangeType.MODIFY,
        at: Annotated[datetime | None, strawberry.argument(description="when it happens (default now)")] = None,
        depth: int = 6,
        as_of: AsOf = None,
    ) -> ChangeRisk:
        context = info.context
        limits = context.settings.graphql
        result = await context.run(
            change_risk,
            context.store,
            [str(i) for i in ids],
            change.value,
            at=at,
            max_depth=traversal_depth(depth, limits),
            limit=limits.impact_walk_limit,
            as_of=as_of,
        )
        return _risk(result)
