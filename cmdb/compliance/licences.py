"""Licences: entitlements against installations, per product; renewals coming up.

Entitlements are ``software.licence`` CIs (kept in files, swept by the file
connector): vendor, product, metric (``per-user``, ``per-device`` or
``per-core``), count, renewal date, and optionally ``image_patterns`` (globs
over container images) for software that runs in Kubernetes.

Installations are ``software.product`` CIs (matched by product name, and by
vendor when both say one) and Kubernetes workloads whose images match an
entitlement's patterns. Consumption is counted by the metric:

- per-device: distinct machines (what the installation ``RUNS_ON``, else the
  installation itself); a Kubernetes workload counts its replicas;
- per-user: distinct users (the installation's ``assigned_user``, else its
  machine's, else one per installation);
- per-core: cores per distinct machine (the installation's ``cores``, else
  the machine's ``cpu_cores``); machines with no core count are reported.

The position per product is *under-licensed* (a shortfall), *over-licensed*
(a surplus) or *compliant*; products installed with no entitlement at all are
listed as *unlicensed*.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from cmdb.errors import CmdbError
from cmdb.model import CI, now, parse_time
from cmdb.store.base import CIFilter, Store

__all__ = ["METRICS", "Position", "Renewal", "licence_positions", "renewals"]

log = logging.getLogger(__name__)

METRICS = ("per-user", "per-device", "per-core")
_LIVE = ("planned", "provisioned", "active", "optimise")
_WORKLOADS = ("k8s.deployment", "k8s.statefulset", "k8s.daemonset")

Status = Literal["under-licensed", "over-licensed", "compliant", "unlicensed"]


def _norm(text: Any) -> str:
    return " ".join(str(text or "").lower().split())


def _metric(value: Any) -> str:
    text = _norm(value).replace("_", "-").replace(" ", "-")
    aliases = {"user": "per-user", "named-user": "per-user", "device": "per-device", "server": "per-device",
               "core": "per-core", "processor-core": "per-core", "per-processor": "per-core"}
    return aliases.get(text, text)


@dataclass(slots=True)
class Position:
    product: str
    vendor: str
    metric: str
    entitled: int
    consumed: int
    licences: list[str] = field(default_factory=list)
    installations: list[str] = field(default_factory=list)
    unknown_cores: list[str] = field(default_factory=list)  # machines counted without a core count

    @property
    def delta(self) -> int:
        """Entitled minus consumed: negative is a shortfall."""
        return self.entitled - self.consumed

    @property
    def status(self) -> Status:
        if not self.licences:
            return "unlicensed"
        if self.consumed > self.entitled:
            return "under-licensed"
        if self.consumed < self.entitled:
            return "over-licensed"
        return "compliant"

    def as_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "vendor": self.vendor,
            "metric": self.metric,
            "entitled": self.entitled,
            "consumed": self.consumed,
            "delta": self.delta,
            "status": self.status,
            "utilisation_pct": round(100.0 * self.consumed / self.entitled, 1) if self.entitled else None,
            "licences": self.licences,
            "installations": len(self.installations),
            "unknown_cores": self.unknown_cores,
        }


def _devices(store: Store, installations: list[CI]) -> dict[str, CI]:
    """Installation id -> the machine it runs on."""
    rels = [r for r in store.relationships([i.id for i in installations], "out", types=("RUNS_ON",)) if r.lifecycle_state == "active"]
    machines = store.get_cis(list({r.to_id for r in rels}))
    return {r.from_id: machines[r.to_id] for r in rels if r.to_id in machines}


def _replicas(ci: CI) -> int:
    for key in ("replicas", "desired"):
        value = ci.attributes.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 1


def licence_positions(store: Store) -> list[Position]:
    """The compliance position of every licensed or installed product, worst shortfall first."""
    licences = list(store.iter_cis(CIFilter(types=("software.licence",), lifecycle_states=_LIVE)))
    products: dict[tuple[str, str], Position] = {}  # (product, metric) -> position
    by_product: dict[str, list[tuple[str, str]]] = {}
    patterns: list[tuple[str, tuple[str, str]]] = []
    vendors: dict[str, str] = {}
    for lic in licences:
        attrs = lic.attributes
        product = str(attrs.get("product") or lic.name)
        metric = _metric(attrs.get("metric") or "per-device")
        key = (_norm(product), metric)
        position = products.setdefault(key, Position(product, str(attrs.get("vendor") or ""), metric, 0, 0))
        count = attrs.get("count")
        position.entitled += count if isinstance(count, int) and not isinstance(count, bool) else 0
        position.licences.append(lic.id)
        by_product.setdefault(key[0], []).append(key)
        if position.vendor:
            vendors[key[0]] = _norm(position.vendor)
        for pattern in attrs.get("image_patterns") or []:
            patterns.append((str(pattern), key))

    installations = list(store.iter_cis(CIFilter(types=("software.product",), lifecycle_states=_LIVE)))
    machines = _devices(store, installations) if installations else {}
    seen_units: dict[tuple[str, str], set[str]] = {}
    unlicensed: dict[str, Position] = {}
    for inst in installations:
        attrs = inst.attributes
        name = _norm(attrs.get("product") or inst.name)
        vendor = _norm(attrs.get("vendor"))
        keys = by_product.get(name, [])
        if keys and vendor and name in vendors and vendors[name] != vendor:
            keys = []  # the same product name from another vendor
        if not keys:
            position = unlicensed.setdefault(name, Position(str(attrs.get("product") or inst.name), str(attrs.get("vendor") or ""), "", 0, 0))
            position.installations.append(inst.id)
            position.consumed += 1
            continue
        machine = machines.get(inst.id)
        for key in keys:
            position = products[key]
            position.installations.append(inst.id)
            units = seen_units.setdefault(key, set())
            if key[1] == "per-user":
                user = attrs.get("assigned_user") or (machine.attributes.get("assigned_user") if machine else None)
                unit = f"user:{user}" if user else f"installation:{inst.id}"
                if unit not in units:
                    units.add(unit)
                    position.consumed += 1
            elif key[1] == "per-core":
                device = machine.id if machine else inst.id
                if f"device:{device}" in units:
                    continue
                units.add(f"device:{device}")
                cores = attrs.get("cores")
                if not isinstance(cores, int) and machine is not None:
                    cores = machine.attributes.get("cpu_cores", machine.attributes.get("cores"))
                if isinstance(cores, int) and not isinstance(cores, bool):
                    position.consumed += cores
                else:
                    position.unknown_cores.append(device)
            else:
                device = machine.id if machine else inst.id
                if f"device:{device}" not in units:
                    units.add(f"device:{device}")
                    position.consumed += 1

    if patterns:
        for workload in store.iter_cis(CIFilter(types=_WORKLOADS, lifecycle_states=_LIVE)):
            images = [str(i) for i in workload.attributes.get("images") or []]
            matched = {key for pattern, key in patterns for image in images if fnmatch.fnmatchcase(image, pattern)}
            for key in matched:
                position = products[key]
                position.installations.append(workload.id)
                position.consumed += _replicas(workload)

    found = [*products.values(), *unlicensed.values()]
    found.sort(key=lambda p: (p.status != "under-licensed", p.delta if p.status == "under-licensed" else 0, p.product))
    return found


@dataclass(frozen=True, slots=True)
class Renewal:
    ci_id: str
    ci_type: str
    name: str
    vendor: str
    renews: date
    days_left: int
    notice_by: date | None
    annual_value: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ci_id": self.ci_id,
            "type": self.ci_type,
            "name": self.name,
            "vendor": self.vendor,
            "renews": self.renews.isoformat(),
            "days_left": self.days_left,
            "notice_by": self.notice_by.isoformat() if self.notice_by else None,
            "annual_value": self.annual_value,
        }


def renewals(store: Store, days: int = 90, at: datetime | None = None, types: Iterable[str] = ("software.licence", "commercial.contract")) -> list[Renewal]:
    """Licences and contracts renewing (or ending) within ``days``, soonest first; overdue ones too."""
    today = (at or now()).date()
    found: list[Renewal] = []
    for ci in store.iter_cis(CIFilter(types=tuple(types), lifecycle_states=_LIVE)):
        attrs = ci.attributes
        when = attrs.get("renewal_date") or attrs.get("end_date")
        if not when:
            continue
        try:
            renews = parse_time(str(when)).date()
        except CmdbError:
            log.warning("%s: renewal date %r is not a date", ci.id, when)
            continue
        left = (renews - today).days
        if left > days:
            continue
        notice = attrs.get("notice_days")
        value = attrs.get("annual_value", attrs.get("annual_cost"))
        found.append(
            Renewal(
                ci.id,
                ci.type,
                ci.name or ci.id,
                str(attrs.get("vendor") or ""),
                renews,
                left,
                renews - timedelta(days=notice) if isinstance(notice, int) else None,
                float(value) if isinstance(value, (int, float)) else None,
            )
        )
    found.sort(key=lambda r: (r.renews, r.ci_id))
    return found
