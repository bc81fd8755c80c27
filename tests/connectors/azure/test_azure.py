"""The Azure connector end to end: the real azure-mgmt clients over HTTPS (a trustme CA)
against a local replay of recorded ARM and Resource Graph pages, the real sync engine
and the embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from cmdb.connectors.azure import AzureConnector
from cmdb.connectors.azure.connector import SUBSCRIPTIONS_QUERY
from cmdb.model import CI, Evidence, Relationship
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine, SyncReport

from ..replay import ReplayServer, load_json

DATA = Path(__file__).resolve().parents[2] / "data" / "azure"
SUB = "7d2c1a9e-4b3f-4c8a-9e6d-2f1b0a9c8e71"
SUB2 = "c41a8e20-5d6f-4b7a-9c8e-1f2a3b4c5d6e"
SCOPE = f"azure:{SUB}"
GRAPH = "/providers/Microsoft.ResourceGraph/resources"
RG = f"/subscriptions/{SUB}/resourcegroups/rg-shop-prod-weu/providers"
RGD = f"/subscriptions/{SUB}/resourcegroups/rg-shop-data-weu/providers"
NET = f"{RG}/microsoft.network"
LISTINGS = {
    "resource_groups": "/resourcegroups",
    "network_virtualNetworks": "/providers/Microsoft.Network/virtualNetworks",
    "network_networkSecurityGroups": "/providers/Microsoft.Network/networkSecurityGroups",
    "network_publicIPAddresses": "/providers/Microsoft.Network/publicIPAddresses",
    "network_networkInterfaces": "/providers/Microsoft.Network/networkInterfaces",
    "network_loadBalancers": "/providers/Microsoft.Network/loadBalancers",
    "network_applicationGateways": "/providers/Microsoft.Network/applicationGateways",
    "compute_virtualMachines": "/providers/Microsoft.Compute/virtualMachines",
    "compute_disks": "/providers/Microsoft.Compute/disks",
    "compute_virtualMachineScaleSets": "/providers/Microsoft.Compute/virtualMachineScaleSets",
}
NODE_GROUP = "MC_rg-shop-prod-weu_aks-shop-prod_westeurope"
SCALE_SETS = f"/resourceGroups/{NODE_GROUP}/providers/Microsoft.Compute/virtualMachineScaleSets"
SCALE_SET_VMS = {  # the instances of each scale set, listed per scale set
    "compute_vmss_system_vms": f"{SCALE_SETS}/aks-system-38175624-vmss/virtualMachines",
    "compute_vmss_apps_vms": f"{SCALE_SETS}/aks-apps-38175624-vmss/virtualMachines",
}


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(tls=True, rewrite=("https://management.azure.com",)) as replay:
        yield replay


def add_listing(server: ReplayServer, name: str, subscription: str = SUB) -> None:
    """Every recorded page of one ARM listing; page N+1 is what page N's nextLink asks for."""
    path = f"/subscriptions/{subscription}{LISTINGS.get(name) or SCALE_SET_VMS[name]}"
    skip: str | None = None
    number = 1
    while (DATA / f"{name}_page{number}.json").exists():
        body = load_json(DATA / f"{name}_page{number}.json")
        server.add("GET", path, body, query={"$skiptoken": skip})
        next_link = body.get("nextLink")
        if not next_link:
            break
        skip = parse_qs(urlsplit(next_link).query)["$skiptoken"][0]
        number += 1


def add_graph(server: ReplayServer) -> None:
    first = load_json(DATA / "resourcegraph_resources_page1.json")
    server.add("POST", GRAPH, first, json={"subscriptions": [SUB]})
    server.add("POST", GRAPH, load_json(DATA / "resourcegraph_resources_page2.json"),
               json={"subscriptions": [SUB], "options": {"$skipToken": first["$skipToken"]}})


@pytest.fixture
def replay(server: ReplayServer, monkeypatch: pytest.MonkeyPatch) -> ReplayServer:
    server.clear()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_path)
    monkeypatch.setenv("CMDB_AZURE_TOKEN", "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.test")
    monkeypatch.setenv("CMDB_AZURE_ENDPOINT", server.base_url)
    for name in (*LISTINGS, *SCALE_SET_VMS):
        add_listing(server, name)
    add_graph(server)
    return server


