"""Store contract: relationships (neighbours, listings, fingerprints, staleness), on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cmdb.model import Evidence, Relationship
from cmdb.store import RelFilter, Store
from tests.store.helpers import T0, ci, put, rel

LB, TG, WEB1, WEB2, DB, SG, TEAM = "lb", "tg", "web-1", "web-2", "db", "sg", "team-web"


def estate(store: Store) -> list[Relationship]:
    """lb -> tg -> web-1/web-2 -> db; web-1 secured by sg; web-1 owned by team; plus inactive edges."""
    rels = [
        rel(LB, TG, "ROUTES_TO", source="aws", scope="aws:1:eu-west-1"),
        rel(TG, WEB1, "ROUTES_TO", source="aws", scope="aws:1:eu-west-1"),
        rel(TG, WEB2, "ROUTES_TO", source="aws", scope="aws:1:eu-west-1"),
        rel(WEB1, DB, "DEPENDS_ON", source="inference", scope="inference", inferred=True, confidence=0.8,
            evidence=(Evidence("env.DATABASE_HOST", "orders-db.abc.rds.amazonaws.com"),)),
        rel(WEB2, DB, "DEPENDS_ON", source="inference", scope="inference", inferred=True, review="confirmed"),
        rel(WEB1, SG, "SECURED_BY", source="aws", scope="aws:1:eu-west-1"),
        rel(WEB1, TEAM, "OWNED_BY"),
        rel(WEB2, SG, "SECURED_BY", source="aws", scope="aws:1:eu-west-1", lifecycle_state="retired",
            stale_since=T0),
        rel(WEB2, TEAM, "OWNED_BY", inferred=True, review="rejected", source="inference", scope="inference"),
        rel(DB, SG, "SECURED_BY", source="aws", scope="aws:1:eu-west-1", lifecycle_state="stale", stale_since=T0),
    ]
    put(store, [ci(i) for i in (LB, TG, WEB1, WEB2, DB, SG)] + [ci(TEAM, "team.team")], rels)
    return rels


def keys(rels: list[Relationship]) -> set[tuple[str, str, str]]:
    return {r.key for r in rels}


def test_get_relationships_round_trips_every_field(store: Store) -> None:
    rels = estate(store)
    found = store.get_relationships([r.key for r in rels] + [(WEB1, "DEPENDS_ON", LB)])
    assert found == {r.key: r for r in rels}
    assert store.get_relationships([]) == {}


def test_relationships_out_in_and_both_leave_inactive_out(store: Store) -> None:
    estate(store)
    assert keys(store.relationships([WEB2], "out")) == {(WEB2, "DEPENDS_ON", DB)}
    assert keys(store.relationships([SG], "in")) == {(WEB1, "SECURED_BY", SG), (DB, "SECURED_BY", SG)}
    assert keys(store.relationships([WEB1], "both")) == {
        (TG, "ROUTES_TO", WEB1),
        (WEB1, "DEPENDS_ON", DB),
        (WEB1, "SECURED_BY", SG),
        (WEB1, "OWNED_BY", TEAM),
    }
    assert keys(store.relationships([WEB2], "out", include_inactive=True)) == {
        (WEB2, "DEPENDS_ON", DB),
        (WEB2, "SECURED_BY", SG),
        (WEB2, "OWNED_BY", TEAM),
    }


def test_relationships_filter_by_type_and_take_many_ids(store: Store) -> None:
    estate(store)
    assert keys(store.relationships([WEB1, WEB2], "out", types=["SECURED_BY", "OWNED_BY"])) == {
        (WEB1, "SECURED_BY", SG),
        (WEB1, "OWNED_BY", TEAM),
    }
    assert keys(store.relationships([DB], "in", types=["DEPENDS_ON"])) == {(WEB1, "DEPENDS_ON", DB), (WEB2, "DEPENDS_ON", DB)}
    # an edge between two of the ids comes back once
    both = store.relationships([TG, WEB1], "both", types=["ROUTES_TO"])
    assert sorted(r.key for r in both) == [(LB, "ROUTES_TO", TG), (TG, "ROUTES_TO", WEB1), (TG, "ROUTES_TO", WEB2)]
    assert store.relationships(["no-such-ci"], "both") == []


def test_a_relationship_to_an_unknown_ci_is_not_stored(store: Store) -> None:
    put(store, [ci("a")], [rel("a", "ghost")])
    assert store.relationships(["a"], "out") == []
    assert store.rel_fingerprints([("a", "DEPENDS_ON", "ghost")]) == {}


def test_put_relationships_replaces_by_key(store: Store) -> None:
    put(store, [ci("a"), ci("b")], [rel("a", "b", confidence=0.5)])
    later = rel("a", "b", confidence=0.9, evidence=(Evidence("file", "estate.yaml:40"),), last_seen=T0 + timedelta(days=1))
    put(store, [], [later])
    assert store.get_relationships([later.key]) == {later.key: later}
    assert store.stats().relationships == 1


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        (RelFilter(), 10),
        (RelFilter(types=("SECURED_BY",)), 3),
        (RelFilter(source="inference"), 3),
        (RelFilter(scope="aws:1:eu-west-1"), 6),
        (RelFilter(inferred=True), 3),
        (RelFilter(inferred=False), 7),
        (RelFilter(review="rejected"), 1),
        (RelFilter(lifecycle_states=("stale", "retired")), 2),
        (RelFilter(ci_id=WEB2), 4),
        (RelFilter(ci_id=SG, types=("SECURED_BY",), lifecycle_states=("active",)), 1),
    ],
)
def test_list_relationships_filters_and_pages(store: Store, filter: RelFilter, expected: int) -> None:
    rels = estate(store)
    everything = store.list_relationships(filter, first=100)
    assert len(everything.items) == expected and not everything.has_next
    assert keys(everything.items) <= keys(rels)
    paged: list[Relationship] = []
    page = store.list_relationships(filter, first=3)
    paged += page.items
    while page.has_next:
        page = store.list_relationships(filter, first=3, after=page.end_cursor)
        paged += page.items
    assert [r.key for r in paged] == [r.key for r in everything.items]  # same order, no duplicates, no gaps
    assert [r.key for r in store.iter_relationships(filter, batch_size=2)] == [r.key for r in paged]


def test_list_relationships_matches_what_each_filter_says(store: Store) -> None:
    estate(store)
    assert all(r.inferred for r in store.list_relationships(RelFilter(inferred=True)).items)
    assert all(WEB2 in (r.from_id, r.to_id) for r in store.list_relationships(RelFilter(ci_id=WEB2)).items)
    assert {r.lifecycle_state for r in store.list_relationships(RelFilter(lifecycle_states=("stale",))).items} == {"stale"}


def test_rel_fingerprints_and_touch(store: Store) -> None:
    rels = estate(store)
    found = store.rel_fingerprints([rels[0].key, rels[7].key, (LB, "DEPENDS_ON", TG)])
    assert found == {
        rels[0].key: (f"fp-{LB}-ROUTES_TO-{TG}", "active", ""),
        rels[7].key: (f"fp-{WEB2}-SECURED_BY-{SG}", "retired", ""),
    }
    later = T0 + timedelta(hours=6)
    with store.transaction():
        store.touch_relationships([rels[0].key, rels[1].key], later)
    got = store.get_relationships([rels[0].key, rels[1].key, rels[2].key])
    assert [got[r.key].last_seen for r in rels[:3]] == [later, later, T0]


def test_unseen_relationships_are_active_ones_of_that_source_and_scope(store: Store) -> None:
    rels = estate(store)
    with store.transaction():
        store.touch_relationships([rels[1].key], T0 + timedelta(hours=2))
    unseen = store.unseen_relationships("aws:1:eu-west-1", "aws", T0 + timedelta(hours=1))
    # not the touched one, not the retired or stale ones, not other sources
    assert keys(unseen) == {rels[0].key, rels[2].key, rels[5].key}
    assert store.unseen_relationships("aws:1:eu-west-1", "aws", T0) == []
    assert keys(store.unseen_relationships("inference", "inference", T0 + timedelta(hours=1))) == {
        rels[3].key,
        rels[4].key,
        rels[8].key,
    }


def test_stale_before_returns_stale_cis_and_relationships_past_a_time(store: Store) -> None:
    rels = estate(store)
    put(
        store,
        [
            ci("old-vm", lifecycle_state="stale", stale_since=T0 - timedelta(days=10)),
            ci("new-vm", lifecycle_state="stale", stale_since=T0 + timedelta(days=1)),
            ci("retired-vm", lifecycle_state="retired", stale_since=T0 - timedelta(days=30)),
        ],
    )
    cis, stale_rels = store.stale_before(T0 + timedelta(hours=1))
    assert [c.id for c in cis] == ["old-vm"]
    assert [r.key for r in stale_rels] == [rels[9].key]
    cis, stale_rels = store.stale_before(T0 + timedelta(days=2), limit=1)
    assert len(cis) == 1 and len(stale_rels) == 1
    assert store.stale_before(T0 - timedelta(days=20)) == ([], [])
