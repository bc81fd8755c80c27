"""The notebook API: records for tables, networkx graphs for analysis."""

from __future__ import annotations

from pathlib import Path

import networkx as nx

import cmdb
from cmdb.demo import load_demo


def test_notebook_api_over_the_demo_estate(tmp_path: Path) -> None:
    with cmdb.open(str(tmp_path / "nb.db")) as db:
        load_demo(db.store, size=600, seed=2)
        databases = db.cis(type="aws.rds.db_instance")
        assert databases and all(r["class"] == "database" for r in databases)
        stale = db.cis(lifecycle_state="stale")
        assert stale and {r["lifecycle_state"] for r in stale} == {"stale"}

        payments = db.get("service:payments")
        assert payments is not None
        graph = db.subgraph(["service:payments"], depth=4, direction="out")
        assert isinstance(graph, nx.MultiDiGraph) and "service:payments" in graph
        reachable = nx.descendants(graph, "service:payments")
        assert any(graph.nodes[n]["type"] == "k8s.pod" for n in reachable)

        whole = db.to_networkx()
        assert whole.number_of_nodes() == db.store.stats().total
        yesterday = db.to_networkx(as_of=db.store.sync_runs()[-1].finished_at)
        assert yesterday.number_of_nodes() < whole.number_of_nodes()  # today's new pods did not exist yet
        assert db.changes(ci_id="service:payments")[0]["kind"] == "ci.created"