def sync(engine: SyncEngine, subscriptions: tuple[str, ...] = (SUB,)) -> SyncReport:
    return engine.run(AzureConnector(subscriptions))


def out_of(store: SqliteStore, ci_id: str) -> dict[tuple[str, str], Relationship]:
    return {(r.type, r.to_id): r for r in store.relationships([ci_id], "out")}


def cis_of(store: SqliteStore) -> dict[str, CI]:
    return {ci.id: ci for ci in store.iter_cis()}


def test_sweep_lands_the_subscription_with_links_and_evidence(replay: ReplayServer, engine: SyncEngine, store: SqliteStore) -> None:
    report = sync(engine)
    assert report.problems == []
    assert report.run.scopes == {SCOPE: True}
    assert replay.unmatched == []
    assert all(r.headers["authorization"].startswith("Bearer eyJ0eXAi") for r in replay.requests)
    for name, path in (LISTINGS | SCALE_SET_VMS).items():  # every listing followed its nextLink
        assert sum(1 for r in replay.requests if r.path == f"/subscriptions/{SUB}{path}") == 2, name
    graph = [r.json() for r in replay.requests if r.path == GRAPH]
    assert len(graph) == 2 and graph[1]["options"]["$skipToken"] == load_json(DATA / "resourcegraph_resources_page1.json")["$skipToken"]

    cis = cis_of(store)
    by_type: dict[str, int] = {}
    for ci in cis.values():
        by_type[ci.type] = by_type.get(ci.type, 0) + 1
        assert ci.id == ci.id.lower() and ci.scope == SCOPE and ci.provider == "azure"
    assert by_type == {
        "azure.resource_group": 3, "azure.network.vnet": 2, "azure.network.subnet": 4, "azure.network.nsg": 2,
        "azure.network.public_ip": 4, "azure.network.nic": 3, "azure.network.load_balancer": 3,
        "azure.network.application_gateway": 1, "azure.network.backend_pool": 4, "azure.compute.vm": 3,
        "azure.compute.disk": 4, "azure.compute.vmss": 2, "azure.compute.vmss_vm": 4, "azure.storage.account": 2,
        "azure.sql.server": 1, "azure.sql.database": 1, "azure.aks.cluster": 1,
    }

    # VM -> NIC -> subnet -> VNet; NIC -> NSG; VM -> disks (compute spells the group in upper case)
    vm = f"/subscriptions/{SUB}/resourcegroups/rg-shop-prod-weu/providers/microsoft.compute/virtualmachines/vm-web-01"
    web = cis[vm]
    assert web.name == "vm-web-01" and web.region == "westeurope" and web.tags["owner"] == "team-shop"
    assert web.attributes["vm_size"] == "Standard_D4s_v5" and web.attributes["resource_group"] == "RG-SHOP-PROD-WEU"
    assert set(web.aliases) == {f"azure://{vm}", "5c2f1a7e-8b3d-4c9e-a1f0-6d2b8e4c7a91"}
    nic = f"{NET}/networkinterfaces/nic-vm-web-01"
    vm_out = out_of(store, vm)
    assert vm_out[("DEPENDS_ON", nic)].evidence == (Evidence("properties.networkProfile.networkInterfaces[0].id", nic),)
    os_disk = f"{RG}/microsoft.compute/disks/vm-web-01_osdisk_1_3f9a2c7e1b6d4e8f9a0b1c2d3e4f5a6b"
    assert vm_out[("DEPENDS_ON", os_disk)].evidence[0].field == "properties.storageProfile.osDisk.managedDisk.id"
    assert ("DEPENDS_ON", f"{RG}/microsoft.compute/disks/vm-web-01_data0") in vm_out
    subnet = f"{NET}/virtualnetworks/vnet-shop-prod-weu/subnets/snet-web"
    nic_out = out_of(store, nic)
    assert nic_out[("CONTAINED_IN", subnet)].evidence == (
        Evidence("properties.ipConfigurations[0].properties.subnet.id", subnet),
    )
    assert nic_out[("SECURED_BY", f"{NET}/networksecuritygroups/nsg-web")].evidence[0].field == "properties.networkSecurityGroup.id"
    pool = f"{NET}/loadbalancers/lb-web/backendaddresspools/bepool-web"
    assert nic_out[("MEMBER_OF", pool)].type == "MEMBER_OF"
    subnet_out = out_of(store, subnet)
    assert subnet_out[("CONTAINED_IN", f"{NET}/virtualnetworks/vnet-shop-prod-weu")].evidence[0].field == "properties.subnets[1].id"
    assert ("SECURED_BY", f"{NET}/networksecuritygroups/nsg-web") in subnet_out
    jump_nic = out_of(store, f"{NET}/networkinterfaces/nic-vm-jump-01")
    assert ("DEPENDS_ON", f"{NET}/publicipaddresses/pip-vm-jump-01") in jump_nic

    # LB -> backend pool -> NICs (any-of), with the frontend IP as an alias
    lb = f"{NET}/loadbalancers/lb-web"
    assert cis[lb].aliases == ("20.86.145.12",) and cis[lb].attributes["public"] is True
    assert out_of(store, lb)[("ROUTES_TO", pool)].evidence[0].field == "properties.backendAddressPools[0].id"
    assert ("DEPENDS_ON", f"{NET}/publicipaddresses/pip-lb-web") in out_of(store, lb)
    members = out_of(store, pool)
    assert set(members) == {("ROUTES_TO", nic), ("ROUTES_TO", f"{NET}/networkinterfaces/nic-vm-web-02")}
    assert members[("ROUTES_TO", nic)].evidence == (
        Evidence("properties.backendAddressPools[0].properties.backendIPConfigurations[0].id", f"{nic}/ipconfigurations/ipconfig1"),
    )
    internal = f"{NET}/loadbalancers/lb-internal-api"
    assert cis[internal].aliases == ("10.10.1.100",) and cis[internal].attributes["public"] is False
    agw = f"{NET}/applicationgateways/agw-shop-prod"
    assert cis[agw].aliases == ("20.86.150.3",)
    assert out_of(store, f"{agw}/backendaddresspools/pool-web")[("ROUTES_TO", nic)].evidence == (
        Evidence("properties.backendAddressPools[0].properties.backendAddresses[0].ipAddress", "10.10.1.4"),
        Evidence("properties.backendAddressPools[0].properties.backendIPConfigurations[0].id", f"{nic}/ipconfigurations/ipconfig1"),
    )
    assert ("CONTAINED_IN", f"{NET}/virtualnetworks/vnet-shop-prod-weu/subnets/snet-appgw") in out_of(store, agw)

    # NSG rules in the shared shape
    data_nsg = cis[f"/subscriptions/{SUB}/resourcegroups/rg-shop-data-weu/providers/microsoft.network/networksecuritygroups/nsg-data"]
    rdp = next(r for r in data_nsg.attributes["rules"] if r["name"] == "allow-rdp-anywhere")
    assert {k: rdp[k] for k in ("direction", "access", "protocol", "ports", "sources")} == {
        "direction": "inbound", "access": "allow", "protocol": "tcp", "ports": ["3389"], "sources": ["0.0.0.0/0"],
    }
    probes = next(r for r in cis[f"{NET}/networksecuritygroups/nsg-web"].attributes["rules"] if r["name"] == "allow-lb-probes")
    assert probes["ports"] == ["80", "8080-8090"] and probes["protocol"] == "all" and probes["sources"] == ["AzureLoadBalancer"]

    # Resource Graph types: SQL, storage, AKS
    server = f"{RGD}/microsoft.sql/servers/sql-shop-prod-weu"
    assert cis[server].aliases == ("sql-shop-prod-weu.database.windows.net",)
    assert out_of(store, f"{server}/databases/orders")[("CONTAINED_IN", server)].evidence == (Evidence("id", server),)
    assets = cis[f"{RGD}/microsoft.storage/storageaccounts/stshopassetsweu"]
    assert assets.attributes["public"] is True and assets.attributes["encrypted"] is True
    assert assets.aliases == ("stshopassetsweu.blob.core.windows.net",)
    assert cis[f"{RGD}/microsoft.storage/storageaccounts/stshopprodweu01"].attributes["public"] is False
    aks = f"{RG}/microsoft.containerservice/managedclusters/aks-shop-prod"
    assert set(cis[aks].aliases) == {"aks-shop-prod", "aks-shop-prod-dns-k3x9p2q1.hcp.westeurope.azmk8s.io"}
    assert out_of(store, aks)[("CONTAINED_IN", f"{NET}/virtualnetworks/vnet-shop-prod-weu/subnets/snet-aks")].evidence == (
        Evidence("properties.agentPoolProfiles[0].vnetSubnetID", f"{NET}/virtualnetworks/vnet-shop-prod-weu/subnets/snet-aks"),
        Evidence("properties.agentPoolProfiles[1].vnetSubnetID", f"{NET}/virtualnetworks/vnet-shop-prod-weu/subnets/snet-aks"),
    )

    # AKS -> its agent pools' scale sets -> their instances (the Kubernetes providerID form is an alias);
    # the cluster's load balancer routes to the instances
    node_group = f"/subscriptions/{SUB}/resourcegroups/{NODE_GROUP.lower()}/providers"
    system = f"{node_group}/microsoft.compute/virtualmachinescalesets/aks-system-38175624-vmss"
    apps = f"{node_group}/microsoft.compute/virtualmachinescalesets/aks-apps-38175624-vmss"
    aks_out = out_of(store, aks)
    assert aks_out[("COMPOSED_OF", system)].evidence == (Evidence("properties.agentPoolProfiles[0].name", system),)
    assert ("COMPOSED_OF", apps) in aks_out
    assert {to for kind, to in out_of(store, system) if kind == "COMPOSED_OF"} == {f"{system}/virtualmachines/0", f"{system}/virtualmachines/1"}
    node = cis[f"{apps}/virtualmachines/3"]
    assert f"azure://{node.id}" in node.aliases and node.attributes["computer_name"] == "aks-apps-38175624-vmss000003"
    assert ("CONTAINED_IN", f"{NET}/virtualnetworks/vnet-shop-prod-weu/subnets/snet-aks") in out_of(store, system)
    kube_pool = f"{node_group}/microsoft.network/loadbalancers/kubernetes/backendaddresspools/kubernetes"
    assert ("MEMBER_OF", kube_pool) in out_of(store, system)
    assert {to for _, to in out_of(store, kube_pool)} == {
        f"{system}/virtualmachines/0", f"{system}/virtualmachines/1", f"{apps}/virtualmachines/0", f"{apps}/virtualmachines/3",
    }
    assert cis[f"{node_group}/microsoft.network/loadbalancers/kubernetes"].aliases == ("20.105.36.214",)

    again = sync(engine)
    assert again.counts["created"] == 0 and again.counts["updated"] == 0 and again.counts["relationships_added"] == 0
    assert again.counts["relationships_updated"] == 0 and again.counts["stale"] == 0


