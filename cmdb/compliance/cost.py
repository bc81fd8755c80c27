"""Cost: an estimated monthly cost per CI from a price table, rolled up.

The bundled table (``prices.yaml``) holds list prices for common instance,
volume and database classes; a file of the same shape (``CMDB_PRICES`` or
``--prices``) overrides entries. An estimate says what it was made of
(``basis``); a CI whose class has no price has no estimate (never a guess).

Roll-ups sum estimates by owner, cost centre, environment and business
service (every CI a ``service.business`` CI needs, walked along its
dependencies; a CI shared by two services counts in both, and is marked).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cmdb.compliance.errors import RuleError
from cmdb.model import CI
from cmdb.store.base import CIFilter, RelFilter, Store

__all__ = ["Estimate", "PriceTable", "Rollup", "estimate", "load_prices", "rollup"]

log = logging.getLogger(__name__)

_LIVE = ("provisioned", "active", "optimise")
_STOPPED = frozenset({"stopped", "stopping", "terminated", "deallocated", "vm deallocated", "suspended"})


@dataclass(frozen=True, slots=True)
class PriceTable:
    currency: str
    hours_per_month: float
    compute_hour: dict[str, dict[str, float]]
    storage_gb_month: dict[str, dict[str, float]]
    fixed_month: dict[str, dict[str, float]]


def _section(data: dict[str, Any], name: str, origin: str) -> dict[str, dict[str, float]]:
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise RuleError(f"{origin}: {name} must map CI types to price tables")
    parsed: dict[str, dict[str, float]] = {}
    for type_name, table in section.items():
        if not isinstance(table, dict):
            raise RuleError(f"{origin}: {name}.{type_name} must map classes to prices")
        try:
            parsed[str(type_name)] = {str(k): float(v) for k, v in table.items()}
        except (TypeError, ValueError):
            raise RuleError(f"{origin}: {name}.{type_name} has a price that is not a number") from None
    return parsed


@functools.cache
def _bundled() -> PriceTable:
    data = yaml.safe_load((resources.files("cmdb.compliance") / "prices.yaml").read_text(encoding="utf-8"))
    return PriceTable(
        str(data["currency"]),
        float(data["hours_per_month"]),
        _section(data, "compute_hour", "prices.yaml"),
        _section(data, "storage_gb_month", "prices.yaml"),
        _section(data, "fixed_month", "prices.yaml"),
    )


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The bundled price table, with the entries of ``path`` (or ``CMDB_PRICES``) replacing its own."""
    path = path or os.environ.get("CMDB_PRICES") or None
    base = _bundled()
    if path is None:
        return base
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RuleError(f"{path}: cannot read the price table: {exc}") from None
    if not isinstance(data, dict):
        raise RuleError(f"{path}: expected a mapping")

    def merged(name: str, ours: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        result = {k: dict(v) for k, v in ours.items()}
        for type_name, table in _section(data, name, str(path)).items():
            result.setdefault(type_name, {}).update(table)
        return result

    return PriceTable(
        str(data.get("currency", base.currency)),
        float(data.get("hours_per_month", base.hours_per_month)),
        merged("compute_hour", base.compute_hour),
        merged("storage_gb_month", base.storage_gb_month),
        merged("fixed_month", base.fixed_month),
    )


@dataclass(frozen=True, slots=True)
class Estimate:
    monthly: float
    basis: str


def _leaf(value: Any) -> str:
    """The last path segment: GCP gives machine and disk types as URLs."""
    return str(value).rstrip("/").rsplit("/", 1)[-1] if value else ""


_COMPUTE_CLASS = ("instance_type", "instance_class", "machine_type", "vm_size", "tier")
_STORAGE_CLASS = ("volume_type", "disk_type", "sku", "storage_class")
_SIZE = ("size_gb", "allocated_storage_gb")
_FIXED_CLASS = ("lb_type", "sku")


def _lookup(table: dict[str, float], key: str) -> tuple[float, str] | None:
    if key and key in table:
        return table[key], key
    if "*" in table:
        return table["*"], "*"
    return None


def estimate(ci: CI, prices: PriceTable) -> Estimate | None:
    """The estimated monthly cost of ``ci``, or None when no price applies."""
    attrs = ci.attributes
    total = 0.0
    parts: list[str] = []
    compute = prices.compute_hour.get(ci.type)
    if compute:
        klass = next((_leaf(attrs[k]) for k in _COMPUTE_CLASS if attrs.get(k)), "")
        state = str(attrs.get("state") or attrs.get("status") or attrs.get("power_state") or "").lower()
        found = _lookup(compute, klass)
        if found is not None and state not in _STOPPED:
            hourly, key = found
            total += hourly * prices.hours_per_month
            parts.append(f"{key} {hourly:g}/h x {prices.hours_per_month:g} h")
        elif found is not None:
            parts.append(f"{found[1]} stopped: no compute charge")
    storage = prices.storage_gb_month.get(ci.type)
    if storage:
        size = next((attrs[k] for k in _SIZE if isinstance(attrs.get(k), (int, float))), None)
        klass = next((_leaf(attrs[k]) for k in _STORAGE_CLASS if attrs.get(k)), "")
        found = _lookup(storage, klass)
        if size is not None and found is not None:
            per_gb, key = found
            total += per_gb * float(size)
            parts.append(f"{size:g} GB {key} x {per_gb:g}/GB-month")
    fixed = prices.fixed_month.get(ci.type)
    if fixed:
        klass = next((str(attrs[k]) for k in _FIXED_CLASS if attrs.get(k)), "")
        found = _lookup(fixed, klass)
        if found is not None:
            total += found[0]
            parts.append(f"{found[1]} {found[0]:g}/month")
    if ci.type == "software.licence" and isinstance(attrs.get("annual_cost"), (int, float)):
        total += float(attrs["annual_cost"]) / 12
        parts.append(f"licence {float(attrs['annual_cost']):g}/year")
    if not parts:
        return None
    return Estimate(round(total, 2), "; ".join(parts))


@dataclass(slots=True)
class Rollup:
    currency: str
    total: float = 0.0
    priced: int = 0
    unpriced: int = 0
    by: dict[str, dict[str, float]] = field(default_factory=dict)  # dimension -> value -> monthly
    per_ci: dict[str, Estimate] = field(default_factory=dict)
    shared: dict[str, list[str]] = field(default_factory=dict)  # ci id -> services that share it

    def rows(self, dimension: str) -> list[dict[str, Any]]:
        values = self.by.get(dimension, {})
        return [
            {dimension: key or "(none)", "monthly": round(amount, 2), "share_pct": round(100 * amount / self.total, 1) if self.total else 0.0}
            for key, amount in sorted(values.items(), key=lambda kv: -kv[1])
        ]


DIMENSIONS: tuple[str, ...] = ("owner", "cost_centre", "environment", "business_service")


# Edges along which a service needs (and so pays for) what is below it.
_NEEDS = ("DEPENDS_ON", "RUNS_ON", "ROUTES_TO", "COMPOSED_OF", "CONTAINED_IN")


def _service_members(store: Store, depth: int) -> dict[str, list[str]]:
    """CI id -> the business services that need it (walked along dependencies)."""
    members: dict[str, list[str]] = {}
    services = list(store.iter_cis(CIFilter(types=("service.business",), lifecycle_states=_LIVE)))
    if not services:
        return members
    # One pass over the edges, then a walk per service in memory (a store walk per service costs
    # a query per level and builds paths nobody reads here).
    below: dict[str, list[str]] = {}
    for rel in store.iter_relationships(RelFilter(types=_NEEDS, lifecycle_states=("active",))):
        if rel.review != "rejected":
            below.setdefault(rel.from_id, []).append(rel.to_id)
    for service in services:
        label = service.name or service.id
        seen = {service.id}
        frontier = [service.id]
        for _ in range(depth):
            reached: list[str] = []
            for ci_id in frontier:
                for target in below.get(ci_id, ()):
                    if target not in seen:
                        seen.add(target)
                        reached.append(target)
            if not reached:
                break
            frontier = reached
        for ci_id in seen:
            members.setdefault(ci_id, []).append(label)
    return members


def rollup(
    store: Store,
    prices: PriceTable | None = None,
    *,
    dimensions: Sequence[str] = DIMENSIONS,
    service_depth: int = 8,
    cis: Iterable[CI] | None = None,
) -> Rollup:
    """Estimated monthly cost of every live CI, summed by each dimension."""
    prices = prices or load_prices()
    result = Rollup(prices.currency, by={d: {} for d in dimensions})
    services = _service_members(store, service_depth) if "business_service" in dimensions else {}
    for ci in cis if cis is not None else store.iter_cis(CIFilter(lifecycle_states=_LIVE)):
        found = estimate(ci, prices)
        if found is None:
            result.unpriced += 1
            continue
        result.priced += 1
        result.total += found.monthly
        result.per_ci[ci.id] = found
        for dimension in dimensions:
            if dimension == "business_service":
                names = services.get(ci.id) or [""]
                if len(names) > 1:
                    result.shared[ci.id] = names
                for name in names:
                    bucket = result.by[dimension]
                    bucket[name] = bucket.get(name, 0.0) + found.monthly
            else:
                key = str(getattr(ci, dimension, ""))
                bucket = result.by[dimension]
                bucket[key] = bucket.get(key, 0.0) + found.monthly
    result.total = round(result.total, 2)
    log.debug("cost rollup: %d priced, %d unpriced, %.2f %s/month", result.priced, result.unpriced, result.total, result.currency)
    return result
