"""Findings: what the rules found, kept with first/last seen and resolved times.

One evaluation walks the store once (streamed, in batches), runs every rule on
the CIs it applies to and reconciles the result with the stored findings:

- a finding seen for the first time is *new* (``first_seen`` = now);
- one seen again gets ``last_seen`` = now (a resolved one that fires again is
  *reopened*, keeping its first ``first_seen``);
- an open finding of an evaluated rule that no longer fires is *resolved*
  (``resolved_at`` = now): the CI was fixed, went stale or was retired;
- a firing finding under a waiver that has not expired is *waived*; when the
  waiver expires it is *re-raised*.

Findings live in the store's document facility (kind ``compliance.finding``,
key ``<rule id>|<ci id>``); each evaluation also leaves a summary (kind
``compliance.evaluation``) from which reports draw trends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from cmdb.compliance.checks import CHECKS, CheckContext
from cmdb.compliance.errors import ComplianceError, FindingNotFound
from cmdb.compliance.rules import Rule, load_rules, matches, severity_rank
from cmdb.model import CI, now, parse_time
from cmdb.store.base import CIFilter, Store

__all__ = [
    "EVALUATION_KIND",
    "FINDING_KIND",
    "WAIVER_KIND",
    "EvaluationReport",
    "Finding",
    "FindingStatus",
    "Waiver",
    "evaluate",
    "finding_key",
    "list_findings",
    "open_findings",
]

log = logging.getLogger(__name__)

FINDING_KIND = "compliance.finding"
INDEX_KIND = "compliance.finding_index"  # ci id -> keys of its findings, for lookups by CI
WAIVER_KIND = "compliance.waiver"
EVALUATION_KIND = "compliance.evaluation"
BATCH = 2000

FindingStatus = Literal["open", "waived", "resolved"]


def finding_key(rule_id: str, ci_id: str) -> str:
    return f"{rule_id}|{ci_id}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    return parse_time(value) if value else None


@dataclass(slots=True)
class Waiver:
    """An accepted risk: a finding is not open while its waiver holds."""

    finding: str  # the finding's key
    justification: str
    approver: str
    expires: datetime
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str = ""

    def active(self, at: datetime) -> bool:
        return self.revoked_at is None and at < self.expires

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        for name in ("expires", "created_at", "revoked_at"):
            doc[name] = _iso(getattr(self, name))
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Waiver:
        return cls(
            finding=doc["finding"],
            justification=doc["justification"],
            approver=doc["approver"],
            expires=parse_time(doc["expires"]),
            created_at=parse_time(doc["created_at"]),
            created_by=doc.get("created_by", ""),
            revoked_at=_time(doc.get("revoked_at")),
            revoked_by=doc.get("revoked_by", ""),
        )


@dataclass(slots=True)
class Finding:
    rule_id: str
    rule_version: int
    title: str
    severity: str
    ci_id: str
    ci_type: str
    detail: str
    first_seen: datetime
    last_seen: datetime
    ci_name: str = ""
    provider: str = ""
    scope: str = ""
    owner: str = ""
    controls: tuple[str, ...] = ()
    resolved_at: datetime | None = None
    reopened_at: datetime | None = None
    reraised_at: datetime | None = None
    status: FindingStatus = "open"
    waiver: Waiver | None = None

    @property
    def key(self) -> str:
        return finding_key(self.rule_id, self.ci_id)

    def to_doc(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "rule_version": self.rule_version,
            "title": self.title,
            "severity": self.severity,
            "ci_id": self.ci_id,
            "ci_type": self.ci_type,
            "ci_name": self.ci_name,
            "provider": self.provider,
            "scope": self.scope,
            "owner": self.owner,
            "controls": list(self.controls),
            "detail": self.detail,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "resolved_at": _iso(self.resolved_at),
            "reopened_at": _iso(self.reopened_at),
            "reraised_at": _iso(self.reraised_at),
            "status": self.status,
        }

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record (with the waiver, when there is one)."""
        doc = self.to_doc()
        doc["key"] = self.key
        doc["waiver"] = self.waiver.to_doc() if self.waiver else None
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Finding:
        return cls(
            rule_id=doc["rule_id"],
            rule_version=int(doc.get("rule_version", 1)),
            title=doc.get("title", ""),
            severity=doc.get("severity", "info"),
            ci_id=doc["ci_id"],
            ci_type=doc.get("ci_type", ""),
            ci_name=doc.get("ci_name", ""),
            provider=doc.get("provider", ""),
            scope=doc.get("scope", ""),
            owner=doc.get("owner", ""),
            controls=tuple(doc.get("controls") or ()),
            detail=doc.get("detail", ""),
            first_seen=parse_time(doc["first_seen"]),
            last_seen=parse_time(doc["last_seen"]),
            resolved_at=_time(doc.get("resolved_at")),
            reopened_at=_time(doc.get("reopened_at")),
            reraised_at=_time(doc.get("reraised_at")),
            status=doc.get("status", "open"),
        )