def _all_active(store: SqliteStore) -> tuple[int, int]:
    cis = list(store.iter_cis())
    rels = list(store.iter_relationships())
    assert all(ci.lifecycle_state == "active" for ci in cis) and all(r.lifecycle_state == "active" for r in rels)
    return len(cis), len(rels)


def _replace(server: ReplayServer, path: str, body: Any, status: int = 200, second_page: bool = True) -> None:
    for route in server.routes:
        later_page = route.query.get("$skiptoken") is not None or bool(route.json and "options" in route.json)
        if route.path == path and later_page == second_page:
            route.body, route.status = body, status


def test_forbidden_page_leaves_the_subscription_incomplete_and_nothing_stale(
    replay: ReplayServer, engine: SyncEngine, store: SqliteStore
) -> None:
    sync(engine)
    before = _all_active(store)
    _replace(replay, f"/subscriptions/{SUB}/providers/Microsoft.Network/networkInterfaces", load_json(DATA / "error_403.json"), 403)
    report = sync(engine)
    assert report.run.scopes == {SCOPE: False} and report.run.status == "partial"
    problem = next(p for p in report.problems if p.location.startswith("network_interfaces"))
    assert problem.location == f"network_interfaces.list_all subscription {SUB} page 2"
    assert problem.reason.startswith("403 AuthorizationFailed")
    assert any(r.path.endswith("/virtualMachines") for r in replay.requests[-12:])  # the other listings went on
    assert report.counts["stale"] == 0 and report.counts["relationships_removed"] == 0
    assert _all_active(store) == before


