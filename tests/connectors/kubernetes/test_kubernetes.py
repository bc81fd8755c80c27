"""The Kubernetes connector end to end: the real kubernetes client, a replayed API
server on 127.0.0.1, the real sync engine and the embedded store on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cmdb.cli import cli
from cmdb.connectors.kubernetes import KubernetesConnector
from cmdb.errors import ConnectorError
from cmdb.model import Evidence, Relationship
from cmdb.store import SqliteStore
from cmdb.store.base import CIFilter
from cmdb.sync import SyncEngine

from .conftest import write_kubeconfig
from .replay import LISTINGS, Fault, KubeReplay, load_estate

C = "prod-eu"
RDS = "payments-db.c9akciq32xyz.eu-west-1.rds.amazonaws.com"
PLANTED = ("PLANTED", "S3cr3t", "whsec_", "sk_live_")


def ids(store: SqliteStore, ci_type: str) -> set[str]:
    return {ci.id for ci in store.iter_cis(CIFilter(types=(ci_type,)))}


def out(store: SqliteStore, ci_id: str, rel_type: str | None = None) -> dict[str, Relationship]:
    return {r.to_id: r for r in store.relationships([ci_id], "out") if rel_type is None or r.type == rel_type}


@pytest.fixture
def kubeconfig(replay: KubeReplay, tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", {C: replay.serve(C, load_estate(C))})


def sweep(engine: SyncEngine, kubeconfig: Path, page_size: int = 2) -> tuple[str, list[str], dict[str, bool]]:
    report = engine.run(KubernetesConnector(kubeconfig, page_size=page_size))
    return report.run.status, [str(p) for p in report.problems], report.run.scopes


def test_a_cluster_lands_as_cis_with_kubernetes_ids(engine: SyncEngine, store: SqliteStore, kubeconfig: Path) -> None:
    status, problems, scopes = sweep(engine, kubeconfig)
    assert (status, problems, scopes) == ("complete", [], {f"k8s:{C}": True})
    counts = {t: len(ids(store, t)) for t in (
        "k8s.cluster", "k8s.namespace", "k8s.node", "k8s.pv", "k8s.pvc", "k8s.configmap", "k8s.service_account",
        "k8s.pod", "k8s.replicaset", "k8s.deployment", "k8s.statefulset", "k8s.daemonset", "k8s.service", "k8s.ingress",
    )}  # fmt: skip
    assert counts == {
        "k8s.cluster": 1, "k8s.namespace": 4, "k8s.node": 3, "k8s.pv": 3, "k8s.pvc": 3, "k8s.configmap": 7,
        "k8s.service_account": 8, "k8s.pod": 15, "k8s.replicaset": 4, "k8s.deployment": 3, "k8s.statefulset": 2,
        "k8s.daemonset": 2, "k8s.service": 6, "k8s.ingress": 2,
    }  # fmt: skip
    assert f"{C}/namespace/payments" in ids(store, "k8s.namespace")
    node = store.get_cis([f"{C}/node/ip-10-0-1-23.eu-west-1.compute.internal"])[
        f"{C}/node/ip-10-0-1-23.eu-west-1.compute.internal"
    ]
    assert node.scope == f"k8s:{C}" and node.provider == "kubernetes" and node.region == "eu-west-1"
    assert node.attributes["provider_id"] == "aws:///eu-west-1a/i-0a1b2c3d4e5f60718"
    assert node.attributes["ready"] is True and node.attributes["instance_type"] == "m6i.large"
    cluster = store.get_cis([f"k8s:{C}"])[f"k8s:{C}"]
    assert cluster.attributes["version"] == "v1.31.2-eks-7f9249a"
    assert cluster.attributes["server"] == replay_url(kubeconfig)
    service = store.get_cis([f"{C}/shop/service/shop-web"])[f"{C}/shop/service/shop-web"]
    assert service.attributes["service_type"] == "LoadBalancer"
    assert service.attributes["load_balancer_ingress"] == [
        "a3f9c1e27b5d411e9a2c0e8d7f6b5a43-1187349921.eu-west-1.elb.amazonaws.com"
    ]
    assert (
        store.get_cis([f"{C}/payments/service/payments-db"])[f"{C}/payments/service/payments-db"].attributes[
            "external_name"
        ]
        == RDS
    )


def replay_url(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"])


def test_links_point_from_the_dependent_with_evidence(engine: SyncEngine, store: SqliteStore, kubeconfig: Path) -> None:
    sweep(engine, kubeconfig)
    ns = f"{C}/payments"
    deployment = out(store, f"{ns}/deployment/payments-api")
    # the current ReplicaSet only: the scaled-down revision the Deployment keeps is history
    assert set(deployment) == {f"{ns}/replicaset/payments-api-7d9f8b6c5", f"{C}/namespace/payments"}
    assert deployment[f"{ns}/replicaset/payments-api-7d9f8b6c5"].type == "DEPENDS_ON"
    assert deployment[f"{ns}/replicaset/payments-api-7d9f8b6c5"].evidence == (
        Evidence("replicaset metadata.ownerReferences", "Deployment payments-api"),
    )
    pods = out(store, f"{ns}/replicaset/payments-api-7d9f8b6c5", "COMPOSED_OF")
    assert len(pods) == 2 and all(r.impact == "any" for r in pods.values())
    pod = next(iter(sorted(pods)))
    needs = out(store, pod)
    assert {needs[k].type for k in needs} == {"RUNS_ON", "DEPENDS_ON", "MEMBER_OF"}
    node = next(k for k, r in needs.items() if r.type == "RUNS_ON")
    assert node.startswith(f"{C}/node/ip-10-0-") and needs[node].evidence[0].field == "spec.nodeName"
    assert needs[f"{ns}/persistentvolumeclaim/uploads"].evidence == (
        Evidence("spec.volumes[uploads].persistentVolumeClaim.claimName", "uploads"),
    )
    assert needs[f"{ns}/configmap/payments-config"].type == "DEPENDS_ON"
    assert needs[f"{ns}/serviceaccount/payments-api"].evidence == (Evidence("spec.serviceAccountName", "payments-api"),)
    assert needs[f"{C}/namespace/payments"].type == "MEMBER_OF" and needs[f"{C}/namespace/payments"].impact == "none"
    pv = out(store, f"{ns}/persistentvolumeclaim/uploads", "DEPENDS_ON")
    assert len(pv) == 1 and next(iter(pv)).startswith(f"{C}/persistentvolume/pvc-")
    # Service -> the pods its selector picks (any-of); Ingress -> Service
    routes = out(store, f"{ns}/service/payments-api", "ROUTES_TO")
    assert set(routes) == set(pods) and routes[pod].evidence == (
        Evidence("spec.selector", "app.kubernetes.io/name=payments-api"),
    )
    assert out(store, f"{ns}/ingress/payments", "ROUTES_TO")[f"{ns}/service/payments-api"].evidence == (
        Evidence("spec.defaultBackend.service.name", "payments-api"),
    )
    assert set(out(store, f"{C}/shop/statefulset/redis", "COMPOSED_OF")) == {
        f"{C}/shop/pod/redis-0",
        f"{C}/shop/pod/redis-1",
    }
    assert len(out(store, f"{C}/kube-system/daemonset/aws-node", "COMPOSED_OF")) == 3
    assert f"{C}/shop/persistentvolumeclaim/data-redis-0" in out(store, f"{C}/shop/pod/redis-0", "DEPENDS_ON")
    # a headless Service routes to its StatefulSet's pods; a selector-less one to nothing
    assert set(out(store, f"{C}/shop/service/redis", "ROUTES_TO")) == {f"{C}/shop/pod/redis-0", f"{C}/shop/pod/redis-1"}
    assert out(store, f"{C}/default/service/kubernetes", "ROUTES_TO") == {}


def test_configuration_is_kept_as_names_and_endpoint_hosts_only(
    engine: SyncEngine, store: SqliteStore, kubeconfig: Path, replay: KubeReplay, tmp_path: Path
) -> None:
    sweep(engine, kubeconfig)
    deployment = store.get_cis([f"{C}/payments/deployment/payments-api"])[f"{C}/payments/deployment/payments-api"]
    assert deployment.attributes["env_var_names"] == [
        "DATABASE_URL", "DB_HOST", "DB_PASSWORD", "LEDGER_URL", "POD_NAME", "STRIPE_WEBHOOK_SECRET",
    ]  # fmt: skip
    # hosts from a literal URL (credentials cut), a configMapKeyRef and envFrom; nothing from secret-named values
    assert deployment.attributes["referenced_hosts"] == [
        "ledger.payments.svc.cluster.local:8080", RDS, f"{RDS}:5432",
    ]  # fmt: skip
    assert (
        deployment.attributes["host_sources"][f"{RDS}:5432"] == "spec.template.spec.containers[api].env[DATABASE_URL]"
    )
    configmap = store.get_cis([f"{C}/shop/configmap/shop-config"])[f"{C}/shop/configmap/shop-config"]
    assert configmap.attributes["keys"] == ["CATALOG_PAGE_SIZE", "application.yaml"]
    assert configmap.attributes["referenced_hosts"] == [
        "redis-0.redis.shop.svc.cluster.local", "shop-cache.x7kq2n.ng.0001.euw1.cache.amazonaws.com:6379",
    ]  # fmt: skip
    payments = store.get_cis([f"{C}/payments/configmap/payments-config"])[f"{C}/payments/configmap/payments-config"]
    assert payments.attributes["keys"] == [
        "DATABASE_HOST",
        "DATABASE_PORT",
        "FEATURE_FLAGS",
        "LOG_LEVEL",
        "STRIPE_API_KEY",
    ]
    # Secrets are never listed, and no planted secret value reaches the database file (WAL included)
    assert not [path for _, path, _ in replay.requests if "secret" in path]
    store.close()
    written = b"".join(p.read_bytes() for p in tmp_path.glob("cmdb.db*"))
    assert b"payments-api" in written  # the check below looks at the right bytes
    for value in PLANTED:
        assert value.encode() not in written, value


def test_every_listing_pages_with_limit_and_continue(engine: SyncEngine, kubeconfig: Path, replay: KubeReplay) -> None:
    assert sweep(engine, kubeconfig, page_size=1)[0] == "complete"
    for path in LISTINGS:
        asked = replay.listing_requests(C, path)
        assert all(q.get("limit") == "1" for q in asked), path
        assert len(asked) >= 2 and "continue" not in asked[0] and all("continue" in q for q in asked[1:]), path
    assert len(replay.listing_requests(C, "/api/v1/pods")) == 15


def test_an_expired_continue_token_restarts_the_listing_once(
    engine: SyncEngine, store: SqliteStore, kubeconfig: Path, replay: KubeReplay
) -> None:
    replay.fault(C, "/api/v1/pods", Fault(expire=1))
    status, problems, _ = sweep(engine, kubeconfig, page_size=4)
    assert (status, problems) == ("complete", [])
    starts = [q for q in replay.listing_requests(C, "/api/v1/pods") if "continue" not in q]
    assert len(starts) == 2 and len(ids(store, "k8s.pod")) == 15


def test_a_second_expiry_leaves_the_sweep_incomplete(engine: SyncEngine, kubeconfig: Path, replay: KubeReplay) -> None:
    replay.fault(C, "/api/v1/pods", Fault(expire=2))
    status, problems, scopes = sweep(engine, kubeconfig, page_size=4)
    assert status == "partial" and scopes == {f"k8s:{C}": False}
    assert any("/api/v1/pods" in p and "HTTP 410" in p and "too old" in p for p in problems), problems


def test_forbidden_listing_makes_the_sweep_incomplete_and_retires_nothing(
    engine: SyncEngine, store: SqliteStore, kubeconfig: Path, replay: KubeReplay
) -> None:
    assert sweep(engine, kubeconfig)[0] == "complete"
    estate = replay.clusters[C].estate
    gone_pod = estate["pods"]["items"].pop(0)["metadata"]
    gone_cm = estate["configmaps"]["items"].pop()["metadata"]
    replay.fault(C, "/apis/apps/v1/deployments", Fault(status=403))
    status, problems, scopes = sweep(engine, kubeconfig)
    assert status == "partial" and scopes == {f"k8s:{C}": False}
    assert any("deployments is forbidden" in p and "HTTP 403" in p for p in problems), problems
    assert not list(store.iter_cis(CIFilter(lifecycle_states=("stale", "retired"))))
    assert len(ids(store, "k8s.deployment")) == 3
    # the same removals in a complete sweep do mark what is gone stale
    replay.faults.clear()
    assert sweep(engine, kubeconfig)[0] == "complete"
    stale = {ci.id for ci in store.iter_cis(CIFilter(lifecycle_states=("stale",)))}
    assert stale == {
        f"{C}/{gone_pod['namespace']}/pod/{gone_pod['name']}",
        f"{C}/{gone_cm['namespace']}/configmap/{gone_cm['name']}",
    }


def test_throttling_and_server_errors_are_retried(
    engine: SyncEngine, store: SqliteStore, kubeconfig: Path, replay: KubeReplay
) -> None:
    replay.fault(C, "/api/v1/pods", Fault(status=429, page=1, times=2))
    replay.fault(C, "/api/v1/nodes", Fault(status=503, times=1))
    report = engine.run(KubernetesConnector(kubeconfig, page_size=4, retry_wait=0))
    assert (report.run.status, report.problems) == ("complete", [])
    assert len(ids(store, "k8s.pod")) == 15 and len(ids(store, "k8s.node")) == 3
    assert len(replay.listing_requests(C, "/api/v1/pods")) == 4 + 2
    # past the retries the listing fails like any other
    replay.fault(C, "/api/v1/services", Fault(status=503))
    report = engine.run(KubernetesConnector(kubeconfig, page_size=4, retries=2, retry_wait=0))
    assert report.run.scopes == {f"k8s:{C}": False}
    assert any("/api/v1/services page 1" in str(p) and "HTTP 503" in str(p) for p in report.problems)
    assert len(replay.listing_requests(C, "/api/v1/services")) == 2 + 3  # two pages, then one call and two retries


def test_a_malformed_page_is_reported_and_keeps_the_sweep_incomplete(
    engine: SyncEngine, store: SqliteStore, kubeconfig: Path, replay: KubeReplay
) -> None:
    replay.fault(C, "/api/v1/pods", Fault(malformed_page=1))
    replay.fault(C, "/api/v1/services", Fault(malformed_page=0, body=b'{"kind":"ServiceList","items":[{"spec":{}}]}'))
    status, problems, scopes = sweep(engine, kubeconfig, page_size=4)
    assert status == "partial" and scopes == {f"k8s:{C}": False}
    assert any("/api/v1/pods page 2" in p and "not JSON" in p for p in problems), problems
    assert any("/api/v1/services page 1 item 0" in p and "metadata.name" in p for p in problems), problems
    assert len(ids(store, "k8s.pod")) == 4  # the first page landed
    assert len(ids(store, "k8s.deployment")) == 3  # the other listings went on


def test_contexts_kubeconfig_env_and_cli(replay: KubeReplay, tmp_path: Path) -> None:
    staging = replay.serve("staging", load_estate(C))
    path = write_kubeconfig(
        tmp_path / "kubeconfig",
        {C: replay.serve(C, load_estate(C)), "staging-eu": staging},
        {"prod": C, "prod-admin": C, "staging": "staging-eu"},
    )
    db = tmp_path / "cli.db"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--db", str(db), "sync", "kubernetes", "--context", "staging", "--page-size", "3", "--json"],
        env={"KUBECONFIG": str(path)}, catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "complete" and summary["scopes"] == {"k8s:staging-eu": True}
    assert not replay.listing_requests(C, "/api/v1/pods")
    # every context by default, each cluster once although two contexts reach prod-eu
    result = runner.invoke(cli, ["--db", str(db), "sync", "kubernetes", "--kubeconfig", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scopes"] == {f"k8s:{C}": True, "k8s:staging-eu": True}
    assert len([q for q in replay.listing_requests(C, "/api/v1/pods") if "continue" not in q]) == 1
    store = SqliteStore(db)
    try:
        assert "staging-eu/payments/deployment/payments-api" in ids(store, "k8s.deployment")
        assert f"{C}/payments/deployment/payments-api" in ids(store, "k8s.deployment")
    finally:
        store.close()
    with pytest.raises(ConnectorError, match="no context nope"):
        KubernetesConnector(path, ["nope"])


def test_an_unreachable_cluster_is_reported_and_the_others_are_swept(
    engine: SyncEngine, store: SqliteStore, replay: KubeReplay, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    path = write_kubeconfig(tmp_path / "kubeconfig", {"gone": closed, C: replay.serve(C, load_estate(C))})
    report = engine.run(KubernetesConnector(path, page_size=50, timeout=5))
    assert report.run.scopes == {"k8s:gone": False, f"k8s:{C}": True}
    assert any(p.location == "kubernetes:gone /version/" for p in report.problems)
    assert len(ids(store, "k8s.pod")) == 15
