"""The impact module: pure functions over the store protocol or a networkx graph.

Blast radius and dependencies, failure that respects redundancy, change risk,
planned changes, incident impact and root causes, what-if and single points of
failure, and the same questions as of a past time. Every function takes a
``Store``, a ``networkx.MultiDiGraph`` (as ``cmdb.export.to_networkx`` makes)
or a ``GraphView``; none holds a query language.
"""

from cmdb.impact.failure import Affected, FailureImpact, State, failure_impact
from cmdb.impact.graph import AsOfView, GraphView, NetworkxView, StoreView, as_view, bfs
from cmdb.impact.incident import AffectedItem, Candidate, IncidentImpact, Notify, incident_impact, root_causes
from cmdb.impact.planned import (
    Blackout,
    Conflict,
    PlannedChange,
    check_planned_change,
    get_planned_change,
    list_planned_changes,
    load_blackouts,
    plan_change,
    recorded_changes,
)
from cmdb.impact.radius import BlastRadius, ImpactRecord, ReachedCI, blast_radius, dependencies
from cmdb.impact.render import to_dot, to_html, to_svg
from cmdb.impact.risk import CHANGE_TYPES, ChangeType, Factor, RiskAssessment, ServiceAtRisk, change_risk, risk_level
from cmdb.impact.timetravel import RadiusDiff, blast_radius_diff
from cmdb.impact.whatif import ServiceLoss, SinglePoint, WhatIf, single_points_of_failure, what_if

__all__ = [
    "CHANGE_TYPES",
    "Affected",
    "AffectedItem",
    "AsOfView",
    "Blackout",
    "BlastRadius",
    "Candidate",
    "ChangeType",
    "Conflict",
    "Factor",
    "FailureImpact",
    "GraphView",
    "ImpactRecord",
    "IncidentImpact",
    "NetworkxView",
    "Notify",
    "PlannedChange",
    "RadiusDiff",
    "ReachedCI",
    "RiskAssessment",
    "ServiceAtRisk",
    "ServiceLoss",
    "SinglePoint",
    "State",
    "StoreView",
    "WhatIf",
    "as_view",
    "bfs",
    "blast_radius",
    "blast_radius_diff",
    "change_risk",
    "check_planned_change",
    "dependencies",
    "failure_impact",
    "get_planned_change",
    "incident_impact",
    "list_planned_changes",
    "load_blackouts",
    "plan_change",
    "recorded_changes",
    "risk_level",
    "root_causes",
    "single_points_of_failure",
    "to_dot",
    "to_html",
    "to_svg",
    "what_if",
]