def test_malformed_pages_are_reported_and_retire_nothing(replay: ReplayServer, engine: SyncEngine, store: SqliteStore) -> None:
    sync(engine)
    before = _all_active(store)
    _replace(replay, GRAPH, b'{"totalRecords": 5, "count": 2, "data": [{"id": ')
    report = sync(engine)
    assert report.run.scopes == {SCOPE: False}
    problem = next(p for p in report.problems if p.location.startswith("resourcegraph"))
    assert problem.location == f"resourcegraph.resources subscription {SUB} page 2" and "JSON" in problem.reason
    assert _all_active(store) == before

    _replace(replay, GRAPH, load_json(DATA / "resourcegraph_resources_page2.json"))
    _replace(replay, f"/subscriptions/{SUB}/providers/Microsoft.Compute/disks", {"value": "not a list"})
    report = sync(engine)
    assert report.run.scopes == {SCOPE: False}
    assert [p.location for p in report.problems if "disks" in p.location] == [f"disks.list subscription {SUB} page 2"]
    assert _all_active(store) == before


def test_one_malformed_resource_is_reported_and_the_rest_lands(replay: ReplayServer, engine: SyncEngine, store: SqliteStore) -> None:
    page = load_json(DATA / "network_networkInterfaces_page2.json")
    page["value"][0]["properties"]["ipConfigurations"] = "ipconfig1"
    _replace(replay, f"/subscriptions/{SUB}/providers/Microsoft.Network/networkInterfaces", page)
    report = sync(engine)
    bad = f"{NET}/networkinterfaces/nic-vm-jump-01"
    read = [p for p in report.problems if p.location.startswith("network_interfaces")]
    assert [(p.ci_id, p.location.endswith("page 2"), "ipConfigurations" in p.reason) for p in read] == [(bad, True, True)]
    assert report.run.scopes == {SCOPE: False}
    cis = cis_of(store)
    assert bad not in cis and f"{NET}/networkinterfaces/nic-vm-web-02" in cis
    assert f"/subscriptions/{SUB}/resourcegroups/rg-shop-prod-weu/providers/microsoft.compute/virtualmachines/vm-jump-01" in cis
    # the VM's link to the unreadable NIC is reported, not invented
    assert any("nic-vm-jump-01" in p.reason and "unknown CI" in p.reason for p in report.problems)


