"""Rules fire on known misconfigurations and not on their fixed twins; findings keep their times."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmdb.compliance import evaluate, list_findings, load_rules, open_findings
from cmdb.compliance.errors import ComplianceError, RuleError
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .conftest import Clock, Loader
from .estates import BAD, arn, aws_ci, misconfigured_estate

REQUIRED_RULES = {
    "storage.public-bucket",
    "storage.unencrypted-volume",
    "database.unencrypted-storage",
    "network.open-admin-ports",
    "network.open-database-ports",
    "aws.rds.publicly-accessible",
    "aws.iam.role-trusts-any-principal",
    "network.lb-without-tls",
    "governance.missing-owner",
    "governance.retired-still-referenced",
}


def test_every_bundled_rule_is_exercised_by_the_known_estate() -> None:
    misconfigured_estate()
    exercised = set(BAD.values()) | {"governance.retired-still-referenced"}  # that one: its own test below
    assert {rule.id for rule in load_rules()} == exercised


def test_bundled_rules_are_declared_completely() -> None:
    rules = {rule.id: rule for rule in load_rules()}
    assert REQUIRED_RULES <= set(rules)
    for rule in rules.values():
        assert rule.version >= 1 and rule.title and rule.types()
        assert any(c.framework.startswith(("CIS", "NIST")) for c in rule.controls), rule.id


def test_every_rule_fires_on_its_misconfiguration_and_not_on_the_fixed_twin(store: SqliteStore, load: Loader, clock: Clock) -> None:
    load(misconfigured_estate())
    report = evaluate(store, at=clock())
    fired = {(f.ci_id, f.rule_id) for f in report.open}
    expected = {(ci_id, rule_id) for ci_id, rule_id in BAD.items()}
    assert expected <= fired
    # Nothing fires on a fixed twin, and nothing fires that the estate does not call for.
    assert not [f for f in report.open if f.ci_id.endswith("-ok") or "ok" in f.ci_name]
    all_open = arn("ec2", "security-group/sg-0all000000000001")
    assert fired == expected | {(all_open, "network.open-database-ports")}
    by_key = {(f.ci_id, f.rule_id): f for f in report.open}
    ssh = by_key[(arn("ec2", "security-group/sg-0ssh000000000001"), "network.open-admin-ports")]
    assert "22" in ssh.detail and "443" not in ssh.detail
    assert ssh.severity == "high" and any("CIS AWS" in c for c in ssh.controls)
    assert ssh.first_seen == ssh.last_seen == clock()


def test_a_finding_resolved_in_a_later_sync_gets_its_resolved_time(store: SqliteStore, load: Loader, clock: Clock) -> None:
    bucket = "arn:aws:s3:::acme-public-exports"
    volume = arn("ec2", "volume/vol-0bad0000000000001")
    cis = [
        aws_ci(bucket, "aws.s3.bucket", "acme-public-exports", {"public": True}),
        aws_ci(volume, "aws.ec2.volume", "vol-bad", {"encrypted": False}),
    ]
    load(cis)
    first = clock()
    evaluate(store, at=first)

    clock.advance(hours=6)
    load(cis)
    second = clock()
    evaluate(store, at=second)
    [still] = [f for f in open_findings(store, [bucket])]
    assert (still.first_seen, still.last_seen, still.resolved_at) == (first, second, None)

    clock.advance(hours=6)
    cis[0]["attributes"]["public"] = False  # the bucket is fixed
    load(cis[:1])  # and the volume is gone from a complete sweep: it goes stale
    third = clock()
    report = evaluate(store, at=third)
    assert {f.ci_id for f in report.resolved} == {bucket, volume}
    resolved = {f.ci_id: f for f in list_findings(store, statuses=("resolved",))}
    assert resolved[bucket].resolved_at == third and resolved[bucket].first_seen == first
    assert resolved[volume].resolved_at == third
    assert open_findings(store) == []

    clock.advance(hours=1)
    cis[0]["attributes"]["public"] = True  # and it regresses
    load(cis[:1])
    report = evaluate(store, at=clock())
    [again] = report.reopened
    assert again.ci_id == bucket and again.first_seen == first and again.reopened_at == clock()
    assert again.resolved_at is None


def test_retired_ci_still_needed_by_an_active_one(store: SqliteStore, load: Loader, engine: SyncEngine, clock: Clock) -> None:
    load(
        [
            {"id": "app-billing", "type": "app.application", "owner": "team-billing"},
            {"id": "srv-old-db", "type": "hardware.server", "owner": "team-data"},
            {"id": "srv-spare", "type": "hardware.server", "owner": "team-data"},
        ],
        [{"from": "app-billing", "type": "DEPENDS_ON", "to": "srv-old-db"}],
    )
    engine.set_fields("srv-old-db", actor="alice", lifecycle_state="retired")
    engine.set_fields("srv-spare", actor="alice", lifecycle_state="retired")
    report = evaluate(store, at=clock())
    hits = [f for f in report.open if f.rule_id == "governance.retired-still-referenced"]
    assert [f.ci_id for f in hits] == ["srv-old-db"]
    assert "app-billing" in hits[0].detail


def test_open_findings_filters_by_ci(store: SqliteStore, load: Loader, clock: Clock) -> None:
    load(misconfigured_estate())
    evaluate(store, at=clock())
    bucket = "arn:aws:s3:::acme-public-exports"
    found = open_findings(store, ci_ids=[bucket])
    assert [f.rule_id for f in found] == ["storage.public-bucket"]
    assert open_findings(store, ci_ids=["arn:aws:s3:::acme-exports-ok"]) == []
    everything = open_findings(store)
    assert next(f.severity for f in everything) == "critical"  # most severe first


def test_evaluating_one_rule_leaves_the_others_findings_alone(store: SqliteStore, load: Loader, clock: Clock) -> None:
    load(misconfigured_estate())
    evaluate(store, at=clock())
    before = len(open_findings(store))
    clock.advance(hours=1)
    report = evaluate(store, at=clock(), rule_ids=["storage.public-bucket"])
    assert report.resolved == [] and len(open_findings(store)) == before
    with pytest.raises(ComplianceError):
        evaluate(store, rule_ids=["no.such-rule"])


def test_custom_rule_files_are_validated(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "extra.yaml").write_text(
        """
rules:
  - id: custom.lambda-old-runtime
    version: 3
    title: Lambda runs a retired runtime
    severity: medium
    applies_to: [aws.lambda.function]
    controls: [{framework: NIST 800-53, id: SA-22}]
    when: {attr: runtime, in: [python3.7, nodejs12.x]}
""",
        encoding="utf-8",
    )
    rules = {r.id: r for r in load_rules([good])}
    assert rules["custom.lambda-old-runtime"].version == 3
    bad = tmp_path / "bad"
    bad.mkdir()
    for text, message in (
        ("rules: [{id: x, version: 1, title: t, severity: high, applies_to: [aws.s3.bucket], controls: [{framework: NIST 800-53, id: AC-3}], check: nope}]", "unknown check"),
        ("rules: [{id: x, version: 1, title: t, severity: high, applies_to: [aws.s3.bucket], when: {attr: public, is: true}}]", "missing controls"),
        ("rules: [{id: x, version: 1, title: t, severity: urgent, applies_to: [aws.s3.bucket], controls: [{framework: N, id: A}], when: {attr: public, is: true}}]", "severity"),
        ("rules: [{id: x, version: 1, title: t, severity: high, applies_to: [no.such.type], controls: [{framework: N, id: A}], when: {attr: public, is: true}}]", "names no known CI type"),
    ):
        (bad / "r.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(RuleError, match=message):
            load_rules([bad])
