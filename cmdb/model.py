"""The CMDB's data model: configuration items, relationships, change records.

These dataclasses are what crosses every boundary in cmdb: connectors yield
them, the sync engine diffs them, stores persist them, GraphQL and the impact
module read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from cmdb.errors import ValidationError
from cmdb.vocabulary import vocabulary

__all__ = [
    "CI",
    "COMMON_FIELDS",
    "ChangeKind",
    "ChangeRecord",
    "Direction",
    "Evidence",
    "RelKey",
    "Relationship",
    "SyncRun",
    "now",
    "parse_time",
    "validate_ci",
    "validate_relationship",
]

# The common attributes every CI carries, besides id, type, tags and attributes.
COMMON_FIELDS: tuple[str, ...] = (
    "name",
    "provider",
    "scope",
    "region",
    "environment",
    "owner",
    "cost_centre",
    "business_unit",
    "criticality",
    "lifecycle_state",
)

Direction = Literal["out", "in", "both"]
"""``out`` follows edges from a CI to what it needs (its dependencies); ``in``
follows them backwards to the CIs that need it (its dependents)."""

RelKey = tuple[str, str, str]
"""(from_id, type, to_id): a relationship's identity."""

ChangeKind = Literal[
    "ci.created",
    "ci.updated",
    "ci.lifecycle",
    "rel.added",
    "rel.updated",
    "rel.removed",
    "rel.restored",
    "rel.reviewed",
]

_ID_PATTERN = re.compile(r"^\S(.*\S)?$")


def now() -> datetime:
    """The current time, timezone-aware UTC, at microsecond precision."""
    return datetime.now(UTC)


def parse_time(value: str | datetime) -> datetime:
    """Parse an ISO-8601 time (a date alone means its midnight UTC)."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                f"not an ISO-8601 time: {value!r}", hint="write e.g. 2026-11-01T09:30:00Z"
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a relationship exists: the field it was read from and the value there."""

    field: str
    value: str = ""

    def __str__(self) -> str:
        return f"{self.field} = {self.value}" if self.value else self.field


@dataclass(slots=True)
class CI:
    """A configuration item.

    ``id`` is the provider's own identifier (ARN, GCP full resource name, Azure
    resource id, ``cluster/namespace/kind/name``) or a declared key for a
    hand-kept CI. ``aliases`` are other names the same thing is known by
    (endpoint hostnames, provider ids, serial numbers); the sync engine uses
    them to reconcile identities across sources.
    """

    id: str
    type: str
    name: str = ""
    provider: str = ""
    scope: str = ""
    region: str = ""
    environment: str = ""
    owner: str = ""
    cost_centre: str = ""
    business_unit: str = ""
    criticality: str = ""
    lifecycle_state: str = "active"
    tags: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    # Kept by the sync engine, not set by connectors:
    sources: tuple[str, ...] = ()
    provenance: dict[str, str] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    stale_since: datetime | None = None

    @property
    def ci_class(self) -> str:
        return vocabulary().class_of(self.type)

    def copy(self, **changes: Any) -> CI:
        return replace(self, **changes)


@dataclass(slots=True)
class Relationship:
    """A directed edge from the dependent (``from_id``) to what it needs (``to_id``).

    Failure of ``to_id`` reaches ``from_id``; how it travels is the type's
    ``impact`` (all-of, any-of, none) in the vocabulary.
    """

    from_id: str
    type: str
    to_id: str
    source: str = ""
    scope: str = ""
    evidence: tuple[Evidence, ...] = ()
    confidence: float = 1.0
    inferred: bool = False
    review: str = ""  # "", "confirmed" or "rejected" (inferred links only)
    lifecycle_state: str = "active"
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    stale_since: datetime | None = None

    @property
    def key(self) -> RelKey:
        return (self.from_id, self.type, self.to_id)

    @property
    def impact(self) -> str:
        return vocabulary().relationship_type(self.type).impact

    def copy(self, **changes: Any) -> Relationship:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One change, as the sync run (or person) that made it saw it.

    ``field`` names what changed: a common field (``owner``), ``tags.KEY``,
    ``attributes.KEY`` or, for relationships, one of its own fields. For
    relationship changes ``ci_id`` is the dependent and ``rel_type``/``to_id``
    name the edge.
    """

    seq: int
    at: datetime
    kind: ChangeKind
    ci_id: str
    sync_id: str = ""
    actor: str = ""
    scope: str = ""
    field: str = ""
    before: Any = None
    after: Any = None
    rel_type: str = ""
    to_id: str = ""

    @property
    def rel_key(self) -> RelKey | None:
        return (self.ci_id, self.rel_type, self.to_id) if self.rel_type else None


@dataclass(slots=True)
class SyncRun:
    """One run of the sync engine for one source."""

    sync_id: str
    source: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"  # running, complete, partial, failed
    scopes: dict[str, bool] = field(default_factory=dict)  # scope -> sweep complete
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    actor: str = ""


def validate_ci(ci: CI) -> None:
    """Raise ValidationError when a CI breaks the model."""
    vocab = vocabulary()
    if not isinstance(ci.id, str) or not ci.id or not _ID_PATTERN.match(ci.id):
        raise ValidationError(f"CI id must be a non-empty string without surrounding spaces: {ci.id!r}")
    vocab.ci_type(ci.type)
    if ci.lifecycle_state not in vocab.lifecycle_states:
        raise ValidationError(
            f"lifecycle_state {ci.lifecycle_state!r} of {ci.id} is not one of {', '.join(vocab.lifecycle_states)}"
        )
    if ci.criticality and ci.criticality not in vocab.criticality_levels:
        raise ValidationError(
            f"criticality {ci.criticality!r} of {ci.id} is not one of {', '.join(vocab.criticality_levels)}"
        )
    for name in COMMON_FIELDS:
        if not isinstance(getattr(ci, name), str):
            raise ValidationError(f"{name} of {ci.id} must be a string")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in ci.tags.items()):
        raise ValidationError(f"tags of {ci.id} must map strings to strings")
    vocab.check_attributes(ci.type, ci.attributes)


def validate_relationship(rel: Relationship) -> None:
    vocabulary().relationship_type(rel.type)
    if not rel.from_id or not rel.to_id:
        raise ValidationError(f"relationship {rel.type} needs both ends: {rel.from_id!r} -> {rel.to_id!r}")
    if rel.from_id == rel.to_id:
        raise ValidationError(f"relationship {rel.type} from {rel.from_id} to itself")
    if not 0.0 <= rel.confidence <= 1.0:
        raise ValidationError(f"confidence of {rel.from_id} -{rel.type}-> {rel.to_id} must be within 0..1")