def test_every_visible_subscription_by_default(replay: ReplayServer, engine: SyncEngine, store: SqliteStore) -> None:
    first = load_json(DATA / "resourcegraph_subscriptions_page1.json")
    replay.add("POST", GRAPH, first, json={"query": SUBSCRIPTIONS_QUERY})
    replay.add("POST", GRAPH, load_json(DATA / "resourcegraph_subscriptions_page2.json"),
               json={"query": SUBSCRIPTIONS_QUERY, "options": {"$skipToken": first["$skipToken"]}})
    for path in LISTINGS.values():  # the sandbox subscription is empty
        replay.add("GET", f"/subscriptions/{SUB2}{path}", {"value": []})
    replay.add("POST", GRAPH, {"totalRecords": 0, "count": 0, "resultTruncated": "false", "data": []}, json={"subscriptions": [SUB2]})
    report = engine.run(AzureConnector())
    assert report.problems == []
    assert report.run.scopes == {SCOPE: True, f"azure:{SUB2}": True}
    assert "subscriptions" not in replay.requests[0].json()  # the subscription query spans all visible ones


def test_cli_sync_azure(replay: ReplayServer, tmp_path: Path) -> None:
    from cmdb.cli import cli

    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "cli.db"), "sync", "azure", "--subscription", SUB, "--json"])
    assert result.exit_code == 0, result.output
    assert '"complete"' in result.output and '"created": 44' in result.output


def test_a_refused_credential_stops_the_subscription_and_retires_nothing(
    replay: ReplayServer, engine: SyncEngine, store: SqliteStore
) -> None:
    sync(engine)
    before = _all_active(store)
    replay.requests.clear()
    expired = {"error": {"code": "ExpiredAuthenticationToken", "message": "The access token expiry UTC time '11/22/2026 09:01:13' is earlier than current UTC time '11/22/2026 10:12:40'."}}
    _replace(replay, f"/subscriptions/{SUB}/resourcegroups", expired, 401, second_page=False)
    report = sync(engine)
    assert report.run.scopes == {SCOPE: False}
    assert [p.location for p in report.problems] == [f"resource_groups.list subscription {SUB} page 1", f"azure:{SCOPE}"]
    assert report.problems[0].reason.startswith("401 ExpiredAuthenticationToken")
    assert len(replay.requests) == 1  # no use asking the other listings with the same token
    assert _all_active(store) == before
