"""Waivers: a finding's risk accepted, with a justification, an approver and an expiry.

A waiver is kept beside the finding (document kind ``compliance.waiver``,
under the finding's key). While it holds, the finding is *waived*, not open;
when it expires (or is revoked) the next evaluation re-raises the finding,
which alerts like a new one. Every waiver stays on record.
"""

from __future__ import annotations

import logging
from datetime import datetime

from cmdb.compliance.errors import ComplianceError
from cmdb.compliance.findings import FINDING_KIND, WAIVER_KIND, Finding, Waiver, get_finding
from cmdb.model import now
from cmdb.store.base import Store

__all__ = ["list_waivers", "revoke", "waive"]

log = logging.getLogger(__name__)


def waive(
    store: Store,
    finding_key: str,
    *,
    justification: str,
    approver: str,
    expires: datetime,
    actor: str,
    at: datetime | None = None,
) -> Waiver:
    """Waive the finding ``finding_key`` until ``expires``."""
    at = at or now()
    if not justification.strip():
        raise ComplianceError("a waiver needs a justification")
    if not approver.strip():
        raise ComplianceError("a waiver needs an approver")
    if expires <= at:
        raise ComplianceError(f"the expiry {expires.isoformat()} is not in the future")
    finding: Finding = get_finding(store, finding_key)
    if finding.status == "resolved":
        raise ComplianceError(f"finding {finding_key} is resolved; there is nothing to waive")
    made = Waiver(finding_key, justification.strip(), approver.strip(), expires, at, actor)
    with store.transaction():
        old = store.get_document(WAIVER_KIND, finding_key)
        if old is not None:
            store.put_document(f"{WAIVER_KIND}.history", f"{finding_key}|{old['created_at']}", old)
        store.put_document(WAIVER_KIND, finding_key, made.to_doc())
        finding.status = "waived"
        store.put_document(FINDING_KIND, finding_key, finding.to_doc())
    log.info("finding %s waived by %s until %s (approver %s)", finding_key, actor, expires.isoformat(), approver)
    return made


def revoke(store: Store, finding_key: str, *, actor: str, at: datetime | None = None) -> Waiver:
    at = at or now()
    doc = store.get_document(WAIVER_KIND, finding_key)
    if doc is None:
        raise ComplianceError(f"finding {finding_key} has no waiver")
    waiver = Waiver.from_doc(doc)
    waiver.revoked_at, waiver.revoked_by = at, actor
    with store.transaction():
        store.put_document(WAIVER_KIND, finding_key, waiver.to_doc())
    return waiver


def list_waivers(store: Store, *, include_inactive: bool = False, at: datetime | None = None) -> list[tuple[Waiver, str]]:
    """Waivers with their state (``active``, ``expired``, ``revoked``), soonest expiry first."""
    at = at or now()
    found: list[tuple[Waiver, str]] = []
    for _, doc in store.list_documents(WAIVER_KIND):
        waiver = Waiver.from_doc(doc)
        state = "revoked" if waiver.revoked_at else "active" if waiver.active(at) else "expired"
        if state == "active" or include_inactive:
            found.append((waiver, state))
    found.sort(key=lambda item: item[0].expires)
    return found
