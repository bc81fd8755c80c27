"""Classification from tags, inheritance along the graph, provenance and change records."""

from __future__ import annotations

from pathlib import Path

from cmdb.compliance.classification import classify, load_mapping, ownership_report
from cmdb.store import ChangeFilter, SqliteStore
from cmdb.sync import SyncEngine

from .conftest import Loader
from .estates import arn

INSTANCE = arn("ec2", "instance/i-0a1b2c3d4e5f60001")
VOLUME = arn("ec2", "volume/vol-0a1b2c3d4e5f60001")
SHARED = arn("ec2", "volume/vol-0a1b2c3d4e5f60002")
OTHER = arn("ec2", "instance/i-0a1b2c3d4e5f60002")


def estate() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    cis: list[dict[str, object]] = [
        {"id": "aws-account", "type": "aws.account", "provider": "aws", "tags": {"CostCenter": "CC-7", "bu": "Retail"}},
        {"id": INSTANCE, "type": "aws.ec2.instance", "provider": "aws",
         "tags": {"Owner": "team-payments", "Env": "prd", "Criticality": "Tier-1"}},
        {"id": OTHER, "type": "aws.ec2.instance", "provider": "aws", "tags": {"team": "team-search"}},
        {"id": VOLUME, "type": "aws.ec2.volume", "provider": "aws"},
        {"id": SHARED, "type": "aws.ec2.volume", "provider": "aws"},
        {"id": "bucket-set-by-source", "type": "aws.s3.bucket", "provider": "aws", "owner": "team-data", "tags": {"owner": "someone-else"}},
    ]
    rels: list[dict[str, object]] = [
        {"from": INSTANCE, "type": "DEPENDS_ON", "to": VOLUME},
        {"from": INSTANCE, "type": "DEPENDS_ON", "to": SHARED},
        {"from": OTHER, "type": "DEPENDS_ON", "to": SHARED},
        {"from": INSTANCE, "type": "CONTAINED_IN", "to": "aws-account"},
        {"from": OTHER, "type": "CONTAINED_IN", "to": "aws-account"},
    ]
    return cis, rels


def test_tags_and_inheritance_with_provenance_and_change_records(store: SqliteStore, load: Loader, timed_engine: SyncEngine) -> None:
    load(*estate())
    report = classify(store, timed_engine)
    got = store.get_cis([INSTANCE, VOLUME, SHARED, OTHER, "bucket-set-by-source"])

    instance = got[INSTANCE]
    assert (instance.owner, instance.environment, instance.criticality) == ("team-payments", "production", "high")
    assert instance.provenance["owner"] == "tag:Owner" and instance.provenance["environment"] == "tag:Env"
    # Along containment: the instance takes the account's cost centre and business unit.
    assert (instance.cost_centre, instance.business_unit) == ("CC-7", "Retail")
    assert instance.provenance["cost_centre"] == "inherited:aws-account"

    # The volume inherits its instance's owner along DEPENDS_ON (instance -> volume), and what the
    # instance itself inherited, one hop further.
    volume = got[VOLUME]
    assert volume.owner == "team-payments" and volume.provenance["owner"] == f"inherited:{INSTANCE}"
    assert volume.environment == "production" and volume.cost_centre == "CC-7"
    assert volume.criticality == ""  # criticality belongs to what is served: not inherited

    # A volume two instances with different owners depend on gets no owner; the agreeing cost centre it gets.
    shared = got[SHARED]
    assert shared.owner == "" and shared.cost_centre == "CC-7"

    # What a source set is never overridden by a tag.
    assert got["bucket-set-by-source"].owner == "team-data"

    changes = store.changes(ChangeFilter(ci_ids=(VOLUME,)), first=50).items
    owner_change = [c for c in changes if c.field == "owner"]
    assert owner_change and owner_change[0].actor == "classification" and owner_change[0].after == "team-payments"
    assert report.counts["changed_cis"] >= 4

    # A second run changes nothing.
    assert classify(store, timed_engine).changed == {}


def test_inherited_values_follow_their_origin(store: SqliteStore, load: Loader, timed_engine: SyncEngine) -> None:
    cis, rels = estate()
    load(cis, rels)
    classify(store, timed_engine)
    cis[1]["tags"] = {"Owner": "team-checkout"}  # the instance changes hands
    load(cis, rels)
    classify(store, timed_engine)
    assert store.get_cis([VOLUME])[VOLUME].owner == "team-checkout"
    cis[1]["tags"] = {}  # and loses its owner tag: the derived values are cleared, not left behind
    load(cis, rels)
    classify(store, timed_engine)
    volume = store.get_cis([VOLUME])[VOLUME]
    assert volume.owner == "" and "owner" not in volume.provenance


def test_mapping_override_and_dry_run(store: SqliteStore, load: Loader, timed_engine: SyncEngine, tmp_path: Path) -> None:
    load([{"id": "vm-1", "type": "compute.vm", "tags": {"squad": "team-ml", "finance-code": "F-9"}}])
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text("fields:\n  owner: [squad]\n  cost_centre: [finance-code]\n", encoding="utf-8")
    assert classify(store, timed_engine).changed == {}
    dry = classify(store, timed_engine, load_mapping(mapping_file), dry_run=True)
    assert dry.changed["vm-1"]["owner"] == ("", "team-ml", "tag:squad")
    assert store.get_cis(["vm-1"])["vm-1"].owner == ""
    classify(store, timed_engine, load_mapping(mapping_file))
    assert store.get_cis(["vm-1"])["vm-1"].cost_centre == "F-9"


def test_ownership_report_by_provider_and_scope(store: SqliteStore, load: Loader, timed_engine: SyncEngine) -> None:
    load(*estate(), name="aws-estate")
    load([{"id": "vm-2", "type": "compute.vm", "owner": "team-it", "tags": {"x": "y"}},
          {"id": "vm-3", "type": "compute.vm"}], name="dc")
    before = {(r.provider, r.scope): r for r in ownership_report(store)}
    assert before[("aws", "aws-estate")].ownerless == 5 and before[("aws", "aws-estate")].untagged == 2
    assert before[("onprem", "dc")].as_dict()["ownerless_pct"] == 50.0
    classify(store, timed_engine)
    after = {(r.provider, r.scope): r for r in ownership_report(store)}
    assert after[("aws", "aws-estate")].ownerless == 2  # the account and the shared volume