@dataclass(slots=True)
class EvaluationReport:
    at: datetime
    rules: int
    cis: int
    new: list[Finding] = field(default_factory=list)
    reopened: list[Finding] = field(default_factory=list)
    reraised: list[Finding] = field(default_factory=list)
    resolved: list[Finding] = field(default_factory=list)
    open: list[Finding] = field(default_factory=list)
    waived: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        by_severity: dict[str, int] = {}
        for finding in self.open:
            by_severity[finding.severity] = by_severity.get(finding.severity, 0) + 1
        by_rule: dict[str, int] = {}
        for finding in self.open:
            by_rule[finding.rule_id] = by_rule.get(finding.rule_id, 0) + 1
        return {
            "at": self.at.isoformat(),
            "rules": self.rules,
            "cis": self.cis,
            "open": len(self.open),
            "waived": len(self.waived),
            "new": len(self.new),
            "reopened": len(self.reopened),
            "reraised": len(self.reraised),
            "resolved": len(self.resolved),
            "open_by_severity": by_severity,
            "open_by_rule": by_rule,
        }

    @property
    def alerts(self) -> list[Finding]:
        """What is worth telling someone about now: new, reopened or re-raised findings."""
        return [*self.new, *self.reopened, *self.reraised]


def _waivers(store: Store) -> dict[str, Waiver]:
    return {key: Waiver.from_doc(doc) for key, doc in store.list_documents(WAIVER_KIND)}


def _fire(rule: Rule, ctx: CheckContext, cis: Sequence[CI]) -> dict[str, str]:
    if rule.when is not None:
        found: dict[str, str] = {}
        for ci in cis:
            reason = matches(rule.when, ci)
            if reason is not None:
                found[ci.id] = reason
        return found
    return CHECKS[rule.check](ctx, rule.params, cis)


def _owner_tags() -> tuple[str, ...]:
    from cmdb.compliance.classification import load_mapping

    return load_mapping().fields.get("owner", ())


def evaluate(
    store: Store,
    rules: Sequence[Rule] | None = None,
    *,
    at: datetime | None = None,
    rule_ids: Sequence[str] | None = None,
) -> EvaluationReport:
    """Run ``rules`` (default: the bundled ones) over the store and update the stored findings."""
    started = time.monotonic()
    at = at or now()
    rules = list(rules) if rules is not None else load_rules()
    if rule_ids:
        unknown = set(rule_ids) - {r.id for r in rules}
        if unknown:
            raise ComplianceError(f"no rule {', '.join(sorted(unknown))}", hint="list rules with 'cmdb findings --rules'")
        rules = [r for r in rules if r.id in rule_ids]
    by_type: dict[str, list[Rule]] = {}
    for rule in rules:
        for type_name in rule.types():
            by_type.setdefault(type_name, []).append(rule)
    states = tuple(sorted({s for r in rules for s in r.states}))
    ctx = CheckContext(store, at, owner_tags=_owner_tags())
    firing: dict[str, tuple[Rule, CI, str]] = {}
    seen = 0
    batch: list[CI] = []

    def run_batch(cis: list[CI]) -> None:
        per_rule: dict[str, tuple[Rule, list[CI]]] = {}
        for ci in cis:
            for rule in by_type.get(ci.type, ()):
                if ci.lifecycle_state in rule.states:
                    per_rule.setdefault(rule.id, (rule, []))[1].append(ci)
        for rule, candidates in per_rule.values():
            found = _fire(rule, ctx, candidates)
            for ci in candidates:
                if ci.id in found:
                    firing[finding_key(rule.id, ci.id)] = (rule, ci, found[ci.id])

    types = tuple(sorted(by_type))
    if types:
        for ci in store.iter_cis(CIFilter(types=types, lifecycle_states=states)):
            seen += 1
            batch.append(ci)
            if len(batch) >= BATCH:
                run_batch(batch)
                batch = []
        if batch:
            run_batch(batch)

    evaluated = {r.id for r in rules}
    report = EvaluationReport(at=at, rules=len(rules), cis=seen)
    waivers = _waivers(store)
    with store.transaction():
        stored = {key: Finding.from_doc(doc) for key, doc in store.list_documents(FINDING_KIND)}
        for key, (rule, ci, detail) in firing.items():
            before = stored.get(key)
            finding = Finding(
                rule_id=rule.id,
                rule_version=rule.version,
                title=rule.title,
                severity=rule.severity,
                ci_id=ci.id,
                ci_type=ci.type,
                ci_name=ci.name,
                provider=ci.provider,
                scope=ci.scope,
                owner=ci.owner,
                controls=tuple(str(c) for c in rule.controls),
                detail=detail,
                first_seen=before.first_seen if before else at,
                last_seen=at,
                reopened_at=before.reopened_at if before else None,
                reraised_at=before.reraised_at if before else None,
            )
            waiver = waivers.get(key)
            finding.waiver = waiver
            waived = waiver is not None and waiver.active(at)
            finding.status = "waived" if waived else "open"
            if before is None:
                report.new.append(finding)
            elif before.status == "resolved":
                finding.reopened_at = at
                report.reopened.append(finding)
            elif before.status == "waived" and not waived:
                finding.reraised_at = at
                report.reraised.append(finding)
            (report.waived if waived else report.open).append(finding)
            store.put_document(FINDING_KIND, key, finding.to_doc())
        for key, before in stored.items():
            if key in firing or before.status == "resolved" or before.rule_id not in evaluated:
                continue
            before.status = "resolved"
            before.resolved_at = at
            report.resolved.append(before)
            store.put_document(FINDING_KIND, key, before.to_doc())
        _update_index(store, set(stored) | set(firing))
        report.seconds = time.monotonic() - started
        store.put_document(EVALUATION_KIND, at.isoformat(), report.summary())
    log.info(
        "compliance evaluation: %d rules over %d CIs in %.2fs: %d open (%d new, %d resolved, %d waived)",
        len(rules),
        seen,
        report.seconds,
        len(report.open),
        len(report.new),
        len(report.resolved),
        len(report.waived),
    )
    return report


