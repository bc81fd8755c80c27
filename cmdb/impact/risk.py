"""Change risk: a score from 0 to 100 made of named, weighted, explained factors.

The question is "if this change goes wrong and the CI is down, what then?":
the failure of the changed CIs is evaluated with redundancy (``failure_impact``),
and each factor looks at one aspect of the answer or of the CI itself. A factor
has a weight (the points it can give), a value from 0 to 1 and its evidence;
the score is the sum of weight x value. The same graph, CIs, change and ``at``
always give the same score: every list is sorted before it is counted.

==========================  ======  =============================================
factor                      weight  value
==========================  ======  =============================================
business_services           25      criticality of services reached (down 1, degraded 0.4)
single_point_of_failure     15      1 when a service goes down (no redundancy on the path)
production                  10      1 for a production CI, 0.6 when only services are
stateful                    10      1 for a database or storage CI
recent_changes              10      change records and failures near the CI, last 7 days
compliance                  10      open compliance findings on the CI, by severity
missing_owner               10      1 without an owner, 0.5 when a reached service has none
change_type                 10      delete 1, restart 0.6, patch 0.5, modify 0.4
==========================  ======  =============================================
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict, get_args

from cmdb.errors import NotFound, ValidationError
from cmdb.impact.failure import Affected, FailureImpact, check_bounds, failure_impact
from cmdb.impact.graph import GraphLike, GraphView, StoreView, as_view
from cmdb.impact.radius import BUSINESS_SERVICE, describe_path
from cmdb.model import CI, ChangeRecord, now
from cmdb.vocabulary import vocabulary

__all__ = [
    "CHANGE_TYPES",
    "WEIGHTS",
    "ChangeType",
    "Factor",
    "RiskAssessment",
    "ServiceAtRisk",
    "change_risk",
    "risk_level",
]

log = logging.getLogger(__name__)

ChangeType = Literal["patch", "restart", "delete", "modify"]
CHANGE_TYPES: tuple[str, ...] = get_args(ChangeType)

WEIGHTS: dict[str, int] = {
    "business_services": 25,
    "single_point_of_failure": 15,
    "production": 10,
    "stateful": 10,
    "recent_changes": 10,
    "compliance": 10,
    "missing_owner": 10,
    "change_type": 10,
}
CHANGE_TYPE_VALUE: dict[str, tuple[float, str]] = {
    "delete": (1.0, "the CI is removed for good"),
    "restart": (0.6, "the CI is down while it restarts"),
    "patch": (0.5, "a patch may restart the CI or change its behaviour"),
    "modify": (0.4, "a configuration change may break the CI"),
}
CRITICALITY_VALUE: dict[str, float] = {"critical": 1.0, "high": 0.75, "medium": 0.5, "low": 0.25, "": 0.5}
SEVERITY_VALUE: dict[str, float] = {"critical": 1.0, "high": 0.75, "medium": 0.5, "low": 0.25, "info": 0.1}
PRODUCTION = frozenset({"production", "prod", "prd", "live"})
STATEFUL_CLASSES = frozenset({"database", "storage"})
RECENT = timedelta(days=7)
NEIGHBOURS = 200  # most direct neighbours whose change records count
FAILURE_WORDS = frozenset({"failed", "failure", "error", "unhealthy", "down", "degraded", "stopped", "impaired"})


def risk_level(score: float) -> str:
    """low < 25 <= medium < 50 <= high < 75 <= critical."""
    return "low" if score < 25 else "medium" if score < 50 else "high" if score < 75 else "critical"


@dataclass(frozen=True, slots=True)
class Factor:
    """One named part of a risk score: ``points`` = ``weight`` x ``value``."""

    name: str
    weight: int
    value: float
    evidence: tuple[str, ...]

    @property
    def points(self) -> float:
        return round(self.weight * self.value, 1)


@dataclass(frozen=True, slots=True)
class ServiceAtRisk:
    """A business service the change reaches, how badly, and the path that carries it."""

    ci_id: str
    name: str
    state: str
    criticality: str
    environment: str
    owner: str
    path: str
    reason: str


class FactorRecord(TypedDict):
    name: str
    weight: int
    value: float
    points: float
    evidence: list[str]


@dataclass(slots=True)
class RiskAssessment:
    """The score, its level, its factors and the paths that carry the risk."""

    ci_ids: tuple[str, ...]
    change: str
    at: datetime
    score: int
    level: str
    factors: list[Factor]
    services: list[ServiceAtRisk]
    paths: list[str]
    down: int
    degraded: int
    truncated: bool
    impact: FailureImpact | None = field(default=None, repr=False)

    def factor(self, name: str) -> Factor:
        return next(f for f in self.factors if f.name == name)

    @property
    def explanation(self) -> str:
        lines = [
            f"{self.change} of {', '.join(self.ci_ids)}: risk {self.score}/100 ({self.level}); "
            f"if it goes wrong {self.down} CIs go down and {self.degraded} lose redundancy"
            + (" (walk truncated)" if self.truncated else "")
        ]
        for f in sorted(self.factors, key=lambda f: (-f.points, f.name)):
            lines.append(
                f"  {f.name}: {f.points:g} of {f.weight}" + (f" - {'; '.join(f.evidence)}" if f.evidence else "")
            )
        if self.paths:
            lines.append("  paths carrying the risk:")
            lines.extend(f"    {p}" for p in self.paths)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ci_ids": list(self.ci_ids),
            "change": self.change,
            "at": self.at.isoformat(),
            "score": self.score,
            "level": self.level,
            "factors": [
                FactorRecord(
                    name=f.name, weight=f.weight, value=round(f.value, 3), points=f.points, evidence=list(f.evidence)
                )
                for f in self.factors
            ],
            "services": [
                {
                    "id": s.ci_id,
                    "name": s.name,
                    "state": s.state,
                    "criticality": s.criticality,
                    "environment": s.environment,
                    "owner": s.owner,
                    "path": s.path,
                    "reason": s.reason,
                }
                for s in self.services
            ],
            "paths": list(self.paths),
            "down": self.down,
            "degraded": self.degraded,
            "truncated": self.truncated,
            "explanation": self.explanation,
        }


def _service_path(affected: Affected) -> str:
    """The path from the service down to the changed CI, as ``svc -DEPENDS_ON-> app -> ...``."""
    return describe_path(tuple(reversed(affected.path)))


def change_risk(
    graph: GraphLike,
    ci_ids: str | Sequence[str],
    change: str = "modify",
    *,
    at: datetime | None = None,
    max_depth: int = 6,
    limit: int = 5_000,
    as_of: datetime | None = None,
) -> RiskAssessment:
    """How risky ``change`` (patch, restart, delete, modify) of ``ci_ids`` is, at ``at`` (default now).

    Walks at most ``max_depth`` levels and ``limit`` CIs upstream; recent
    changes are those in the 7 days before ``at``.
    """
    if change not in CHANGE_TYPES:
        raise ValidationError(f"change type {change!r} is not one of {', '.join(CHANGE_TYPES)}")
    check_bounds(max_depth, limit)
    at = at or as_of or now()
    ids = tuple(sorted({ci_ids} if isinstance(ci_ids, str) else set(ci_ids)))
    if not ids:
        raise ValidationError("change risk needs at least one CI")
    view: GraphView = as_view(graph, as_of)
    cis = view.get_cis(ids)
    missing = [i for i in ids if i not in cis]
    if missing:
        raise NotFound(f"no CI with id {missing[0]!r}")
    impact = failure_impact(view, ids, max_depth=max_depth, limit=limit)
    reached_services = sorted(view.of_type([i for i in impact.affected if i not in ids], BUSINESS_SERVICE))
    service_cis = view.get_cis(reached_services)
    services: list[ServiceAtRisk] = []
    for sid in reached_services:
        svc, affected = service_cis[sid], impact.affected[sid]
        services.append(
            ServiceAtRisk(
                sid,
                svc.name,
                affected.state,
                svc.criticality,
                svc.environment,
                svc.owner,
                _service_path(affected),
                affected.reason,
            )
        )
    services.sort(key=lambda s: (s.state != "down", -CRITICALITY_VALUE.get(s.criticality, 0.5), s.ci_id))

    factors = [
        _services_factor(services),
        _spof_factor(services),
        _production_factor([cis[i] for i in ids], services),
        _stateful_factor([cis[i] for i in ids]),
        _recent_factor(view, ids, at),
        _compliance_factor(view, ids),
        _owner_factor([cis[i] for i in ids], services),
        _change_factor(change),
    ]
    score = int(min(100.0, max(0.0, sum(f.points for f in factors))) + 0.5)  # half up, not to even
    paths = [f"{s.ci_id} ({s.state}): {s.path}" for s in services[:10]]
    if not services:
        nearest = sorted(impact.affected.values(), key=lambda a: (-a.depth, a.ci_id))[:3]
        paths = [f"{a.ci_id} ({a.state}): {_service_path(a)}" for a in nearest if a.path]
    assessment = RiskAssessment(
        ci_ids=ids,
        change=change,
        at=at,
        score=score,
        level=risk_level(score),
        factors=factors,
        services=services,
        paths=paths,
        down=len([i for i in impact.down if i not in ids]),
        degraded=len(impact.degraded),
        truncated=impact.truncated,
        impact=impact,
    )
    log.debug("change risk of %s %s: %d", change, ",".join(ids), score)
    return assessment


def _factor(name: str, value: float, evidence: Sequence[str]) -> Factor:
    return Factor(name, WEIGHTS[name], round(min(1.0, max(0.0, value)), 4), tuple(evidence))


def _services_factor(services: Sequence[ServiceAtRisk]) -> Factor:
    if not services:
        return _factor("business_services", 0.0, ["no business service depends on it"])
    total = sum(CRITICALITY_VALUE.get(s.criticality, 0.5) * (1.0 if s.state == "down" else 0.4) for s in services)
    down = sum(1 for s in services if s.state == "down")
    evidence = [f"{len(services)} business services reached ({down} down, {len(services) - down} degraded)"]
    evidence += [f"{s.name or s.ci_id} [{s.criticality or 'no criticality'}, {s.state}]" for s in services[:5]]
    if len(services) > 5:
        evidence.append(f"and {len(services) - 5} more")
    return _factor("business_services", total / 2.0, evidence)


def _spof_factor(services: Sequence[ServiceAtRisk]) -> Factor:
    down = [s for s in services if s.state == "down"]
    if down:
        evidence = [f"{s.name or s.ci_id} has no redundancy on {s.path}" for s in down[:3]]
        if len(down) > 3:
            evidence.append(f"and {len(down) - 3} more services")
        return _factor("single_point_of_failure", 1.0, evidence)
    if services:
        return _factor(
            "single_point_of_failure",
            0.3,
            [f"redundancy holds for {len(services)} services; they only degrade ({services[0].reason})"],
        )
    return _factor("single_point_of_failure", 0.0, [])


def _production_factor(cis: Sequence[CI], services: Sequence[ServiceAtRisk]) -> Factor:
    prod = [c.id for c in cis if c.environment.lower() in PRODUCTION]
    if prod:
        return _factor("production", 1.0, [f"{i} is in production" for i in prod])
    prod_services = [s.name or s.ci_id for s in services if s.environment.lower() in PRODUCTION]
    if prod_services:
        return _factor("production", 0.6, [f"production services reached: {', '.join(prod_services[:5])}"])
    envs = sorted({c.environment or "no environment" for c in cis})
    return _factor("production", 0.0, [f"environment: {', '.join(envs)}"])


def _stateful_factor(cis: Sequence[CI]) -> Factor:
    vocab = vocabulary()
    stateful = [(c.id, vocab.class_of(c.type), c.type) for c in cis if vocab.class_of(c.type) in STATEFUL_CLASSES]
    if stateful:
        return _factor("stateful", 1.0, [f"{i} holds state ({cls}: {t})" for i, cls, t in stateful])
    return _factor("stateful", 0.0, [])


def _is_failure(c: ChangeRecord) -> bool:
    if c.kind == "ci.lifecycle" and c.after in ("stale", "retired"):
        return True
    if c.kind == "rel.removed":
        return False
    name = c.field.rsplit(".", 1)[-1].lower()
    return name in ("status", "state", "health", "health_status") and str(c.after).lower() in FAILURE_WORDS


def _recent_factor(view: GraphView, ids: Sequence[str], at: datetime) -> Factor:
    hits, _ = view.traverse(ids, "both", None, 1, NEIGHBOURS)
    near = sorted(h.ci_id for h in hits)
    records = view.changes([*ids, *near], at - RECENT, at)
    if not records:
        return _factor("recent_changes", 0.0, [f"no change records in the 7 days before {at:%Y-%m-%d %H:%M}"])
    failures = [c for c in records if _is_failure(c)]
    on_ci = sum(1 for c in records if c.ci_id in ids)
    evidence = [
        f"{len(records)} change records in 7 days ({on_ci} on the CI, {len(records) - on_ci} on {len(near)} neighbours)"
    ]
    if failures:
        evidence.append(
            f"{len(failures)} failures: " + ", ".join(f"{c.ci_id} {c.field} -> {c.after}" for c in failures[:3])
        )
    latest = sorted(records, key=lambda c: (c.at, c.seq), reverse=True)[:3]
    evidence += [f"{c.at:%Y-%m-%d %H:%M} {c.kind} {c.ci_id}{' ' + c.field if c.field else ''}" for c in latest]
    return _factor("recent_changes", (len(records) + 3 * len(failures)) / 10.0, evidence)


def _compliance_factor(view: GraphView, ids: Sequence[str]) -> Factor:
    try:
        from cmdb.compliance import open_findings
    except ImportError:
        return _factor("compliance", 0.0, ["no compliance module"])
    if not isinstance(view, StoreView):
        return _factor("compliance", 0.0, ["findings live in a store; this graph has none"])
    findings = sorted(open_findings(view.store, ids), key=lambda f: (f.ci_id, f.rule_id))
    if not findings:
        return _factor("compliance", 0.0, ["no open compliance findings"])
    total = sum(SEVERITY_VALUE.get(f.severity, 0.25) for f in findings)
    evidence = [f"{f.ci_id}: {f.title or f.rule_id} [{f.severity}]" for f in findings[:5]]
    if len(findings) > 5:
        evidence.append(f"and {len(findings) - 5} more")
    return _factor("compliance", total / 2.0, evidence)


def _owner_factor(cis: Sequence[CI], services: Sequence[ServiceAtRisk]) -> Factor:
    orphans = [c.id for c in cis if not c.owner]
    if orphans:
        return _factor("missing_owner", 1.0, [f"{i} has no owner" for i in orphans])
    orphan_services = [s.name or s.ci_id for s in services if not s.owner]
    if orphan_services:
        return _factor("missing_owner", 0.5, [f"service without owner: {', '.join(orphan_services[:5])}"])
    return _factor("missing_owner", 0.0, [f"owner: {', '.join(sorted({c.owner for c in cis}))}"])


def _change_factor(change: str) -> Factor:
    value, why = CHANGE_TYPE_VALUE[change]
    return _factor("change_type", value, [f"{change}: {why}"])
