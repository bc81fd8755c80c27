"""GraphQL enums. Values are the vocabulary's own strings; a test checks they match it."""

from __future__ import annotations

from enum import Enum

import strawberry

__all__ = [
    "CIClass",
    "ChangeKind",
    "ChangeType",
    "Criticality",
    "Direction",
    "Impact",
    "ImpactState",
    "LifecycleState",
    "RelationshipType",
    "Review",
    "ReviewVerdict",
]


@strawberry.enum(description="The class a CI type belongs to.")
class CIClass(Enum):
    COMPUTE = "compute"
    STORAGE = "storage"
    DATABASE = "database"
    NETWORK = "network"
    CONTAINER = "container"
    SERVERLESS = "serverless"
    SECURITY = "security"
    IDENTITY = "identity"
    SOFTWARE = "software"
    HARDWARE = "hardware"
    SERVICE = "service"
    APPLICATION = "application"
    TEAM = "team"
    COMMERCIAL = "commercial"


@strawberry.enum(description="Where a CI (or relationship) is in its life.")
class LifecycleState(Enum):
    PLANNED = "planned"
    PROVISIONED = "provisioned"
    ACTIVE = "active"
    OPTIMISE = "optimise"
    STALE = "stale"
    RETIRED = "retired"
    DISPOSED = "disposed"


@strawberry.enum(description="How much it matters when a CI fails.")
class Criticality(Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@strawberry.enum(description="A relationship's type; edges point from the dependent to what it needs.")
class RelationshipType(Enum):
    DEPENDS_ON = "DEPENDS_ON"
    RUNS_ON = "RUNS_ON"
    CONTAINED_IN = "CONTAINED_IN"
    SECURED_BY = "SECURED_BY"
    ROUTES_TO = "ROUTES_TO"
    COMPOSED_OF = "COMPOSED_OF"
    MEMBER_OF = "MEMBER_OF"
    OWNED_BY = "OWNED_BY"
    COVERED_BY = "COVERED_BY"


@strawberry.enum(description="How failure of the target travels back to the dependent.")
class Impact(Enum):
    ALL = strawberry.enum_value("all", description="the dependent needs every target of this type")
    ANY = strawberry.enum_value("any", description="any one healthy target is enough (redundancy)")
    NONE = strawberry.enum_value("none", description="no impact travels (ownership, membership)")


@strawberry.enum(description="Which way an edge is seen from a CI.")
class Direction(Enum):
    OUT = strawberry.enum_value("out", description="from this CI to what it needs")
    IN = strawberry.enum_value("in", description="from a CI that needs this one")
    BOTH = strawberry.enum_value("both", description="either way")


@strawberry.enum(description="A person's verdict on an inferred relationship.")
class Review(Enum):
    UNREVIEWED = ""
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


@strawberry.enum(description="The verdict a review gives.")
class ReviewVerdict(Enum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


@strawberry.enum(description="What a change record records.")
class ChangeKind(Enum):
    CI_CREATED = "ci.created"
    CI_UPDATED = "ci.updated"
    CI_LIFECYCLE = "ci.lifecycle"
    REL_ADDED = "rel.added"
    REL_UPDATED = "rel.updated"
    REL_REMOVED = "rel.removed"
    REL_RESTORED = "rel.restored"
    REL_REVIEWED = "rel.reviewed"


@strawberry.enum(description="What a change does to a CI (change risk weighs each differently).")
class ChangeType(Enum):
    PATCH = "patch"
    RESTART = "restart"
    DELETE = "delete"
    MODIFY = "modify"


@strawberry.enum(description="What a failure does to a CI it reaches.")
class ImpactState(Enum):
    DOWN = strawberry.enum_value("down", description="it goes down: it needed the failing CI")
    DEGRADED = strawberry.enum_value("degraded", description="it loses redundancy but keeps working")
    UNAFFECTED = strawberry.enum_value("unaffected", description="reached only along edges that carry no impact")