def _update_index(store: Store, keys: Iterable[str]) -> None:
    by_ci: dict[str, list[str]] = {}
    for key in keys:
        by_ci.setdefault(key.split("|", 1)[1], []).append(key)
    current = {ci_id: doc.get("keys", []) for ci_id, doc in store.list_documents(INDEX_KIND)}
    for ci_id, found in by_ci.items():
        found.sort()
        if current.get(ci_id) != found:
            store.put_document(INDEX_KIND, ci_id, {"keys": found})


def _documents(store: Store, ci_ids: set[str] | None) -> Iterable[tuple[str, dict[str, Any]]]:
    """Finding documents, all of them or (through the index) those of ``ci_ids``."""
    if ci_ids is None or len(ci_ids) > 2000:
        yield from store.list_documents(FINDING_KIND)
        return
    for ci_id in sorted(ci_ids):
        index = store.get_document(INDEX_KIND, ci_id)
        for key in (index or {}).get("keys", []):
            doc = store.get_document(FINDING_KIND, key)
            if doc is not None:
                yield key, doc


def list_findings(
    store: Store,
    *,
    statuses: Iterable[str] = ("open",),
    min_severity: str | None = None,
    rule_ids: Iterable[str] | None = None,
    ci_ids: Iterable[str] | None = None,
    at: datetime | None = None,
) -> list[Finding]:
    """Stored findings, most severe first, with their waivers.

    Status is judged at ``at`` (default now): a waived finding whose waiver
    has expired since the last evaluation is listed as open.
    """
    at = at or now()
    wanted = set(statuses)
    rules = set(rule_ids) if rule_ids else None
    cis = set(ci_ids) if ci_ids is not None else None
    floor = severity_rank(min_severity) if min_severity else -1
    waivers = _waivers(store)
    found: list[Finding] = []
    for key, doc in _documents(store, cis):
        if cis is not None and doc.get("ci_id") not in cis:
            continue
        finding = Finding.from_doc(doc)
        finding.waiver = waivers.get(key)
        if finding.status == "waived" and not (finding.waiver and finding.waiver.active(at)):
            finding.status = "open"
        elif finding.status == "open" and finding.waiver and finding.waiver.active(at):
            finding.status = "waived"
        if finding.status not in wanted and "all" not in wanted:
            continue
        if rules is not None and finding.rule_id not in rules:
            continue
        if severity_rank(finding.severity) < floor:
            continue
        found.append(finding)
    found.sort(key=lambda f: (-severity_rank(f.severity), f.rule_id, f.ci_id))
    return found


def open_findings(store: Store, ci_ids: Iterable[str] | None = None, *, at: datetime | None = None) -> list[Finding]:
    """Open (not resolved, not waived) findings, optionally only of ``ci_ids``; most severe first.

    What impact's change risk and GraphQL's ``findings`` field read.
    """
    return list_findings(store, statuses=("open",), ci_ids=list(ci_ids) if ci_ids is not None else None, at=at)


def get_finding(store: Store, key: str) -> Finding:
    doc = store.get_document(FINDING_KIND, key)
    if doc is None:
        raise FindingNotFound(f"no finding {key!r}")
    finding = Finding.from_doc(doc)
    waiver_doc = store.get_document(WAIVER_KIND, key)
    finding.waiver = Waiver.from_doc(waiver_doc) if waiver_doc else None
    return finding
