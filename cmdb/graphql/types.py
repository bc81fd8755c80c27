"""GraphQL object types: the CI interface and its per-class implementations, relationships,
change records, connections and stats.

Fields are chosen one by one (the schema is a public contract): every CI has
the common fields and ``attributes: JSON``; each class adds a few typed fields
read from the attributes its types declare in the vocabulary. Nested fields
load through the request's dataloaders (``Context``); a CI read ``asOf`` a past
time reads its neighbourhood as of that time too.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLAbstractType,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionNode,
)
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry.types.base import get_object_definition

from cmdb import compliance, model
from cmdb.graphql.context import Context, TraversalKey, Walk
from cmdb.graphql.enums import (
    ChangeKind,
    CIClass,
    Criticality,
    Direction,
    Impact,
    LifecycleState,
    RelationshipType,
    Review,
)
from cmdb.graphql.filters import ChangeFilterInput
from cmdb.graphql.limits import page_size, traversal_depth
from cmdb.impact.radius import walk_ids
from cmdb.vocabulary import vocabulary

__all__ = [
    "CI",
    "CI_TYPES",
    "CIConnection",
    "CIEdge",
    "Change",
    "ChangeConnection",
    "ChangeEdge",
    "CountEntry",
    "Evidence",
    "Finding",
    "PageInfo",
    "Path",
    "Reached",
    "Relationship",
    "Stats",
    "Tag",
    "ci_node",
]

log = logging.getLogger(__name__)

Ctx = Info[Context, None]
T = TypeVar("T")


def _maker(cls: type[T], names: tuple[str, ...]) -> Callable[..., T]:
    """A constructor of the strawberry type ``cls`` that takes every one of its fields by
    position, in the order ``names``, and does what its dataclass ``__init__`` does (set them).

    For the objects made by the hundred (a walk's CIs, hits and edges): a call by keyword
    costs twice as much as one by position, and strawberry's ``__init__`` takes keywords
    only. Made from source once per class; the source holds the fields' own names.
    """
    fields = tuple(f.name for f in dataclasses.fields(cls) if f.init)  # type: ignore[arg-type]
    if sorted(names) != sorted(fields) or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} is made from the fields {fields}, not {names}")
    source = (
        f"def make({', '.join(names)}):\n"
        "    made = new(cls)\n" + "".join(f"    made.{name} = {name}\n" for name in names) + "    return made\n"
    )
    names_in: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec(compile(source, f"<maker of {cls.__name__}>", "exec"), names_in)  # noqa: S102 - see above
    make: Callable[..., T] = names_in["make"]
    return make


def _opt(value: str) -> str | None:
    return value or None


def _first(ci: model.CI, keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = ci.attributes.get(key)
        if value is not None:
            return value
    return None


def _str(ci: model.CI, *keys: str) -> str | None:
    value = _first(ci, keys)
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def _int(ci: model.CI, *keys: str) -> int | None:
    value = _first(ci, keys)
    return value if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**31 else None


def _float(ci: model.CI, *keys: str) -> float | None:
    value = _first(ci, keys)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _bool(ci: model.CI, *keys: str) -> bool | None:
    value = _first(ci, keys)
    return value if isinstance(value, bool) else None


def _strs(ci: model.CI, *keys: str) -> list[str] | None:
    value = _first(ci, keys)
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else None


# --- small types -----------------------------------------------------------------


@strawberry.type(description="A compliance finding: a rule a CI breaks (cmdb.compliance).")
class Finding:
    record: strawberry.Private[compliance.Finding]

    @strawberry.field
    def rule_id(self) -> str:
        return self.record.rule_id

    @strawberry.field
    def rule_version(self) -> int:
        return self.record.rule_version

    @strawberry.field
    def title(self) -> str:
        return self.record.title

    @strawberry.field(description="info, low, medium, high or critical")
    def severity(self) -> str:
        return self.record.severity

    @strawberry.field
    def detail(self) -> str:
        return self.record.detail

    @strawberry.field(description="open, waived or resolved")
    def status(self) -> str:
        return self.record.status

    @strawberry.field(description="the controls (frameworks) the rule maps to")
    def controls(self) -> list[str]:
        return list(self.record.controls)

    @strawberry.field
    def first_seen(self) -> datetime:
        return self.record.first_seen

    @strawberry.field
    def last_seen(self) -> datetime:
        return self.record.last_seen


@strawberry.type(description="A tag on a CI.")
class Tag:
    key: str
    value: str


@strawberry.type(description="Why a relationship exists: the field it was read from and the value there.")
class Evidence:
    field: str
    value: str


@strawberry.type(description="A count of CIs or relationships under one key.")
class CountEntry:
    key: str
    count: int


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


# --- relationships ---------------------------------------------------------------


_RELATIONSHIP_TYPES = {member.value: member for member in RelationshipType}
_IMPACTS: dict[str, Impact] = {str(member.value): member for member in Impact}  # values are the strings
# each relationship type's impact (the vocabulary is loaded once per process, like the enums above)
_IMPACT_OF = {name: _IMPACTS[kind.impact] for name, kind in vocabulary().relationship_types.items()}
_REVIEWS = {member.value: member for member in Review}
_STATES = {member.value: member for member in LifecycleState}
_CRITICALITIES = {member.value: member for member in Criticality}
_CLASSES = {member.value: member for member in CIClass}


@strawberry.type(description="A directed edge from the dependent (from) to what it needs (to).")
class Relationship:
    # The fields most queries read are plain (no resolver: the cheapest to complete, whether
    # by strawberry's default resolver or by a plan); the rest are read from the record when
    # asked, so that the hundreds of these a walk's paths make are quick to make.
    record: strawberry.Private[model.Relationship]
    seen_from: strawberry.Private[str | None]
    as_of: strawberry.Private[datetime | None]
    type: RelationshipType
    direction: Direction = strawberry.field(
        description="OUT when read from its `from` end (or from no CI), IN when read from its `to` end."
    )
    from_id: str = strawberry.field(graphql_type=strawberry.ID)  # a str: made without a call to strawberry.ID
    to_id: str = strawberry.field(graphql_type=strawberry.ID)

    @strawberry.field(description="How failure of `to` travels back to `from`.")
    def impact(self) -> Impact:
        return _IMPACT_OF[self.record.type]

    @strawberry.field(description="The source that reported it (a connector, inference, manual).")
    def source(self) -> str:
        return self.record.source

    @strawberry.field
    def scope(self) -> str:
        return self.record.scope

    @strawberry.field(description="0..1; below 1 for inferred links.")
    def confidence(self) -> float:
        return self.record.confidence

    @strawberry.field(description="Inferred from configuration rather than stated by an API.")
    def inferred(self) -> bool:
        return self.record.inferred

    @strawberry.field
    def review(self) -> Review:
        return _REVIEWS[self.record.review]

    @strawberry.field
    def lifecycle_state(self) -> LifecycleState:
        return _STATES[self.record.lifecycle_state]

    @strawberry.field
    def first_seen(self) -> datetime | None:
        return self.record.first_seen

    @strawberry.field
    def last_seen(self) -> datetime | None:
        return self.record.last_seen

    @strawberry.field
    def stale_since(self) -> datetime | None:
        return self.record.stale_since

    @strawberry.field(name="from", description="The dependent.")
    async def from_(self, info: Ctx) -> CI | None:
        return await load_ci(info, self.record.from_id, self.as_of)

    @strawberry.field(description="What the dependent needs.")
    async def to(self, info: Ctx) -> CI | None:
        return await load_ci(info, self.record.to_id, self.as_of)

    @strawberry.field(description="The end that is not the CI this relationship was read from.")
    async def other(self, info: Ctx) -> CI | None:
        far = self.record.from_id if self.seen_from == self.record.to_id else self.record.to_id
        return await load_ci(info, far, self.as_of)

    @strawberry.field
    def evidence(self) -> list[Evidence]:
        return [Evidence(field=e.field, value=e.value) for e in self.record.evidence]


_PATH_FIELDS = frozenset({"path", "pathIds"})
"""Fields of ``Reached`` that read the walk's paths."""


def _selects(info: Ctx, names: frozenset[str]) -> bool:
    """Whether any field directly below this one (through fragments) is one of ``names``:
    read from the document's nodes (strawberry's ``selected_fields`` converts the whole
    subtree first)."""
    raw = info._raw_info
    stack: list[SelectionNode] = [node for field in raw.field_nodes for node in _below(field)]
    while stack:
        node = stack.pop()
        if isinstance(node, FieldNode):
            if node.name.value in names:
                return True
        elif isinstance(node, InlineFragmentNode):
            stack.extend(_below(node))
        elif isinstance(node, FragmentSpreadNode) and node.name.value in raw.fragments:
            stack.extend(_below(raw.fragments[node.name.value]))
    return False


def _below(node: FieldNode | InlineFragmentNode | FragmentDefinitionNode) -> Sequence[SelectionNode]:
    return node.selection_set.selections if node.selection_set is not None else ()


async def load_ci(info: Ctx, ci_id: str, as_of: datetime | None) -> CI | None:
    found = await info.context.ci(ci_id, as_of)
    return ci_node(found, as_of) if found is not None else None


_IN, _OUT = Direction.IN, Direction.OUT  # (an enum's members are slow to look up on the class)


_make_relationship = _maker(Relationship, ("record", "seen_from", "as_of", "type", "direction", "from_id", "to_id"))


def rel_node(rel: model.Relationship, seen_from: str | None = None, as_of: datetime | None = None) -> Relationship:
    direction = _IN if seen_from is not None and seen_from == rel.to_id else _OUT
    return _make_relationship(rel, seen_from, as_of, _RELATIONSHIP_TYPES[rel.type], direction, rel.from_id, rel.to_id)


# --- the CI interface --------------------------------------------------------------


@strawberry.type(description="A CI reached by a walk, with the path from the start CI to it.")
class Reached:
    ci: CI
    depth: int
    walk: strawberry.Private[Walk]
    position: strawberry.Private[int]  # this CI's, in the walk
    way: strawberry.Private[model.Direction]
    as_of: strawberry.Private[datetime | None]
    # The walk's edges as GraphQL objects, shared by its hits: paths overlap near the start.
    # By the id of each stored edge: a walk's paths share one object per edge, and the hits
    # hold those objects for as long as this request lasts.
    edges: strawberry.Private[dict[int, Relationship]]

    @strawberry.field(description="edges from the start CI to this one, in walking order")
    def path(self) -> list[Relationship]:
        edges = self.edges
        path: list[Relationship] = []
        for rel in self.walk.path(self.position):
            node = edges.get(id(rel))
            if node is None:
                node = edges[id(rel)] = rel_node(rel, None, self.as_of)
            path.append(node)
        return path

    @strawberry.field(description="the CIs along the path, from the start CI to this one (cheaper than path)")
    def path_ids(self) -> list[strawberry.ID]:
        return [strawberry.ID(i) for i in walk_ids(self.walk.path(self.position), self.way)]


_make_reached = _maker(Reached, ("ci", "depth", "walk", "position", "way", "as_of", "edges"))


@strawberry.interface(description="A configuration item: anything the CMDB tracks.")
class CI:
    # The fields most queries read are plain (no resolver: the cheapest to complete) and set
    # by ``ci_node``; the rest are read from the record when asked, so that the hundreds of
    # these a walk or a page makes are quick to make.
    record: strawberry.Private[model.CI]
    as_of: strawberry.Private[datetime | None]
    id: str = strawberry.field(  # a str: made without a call to strawberry.ID
        graphql_type=strawberry.ID, description="The provider's own id (ARN, resource name...) or a declared key."
    )
    type: str = strawberry.field(description="A type from the vocabulary, e.g. aws.rds.db_instance.")
    ci_class: CIClass
    name: str
    environment: str | None
    owner: str | None = strawberry.field(description="The owning team or person (a team CI's id when one is known).")
    lifecycle_state: LifecycleState

    @strawberry.field
    def provider(self) -> str | None:
        return self.record.provider or None

    @strawberry.field(description="Account, project, subscription, cluster or file.")
    def scope(self) -> str | None:
        return self.record.scope or None

    @strawberry.field
    def region(self) -> str | None:
        return self.record.region or None

    @strawberry.field
    def cost_centre(self) -> str | None:
        return self.record.cost_centre or None

    @strawberry.field
    def business_unit(self) -> str | None:
        return self.record.business_unit or None

    @strawberry.field
    def criticality(self) -> Criticality | None:
        return _CRITICALITIES[self.record.criticality] if self.record.criticality else None

    @strawberry.field(description="Other names the same thing is known by (endpoints, serial numbers).")
    def aliases(self) -> list[str]:
        return list(self.record.aliases)

    @strawberry.field(description="The sources that report it.")
    def sources(self) -> list[str]:
        return list(self.record.sources)

    @strawberry.field
    def first_seen(self) -> datetime | None:
        return self.record.first_seen

    @strawberry.field
    def last_seen(self) -> datetime | None:
        return self.record.last_seen

    @strawberry.field
    def stale_since(self) -> datetime | None:
        return self.record.stale_since

    @strawberry.field(description="The time this CI is shown as of (null: now).")
    def as_of_time(self) -> datetime | None:
        return self.as_of

    @classmethod
    def resolve_type(cls, obj: Any, info: GraphQLResolveInfo[Any], abstract_type: GraphQLAbstractType) -> str | None:
        """The object type of a CI: its class's (one lookup, not strawberry's generic search)."""
        return _TYPE_NAMES.get(type(obj))

    @strawberry.field
    def tags(self) -> list[Tag]:
        return [Tag(key=k, value=v) for k, v in sorted(self.record.tags.items())]

    @strawberry.field(description="The value of one tag.")
    def tag(self, key: str) -> str | None:
        return self.record.tags.get(key)

    @strawberry.field(description="Every type-specific attribute, as a JSON object.")
    def attributes(self) -> JSON:
        return JSON(self.record.attributes)

    @strawberry.field(description="The team CI that owns it: the target of OWNED_BY, else the CI named by owner.")
    async def owner_team(self, info: Ctx) -> CI | None:
        rels = await info.context.relationships_of(self.record.id, False, self.as_of)
        for rel in rels:
            if rel.type == "OWNED_BY" and rel.from_id == self.record.id:
                return await load_ci(info, rel.to_id, self.as_of)
        if self.record.owner:
            team = await load_ci(info, self.record.owner, self.as_of)
            if team is not None and vocabulary().class_of(team.record.type) == "team":
                return team
        return None

    @strawberry.field(description="Relationships touching this CI.")
    async def relationships(
        self,
        info: Ctx,
        direction: Direction = Direction.BOTH,
        types: list[RelationshipType] | None = None,
        include_inactive: Annotated[
            bool, strawberry.argument(description="also rejected and retired ones (not with asOf)")
        ] = False,
    ) -> list[Relationship]:
        rels = await info.context.relationships_of(self.record.id, include_inactive, self.as_of)
        wanted = {t.value for t in types} if types is not None else None
        me = self.record.id
        return [
            rel_node(rel, me, self.as_of)
            for rel in rels
            if (wanted is None or rel.type in wanted)
            and (
                direction is Direction.BOTH
                or (direction is Direction.OUT and rel.from_id == me)
                or (direction is Direction.IN and rel.to_id == me)
            )
        ]

    async def _walk(
        self, info: Ctx, way: model.Direction, depth: int, types: list[RelationshipType] | None, first: int | None
    ) -> list[Reached]:
        limits = info.context.settings.graphql
        key = TraversalKey(
            self.record.id,
            way,
            tuple(sorted(t.value for t in types)) if types is not None else None,
            traversal_depth(depth, limits),
            page_size(first, limits),
            paths=_selects(info, _PATH_FIELDS),
        )
        walk = await info.context.walk(key, self.as_of)
        found, depths, as_of = walk.cis, walk.reached.depths, self.as_of
        edges: dict[int, Relationship] = {}
        return [
            _make_reached(ci_node(found[ci_id], as_of), depths[position], walk, position, way, as_of, edges)
            for position, ci_id in enumerate(walk.reached.ids)
            if ci_id in found
        ]

    @strawberry.field(description="What this CI needs, transitively, nearest first, with the path to each.")
    async def dependencies(
        self,
        info: Ctx,
        depth: int = 3,
        types: list[RelationshipType] | None = None,
        first: Annotated[int | None, strawberry.argument(description="at most this many CIs")] = None,
    ) -> list[Reached]:
        return await self._walk(info, "out", depth, types, first)

    @strawberry.field(description="What needs this CI, transitively (its blast radius), nearest first.")
    async def dependents(
        self,
        info: Ctx,
        depth: int = 3,
        types: list[RelationshipType] | None = None,
        first: Annotated[int | None, strawberry.argument(description="at most this many CIs")] = None,
    ) -> list[Reached]:
        return await self._walk(info, "in", depth, types, first)

    @strawberry.field(description="Open compliance findings on this CI (not resolved, not waived), most severe first.")
    async def findings(self, info: Ctx) -> list[Finding]:
        found = await info.context.loaders.findings.load(self.record.id)
        return [Finding(record=f) for f in found]

    @strawberry.field(description="Change records of this CI and of its relationships, oldest first.")
    async def history(
        self, info: Ctx, filter: ChangeFilterInput | None = None, first: int | None = None, after: str | None = None
    ) -> ChangeConnection:
        from cmdb.graphql.pagination import change_connection

        store_filter = (filter or ChangeFilterInput()).to_store(ci_ids=(self.record.id,))
        if self.as_of is not None and (store_filter.until is None or store_filter.until > self.as_of):
            store_filter = _until(store_filter, self.as_of)
        return await change_connection(info.context, store_filter, first, after)


def _until(f: Any, at: datetime) -> Any:
    from dataclasses import replace

    return replace(f, until=at)


# --- one implementation per class --------------------------------------------------


@strawberry.type(description="Servers, VMs, instances, Kubernetes nodes.")
class ComputeCI(CI):
    @strawberry.field(description="instance type, VM size or machine type")
    def machine_type(self) -> str | None:
        return _str(self.record, "instance_type", "vm_size", "machine_type")

    @strawberry.field
    def state(self) -> str | None:
        return _str(self.record, "state", "power_state", "status")

    @strawberry.field
    def private_ip(self) -> str | None:
        return _str(self.record, "private_ip", "ip_address")

    @strawberry.field
    def public_ip(self) -> str | None:
        return _str(self.record, "public_ip")

    @strawberry.field
    def zone(self) -> str | None:
        return _str(self.record, "availability_zone", "zone")

    @strawberry.field
    def os(self) -> str | None:
        return _str(self.record, "os", "os_type", "platform", "os_image")

    @strawberry.field
    def cpu_cores(self) -> int | None:
        return _int(self.record, "cpu_cores")

    @strawberry.field
    def memory_gb(self) -> float | None:
        return _float(self.record, "memory_gb")

    @strawberry.field(description="average CPU use, where the source reports it")
    def cpu_avg_percent(self) -> float | None:
        return _float(self.record, "cpu_avg_percent")


@strawberry.type(description="Volumes, disks, buckets, storage accounts, persistent volumes.")
class StorageCI(CI):
    @strawberry.field
    def size_gb(self) -> int | None:
        return _int(self.record, "size_gb")

    @strawberry.field(description="e.g. 10Gi, for Kubernetes volumes")
    def capacity(self) -> str | None:
        return _str(self.record, "capacity")

    @strawberry.field
    def encrypted(self) -> bool | None:
        return _bool(self.record, "encrypted")

    @strawberry.field(description="readable by anyone on the internet")
    def public(self) -> bool | None:
        return _bool(self.record, "public", "allow_blob_public_access")

    @strawberry.field(description="volume type, SKU or storage class")
    def storage_class(self) -> str | None:
        return _str(self.record, "volume_type", "disk_type", "storage_class", "sku")

    @strawberry.field
    def versioning(self) -> str | None:
        return _str(self.record, "versioning")


@strawberry.type(description="Managed and self-run databases and caches.")
class DatabaseCI(CI):
    @strawberry.field
    def engine(self) -> str | None:
        return _str(self.record, "engine", "database_version")

    @strawberry.field
    def engine_version(self) -> str | None:
        return _str(self.record, "engine_version", "version")

    @strawberry.field(description="instance class, tier or SKU")
    def instance_class(self) -> str | None:
        return _str(self.record, "instance_class", "tier", "sku")

    @strawberry.field
    def endpoint(self) -> str | None:
        return _str(self.record, "endpoint", "fqdn", "connection_name")

    @strawberry.field
    def port(self) -> int | None:
        return _int(self.record, "port")

    @strawberry.field
    def encrypted(self) -> bool | None:
        return _bool(self.record, "storage_encrypted", "encrypted")

    @strawberry.field
    def publicly_accessible(self) -> bool | None:
        return _bool(self.record, "publicly_accessible", "public_ip_enabled")

    @strawberry.field
    def multi_az(self) -> bool | None:
        return _bool(self.record, "multi_az")

    @strawberry.field
    def status(self) -> str | None:
        return _str(self.record, "status")


@strawberry.type(description="Networks, subnets, load balancers, gateways, DNS records, CDNs, Services.")
class NetworkCI(CI):
    @strawberry.field
    def cidr(self) -> str | None:
        return _str(self.record, "cidr_block", "ip_cidr_range", "address_prefix")

    @strawberry.field
    def dns_name(self) -> str | None:
        return _str(self.record, "dns_name", "domain_name", "record_name")

    @strawberry.field(description="internet-facing or internal")
    def scheme(self) -> str | None:
        return _str(self.record, "scheme", "load_balancing_scheme")

    @strawberry.field
    def record_type(self) -> str | None:
        return _str(self.record, "record_type")

    @strawberry.field(description="Kubernetes Service type")
    def service_type(self) -> str | None:
        return _str(self.record, "service_type")

    @strawberry.field
    def hosts(self) -> list[str] | None:
        return _strs(self.record, "hosts", "aliases")


@strawberry.type(description="Clusters, node pools, workloads, pods and their configuration.")
class ContainerCI(CI):
    @strawberry.field
    def version(self) -> str | None:
        return _str(self.record, "version", "kubernetes_version")

    @strawberry.field(description="desired replicas or nodes")
    def replicas(self) -> int | None:
        return _int(self.record, "replicas", "desired", "desired_size", "node_count")

    @strawberry.field
    def ready_replicas(self) -> int | None:
        return _int(self.record, "ready_replicas", "ready")

    @strawberry.field
    def images(self) -> list[str] | None:
        return _strs(self.record, "images")

    @strawberry.field(description="pod or namespace phase")
    def phase(self) -> str | None:
        return _str(self.record, "phase")

    @strawberry.field
    def status(self) -> str | None:
        return _str(self.record, "status", "power_state")


@strawberry.type(description="Functions, managed runtimes, queues and topics.")
class ServerlessCI(CI):
    @strawberry.field
    def runtime(self) -> str | None:
        return _str(self.record, "runtime")

    @strawberry.field
    def handler(self) -> str | None:
        return _str(self.record, "handler")

    @strawberry.field
    def memory_mb(self) -> int | None:
        return _int(self.record, "memory_mb")

    @strawberry.field
    def timeout_seconds(self) -> int | None:
        return _int(self.record, "timeout_s")


@strawberry.type(description="Firewalls, security groups, network security groups.")
class SecurityCI(CI):
    @strawberry.field
    def description(self) -> str | None:
        return _str(self.record, "description")

    @strawberry.field(description="inbound rules, as the source states them")
    def ingress_rules(self) -> JSON | None:
        value = _first(self.record, ("ingress_rules", "rules", "allowed"))
        return JSON(value) if isinstance(value, list) else None

    @strawberry.field(description="outbound rules, as the source states them")
    def egress_rules(self) -> JSON | None:
        value = _first(self.record, ("egress_rules",))
        return JSON(value) if isinstance(value, list) else None


@strawberry.type(description="Accounts, projects, roles, service accounts.")
class IdentityCI(CI):
    @strawberry.field
    def account_id(self) -> str | None:
        return _str(self.record, "account_id", "project_number")

    @strawberry.field
    def role_name(self) -> str | None:
        return _str(self.record, "role_name")

    @strawberry.field
    def trusted_principals(self) -> list[str] | None:
        return _strs(self.record, "trusted_principals")


@strawberry.type(description="Installed products and licences.")
class SoftwareCI(CI):
    @strawberry.field
    def vendor(self) -> str | None:
        return _str(self.record, "vendor")

    @strawberry.field
    def product(self) -> str | None:
        return _str(self.record, "product")

    @strawberry.field
    def version(self) -> str | None:
        return _str(self.record, "version")

    @strawberry.field(description="licences held (a licence) or cores used (an installation)")
    def count(self) -> int | None:
        return _int(self.record, "count", "cores")

    @strawberry.field
    def renewal_date(self) -> str | None:
        return _str(self.record, "renewal_date")


@strawberry.type(description="On-premises servers, network gear, laptops, storage arrays.")
class HardwareCI(CI):
    @strawberry.field
    def serial_number(self) -> str | None:
        return _str(self.record, "serial_number")

    @strawberry.field
    def manufacturer(self) -> str | None:
        return _str(self.record, "manufacturer")

    @strawberry.field
    def model(self) -> str | None:
        return _str(self.record, "model")

    @strawberry.field
    def location(self) -> str | None:
        return _str(self.record, "location")

    @strawberry.field
    def rack(self) -> str | None:
        return _str(self.record, "rack")

    @strawberry.field
    def warranty_end(self) -> str | None:
        return _str(self.record, "warranty_end")

    @strawberry.field
    def assigned_user(self) -> str | None:
        return _str(self.record, "assigned_user")


@strawberry.type(description="Business and technical services.")
class ServiceCI(CI):
    @strawberry.field
    def tier(self) -> str | None:
        return _str(self.record, "tier")

    @strawberry.field
    def sla(self) -> str | None:
        return _str(self.record, "sla")


@strawberry.type(description="Applications built or bought by the organisation.")
class ApplicationCI(CI):
    @strawberry.field
    def language(self) -> str | None:
        return _str(self.record, "language")

    @strawberry.field
    def repository(self) -> str | None:
        return _str(self.record, "repository")

    @strawberry.field
    def version(self) -> str | None:
        return _str(self.record, "version")


@strawberry.type(description="Teams and people that own CIs.")
class TeamCI(CI):
    @strawberry.field
    def email(self) -> str | None:
        return _str(self.record, "email")

    @strawberry.field
    def slack(self) -> str | None:
        return _str(self.record, "slack")

    @strawberry.field
    def manager(self) -> str | None:
        return _str(self.record, "manager")


@strawberry.type(description="Vendors and contracts.")
class CommercialCI(CI):
    @strawberry.field
    def vendor(self) -> str | None:
        return _str(self.record, "vendor")

    @strawberry.field
    def start_date(self) -> str | None:
        return _str(self.record, "start_date")

    @strawberry.field
    def end_date(self) -> str | None:
        return _str(self.record, "end_date")

    @strawberry.field
    def renewal_date(self) -> str | None:
        return _str(self.record, "renewal_date")

    @strawberry.field
    def annual_value(self) -> float | None:
        return _float(self.record, "annual_value")


@strawberry.type(description="A CI of a class this API has no typed fields for.")
class GenericCI(CI):
    pass


_BY_CLASS: dict[str, type[CI]] = {
    "compute": ComputeCI,
    "storage": StorageCI,
    "database": DatabaseCI,
    "network": NetworkCI,
    "container": ContainerCI,
    "serverless": ServerlessCI,
    "security": SecurityCI,
    "identity": IdentityCI,
    "software": SoftwareCI,
    "hardware": HardwareCI,
    "service": ServiceCI,
    "application": ApplicationCI,
    "team": TeamCI,
    "commercial": CommercialCI,
}
CI_TYPES: tuple[type[CI], ...] = (*_BY_CLASS.values(), GenericCI)
_TYPE_NAMES: dict[type, str] = {t: get_object_definition(t, strict=True).name for t in CI_TYPES}


_CI_FIELDS = ("record", "as_of", "id", "type", "ci_class", "name", "environment", "owner", "lifecycle_state")
_MAKERS = {implementation: _maker(implementation, _CI_FIELDS) for implementation in CI_TYPES}


def _implementation(type_name: str) -> tuple[Callable[..., CI], CIClass]:
    """The maker of a CI type's implementation, and its class (an unknown type raises the
    vocabulary's error, as every read of such a CI does)."""
    ci_class = vocabulary().class_of(type_name)
    return _MAKERS[_BY_CLASS.get(ci_class, GenericCI)], _CLASSES[ci_class]


# each CI type's, looked up once (the vocabulary is loaded once per process, like the enums);
# a type it did not have then is looked up when met
_IMPLEMENTATIONS = {name: _implementation(name) for name in vocabulary().types}


def ci_node(ci: model.CI, as_of: datetime | None = None) -> CI:
    """The GraphQL object for one CI: the implementation of its class."""
    make, ci_class = _IMPLEMENTATIONS.get(ci.type) or _implementation(ci.type)
    return make(
        ci, as_of, ci.id, ci.type, ci_class, ci.name, ci.environment or None, ci.owner or None, _STATES[ci.lifecycle_state]
    )


# --- paths, changes, connections, stats --------------------------------------------


@strawberry.type(description="A shortest path between two CIs.")
class Path:
    relationships: list[Relationship] = strawberry.field(description="edges in walking order")
    cis: list[CI] = strawberry.field(description="the CIs along the path, from the start to the end")

    @strawberry.field
    def length(self) -> int:
        return len(self.relationships)


@strawberry.type(description="One recorded change: a create, a field change, a relationship change or a transition.")
class Change:
    record: strawberry.Private[model.ChangeRecord]

    @strawberry.field
    def seq(self) -> int:
        return self.record.seq

    @strawberry.field
    def at(self) -> datetime:
        return self.record.at

    @strawberry.field
    def kind(self) -> ChangeKind:
        return ChangeKind(self.record.kind)

    @strawberry.field(description="The CI changed (for a relationship: its dependent end).")
    def ci_id(self) -> strawberry.ID:
        return strawberry.ID(self.record.ci_id)

    @strawberry.field
    async def ci(self, info: Ctx) -> CI | None:
        return await load_ci(info, self.record.ci_id, None)

    @strawberry.field(description="Who made it: a person's token name, or sync:<source>.")
    def actor(self) -> str:
        return self.record.actor

    @strawberry.field(description="The sync run that saw it (empty for hand edits).")
    def sync_id(self) -> str:
        return self.record.sync_id

    @strawberry.field
    def scope(self) -> str:
        return self.record.scope

    @strawberry.field(
        description="The field changed: a common field, tags.KEY, attributes.KEY or a relationship field."
    )
    def field(self) -> str:
        return self.record.field

    @strawberry.field
    def before(self) -> JSON | None:
        return None if self.record.before is None else JSON(self.record.before)

    @strawberry.field
    def after(self) -> JSON | None:
        return None if self.record.after is None else JSON(self.record.after)

    @strawberry.field(description="For relationship changes: the relationship's type.")
    def relationship_type(self) -> str | None:
        return _opt(self.record.rel_type)

    @strawberry.field(description="For relationship changes: the end it points to.")
    def to_id(self) -> str | None:
        return _opt(self.record.to_id)


@strawberry.type
class CIEdge:
    cursor: str
    node: CI


@strawberry.type(description="A page of CIs (Relay connection).")
class CIConnection:
    edges: list[CIEdge]
    page_info: PageInfo
    counter: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many CIs match the filter, on every page.")
    async def total_count(self) -> int:
        return await self.counter()


@strawberry.type
class ChangeEdge:
    cursor: str
    node: Change


@strawberry.type(description="A page of change records, oldest first (Relay connection).")
class ChangeConnection:
    edges: list[ChangeEdge]
    page_info: PageInfo


@strawberry.type(description="Counts of CIs and relationships.")
class Stats:
    total: int
    relationships: int
    by_class: list[CountEntry]
    by_provider: list[CountEntry]
    by_lifecycle: list[CountEntry]
    by_type: list[CountEntry]
    relationships_by_type: list[CountEntry]
