"""The impact module: pure functions over the store protocol or a networkx graph.

Blast radius and dependencies, failure that respects redundancy, change risk,
planned changes, incident impact and root causes, what-if and single points of
failure, and the same questions as of a past time. Every function takes a
``Store``, a ``networkx.MultiDiGraph`` (as ``cmdb.export.to_networkx`` makes)
or a ``GraphView``; none holds a query language. In a notebook::

    import pandas as pd
    from cmdb.impact import blast_radius, change_risk, what_if

    radius = blast_radius(store, "arn:aws:rds:eu-west-1:412381904377:db:orders", states=True)
    pd.DataFrame(radius.records())          # one row per CI: depth, state, owner, path
    g = radius.subgraph()                   # networkx.MultiDiGraph of the paths
    print(change_risk(store, radius.start_ids, "patch").explanation)
    what_if(store, remove=["k8s-prod/node/ip-10-0-3-17"]).services_down

The same calls work on ``cmdb.export.to_networkx(cis, relationships)``.
Direction everywhere: ``A -> B`` means A needs B, so failure of B reaches A;
``blast_radius`` walks to dependents, ``dependencies`` to what is needed.
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
