"""The GCP connector end to end: the real Cloud Asset client over REST against a local
replay of recorded ListAssets pages, the real sync engine and the embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cmdb.connectors.gcp import GcpConnector, GcpExportConnector, asset_client
from cmdb.model import CI, Evidence, Relationship
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from ..replay import ReplayServer, load_json

DATA = Path(__file__).resolve().parents[2] / "data" / "gcp"
PROJECT = "acme-shop-prod"
SCOPE = f"gcp:{PROJECT}"
PATH = f"/v1/projects/{PROJECT}/assets"
COMPUTE = f"//compute.googleapis.com/projects/{PROJECT}"
URL = f"https://www.googleapis.com/compute/v1/projects/{PROJECT}"
RESOURCE, IAM_POLICY = "1", "2"  # ContentType as the REST client sends it
TOKENS = {
    2: "CiRjb21wdXRlLmdvb2dsZWFwaXMuY29tL0luc3RhbmNlOjAwMDAxMA",
    3: "CiRjb21wdXRlLmdvb2dsZWFwaXMuY29tL1VybE1hcDowMDAwMjA",
}


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        yield replay


@pytest.fixture
def replay(server: ReplayServer, monkeypatch: pytest.MonkeyPatch) -> ReplayServer:
    """The recorded project: 2 pages of bucket IAM policies, 3 pages of resources."""
    server.clear()
    monkeypatch.setenv("CMDB_GCP_TOKEN", "ya29.test-token")
    monkeypatch.setenv("CMDB_GCP_ENDPOINT", server.base_url)
    server.add("GET", PATH, load_json(DATA / "list_assets_iam_page1.json"), query={"contentType": IAM_POLICY, "pageToken": None})
    server.add(
        "GET", PATH, load_json(DATA / "list_assets_iam_page2.json"),
        query={"contentType": IAM_POLICY, "pageToken": "CiFzdG9yYWdlLmdvb2dsZWFwaXMuY29tL0J1Y2tldDowMDAwMDE"},
    )
    for number in (1, 2, 3):
        resource_page(server, number, load_json(DATA / f"list_assets_resource_page{number}.json"))
    return server


def resource_page(server: ReplayServer, number: int, body: object, status: int = 200) -> None:
    server.add("GET", PATH, body, status=status, query={"contentType": RESOURCE, "pageToken": TOKENS.get(number)})


def sync(engine: SyncEngine) -> tuple[object, GcpConnector]:
    connector = GcpConnector(f"projects/{PROJECT}")
    return engine.run(connector), connector


def rels_from(store: SqliteStore, ci_id: str) -> dict[tuple[str, str], Relationship]:
    return {(r.type, r.to_id): r for r in store.relationships([ci_id], "out")}


def all_cis(store: SqliteStore) -> dict[str, CI]:
    return {ci.id: ci for ci in store.iter_cis()}


def test_sweep_lands_the_project_with_links_and_evidence(replay: ReplayServer, engine: SyncEngine, store: SqliteStore) -> None:
    report, _ = sync(engine)
    assert report.problems == []  # type: ignore[attr-defined]
    assert report.run.scopes == {SCOPE: True}  # type: ignore[attr-defined]
    assert replay.unmatched == []
    # paging: both IAM pages and all three resource pages were fetched, with the bearer token
    tokens = [r.query.get("pageToken", [""])[0] for r in replay.requests]
    assert tokens.count("") == 2 and TOKENS[2] in tokens and TOKENS[3] in tokens
    assert len(replay.requests) == 5
    assert {r.headers["authorization"] for r in replay.requests} == {"Bearer ya29.test-token"}
    assert "compute.googleapis.com/Instance" in replay.requests[-1].query["assetTypes"]

    cis = all_cis(store)
    by_type: dict[str, int] = {}
    for ci in cis.values():
        by_type[ci.type] = by_type.get(ci.type, 0) + 1
        assert ci.scope == SCOPE and ci.provider == "gcp" and ci.lifecycle_state == "active"
    assert by_type == {
        "gcp.project": 1, "gcp.compute.network": 1, "gcp.compute.subnetwork": 2, "gcp.compute.firewall": 3,
        "gcp.compute.instance": 4, "gcp.compute.disk": 4, "gcp.compute.instance_group": 2,
        "gcp.compute.instance_group_manager": 2, "gcp.compute.backend_service": 1, "gcp.compute.backend_bucket": 1,
        "gcp.compute.url_map": 1, "gcp.compute.target_proxy": 1, "gcp.compute.forwarding_rule": 1,
        "gcp.container.cluster": 1, "gcp.container.node_pool": 1, "gcp.sqladmin.instance": 1,
        "gcp.storage.bucket": 2, "gcp.run.service": 1, "gcp.pubsub.topic": 1,
    }

    web1 = cis[f"{COMPUTE}/zones/europe-west1-b/instances/web-1"]
    assert web1.region == "europe-west1" and web1.tags == {"env": "prod", "team": "storefront"}
    assert web1.attributes["machine_type"] == "e2-standard-2" and web1.attributes["private_ip"] == "10.20.0.11"
    assert set(web1.aliases) >= {f"gce://{PROJECT}/europe-west1-b/web-1", "3918273645102938471"}
    out = rels_from(store, web1.id)
    subnet = f"{COMPUTE}/regions/europe-west1/subnetworks/prod-eu-west1"
    assert out[("CONTAINED_IN", subnet)].evidence == (
        Evidence("networkInterfaces[0].subnetwork", f"{URL}/regions/europe-west1/subnetworks/prod-eu-west1"),
    )
    assert ("CONTAINED_IN", f"{COMPUTE}/global/networks/prod-vpc") in out
    assert out[("DEPENDS_ON", f"{COMPUTE}/zones/europe-west1-b/disks/web-1")].evidence[0].field == "disks[0].source"
    # firewall rules reach the instances they target: by tag, and (no targets) every instance
    assert out[("SECURED_BY", f"{COMPUTE}/global/firewalls/allow-lb-health-checks")].evidence == (Evidence("targetTags", "web"),)
    assert ("SECURED_BY", f"{COMPUTE}/global/firewalls/allow-ssh-from-iap") in out
    assert ("SECURED_BY", f"{COMPUTE}/global/firewalls/allow-ssh-bastion-world") not in out
    assert rels_from(store, subnet)[("CONTAINED_IN", f"{COMPUTE}/global/networks/prod-vpc")].evidence[0].field == "network"

    # the load balancer chain: forwarding rule -> proxy -> URL map -> backend service -> group -> instances
    rule = f"{COMPUTE}/global/forwardingRules/web-https"
    proxy = f"{COMPUTE}/global/targetHttpsProxies/web-https-proxy"
    url_map = f"{COMPUTE}/global/urlMaps/web-map"
    backend = f"{COMPUTE}/global/backendServices/web-backend"
    backend_bucket = f"{COMPUTE}/global/backendBuckets/static-assets"
    group = f"{COMPUTE}/zones/europe-west1-b/instanceGroups/web-mig"
    assert cis[rule].aliases == ("34.120.45.67",) and cis[rule].attributes["public"] is True
    assert rels_from(store, rule)[("DEPENDS_ON", proxy)].evidence == (Evidence("target", f"{URL}/global/targetHttpsProxies/web-https-proxy"),)
    assert ("DEPENDS_ON", url_map) in rels_from(store, proxy)
    map_rels = rels_from(store, url_map)
    assert map_rels[("DEPENDS_ON", backend)].evidence[0].field == "defaultService"
    assert map_rels[("DEPENDS_ON", backend_bucket)].evidence == (
        Evidence("pathMatchers[0].pathRules[0].service", f"{URL}/global/backendBuckets/static-assets"),
    )
    assert rels_from(store, backend)[("ROUTES_TO", group)].evidence[0].field == "backends[0].group"
    bucket_link = rels_from(store, backend_bucket)[("DEPENDS_ON", "//storage.googleapis.com/acme-shop-static")]
    assert bucket_link.evidence == (Evidence("bucketName", "acme-shop-static"),)
    members = {r.to_id for r in store.relationships([group], "out") if r.type == "COMPOSED_OF"}
    assert members == {f"{COMPUTE}/zones/europe-west1-b/instances/web-1", f"{COMPUTE}/zones/europe-west1-b/instances/web-2"}
    web_igm = rels_from(store, f"{COMPUTE}/zones/europe-west1-b/instanceGroupManagers/web-mig")
    assert web_igm[("COMPOSED_OF", web1.id)].evidence == (
        Evidence("metadata.items[created-by]", "projects/482910375518/zones/europe-west1-b/instanceGroupManagers/web-mig"),
    )

    # GKE: cluster -> node pool -> the pool's managed instance group -> node VM
    cluster_id = f"//container.googleapis.com/projects/{PROJECT}/locations/europe-west1/clusters/prod-gke"
    cluster = cis[cluster_id]
    assert set(cluster.aliases) == {"prod-gke", "34.76.120.12"}
    pool = f"{cluster_id}/nodePools/default-pool"
    assert ("COMPOSED_OF", pool) in rels_from(store, cluster_id)
    gke_igm = f"{COMPUTE}/zones/europe-west1-b/instanceGroupManagers/gke-prod-gke-default-pool-1a2b3c4d-grp"
    assert rels_from(store, pool)[("COMPOSED_OF", gke_igm)].evidence[0].field == "instanceGroupUrls[0]"
    node = f"{COMPUTE}/zones/europe-west1-b/instances/gke-prod-gke-default-pool-1a2b3c4d-x7k2"
    assert ("COMPOSED_OF", node) in rels_from(store, gke_igm)
    assert ("CONTAINED_IN", f"{COMPUTE}/regions/europe-west1/subnetworks/gke-eu-west1") in rels_from(store, cluster_id)

    # Cloud SQL, Cloud Run, buckets
    sql_id = f"//cloudsql.googleapis.com/projects/{PROJECT}/instances/orders-db"
    sql = cis[sql_id]
    assert set(sql.aliases) == {"10.90.0.3", "34.78.11.22", f"{PROJECT}:europe-west1:orders-db"}
    assert sql.attributes["public_ip_enabled"] is True and sql.attributes["encrypted"] is True
    assert rels_from(store, sql_id)[("CONTAINED_IN", f"{COMPUTE}/global/networks/prod-vpc")].evidence == (
        Evidence("settings.ipConfiguration.privateNetwork", f"projects/{PROJECT}/global/networks/prod-vpc"),
    )
    run = f"//run.googleapis.com/projects/{PROJECT}/locations/europe-west1/services/checkout-api"
    assert rels_from(store, run)[("DEPENDS_ON", sql_id)].evidence[0].value == f"{PROJECT}:europe-west1:orders-db"
    static = cis["//storage.googleapis.com/acme-shop-static"]
    assert static.attributes["public"] is True and static.attributes["public_members"] == ["allUsers"]
    assert set(static.aliases) == {"acme-shop-static", "storage.googleapis.com/acme-shop-static"}
    backups = cis["//storage.googleapis.com/acme-shop-backups"]
    assert backups.attributes["public"] is False  # allUsers granted, but public access prevention is enforced
    assert backups.attributes["kms_key"].endswith("cryptoKeys/backups-2026")
    world_ssh = cis[f"{COMPUTE}/global/firewalls/allow-ssh-bastion-world"]
    assert world_ssh.attributes["rules"] == [
        {"direction": "ingress", "action": "allow", "protocol": "tcp", "ports": ["22"], "sources": ["0.0.0.0/0"], "priority": 900}
    ]

    # a second, unchanged sweep changes nothing
    again, _ = sync(engine)
    assert again.counts["created"] == 0 and again.counts["updated"] == 0  # type: ignore[attr-defined]
    assert again.counts["relationships_added"] == 0 and again.counts["stale"] == 0  # type: ignore[attr-defined]


def _active_everything(store: SqliteStore) -> tuple[int, int]:
    cis = list(store.iter_cis())
    rels = list(store.iter_relationships())
    assert all(ci.lifecycle_state == "active" for ci in cis)
    assert all(rel.lifecycle_state == "active" for rel in rels)
    return len(cis), len(rels)


def test_forbidden_page_leaves_the_sweep_incomplete_and_nothing_stale(
    replay: ReplayServer, engine: SyncEngine, store: SqliteStore
) -> None:
    sync(engine)
    before = _active_everything(store)
    replay.clear()
    replay.add("GET", PATH, load_json(DATA / "list_assets_iam_page1.json"), query={"contentType": IAM_POLICY, "pageToken": None})
    replay.add("GET", PATH, load_json(DATA / "list_assets_iam_page2.json"), query={"contentType": IAM_POLICY, "pageToken": "CiFzdG9yYWdlLmdvb2dsZWFwaXMuY29tL0J1Y2tldDowMDAwMDE"})
    resource_page(replay, 1, load_json(DATA / "list_assets_resource_page1.json"))
    resource_page(replay, 2, load_json(DATA / "error_403.json"), status=403)
    report, _ = sync(engine)
    assert report.run.scopes == {SCOPE: False}  # type: ignore[attr-defined]
    assert report.run.status == "partial"  # type: ignore[attr-defined]
    problem = next(p for p in report.problems if "ListAssets" in p.location)  # type: ignore[attr-defined]
    assert problem.location == f"ListAssets projects/{PROJECT} contentType=RESOURCE page 2"
    assert problem.reason.startswith("403") and "permission" in problem.reason
    assert report.counts["stale"] == 0 and report.counts["relationships_removed"] == 0  # type: ignore[attr-defined]
    assert _active_everything(store) == before


def test_forbidden_iam_listing_leaves_buckets_as_they_were(
    replay: ReplayServer, engine: SyncEngine, store: SqliteStore
) -> None:
    sync(engine)
    before = _active_everything(store)
    replay.requests.clear()
    for route in replay.routes:
        if route.query.get("contentType") == IAM_POLICY:
            route.body, route.status = load_json(DATA / "error_403.json"), 403
    report, _ = sync(engine)
    assert report.run.scopes == {SCOPE: False}  # type: ignore[attr-defined]
    assert next(p.location for p in report.problems) == f"ListAssets projects/{PROJECT} contentType=IAM_POLICY page 1"  # type: ignore[attr-defined]
    assert len(replay.requests) == 1 + 3  # the resources were still listed
    assert report.counts["updated"] == 0  # type: ignore[attr-defined]  # no bucket lost its `public`
    assert all_cis(store)["//storage.googleapis.com/acme-shop-static"].attributes["public"] is True
    assert _active_everything(store) == before


def test_malformed_page_is_reported_where_and_retires_nothing(
    replay: ReplayServer, engine: SyncEngine, store: SqliteStore
) -> None:
    sync(engine)
    before = _active_everything(store)
    for route in replay.routes:
        if route.query.get("pageToken") == TOKENS[3]:
            route.body = b'{"readTime": "2026-11-20T09:20:00Z", "assets": [{"name": '  # cut off mid-page
    report, _ = sync(engine)
    assert report.run.scopes == {SCOPE: False}  # type: ignore[attr-defined]
    problem = next(p for p in report.problems if p.location.endswith("page 3"))  # type: ignore[attr-defined]
    assert "JSON" in problem.reason
    assert _active_everything(store) == before

    for route in replay.routes:
        if route.query.get("pageToken") == TOKENS[3]:
            route.body = {"readTime": "2026-11-20T09:20:00Z", "assets": {"name": "not a list"}}  # wrong shape
    report, _ = sync(engine)
    assert report.run.scopes == {SCOPE: False}  # type: ignore[attr-defined]
    assert any(p.location.endswith("page 3") and "assets" in p.reason for p in report.problems)  # type: ignore[attr-defined]
    assert _active_everything(store) == before


def test_one_malformed_asset_is_reported_and_the_rest_lands(
    replay: ReplayServer, engine: SyncEngine, store: SqliteStore
) -> None:
    for route in replay.routes:
        if route.query.get("pageToken") == TOKENS[2]:
            route.body = load_json(DATA / "list_assets_resource_page2_bad_asset.json")
    report, _ = sync(engine)
    bad = f"{COMPUTE}/zones/europe-west1-b/instances/gke-prod-gke-default-pool-1a2b3c4d-x7k2"
    asset_problems = [p for p in report.problems if p.ci_id == bad]  # type: ignore[attr-defined]
    assert len(asset_problems) == 1
    assert asset_problems[0].location.endswith("page 2") and "networkInterfaces" in asset_problems[0].reason
    assert report.run.scopes == {SCOPE: False}  # type: ignore[attr-defined]  # its CI would otherwise look gone
    cis = all_cis(store)
    assert bad not in cis
    assert f"{COMPUTE}/zones/europe-west1-b/disks/web-1" in cis  # the rest of that page landed
    assert f"//cloudsql.googleapis.com/projects/{PROJECT}/instances/orders-db" in cis


def test_export_file_gives_the_same_graph(engine: SyncEngine, store: SqliteStore, tmp_path: Path) -> None:
    report = engine.run(GcpExportConnector([DATA / "export_resource.jsonl", DATA / "export_iam_policy.jsonl"]))
    assert report.problems == []
    assert report.run.scopes == {SCOPE: True}
    cis = all_cis(store)
    assert len(cis) == 31
    assert cis["//storage.googleapis.com/acme-shop-static"].attributes["public"] is True
    assert cis["//storage.googleapis.com/acme-shop-static"].scope == SCOPE  # bucket names carry no project
    web1 = f"{COMPUTE}/zones/europe-west1-b/instances/web-1"
    assert ("SECURED_BY", f"{COMPUTE}/global/firewalls/allow-lb-health-checks") in rels_from(store, web1)

    # a broken line is reported as file:line; the rest lands; nothing goes stale
    broken = tmp_path / "export.jsonl"
    lines = (DATA / "export_resource.jsonl").read_text().splitlines()
    broken.write_text("\n".join([lines[0][:40], *lines[1:5]]) + "\n")
    report = engine.run(GcpExportConnector([broken]))
    assert report.run.scopes == {SCOPE: False}
    assert report.problems[0].location == f"{broken}:1" and "JSON" in report.problems[0].reason
    assert all(ci.lifecycle_state == "active" for ci in store.iter_cis())


def test_cli_sync_gcp(replay: ReplayServer, tmp_path: Path) -> None:
    from cmdb.cli import cli

    db = tmp_path / "cli.db"
    result = CliRunner().invoke(cli, ["--db", str(db), "sync", "gcp", "--project", PROJECT, "--json"])
    assert result.exit_code == 0, result.output
    assert '"complete"' in result.output and '"created": 31' in result.output
    missing = CliRunner().invoke(cli, ["--db", str(db), "sync", "gcp"])
    assert missing.exit_code != 0 and "exactly one of --project" in str(missing.exception or missing.output)


def test_endpoint_and_token_come_from_the_environment(replay: ReplayServer) -> None:
    client = asset_client()
    assert list(client.list_assets(request={"parent": f"projects/{PROJECT}", "content_type": 2}))
    assert replay.requests[0].headers["authorization"] == "Bearer ya29.test-token"


def test_folder_sweep_has_one_scope_per_project(server: ReplayServer, engine: SyncEngine, store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    server.clear()
    monkeypatch.setenv("CMDB_GCP_TOKEN", "ya29.test-token")
    path = "/v1/folders/731806224419/assets"
    server.add("GET", path, load_json(DATA / "folder_list_assets_iam_page1.json"), query={"contentType": IAM_POLICY, "pageToken": None})
    server.add("GET", path, load_json(DATA / "folder_list_assets_iam_page2.json"),
               query={"contentType": IAM_POLICY, "pageToken": "CiFzdG9yYWdlLmdvb2dsZWFwaXMuY29tL0J1Y2tldDowMDAwMDI"})
    server.add("GET", path, load_json(DATA / "folder_list_assets_resource_page1.json"), query={"contentType": RESOURCE, "pageToken": None})
    server.add("GET", path, load_json(DATA / "folder_list_assets_resource_page2.json"),
               query={"contentType": RESOURCE, "pageToken": "CiRjbG91ZHJlc291cmNlbWFuYWdlci5nb29nbGVhcGlzLmNvbS9Qcm9qZWN0OjAwMDAwMw"})
    report = engine.run(GcpConnector("folders/731806224419", endpoint=server.base_url))
    assert report.problems == []
    assert report.run.scopes == {SCOPE: True, "gcp:acme-shop-dev": True}
    cis = all_cis(store)
    # the bucket came before anything else of its project named the project id
    uploads = cis["//storage.googleapis.com/acme-shop-dev-uploads"]
    assert uploads.scope == "gcp:acme-shop-dev" and uploads.attributes["public_members"] == ["allAuthenticatedUsers"]
    assert cis["//compute.googleapis.com/projects/acme-shop-dev/global/networks/default"].scope == "gcp:acme-shop-dev"
    assert cis["//storage.googleapis.com/acme-shop-static"].scope == SCOPE


def test_export_lines_of_the_wrong_shape_are_reported_one_by_one(engine: SyncEngine, store: SqliteStore, tmp_path: Path) -> None:
    import json

    lines = (DATA / "export_resource.jsonl").read_text().splitlines()
    web1 = json.loads(next(line for line in lines if "/instances/web-1" in line))
    web1["resource"]["data"]["metadata"] = "enable-oslogin=TRUE"
    odd = [
        {"name": 5, "asset_type": "compute.googleapis.com/Instance", "ancestors": 7, "resource": "x"},
        {"name": "//cloudresourcemanager.googleapis.com/projects/1", "asset_type": "cloudresourcemanager.googleapis.com/Project", "resource": "x"},
        web1,
        [1, 2],
    ]
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join([*(json.dumps(o) for o in odd), *(line for line in lines if "/instances/web-1" not in line)]) + "\n")
    report = engine.run(GcpExportConnector([path]))
    where = sorted(p.location for p in report.problems if p.location.startswith(str(path)))
    assert where == [f"{path}:{n}" for n in (1, 2, 3, 4)]
    assert not report.run.scopes[SCOPE]
    assert f"{COMPUTE}/zones/europe-west1-b/instances/web-2" in all_cis(store)
