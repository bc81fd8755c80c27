"""Vendors and contracts: what is covered by what, what ends soon, what is not covered.

``commercial.vendor`` and ``commercial.contract`` CIs come from files. A
contract names its vendor (``MEMBER_OF`` edge to the vendor CI, or the
``vendor`` attribute); CIs it covers point at it with ``COVERED_BY``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from cmdb.errors import CmdbError
from cmdb.model import CI, now, parse_time
from cmdb.store.base import CIFilter, Store
from cmdb.vocabulary import vocabulary

__all__ = ["ContractRow", "contracts", "uncovered_hardware", "vendor_spend"]

log = logging.getLogger(__name__)

_LIVE = ("planned", "provisioned", "active", "optimise")


def _date(ci: CI, name: str) -> date | None:
    value = ci.attributes.get(name)
    if not value:
        return None
    try:
        return parse_time(str(value)).date()
    except CmdbError:
        log.warning("%s: %s %r is not a date", ci.id, name, value)
        return None


@dataclass(frozen=True, slots=True)
class ContractRow:
    ci_id: str
    name: str
    vendor: str
    contract_type: str
    start: date | None
    end: date | None
    renewal: date | None
    annual_value: float | None
    covered: tuple[str, ...]
    status: str  # active, expiring (within 90 days), expired, not-started

    def as_dict(self) -> dict[str, Any]:
        return {
            "ci_id": self.ci_id,
            "name": self.name,
            "vendor": self.vendor,
            "contract_type": self.contract_type,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "renewal": self.renewal.isoformat() if self.renewal else None,
            "annual_value": self.annual_value,
            "covered": len(self.covered),
            "status": self.status,
        }


def contracts(store: Store, at: datetime | None = None, expiring_days: int = 90) -> list[ContractRow]:
    """Every live contract with its vendor, covered CIs and status; soonest end first."""
    today = (at or now()).date()
    found = list(store.iter_cis(CIFilter(types=("commercial.contract",), lifecycle_states=_LIVE)))
    if not found:
        return []
    ids = [c.id for c in found]
    covered: dict[str, list[str]] = {}
    for rel in store.relationships(ids, "in", types=("COVERED_BY",)):
        if rel.lifecycle_state == "active":
            covered.setdefault(rel.to_id, []).append(rel.from_id)
    vendor_edges = {r.from_id: r.to_id for r in store.relationships(ids, "out", types=("MEMBER_OF",)) if r.lifecycle_state == "active"}
    vendors = store.get_cis(list(set(vendor_edges.values())))
    rows: list[ContractRow] = []
    for ci in found:
        start, end, renewal = _date(ci, "start_date"), _date(ci, "end_date"), _date(ci, "renewal_date")
        vendor_ci = vendors.get(vendor_edges.get(ci.id, ""))
        vendor = (vendor_ci.name if vendor_ci else "") or str(ci.attributes.get("vendor") or "")
        if end is not None and end < today:
            status = "expired"
        elif start is not None and start > today:
            status = "not-started"
        elif end is not None and (end - today).days <= expiring_days:
            status = "expiring"
        else:
            status = "active"
        value = ci.attributes.get("annual_value")
        rows.append(
            ContractRow(
                ci.id, ci.name or ci.id, vendor, str(ci.attributes.get("contract_type") or ""), start, end, renewal,
                float(value) if isinstance(value, (int, float)) else None, tuple(sorted(covered.get(ci.id, []))), status,
            )
        )
    rows.sort(key=lambda r: (r.end or date.max, r.ci_id))
    return rows


def vendor_spend(rows: list[ContractRow]) -> list[dict[str, Any]]:
    """Annual contract value per vendor (live contracts only)."""
    spend: dict[str, float] = {}
    count: dict[str, int] = {}
    for row in rows:
        if row.status in ("expired",):
            continue
        spend[row.vendor or "(unknown)"] = spend.get(row.vendor or "(unknown)", 0.0) + (row.annual_value or 0.0)
        count[row.vendor or "(unknown)"] = count.get(row.vendor or "(unknown)", 0) + 1
    return [{"vendor": v, "contracts": count[v], "annual_value": round(a, 2)} for v, a in sorted(spend.items(), key=lambda kv: -kv[1])]


def uncovered_hardware(store: Store, at: datetime | None = None) -> list[dict[str, Any]]:
    """Live hardware with no support contract, or only expired ones."""
    rows = {r.ci_id: r for r in contracts(store, at)}
    hardware = list(store.iter_cis(CIFilter(types=tuple(vocabulary().types_of_class("hardware")), lifecycle_states=_LIVE)))
    cover: dict[str, list[str]] = {}
    for rel in store.relationships([h.id for h in hardware], "out", types=("COVERED_BY",)):
        if rel.lifecycle_state == "active":
            cover.setdefault(rel.from_id, []).append(rel.to_id)
    found: list[dict[str, Any]] = []
    for ci in hardware:
        live = [c for c in cover.get(ci.id, []) if c in rows and rows[c].status != "expired"]
        if not live:
            expired = [c for c in cover.get(ci.id, []) if c in rows]
            found.append({"ci_id": ci.id, "type": ci.type, "name": ci.name, "owner": ci.owner,
                          "reason": "contract expired: " + ", ".join(expired) if expired else "no contract"})
    return found
