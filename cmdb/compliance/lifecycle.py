"""Asset lifecycle: planned -> provisioned -> active (-> optimise) -> retired -> disposed.

A person moves a CI with :func:`set_state` (``cmdb lifecycle set ID STATE
--reason``): the transition is a change record (kind ``ci.lifecycle``) whose
actor is who did it, and the reason is kept beside it (document kind
``lifecycle.reason``, keyed by CI and time). Syncs make their own transitions
(stale when unseen in a complete sweep, retired after the grace period) with
the sync run as their cause; :func:`transitions` lists both kinds together.

Hand-kept assets (laptops, servers, network gear, storage arrays) come from
files through the file connector, with ``serial_number``, ``model``,
``assigned_user``, ``location``, ``purchase_date`` and ``warranty_end``
attributes; :func:`warranties_ending` lists the warranties that end soon.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from cmdb.compliance.errors import ComplianceError
from cmdb.errors import CmdbError, NotFound
from cmdb.model import now, parse_time
from cmdb.store.base import ChangeFilter, CIFilter, Store
from cmdb.sync import SyncEngine
from cmdb.vocabulary import vocabulary

__all__ = ["ALLOWED", "REASON_KIND", "Transition", "set_state", "transitions", "warranties_ending"]

log = logging.getLogger(__name__)

REASON_KIND = "lifecycle.reason"

ALLOWED: dict[str, frozenset[str]] = {
    "planned": frozenset({"provisioned", "active", "retired"}),
    "provisioned": frozenset({"active", "retired"}),
    "active": frozenset({"optimise", "retired"}),
    "optimise": frozenset({"active", "retired"}),
    "stale": frozenset({"active", "retired"}),
    "retired": frozenset({"disposed", "active"}),
    "disposed": frozenset(),
}
"""The transitions a person may make without --force."""


@dataclass(frozen=True, slots=True)
class Transition:
    ci_id: str
    at: datetime
    before: str
    after: str
    actor: str
    reason: str = ""
    sync_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ci_id": self.ci_id,
            "at": self.at.isoformat(),
            "before": self.before,
            "after": self.after,
            "actor": self.actor or self.sync_id,
            "reason": self.reason or ("sync " + self.sync_id if self.sync_id else ""),
        }


def _reason_key(ci_id: str, at: datetime) -> str:
    return f"{ci_id}|{at.isoformat()}"


def set_state(
    engine: SyncEngine,
    ci_id: str,
    state: str,
    *,
    reason: str,
    actor: str,
    force: bool = False,
) -> Transition:
    """Move ``ci_id`` to ``state``, recording who and why."""
    if state not in vocabulary().lifecycle_states:
        raise ComplianceError(f"{state!r} is not a lifecycle state ({', '.join(vocabulary().lifecycle_states)})")
    if not reason.strip():
        raise ComplianceError("a lifecycle change needs a reason")
    store = engine.store
    with store.transaction():
        found = store.get_cis([ci_id])
        if ci_id not in found:
            raise NotFound(f"no CI with id {ci_id!r}")
        before = found[ci_id].lifecycle_state
        if before == state:
            raise ComplianceError(f"{ci_id} is already {state}")
        if state not in ALLOWED.get(before, frozenset()) and not force:
            allowed = ", ".join(sorted(ALLOWED.get(before, ()))) or "nothing"
            raise ComplianceError(
                f"{ci_id} cannot go from {before} to {state} (from {before}: {allowed})",
                hint="pass --force if this is really what happened",
            )
        engine.set_fields(ci_id, actor=actor, lifecycle_state=state)
        at = _last_transition_time(store, ci_id)
        store.put_document(
            REASON_KIND, _reason_key(ci_id, at), {"ci_id": ci_id, "at": at.isoformat(), "reason": reason.strip(), "actor": actor}
        )
    log.info("%s: %s -> %s by %s (%s)", ci_id, before, state, actor, reason)
    return Transition(ci_id, at, before, state, actor, reason.strip())


def _last_transition_time(store: Store, ci_id: str) -> datetime:
    latest: datetime | None = None
    for change in store.iter_changes(ChangeFilter(ci_ids=(ci_id,), kinds=("ci.lifecycle",))):
        if latest is None or change.at >= latest:
            latest = change.at
    return latest or now()


def transitions(store: Store, ci_id: str) -> list[Transition]:
    """Every lifecycle transition of ``ci_id``, oldest first, with the reason a person gave."""
    found: list[Transition] = []
    for change in store.iter_changes(ChangeFilter(ci_ids=(ci_id,), kinds=("ci.lifecycle",))):
        if change.rel_type:
            continue
        doc = store.get_document(REASON_KIND, _reason_key(ci_id, change.at)) if change.actor else None
        found.append(
            Transition(
                ci_id,
                change.at,
                str(change.before or ""),
                str(change.after or ""),
                change.actor,
                doc["reason"] if doc else "",
                change.sync_id,
            )
        )
    return sorted(found, key=lambda t: t.at)


def warranties_ending(store: Store, days: int = 90, at: datetime | None = None) -> list[dict[str, Any]]:
    """Hardware whose ``warranty_end`` is within ``days`` (or past), soonest first."""
    today = (at or now()).date()
    rows: list[dict[str, Any]] = []
    types = tuple(vocabulary().types_of_class("hardware"))
    for ci in store.iter_cis(CIFilter(types=types, lifecycle_states=("planned", "provisioned", "active", "optimise"))):
        end = ci.attributes.get("warranty_end")
        if not end:
            continue
        try:
            ends: date = parse_time(str(end)).date()
        except CmdbError:  # a hand-typed date that is not one: reported, not fatal
            log.warning("%s: warranty_end %r is not a date", ci.id, end)
            continue
        left = (ends - today).days
        if left <= days:
            rows.append(
                {
                    "id": ci.id,
                    "type": ci.type,
                    "name": ci.name,
                    "serial_number": ci.attributes.get("serial_number", ""),
                    "model": ci.attributes.get("model", ""),
                    "assigned_user": ci.attributes.get("assigned_user", ""),
                    "location": ci.attributes.get("location", ""),
                    "warranty_end": ends.isoformat(),
                    "days_left": left,
                }
            )
    rows.sort(key=lambda r: int(r["days_left"]))
    return rows
