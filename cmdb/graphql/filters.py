"""GraphQL inputs: the CI filter and the mutation inputs, each translated to the store's own types."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from cmdb.graphql.enums import ChangeKind, CIClass, Criticality, LifecycleState, RelationshipType
from cmdb.store.base import ChangeFilter, CIFilter

__all__ = [
    "CIFilterInput",
    "ChangeFilterInput",
    "CreateCIInput",
    "RelationshipInput",
    "SetCIFieldsInput",
    "TagFilter",
    "TagInput",
    "UpdateCIInput",
]


@strawberry.input(description="A tag key, and optionally the value it must have.")
class TagFilter:
    key: str
    value: str | None = None


@strawberry.input(description="Which CIs to list; every field given narrows the list (AND).")
class CIFilterInput:
    ids: list[str] | None = None
    types: list[str] | None = strawberry.field(default=None, description="CI types, e.g. aws.rds.db_instance")
    classes: list[CIClass] | None = None
    provider: str | None = None
    scope: str | None = strawberry.field(default=None, description="account, project, subscription, cluster or file")
    region: str | None = None
    environment: str | None = None
    owner: str | None = None
    cost_centre: str | None = None
    business_unit: str | None = None
    criticality: Criticality | None = None
    lifecycle_states: list[LifecycleState] | None = None
    tag: TagFilter | None = None
    text: str | None = strawberry.field(default=None, description="full-text search over id, name and tags")
    missing_owner: bool | None = None

    def to_store(self) -> CIFilter:
        return CIFilter(
            ids=tuple(self.ids) if self.ids is not None else None,
            types=tuple(self.types) if self.types is not None else None,
            classes=tuple(c.value for c in self.classes) if self.classes is not None else None,
            provider=self.provider,
            scope=self.scope,
            region=self.region,
            environment=self.environment,
            owner=self.owner,
            cost_centre=self.cost_centre,
            business_unit=self.business_unit,
            criticality=self.criticality.value if self.criticality is not None else None,
            lifecycle_states=tuple(s.value for s in self.lifecycle_states)
            if self.lifecycle_states is not None
            else None,
            tag_key=self.tag.key if self.tag is not None else None,
            tag_value=self.tag.value if self.tag is not None else None,
            text=self.text,
            missing_owner=self.missing_owner,
        )


@strawberry.input(description="Which change records to list.")
class ChangeFilterInput:
    since: datetime | None = strawberry.field(default=None, description="inclusive")
    until: datetime | None = strawberry.field(default=None, description="exclusive")
    scope: str | None = None
    kinds: list[ChangeKind] | None = None
    sync_id: str | None = None

    def to_store(self, ci_ids: tuple[str, ...] | None = None) -> ChangeFilter:
        return ChangeFilter(
            ci_ids=ci_ids,
            scope=self.scope,
            sync_id=self.sync_id,
            kinds=tuple(k.value for k in self.kinds) if self.kinds is not None else None,
            since=self.since,
            until=self.until,
        )


@strawberry.input
class TagInput:
    key: str
    value: str


@strawberry.input(description="A hand-kept CI (a server in a rack, a licence, a business service).")
class CreateCIInput:
    id: str = strawberry.field(description="the declared key, unique in the CMDB")
    type: str = strawberry.field(description="a CI type from the vocabulary, e.g. hardware.server")
    name: str = ""
    scope: str = strawberry.field(default="manual", description="where it is kept (a site, a file, a team)")
    provider: str = ""
    region: str = ""
    environment: str = ""
    owner: str = ""
    cost_centre: str = ""
    business_unit: str = ""
    criticality: Criticality | None = None
    lifecycle_state: LifecycleState = LifecycleState.ACTIVE
    tags: list[TagInput] = strawberry.field(default_factory=list)
    attributes: JSON | None = strawberry.field(default=None, description="type-specific attributes, a JSON object")
    aliases: list[str] = strawberry.field(default_factory=list)


@strawberry.input(description="New values for a hand-kept CI; fields left out keep their value.")
class UpdateCIInput:
    name: str | None = None
    region: str | None = None
    environment: str | None = None
    business_unit: str | None = None
    tags: list[TagInput] | None = strawberry.field(default=None, description="set these tags (others stay)")
    attributes: JSON | None = strawberry.field(default=None, description="set these attributes (others stay)")
    aliases: list[str] | None = strawberry.field(default=None, description="add these aliases")


@strawberry.input(description="Fields any CI may have set by hand; fields left out keep their value.")
class SetCIFieldsInput:
    owner: str | None = None
    cost_centre: str | None = None
    criticality: Criticality | None = None
    lifecycle_state: LifecycleState | None = None


@strawberry.input(description="A relationship, from the dependent to what it needs.")
class RelationshipInput:
    from_id: str
    type: RelationshipType
    to_id: str
    evidence: str = strawberry.field(default="", description="why it exists (a document, a ticket)")
