"""Optimisation: what costs money and does nothing, with an estimated monthly saving.

- **idle compute**: a running VM whose daily average CPU stayed under a
  threshold (default 5 %) on every one of the last N days (default 14) that
  had data, with at least N days of data — from CloudWatch for EC2 when a
  reader is given, else the ``cpu_avg_percent`` attribute a connector filled;
- **unattached volumes**: EBS ``available``, Azure ``Unattached``, or a disk
  nothing depends on;
- **unused Elastic IPs**: allocated, associated with nothing;
- **load balancers without healthy targets**: every target group behind it
  has no healthy target (or there is none);
- **stale snapshots**: older than N days (default 90), noting when the
  source volume is gone.

Each recommendation carries the CI's estimated monthly cost where a price is
known (:mod:`cmdb.compliance.cost`): what removing it would save.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cmdb.compliance.cost import PriceTable, estimate, load_prices
from cmdb.compliance.metrics import CpuSource, attribute_cpu
from cmdb.model import CI, now, parse_time
from cmdb.store.base import CIFilter, Store
from cmdb.sync import SyncEngine

__all__ = ["IDLE", "OptimisationSettings", "Recommendation", "mark_for_optimisation", "recommend"]

log = logging.getLogger(__name__)

IDLE = "idle-compute"
UNATTACHED = "unattached-volume"
UNUSED_IP = "unused-elastic-ip"
NO_HEALTHY_TARGETS = "lb-without-healthy-targets"
STALE_SNAPSHOT = "stale-snapshot"
KINDS = (IDLE, UNATTACHED, UNUSED_IP, NO_HEALTHY_TARGETS, STALE_SNAPSHOT)

_LIVE = ("provisioned", "active", "optimise")
_COMPUTE = ("aws.ec2.instance", "gcp.compute.instance", "azure.compute.vm")
_VOLUMES = ("aws.ec2.volume", "gcp.compute.disk", "azure.compute.disk")
_RUNNING = frozenset({"running", "", "vm running", "powerstate/running"})


@dataclass(frozen=True, slots=True)
class OptimisationSettings:
    cpu_threshold_percent: float = 5.0
    idle_days: int = 14
    snapshot_days: int = 90


@dataclass(slots=True)
class Recommendation:
    kind: str
    ci_id: str
    ci_type: str
    name: str
    owner: str
    detail: str
    monthly_cost: float | None = None
    cost_basis: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "ci_id": self.ci_id,
            "ci_type": self.ci_type,
            "name": self.name,
            "owner": self.owner,
            "detail": self.detail,
            "monthly_cost": self.monthly_cost,
            "cost_basis": self.cost_basis,
        }


def _state(ci: CI) -> str:
    for key in ("state", "status", "power_state", "disk_state"):
        value = ci.attributes.get(key)
        if isinstance(value, str) and value:
            return value.lower()
    return ""


def _recommend(kind: str, ci: CI, detail: str, prices: PriceTable, **evidence: Any) -> Recommendation:
    cost = estimate(ci, prices)
    return Recommendation(
        kind,
        ci.id,
        ci.type,
        ci.name or ci.id,
        ci.owner,
        detail,
        cost.monthly if cost else None,
        cost.basis if cost else "",
        evidence,
    )


def _idle(store: Store, settings: OptimisationSettings, cpu: Sequence[CpuSource], prices: PriceTable) -> list[Recommendation]:
    found: list[Recommendation] = []
    for ci in store.iter_cis(CIFilter(types=_COMPUTE, lifecycle_states=_LIVE)):
        if _state(ci) not in _RUNNING:
            continue
        sample = None
        for source in cpu:
            sample = source(ci, settings.idle_days)
            if sample is not None:
                break
        if sample is None or sample.days < settings.idle_days:
            continue  # not enough evidence to call it idle
        if sample.peak_daily < settings.cpu_threshold_percent:
            detail = (
                f"CPU under {settings.cpu_threshold_percent:g}% on each of the last {settings.idle_days} days "
                f"(mean {sample.mean:.1f}%, highest daily {sample.peak_daily:.1f}%, from {sample.source})"
            )
            found.append(_recommend(IDLE, ci, detail, prices, daily_avg=list(sample.daily_avg)))
    return found


def _unattached(store: Store, prices: PriceTable) -> list[Recommendation]:
    found: list[Recommendation] = []
    candidates: list[CI] = []
    for ci in store.iter_cis(CIFilter(types=_VOLUMES, lifecycle_states=_LIVE)):
        state = _state(ci)
        attached = ci.attributes.get("attached_instances")
        if state in ("available", "unattached") or (isinstance(attached, list) and not attached and state != "in-use"):
            found.append(_recommend(UNATTACHED, ci, f"not attached to any machine (state {state or 'unknown'})", prices))
        elif ci.type == "gcp.compute.disk" and not state.startswith("in"):
            candidates.append(ci)
    if candidates:  # no state that says it: nothing in the graph depends on the disk
        needed = {r.to_id for r in store.relationships([c.id for c in candidates], "in") if r.lifecycle_state == "active"}
        for ci in candidates:
            if ci.id not in needed:
                found.append(_recommend(UNATTACHED, ci, "no machine depends on this disk", prices))
    return found


def _unused_ips(store: Store, prices: PriceTable) -> list[Recommendation]:
    found: list[Recommendation] = []
    for ci in store.iter_cis(CIFilter(types=("aws.ec2.elastic_ip",), lifecycle_states=_LIVE)):
        attrs = ci.attributes
        if not any(attrs.get(k) for k in ("association_id", "instance_id", "network_interface_id")):
            found.append(_recommend(UNUSED_IP, ci, f"Elastic IP {attrs.get('public_ip', '')} is associated with nothing", prices))
    return found


def _lbs_without_targets(store: Store, prices: PriceTable) -> list[Recommendation]:
    lbs = list(store.iter_cis(CIFilter(types=("aws.elbv2.load_balancer",), lifecycle_states=_LIVE)))
    if not lbs:
        return []
    groups: dict[str, list[CI]] = {lb.id: [] for lb in lbs}
    target_groups = {tg.id: tg for tg in store.iter_cis(CIFilter(types=("aws.elbv2.target_group",), lifecycle_states=_LIVE))}
    for tg in target_groups.values():
        for lb_arn in tg.attributes.get("load_balancer_arns") or []:
            if lb_arn in groups and tg not in groups[lb_arn]:
                groups[lb_arn].append(tg)
    # Also along the graph: LB -> (listener ->) target group.
    for hit_lb in lbs:
        for hit in store.traverse([hit_lb.id], "out", types=("ROUTES_TO", "DEPENDS_ON"), max_depth=2, limit=1000):
            behind = target_groups.get(hit.ci_id)
            if behind is not None and behind not in groups[hit_lb.id]:
                groups[hit_lb.id].append(behind)
    found: list[Recommendation] = []
    for lb in lbs:
        tgs = groups[lb.id]
        healthy = sum(_healthy(tg) for tg in tgs)
        if healthy == 0:
            detail = (
                f"no healthy target in its {len(tgs)} target group(s)" if tgs else "no target group behind it"
            )
            found.append(_recommend(NO_HEALTHY_TARGETS, lb, detail, prices, target_groups=[tg.id for tg in tgs]))
    return found


def _healthy(tg: CI) -> int:
    count = tg.attributes.get("healthy_targets")
    if isinstance(count, int):
        return count
    targets = tg.attributes.get("targets") or []
    return sum(1 for t in targets if isinstance(t, dict) and str(t.get("health", "")).lower() == "healthy")


def _stale_snapshots(store: Store, settings: OptimisationSettings, at: datetime, prices: PriceTable) -> list[Recommendation]:
    snapshots = list(store.iter_cis(CIFilter(types=("aws.ec2.snapshot",), lifecycle_states=_LIVE)))
    if not snapshots:
        return []
    limit = at - timedelta(days=settings.snapshot_days)
    live_volumes = {
        str(v.attributes.get("volume_id") or v.id.rsplit("/", 1)[-1])
        for v in store.iter_cis(CIFilter(types=("aws.ec2.volume",), lifecycle_states=_LIVE))
    }
    found: list[Recommendation] = []
    for ci in snapshots:
        started = ci.attributes.get("start_time")
        if not started:
            continue
        taken = parse_time(str(started))
        if taken >= limit:
            continue
        age = (at - taken).days
        volume = str(ci.attributes.get("volume_id") or "")
        gone = volume and volume not in live_volumes
        detail = f"{age} days old" + (f"; its volume {volume} no longer exists" if gone else "")
        found.append(_recommend(STALE_SNAPSHOT, ci, detail, prices, age_days=age))
    return found


def recommend(
    store: Store,
    *,
    settings: OptimisationSettings | None = None,
    cpu: Sequence[CpuSource] = (),
    prices: PriceTable | None = None,
    at: datetime | None = None,
    kinds: Sequence[str] = KINDS,
) -> list[Recommendation]:
    """Every optimisation recommendation, the costliest first.

    ``cpu`` are CPU readers tried in order (e.g. a :class:`CloudWatchCpu`);
    the ``cpu_avg_percent`` attribute is always tried last.
    """
    settings = settings or OptimisationSettings()
    prices = prices or load_prices()
    at = at or now()
    found: list[Recommendation] = []
    if IDLE in kinds:
        found += _idle(store, settings, [*cpu, attribute_cpu], prices)
    if UNATTACHED in kinds:
        found += _unattached(store, prices)
    if UNUSED_IP in kinds:
        found += _unused_ips(store, prices)
    if NO_HEALTHY_TARGETS in kinds:
        found += _lbs_without_targets(store, prices)
    if STALE_SNAPSHOT in kinds:
        found += _stale_snapshots(store, settings, at, prices)
    found.sort(key=lambda r: (-(r.monthly_cost or 0.0), r.kind, r.ci_id))
    log.info("optimisation: %d recommendations", len(found))
    return found


def mark_for_optimisation(engine: SyncEngine, recommendations: Sequence[Recommendation], *, actor: str = "optimisation") -> int:
    """Move active CIs with a recommendation to the ``optimise`` lifecycle state (a change record each)."""
    marked = 0
    current = engine.store.get_cis([r.ci_id for r in recommendations])
    for rec in recommendations:
        ci = current.get(rec.ci_id)
        if ci is not None and ci.lifecycle_state == "active":
            engine.set_fields(rec.ci_id, actor=f"{actor}: {rec.kind}", lifecycle_state="optimise")
            marked += 1
    return marked
