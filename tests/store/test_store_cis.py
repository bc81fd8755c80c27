"""Store contract: CIs, listings, search, aliases, stats and documents, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cmdb.errors import StoreError, ValidationError
from cmdb.model import CI
from cmdb.store import CIFilter, Store
from tests.store.helpers import T0, ci, put


def estate() -> list[CI]:
    return [
        ci(
            "arn:aws:ec2:eu-west-1:123456789012:instance/i-0a1b2c3d4e5f60718",
            "aws.ec2.instance",
            name="web-prod-1",
            provider="aws",
            scope="aws:123456789012:eu-west-1",
            region="eu-west-1",
            environment="production",
            owner="team-web",
            cost_centre="cc-100",
            business_unit="retail",
            criticality="high",
            tags={"Name": "web-prod-1", "env": "prod", "app": "checkout"},
            attributes={"instance_type": "m5.large", "private_ip": "10.0.1.15"},
            aliases=("ip-10-0-1-15.eu-west-1.compute.internal",),
            sources=("aws",),
            provenance={"owner": "aws", "tags.env": "aws"},
            first_seen=T0,
            last_seen=T0 + timedelta(hours=1),
        ),
        ci(
            "arn:aws:rds:eu-west-1:123456789012:db:orders-db",
            "aws.rds.db_instance",
            name="orders-db",
            provider="aws",
            scope="aws:123456789012:eu-west-1",
            region="eu-west-1",
            environment="production",
            owner="team-data",
            criticality="critical",
            tags={"env": "prod", "app": "orders"},
            attributes={"engine": "postgres", "endpoint": "orders-db.abc123.eu-west-1.rds.amazonaws.com"},
            aliases=("orders-db.abc123.eu-west-1.rds.amazonaws.com",),
        ),
        ci(
            "srv-lon1-001",
            "hardware.server",
            name="lon1-db-01",
            scope="dc-lon1",
            environment="production",
            owner="",
            business_unit="platform",
            tags={"rack": "A3"},
            attributes={"serial_number": "CZ2341", "cpu_cores": 32},
        ),
        ci("svc-checkout", "service.business", name="Checkout", owner="team-web", criticality="critical",
           tags={"env": "prod"}),
        ci("team-web", "team.team", name="Web team", lifecycle_state="planned"),
        ci("vm-legacy-7", "compute.vm", name="legacy billing vm", environment="staging", owner="",
           lifecycle_state="stale", stale_since=T0),
    ]


def ids(cis: list[CI]) -> set[str]:
    return {c.id for c in cis}


def test_put_and_get_many_round_trips_every_field(store: Store) -> None:
    cis = estate()
    put(store, cis)
    found = store.get_cis([c.id for c in cis] + ["no-such-ci", cis[0].id])
    assert found == {c.id: c for c in cis}
    for _ in range(2):  # callers that only read get the same answers, however the backend keeps them
        assert store.get_cis([c.id for c in cis] + ["no-such-ci"], shared=True) == found


def test_put_replaces_the_whole_ci(store: Store) -> None:
    put(store, [ci("vm-1", owner="team-a", tags={"env": "dev", "x": "1"}, attributes={"os": "linux"})])
    put(store, [ci("vm-1", owner="", tags={"env": "prod"}, lifecycle_state="stale", stale_since=T0)])
    got = store.get_cis(["vm-1"])["vm-1"]
    assert (got.owner, got.tags, got.attributes, got.lifecycle_state, got.stale_since) == ("", {"env": "prod"}, {}, "stale", T0)
    assert store.list_cis(CIFilter(tag_key="x")).items == []


def test_writes_outside_a_transaction_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="transaction"):
        store.put_cis([ci("vm-1")])
    assert store.get_cis(["vm-1"]) == {}


def test_known_ids(store: Store) -> None:
    put(store, [ci("a"), ci("b")])
    assert store.known_ids(["a", "b", "c", "a"]) == {"a", "b"}
    assert store.known_ids([]) == set()


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        (CIFilter(), {"ec2", "rds", "srv", "svc", "team", "legacy"}),
        (CIFilter(ids=("srv-lon1-001", "team-web", "nope")), {"srv", "team"}),
        (CIFilter(types=("aws.ec2.instance", "aws.rds.db_instance")), {"ec2", "rds"}),
        (CIFilter(classes=("hardware", "service")), {"srv", "svc"}),
        (CIFilter(provider="aws"), {"ec2", "rds"}),
        (CIFilter(scope="dc-lon1"), {"srv", "svc", "team", "legacy"}),
        (CIFilter(region="eu-west-1"), {"ec2", "rds"}),
        (CIFilter(environment="staging"), {"legacy"}),
        (CIFilter(owner="team-web"), {"ec2", "svc"}),
        (CIFilter(cost_centre="cc-100"), {"ec2"}),
        (CIFilter(business_unit="platform"), {"srv"}),
        (CIFilter(criticality="critical"), {"rds", "svc"}),
        (CIFilter(lifecycle_states=("planned", "stale")), {"team", "legacy"}),
        (CIFilter(tag_key="app"), {"ec2", "rds"}),
        (CIFilter(tag_key="env", tag_value="prod"), {"ec2", "rds", "svc"}),
        (CIFilter(tag_key="env", tag_value="dev"), set()),
        (CIFilter(tag_key="rack", tag_value="A3"), {"srv"}),
        (CIFilter(missing_owner=True), {"srv", "team", "legacy"}),
        (CIFilter(missing_owner=False), {"ec2", "rds", "svc"}),
        (CIFilter(text="orders"), {"rds"}),
        (CIFilter(text="legacy VM"), {"legacy"}),
        (CIFilter(text="checko"), {"ec2", "svc"}),  # a word's prefix, in a name or a tag value
        (CIFilter(text="i-0a1b2c3d4e5f60718"), {"ec2"}),
        (CIFilter(text="nothing-like-this"), set()),
        (CIFilter(environment="production", missing_owner=True), {"srv"}),
        (CIFilter(provider="aws", criticality="critical", tag_key="app", tag_value="orders"), {"rds"}),
    ],
)
def test_filters_narrow_listings_and_counts(store: Store, filter: CIFilter, expected: set[str]) -> None:
    cis = estate()
    short = {c.id: key for c, key in zip(cis, ["ec2", "rds", "srv", "svc", "team", "legacy"], strict=True)}
    put(store, cis)
    listed = store.list_cis(filter, first=100)
    assert {short[c.id] for c in listed.items} == expected
    assert not listed.has_next
    assert store.count_cis(filter) == len(expected)
    assert {short[c.id] for c in store.iter_cis(filter, batch_size=2)} == expected


def test_cursor_pages_cover_everything_once_even_while_cis_change(store: Store) -> None:
    put(store, [ci(f"vm-{n:03d}", owner="team-a" if n % 3 else "") for n in range(25)])
    seen: list[str] = []
    page = store.list_cis(CIFilter(), first=7)
    seen += [c.id for c in page.items]
    # an update between pages moves nothing: no duplicates, no gaps
    changed = store.get_cis([seen[0], "vm-020"])
    put(store, [c.copy(owner="team-z") for c in changed.values()])
    pages = 1
    while page.has_next:
        page = store.list_cis(CIFilter(), first=7, after=page.end_cursor)
        seen += [c.id for c in page.items]
        pages += 1
    assert pages == 4
    assert sorted(seen) == [f"vm-{n:03d}" for n in range(25)]
    assert len(seen) == len(set(seen))
    again = store.list_cis(CIFilter(), first=7)
    assert [c.id for c in again.items] == seen[:7]  # the same listing comes back in the same order


def test_cursor_pages_with_a_filter_and_an_exact_fit(store: Store) -> None:
    put(store, [ci(f"vm-{n:02d}", owner="" if n % 2 else "team-a") for n in range(12)])
    owned = CIFilter(missing_owner=False)
    first = store.list_cis(owned, first=3)
    second = store.list_cis(owned, first=3, after=first.end_cursor)
    assert first.has_next and not second.has_next
    assert {c.id for c in first.items + second.items} == {f"vm-{n:02d}" for n in range(0, 12, 2)}
    empty = store.list_cis(owned, first=3, after=second.end_cursor)
    assert (empty.items, empty.has_next) == ([], False)
    assert [c.id for c in store.iter_cis(owned, batch_size=4)] == [c.id for c in first.items + second.items]


def test_a_foreign_cursor_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError):
        store.list_cis(CIFilter(), after="not-a-cursor")


def test_search_finds_by_words_of_id_name_and_tags(store: Store) -> None:
    cis = estate()
    put(store, cis)
    assert store.search("orders-db")[0].id == "arn:aws:rds:eu-west-1:123456789012:db:orders-db"
    assert ids(store.search("lon1")) == {"srv-lon1-001"}
    assert ids(store.search("checkout")) == {cis[0].id, "svc-checkout"}
    assert ids(store.search("web prod")) == {cis[0].id}  # every word must match
    assert ids(store.search("A3")) == {"srv-lon1-001"}  # a tag value
    assert ids(store.search("rack")) == {"srv-lon1-001"}  # a tag key
    assert ids(store.search("leg")) == {"vm-legacy-7"}  # a prefix
    assert store.search("zzz-unknown") == []
    assert store.search("  ") == []
    assert len(store.search("prod", limit=1)) == 1
    assert store.search("Checkout")[0].name in ("Checkout", "web-prod-1")


def test_aliases_resolve_to_their_ci_and_move_with_it(store: Store) -> None:
    put(store, [ci("vm-a", aliases=("host-a.example.com", "10.0.0.5")), ci("vm-b")])
    assert store.resolve_aliases(["host-a.example.com", "10.0.0.5", "unknown", "vm-b"]) == {
        "host-a.example.com": "vm-a",
        "10.0.0.5": "vm-a",
    }
    put(store, [ci("vm-b", aliases=("10.0.0.5",))])  # the address moved to another VM
    assert store.resolve_aliases(["10.0.0.5", "host-a.example.com"]) == {"10.0.0.5": "vm-b", "host-a.example.com": "vm-a"}
    assert store.resolve_aliases([]) == {}


def test_stats_count_cis_and_walkable_relationships(store: Store) -> None:
    from tests.store.helpers import rel

    cis = estate()
    put(
        store,
        cis,
        [
            rel("svc-checkout", cis[0].id),
            rel(cis[0].id, cis[1].id),
            rel("svc-checkout", "team-web", "OWNED_BY"),
            rel("vm-legacy-7", "srv-lon1-001", "RUNS_ON", lifecycle_state="retired"),
            rel(cis[0].id, "srv-lon1-001", "RUNS_ON", inferred=True, review="rejected"),
        ],
    )
    stats = store.stats()
    assert stats.total == 6
    assert stats.by_provider == {"aws": 2, "onprem": 4}
    assert stats.by_lifecycle == {"active": 4, "planned": 1, "stale": 1}
    assert stats.by_class == {"compute": 2, "database": 1, "hardware": 1, "service": 1, "team": 1}
    assert stats.by_type == {
        "aws.ec2.instance": 1,
        "aws.rds.db_instance": 1,
        "compute.vm": 1,
        "hardware.server": 1,
        "service.business": 1,
        "team.team": 1,
    }
    assert stats.relationships == 3
    assert stats.relationships_by_type == {"DEPENDS_ON": 2, "OWNED_BY": 1}


def test_stats_of_an_empty_store(store: Store) -> None:
    stats = store.stats()
    assert (stats.total, stats.relationships, stats.by_type) == (0, 0, {})


def test_documents_are_kept_by_kind_and_key(store: Store) -> None:
    with store.transaction():
        store.put_document("waiver", "s3-public/bucket-b", {"reason": "public website", "until": "2027-01-01"})
        store.put_document("waiver", "s3-public/bucket-a", {"reason": "cdn origin"})
        store.put_document("finding", "s3-public/bucket-a", {"severity": "high", "tags": ["s3", "public"]})
    assert store.get_document("waiver", "s3-public/bucket-a") == {"reason": "cdn origin"}
    assert store.get_document("waiver", "nope") is None
    assert [key for key, _ in store.list_documents("waiver")] == ["s3-public/bucket-a", "s3-public/bucket-b"]
    with store.transaction():
        store.put_document("waiver", "s3-public/bucket-a", {"reason": "replaced"})
    assert store.list_documents("waiver")[0] == ("s3-public/bucket-a", {"reason": "replaced"})
    assert store.list_documents("finding") == [("s3-public/bucket-a", {"severity": "high", "tags": ["s3", "public"]})]
    assert store.list_documents("nothing") == []
