"""A realistic generated estate, from a few thousand CIs up to a million.

Business services depend on applications; applications run as Kubernetes
workloads (Deployment -> ReplicaSet -> pods -> nodes -> cloud VMs -> subnets ->
networks) or on VMs behind load balancers, and use managed databases and
buckets; CDNs and DNS records sit in front. AWS, GCP and Azure stacks, with
owners, cost centres and environments — and, on purpose, a few misconfigured
CIs (public buckets, unencrypted volumes, SSH open to the world, public
databases, missing owners).

The estate is generated for a ``day``: day 0 has some legacy CIs that day 1 no
longer has, and day 1 changes some attributes, so syncing day 0 then day 1
gives real history and real stale CIs (``load_demo`` does exactly that).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cmdb.connectors.base import Batch, Event, ScopeDone
from cmdb.model import CI, Evidence, Relationship, now
from cmdb.store.base import Store
from cmdb.sync import SyncEngine, SyncReport

__all__ = ["DemoConnector", "load_demo"]

CIS_PER_APP = 16  # about how many CIs one application stack brings, shared infrastructure included
REPLICAS = 4
APPS_PER_CELL = 40

_TEAMS = [
    "payments", "checkout", "catalogue", "search", "identity", "platform", "data", "mobile",
    "marketing", "fulfilment", "billing", "support", "risk", "analytics", "messaging", "media",
]
_SERVICES = [
    "Online Shop", "Payments", "Customer Accounts", "Product Search", "Order Fulfilment", "Mobile App",
    "Billing", "Customer Support", "Marketing Campaigns", "Fraud Detection", "Data Warehouse",
    "Notifications", "Media Delivery", "Partner API", "Loyalty", "Reporting",
]
_APP_PARTS = ["api", "web", "worker", "gateway", "scheduler", "ingest", "export", "sync", "render", "auth"]
_AWS_ACCOUNTS = {"production": "412381904377", "staging": "290443513766", "development": "771209665103"}
_AWS_REGIONS = ["eu-west-1", "us-east-1", "eu-central-1"]
_GCP_PROJECTS = {"production": "shop-prod-4821", "staging": "shop-stg-2210", "development": "shop-dev-9137"}
_GCP_REGIONS = ["europe-west1", "us-central1"]
_AZ_SUBS = {
    "production": "9f1c6a2e-41d7-4c0b-9a55-3e1d2b7c8f10",
    "staging": "2b8e7d41-6c3a-4f92-8d1e-5a7c9b0e3f21",
    "development": "c4d2e8f6-1a3b-4c5d-9e7f-0a1b2c3d4e5f",
}
_AZ_REGIONS = ["westeurope", "northeurope"]
_ENVIRONMENTS = ["production", "production", "staging", "development"]


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


@dataclass
class _Out:
    """Collects one cell's CIs and relationships."""

    scope: str
    cis: list[CI] = field(default_factory=list)
    rels: list[Relationship] = field(default_factory=list)

    def ci(self, ci: CI) -> str:
        self.cis.append(ci)
        return ci.id

    def rel(self, from_id: str, rel_type: str, to_id: str, evidence: str, value: str = "") -> None:
        self.rels.append(Relationship(from_id, rel_type, to_id, evidence=(Evidence(evidence, value or to_id),)))


@dataclass(frozen=True)
class _Cloud:
    """What differs between the three clouds' stacks: type names and id shapes."""

    name: str
    vm: str
    disk: str
    network: str
    subnet: str
    firewall: str
    lb: str
    db: str
    bucket: str
    cluster: str


_CLOUDS = {
    "aws": _Cloud("aws", "aws.ec2.instance", "aws.ec2.volume", "aws.ec2.vpc", "aws.ec2.subnet",
                  "aws.ec2.security_group", "aws.elbv2.load_balancer", "aws.rds.db_instance", "aws.s3.bucket",
                  "aws.eks.cluster"),
    "gcp": _Cloud("gcp", "gcp.compute.instance", "gcp.compute.disk", "gcp.compute.network",
                  "gcp.compute.subnetwork", "gcp.compute.firewall", "gcp.compute.backend_service",
                  "gcp.sqladmin.instance", "gcp.storage.bucket", "gcp.container.cluster"),
    "azure": _Cloud("azure", "azure.compute.vm", "azure.compute.disk", "azure.network.vnet",
                    "azure.network.subnet", "azure.network.nsg", "azure.network.load_balancer",
                    "azure.sql.database", "azure.storage.account", "azure.aks.cluster"),
}


class DemoConnector:
    """Yields the demo estate for one ``day``; the same seed gives the same estate."""

    source = "demo"

    def __init__(self, size: int = 3000, seed: int = 7, day: int = 1, fanout: int = 3) -> None:
        self.size = max(size, 200)
        self.seed = seed
        self.day = day
        self.fanout = fanout  # how many other applications' Services each workload calls

    def sweep(self) -> Iterator[Event]:
        rng = random.Random(self.seed)
        n_apps = max(8, self.size // CIS_PER_APP)
        n_services = max(4, n_apps // 3)
        n_teams = max(4, min(len(_TEAMS) * 40, n_apps // 6))
        scopes: set[str] = set()

        people = _Out("demo:organisation")
        teams = [self._team(people, i) for i in range(n_teams)]
        services = [self._service(people, i, rng, teams) for i in range(n_services)]
        scopes.add(people.scope)
        yield Batch(people.scope, people.cis, people.rels)

        app_index = 0
        cell = 0
        while app_index < n_apps:
            count = min(APPS_PER_CELL, n_apps - app_index)
            for batch in self._cell(cell, app_index, count, rng, teams, services):
                scopes.add(batch.scope)
                yield batch
            app_index += count
            cell += 1
        for scope in sorted(scopes):
            yield ScopeDone(scope, True)

    # --- organisation -------------------------------------------------------
    def _team(self, out: _Out, i: int) -> str:
        base = _TEAMS[i % len(_TEAMS)]
        name = base if i < len(_TEAMS) else f"{base}-{i // len(_TEAMS)}"
        return out.ci(
            CI(
                id=f"team:{name}",
                type="team.team",
                name=f"team {name}",
                provider="internal",
                cost_centre=f"CC-{1000 + i % 97}",
                business_unit=["Retail", "Platform", "Finance", "Marketing"][i % 4],
                attributes={"email": f"{name}@example.com", "slack": f"#team-{name}"},
            )
        )

    def _service(self, out: _Out, i: int, rng: random.Random, teams: list[str]) -> tuple[str, str, str]:
        base = _SERVICES[i % len(_SERVICES)]
        name = base if i < len(_SERVICES) else f"{base} {i // len(_SERVICES) + 1}"
        team = teams[i % len(teams)]
        environment = _ENVIRONMENTS[i % len(_ENVIRONMENTS)]
        criticality = ["critical", "high", "medium", "low"][min(3, rng.randrange(5) if environment == "production" else 3)]
        ci_id = out.ci(
            CI(
                id=f"service:{name.lower().replace(' ', '-')}",
                type="service.business",
                name=name,
                provider="internal",
                environment=environment,
                owner=team.removeprefix("team:"),
                criticality=criticality,
                attributes={"tier": criticality, "sla": {"critical": "99.95", "high": "99.9"}.get(criticality, "99.5")},
            )
        )
        out.rel(ci_id, "OWNED_BY", team, "services.yaml owner", team)
        return ci_id, environment, team

    # --- one cloud cell: a network, a Kubernetes cluster on VMs, and apps ---
    def _cell(
        self,
        cell: int,
        first_app: int,
        count: int,
        rng: random.Random,
        teams: list[str],
        services: list[tuple[str, str, str]],
    ) -> Iterator[Batch]:
        cloud = _CLOUDS[["aws", "aws", "gcp", "azure"][cell % 4]]
        environment = _ENVIRONMENTS[cell % len(_ENVIRONMENTS)]
        ids = _Ids(cloud.name, environment, cell, rng)
        infra = _Out(ids.scope)
        kube = _Out(f"k8s:{ids.cluster_name}")
        apps = _Out("demo:applications")
        team = teams[cell % len(teams)].removeprefix("team:")
        cost_centre = f"CC-{1000 + cell % 97}"

        def cloud_ci(ci_id: str, ci_type: str, name: str, attributes: dict[str, Any], **common: Any) -> str:
            fields = {
                "provider": cloud.name, "region": ids.region, "environment": environment,
                "owner": team, "cost_centre": cost_centre, **common,
            }
            if not fields["owner"]:
                del fields["owner"]
            return infra.ci(CI(id=ci_id, type=ci_type, name=name, attributes=attributes,
                               tags={"env": environment, "team": team, "cost-centre": cost_centre}, **fields))

        network = cloud_ci(ids.make("network"), cloud.network, f"{environment}-net-{cell}", ids.network_attributes())
        subnets = []
        for z in range(3):
            subnet = cloud_ci(ids.make("subnet"), cloud.subnet, f"{environment}-private-{cell}-{z}", ids.subnet_attributes(z))
            infra.rel(subnet, "CONTAINED_IN", network, ids.field("subnet_network"))
            subnets.append(subnet)
        ssh_open = cell % 5 == 2
        firewall = cloud_ci(ids.make("firewall"), cloud.firewall, f"{environment}-nodes-{cell}", ids.firewall_attributes(ssh_open))

        cluster_cloud = cloud_ci(ids.make("cluster"), cloud.cluster, ids.cluster_name, ids.cluster_attributes())
        infra.rel(cluster_cloud, "CONTAINED_IN", subnets[0], ids.field("cluster_subnet"))
        k8s_cluster = kube.ci(CI(id=f"{ids.cluster_name}/cluster", type="k8s.cluster", name=ids.cluster_name,
                                 provider="kubernetes", environment=environment, owner="platform",
                                 attributes={"server": f"https://{ids.cluster_name}.k8s.example.com", "version": "v1.30.4"}))
        kube.rel(k8s_cluster, "RUNS_ON", cluster_cloud, "kubeconfig clusters[].cluster.server")

        n_nodes = max(3, count * 3 // 8)
        nodes = []
        for n in range(n_nodes):
            vm_id, disk_id = ids.make("vm"), ids.make("disk")  # drawn on every day, so later ids stay stable
            if n == n_nodes - 1 and cell % 3 == 0 and self.day > 0:
                continue  # a legacy node decommissioned between day 0 and day 1: it goes stale
            instance_type = ids.instance_type(n, upsized=self.day > 0 and n % 11 == 4)
            vm = cloud_ci(vm_id, cloud.vm, f"{ids.cluster_name}-node-{n}", ids.vm_attributes(instance_type, n),
                          aliases=ids.vm_aliases(vm_id))
            disk = cloud_ci(disk_id, cloud.disk, f"{ids.cluster_name}-node-{n}-root",
                            ids.disk_attributes(encrypted=n % 19 != 7))
            infra.rel(vm, "CONTAINED_IN", subnets[n % 3], ids.field("vm_subnet"))
            infra.rel(vm, "SECURED_BY", firewall, ids.field("vm_firewall"))
            infra.rel(vm, "DEPENDS_ON", disk, ids.field("vm_disk"))
            infra.rel(cluster_cloud, "COMPOSED_OF", vm, ids.field("cluster_vms"))
            infra.rel(vm, "OWNED_BY", f"team:{team}", "tags.team", team)
            node = kube.ci(CI(id=f"{ids.cluster_name}/node/{ids.node_name(n)}", type="k8s.node", name=ids.node_name(n),
                              provider="kubernetes", environment=environment, owner="platform",
                              attributes={"provider_id": ids.provider_id(vm_id, n), "kubelet_version": "v1.30.4",
                                          "instance_type": instance_type, "ready": True}))
            kube.rel(node, "RUNS_ON", vm, "spec.providerID", ids.provider_id(vm_id, n))
            kube.rel(node, "MEMBER_OF", k8s_cluster, "cluster")
            nodes.append(node)
        yield Batch(infra.scope, infra.cis, infra.rels)
        infra.cis, infra.rels = [], []

        namespaces: dict[str, tuple[str, str]] = {}
        called: list[tuple[str, str]] = []  # (service host, Service id) of the cell's earlier apps
        for a in range(first_app, first_app + count):
            service_id, service_env, _ = services[a % len(services)]
            app_team = teams[a % len(teams)].removeprefix("team:")
            part = _APP_PARTS[a % len(_APP_PARTS)]
            app_name = f"{service_id.removeprefix('service:')}-{part}-{a}"
            if app_team not in namespaces:
                ns_id = kube.ci(CI(id=f"{ids.cluster_name}/namespace/{app_team}", type="k8s.namespace", name=app_team,
                                   provider="kubernetes", environment=environment, owner=app_team,
                                   attributes={"phase": "Active"}))
                account = kube.ci(CI(id=f"{ids.cluster_name}/{app_team}/serviceaccount/{app_team}-workloads",
                                     type="k8s.service_account", name=f"{app_team}-workloads", provider="kubernetes",
                                     environment=environment, owner=app_team))
                kube.rel(account, "MEMBER_OF", ns_id, "metadata.namespace")
                kube.rel(ns_id, "OWNED_BY", f"team:{app_team}", "metadata.labels.team", app_team)
                namespaces[app_team] = (ns_id, account)
            ns, service_account = namespaces[app_team]
            owner = "" if a % 31 == 17 else app_team
            db_name = f"{app_name}-db"
            db = cloud_ci(ids.make("db", db_name), cloud.db, db_name, ids.db_attributes(db_name, public=a % 29 == 11),
                          aliases=(ids.db_endpoint(db_name),), owner=owner)
            infra.rel(db, "CONTAINED_IN", subnets[a % 3], ids.field("db_subnet"))
            infra.rel(db, "SECURED_BY", firewall, ids.field("db_firewall"))
            bucket_name = f"{app_name}-assets-{ids.short}"
            bucket = cloud_ci(ids.make("bucket", bucket_name), cloud.bucket, bucket_name,
                              ids.bucket_attributes(public=a % 23 == 5), owner=owner)

            image_tag = f"1.{a % 9}.{1 + (self.day if a % 7 == 3 else 0)}"
            image = f"registry.example.com/{app_team}/{app_name}:{image_tag}"

            def k8s_ci(ci_id: str, ci_type: str, name: str, attributes: dict[str, Any], owner: str = owner) -> str:
                return kube.ci(CI(id=ci_id, type=ci_type, name=name, attributes=attributes, provider="kubernetes",
                                  environment=environment, owner=owner))

            deploy = k8s_ci(f"{ids.cluster_name}/{app_team}/deployment/{app_name}", "k8s.deployment", app_name,
                            {"replicas": REPLICAS, "ready_replicas": REPLICAS, "images": [image], "selector": {"app": app_name}})
            rs_hash = _hex(random.Random(f"{app_name}:{image_tag}"), 10)
            replicaset = k8s_ci(f"{ids.cluster_name}/{app_team}/replicaset/{app_name}-{rs_hash}", "k8s.replicaset",
                                f"{app_name}-{rs_hash}", {"replicas": REPLICAS, "ready_replicas": REPLICAS, "images": [image]})
            kube.rel(deploy, "DEPENDS_ON", replicaset, "metadata.ownerReferences")
            config = k8s_ci(f"{ids.cluster_name}/{app_team}/configmap/{app_name}-config", "k8s.configmap",
                            f"{app_name}-config", {"keys": ["DATABASE_HOST", "LOG_LEVEL", "BUCKET"]})
            svc = k8s_ci(f"{ids.cluster_name}/{app_team}/service/{app_name}", "k8s.service", app_name,
                         {"service_type": "ClusterIP", "selector": {"app": app_name}, "ports": [8080],
                          "cluster_ip": f"10.100.{a % 250}.{(a * 7) % 250}"})
            for p in range(REPLICAS):
                pod = k8s_ci(f"{ids.cluster_name}/{app_team}/pod/{app_name}-{rs_hash}-{_hex(rng, 5)}", "k8s.pod",
                             f"{app_name}-{rs_hash}-{p}",
                             {"phase": "Running", "node_name": nodes[(a + p) % len(nodes)].rsplit("/", 1)[1],
                              "images": [image], "labels": {"app": app_name}})
                kube.rel(replicaset, "COMPOSED_OF", pod, "metadata.ownerReferences")
                kube.rel(pod, "RUNS_ON", nodes[(a + p) % len(nodes)], "spec.nodeName")
                kube.rel(pod, "DEPENDS_ON", config, "spec.containers[].envFrom[].configMapRef")
                kube.rel(svc, "ROUTES_TO", pod, "spec.selector", f"app={app_name}")
                kube.rel(pod, "DEPENDS_ON", service_account, "spec.serviceAccountName")
                kube.rel(pod, "MEMBER_OF", ns, "metadata.namespace")
            for member in (deploy, replicaset, config, svc):
                kube.rel(member, "MEMBER_OF", ns, "metadata.namespace")
            if owner:
                for owned in (deploy, svc):
                    kube.rel(owned, "OWNED_BY", f"team:{owner}", "metadata.labels.team", owner)
                for owned in (db, bucket):
                    infra.rel(owned, "OWNED_BY", f"team:{owner}", "tags.team", owner)
            kube.rel(deploy, "DEPENDS_ON", db, "configmap DATABASE_HOST", ids.db_endpoint(db_name))
            kube.rel(deploy, "DEPENDS_ON", config, "spec.template.spec.containers[].envFrom[].configMapRef", config)
            for callee_name, callee in called[-self.fanout:] if self.fanout else ():  # services this one calls
                kube.rel(deploy, "DEPENDS_ON", callee, "spec.template.spec.containers[].env[].value",
                         f"http://{callee_name}.svc.cluster.local")
            called.append((f"{app_name}.{app_team}", svc))

            app = apps.ci(CI(id=f"app:{app_name}", type="app.application", name=app_name, provider="internal",
                             environment=service_env, owner=owner, cost_centre=cost_centre,
                             attributes={"language": ["go", "python", "java", "typescript"][a % 4],
                                         "repository": f"github.com/example/{app_name}"}))
            apps.rel(service_id, "DEPENDS_ON", app, "services.yaml applications")
            apps.rel(app, "DEPENDS_ON", deploy, "deploy.yaml workload")
            apps.rel(app, "DEPENDS_ON", bucket, "app config BUCKET", bucket_name)
            if owner:
                apps.rel(app, "OWNED_BY", f"team:{owner}", "owner tag")
            if a % 4 == 0:  # an internet-facing edge: load balancer -> ingress, DNS -> load balancer
                ingress = k8s_ci(f"{ids.cluster_name}/{app_team}/ingress/{app_name}", "k8s.ingress", app_name,
                                 {"hosts": [f"{app_name}.example.com"], "ingress_class": "nginx"})
                kube.rel(ingress, "ROUTES_TO", svc, "spec.rules[].http.paths[].backend.service.name", app_name)
                lb = cloud_ci(ids.make("lb", app_name), cloud.lb, f"{app_name}-lb", ids.lb_attributes(app_name, tls=a % 8 != 4),
                              aliases=(ids.lb_dns(app_name),))
                infra.rel(lb, "ROUTES_TO", ingress, "ingress status.loadBalancer", ids.lb_dns(app_name))
                apps.rel(app, "DEPENDS_ON", lb, "service endpoint")
                if cloud.name == "aws":
                    cdn_id = f"arn:aws:cloudfront::{ids.account}:distribution/E{_hex(rng, 13).upper()}"
                    cdn = cloud_ci(cdn_id, "aws.cloudfront.distribution", f"{app_name}-cdn",
                                   {"domain_name": f"d{_hex(rng, 13)}.cloudfront.net", "aliases": [f"{app_name}.example.com"],
                                    "enabled": True, "origins": [ids.lb_dns(app_name), f"{bucket_name}.s3.amazonaws.com"],
                                    "price_class": "PriceClass_100"}, region="global")
                    infra.rel(cdn, "ROUTES_TO", lb, "Origins.Items[].DomainName", ids.lb_dns(app_name))
                    infra.rel(cdn, "DEPENDS_ON", bucket, "Origins.Items[].DomainName", f"{bucket_name}.s3.amazonaws.com")
            if a % 5 == 1 and cloud.name == "aws":  # a VM-based app behind an ALB target group
                for v in range(2):
                    vm_id = ids.make("vm")
                    vm = cloud_ci(vm_id, cloud.vm, f"{app_name}-vm-{v}", ids.vm_attributes("m6i.large", v),
                                  aliases=ids.vm_aliases(vm_id))
                    infra.rel(vm, "CONTAINED_IN", subnets[v % 3], ids.field("vm_subnet"))
                    infra.rel(vm, "SECURED_BY", firewall, ids.field("vm_firewall"))
                    tg = f"arn:aws:elasticloadbalancing:{ids.region}:{ids.account}:targetgroup/{app_name[:24]}-tg/{_hex(rng, 16)}"
                    if v == 0:
                        tg_id = cloud_ci(tg, "aws.elbv2.target_group", f"{app_name}-tg",
                                         {"protocol": "HTTP", "port": 8080, "target_type": "instance",
                                          "healthy_targets": 2, "unhealthy_targets": 0})
                        apps.rel(app, "DEPENDS_ON", tg_id, "deploy.yaml target group")
                    infra.rel(tg_id, "ROUTES_TO", vm, "TargetHealthDescriptions[].Target.Id", vm_id.rsplit("/", 1)[1])
        yield Batch(infra.scope, infra.cis, infra.rels)
        yield Batch(kube.scope, kube.cis, kube.rels)
        yield Batch(apps.scope, apps.cis, apps.rels)


class _Ids:
    """Provider-shaped ids, names and attributes for one cell."""

    def __init__(self, cloud: str, environment: str, cell: int, rng: random.Random) -> None:
        self.cloud = cloud
        self.rng = rng
        self.short = _hex(rng, 6)
        if cloud == "aws":
            self.account = _AWS_ACCOUNTS[environment]
            self.region = _AWS_REGIONS[cell % len(_AWS_REGIONS)]
            self.scope = f"aws:{self.account}:{self.region}"
        elif cloud == "gcp":
            self.account = _GCP_PROJECTS[environment]
            self.region = _GCP_REGIONS[cell % len(_GCP_REGIONS)]
            self.scope = f"gcp:{self.account}"
        else:
            self.account = _AZ_SUBS[environment]
            self.region = _AZ_REGIONS[cell % len(_AZ_REGIONS)]
            self.scope = f"azure:{self.account}"
        self.cluster_name = f"{environment[:4]}-{cloud}-{self.region}-{cell}"
        self.resource_group = f"rg-{environment}-{cell}"

    def make(self, kind: str, name: str = "") -> str:
        rng = self.rng
        region, account = self.region, self.account
        if self.cloud == "aws":
            ec2 = f"arn:aws:ec2:{region}:{account}"
            return {
                "network": lambda: f"{ec2}:vpc/vpc-{_hex(rng, 17)}",
                "subnet": lambda: f"{ec2}:subnet/subnet-{_hex(rng, 17)}",
                "firewall": lambda: f"{ec2}:security-group/sg-{_hex(rng, 17)}",
                "vm": lambda: f"{ec2}:instance/i-{_hex(rng, 17)}",
                "disk": lambda: f"{ec2}:volume/vol-{_hex(rng, 17)}",
                "cluster": lambda: f"arn:aws:eks:{region}:{account}:cluster/{self.cluster_name}",
                "db": lambda: f"arn:aws:rds:{region}:{account}:db:{name}",
                "bucket": lambda: f"arn:aws:s3:::{name}",
                "lb": lambda: f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{name[:26]}/{_hex(rng, 16)}",
            }[kind]()
        if self.cloud == "gcp":
            zone = f"{region}-{'bcd'[rng.randrange(3)]}"
            compute = f"//compute.googleapis.com/projects/{account}"
            return {
                "network": lambda: f"{compute}/global/networks/net-{_hex(rng, 6)}",
                "subnet": lambda: f"{compute}/regions/{region}/subnetworks/subnet-{_hex(rng, 6)}",
                "firewall": lambda: f"{compute}/global/firewalls/fw-{_hex(rng, 6)}",
                "vm": lambda: f"{compute}/zones/{zone}/instances/gke-{self.cluster_name}-{_hex(rng, 8)}",
                "disk": lambda: f"{compute}/zones/{zone}/disks/disk-{_hex(rng, 8)}",
                "cluster": lambda: f"//container.googleapis.com/projects/{account}/locations/{region}/clusters/{self.cluster_name}",
                "db": lambda: f"//cloudsql.googleapis.com/projects/{account}/instances/{name}",
                "bucket": lambda: f"//storage.googleapis.com/{name}",
                "lb": lambda: f"{compute}/global/backendServices/{name}",
            }[kind]()
        arm = f"/subscriptions/{account}/resourcegroups/{self.resource_group}/providers"
        return {
            "network": lambda: f"{arm}/microsoft.network/virtualnetworks/vnet-{_hex(rng, 6)}",
            "subnet": lambda: f"{arm}/microsoft.network/virtualnetworks/vnet/subnets/snet-{_hex(rng, 6)}",
            "firewall": lambda: f"{arm}/microsoft.network/networksecuritygroups/nsg-{_hex(rng, 6)}",
            "vm": lambda: f"{arm}/microsoft.compute/virtualmachines/aks-node-{_hex(rng, 8)}",
            "disk": lambda: f"{arm}/microsoft.compute/disks/osdisk-{_hex(rng, 8)}",
            "cluster": lambda: f"{arm}/microsoft.containerservice/managedclusters/{self.cluster_name}",
            "db": lambda: f"{arm}/microsoft.sql/servers/sql-{self.short}/databases/{name}",
            "bucket": lambda: f"{arm}/microsoft.storage/storageaccounts/{name.replace('-', '')[:24]}",
            "lb": lambda: f"{arm}/microsoft.network/loadbalancers/{name}",
        }[kind]()

    def field(self, link: str) -> str:
        return {
            "aws": {"subnet_network": "Subnets[].VpcId", "cluster_subnet": "cluster.resourcesVpcConfig.subnetIds",
                    "vm_subnet": "Reservations[].Instances[].SubnetId", "vm_firewall": "Instances[].SecurityGroups[].GroupId",
                    "vm_disk": "Instances[].BlockDeviceMappings[].Ebs.VolumeId", "cluster_vms": "nodegroup.resources.autoScalingGroups",
                    "db_subnet": "DBInstances[].DBSubnetGroup.Subnets[]", "db_firewall": "DBInstances[].VpcSecurityGroups[]"},
            "gcp": {"subnet_network": "resource.data.network", "cluster_subnet": "resource.data.subnetwork",
                    "vm_subnet": "resource.data.networkInterfaces[].subnetwork", "vm_firewall": "resource.data.tags.items",
                    "vm_disk": "resource.data.disks[].source", "cluster_vms": "resource.data.nodePools[].instanceGroupUrls[]",
                    "db_subnet": "resource.data.settings.ipConfiguration.privateNetwork", "db_firewall": "firewall targetTags"},
            "azure": {"subnet_network": "properties.subnets[].id", "cluster_subnet": "properties.agentPoolProfiles[].vnetSubnetID",
                      "vm_subnet": "networkInterfaces[].properties.ipConfigurations[].subnet.id",
                      "vm_firewall": "networkInterfaces[].properties.networkSecurityGroup.id",
                      "vm_disk": "properties.storageProfile.osDisk.managedDisk.id", "cluster_vms": "agentPool virtualMachineScaleSet",
                      "db_subnet": "privateEndpoint subnet.id", "db_firewall": "subnet networkSecurityGroup.id"},
        }[self.cloud][link]

    def node_name(self, n: int) -> str:
        if self.cloud == "aws":
            return f"ip-10-{n // 250 % 250}-{n % 250}-{(n * 13) % 250}.{self.region}.compute.internal"
        return f"{self.cluster_name}-pool-{n}"

    def provider_id(self, vm_id: str, n: int) -> str:
        if self.cloud == "aws":
            return f"aws:///{self.region}a/{vm_id.rsplit('/', 1)[1]}"
        if self.cloud == "gcp":
            parts = vm_id.split("/")
            return f"gce://{parts[4]}/{parts[6]}/{parts[8]}"
        return f"azure://{vm_id}"

    def vm_aliases(self, vm_id: str) -> tuple[str, ...]:
        if self.cloud == "aws":
            return (vm_id.rsplit("/", 1)[1],)
        return (self.provider_id(vm_id, 0),)

    def instance_type(self, n: int, upsized: bool) -> str:
        sizes = {"aws": ["m6i.xlarge", "m6i.2xlarge"], "gcp": ["e2-standard-4", "e2-standard-8"],
                 "azure": ["Standard_D4s_v5", "Standard_D8s_v5"]}[self.cloud]
        return sizes[1 if upsized else 0]

    def vm_attributes(self, instance_type: str, n: int) -> dict[str, Any]:
        ip = f"10.{n // 250 % 250}.{n % 250}.{(n * 13) % 250}"
        if self.cloud == "aws":
            return {"instance_type": instance_type, "state": "running", "image_id": "ami-0c1bc246476a5572b",
                    "private_ip": ip, "availability_zone": f"{self.region}a", "cpu_avg_percent": float(5 + n * 7 % 60)}
        if self.cloud == "gcp":
            return {"machine_type": instance_type, "status": "RUNNING", "zone": f"{self.region}-b", "private_ip": ip,
                    "cpu_avg_percent": float(5 + n * 7 % 60)}
        return {"vm_size": instance_type, "os_type": "Linux", "power_state": "running", "cpu_avg_percent": float(5 + n * 7 % 60)}

    def disk_attributes(self, encrypted: bool) -> dict[str, Any]:
        if self.cloud == "aws":
            return {"size_gb": 100, "volume_type": "gp3", "encrypted": encrypted, "state": "in-use"}
        if self.cloud == "gcp":
            return {"size_gb": 100, "disk_type": "pd-balanced", "encrypted": encrypted, "status": "READY"}
        return {"size_gb": 128, "sku": "Premium_LRS", "encrypted": encrypted, "disk_state": "Attached"}

    def network_attributes(self) -> dict[str, Any]:
        options: dict[str, dict[str, Any]] = {"aws": {"cidr_block": "10.0.0.0/16", "is_default": False, "state": "available"},
                "gcp": {"auto_create_subnetworks": False, "routing_mode": "REGIONAL"},
                "azure": {"address_prefixes": ["10.0.0.0/16"]}}
        return options[self.cloud]

    def subnet_attributes(self, z: int) -> dict[str, Any]:
        cidr = f"10.0.{z * 32}.0/19"
        options: dict[str, dict[str, Any]] = {"aws": {"cidr_block": cidr, "availability_zone": f"{self.region}{'abc'[z]}", "map_public_ip_on_launch": False},
                "gcp": {"ip_cidr_range": cidr, "region": self.region, "private_ip_google_access": True},
                "azure": {"address_prefix": cidr}}
        return options[self.cloud]

    def firewall_attributes(self, ssh_open: bool) -> dict[str, Any]:
        cidrs = ["0.0.0.0/0"] if ssh_open else ["10.0.0.0/8"]
        if self.cloud == "aws":
            return {"group_name": "nodes", "description": "cluster nodes",
                    "ingress_rules": [{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidrs": ["10.0.0.0/8"]},
                                      {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidrs": cidrs}],
                    "egress_rules": [{"protocol": "-1", "from_port": 0, "to_port": 0, "cidrs": ["0.0.0.0/0"]}]}
        if self.cloud == "gcp":
            return {"direction": "INGRESS", "source_ranges": cidrs, "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
                    "priority": 1000, "disabled": False}
        return {"rules": [{"direction": "Inbound", "protocol": "Tcp", "ports": "22", "sources": cidrs, "access": "Allow"}]}

    def cluster_attributes(self) -> dict[str, Any]:
        endpoint = f"{_hex(self.rng, 32).upper()}.gr7.{self.region}.eks.amazonaws.com"
        return {"aws": {"version": "1.30", "endpoint": f"https://{endpoint}", "status": "ACTIVE"},
                "gcp": {"version": "1.30.4-gke.1348000", "endpoint": "34.76.120.12", "status": "RUNNING", "location": self.region},
                "azure": {"kubernetes_version": "1.30.4", "fqdn": f"{self.cluster_name}-dns.hcp.{self.region}.azmk8s.io",
                          "power_state": "Running"}}[self.cloud]

    def db_endpoint(self, name: str) -> str:
        return {"aws": f"{name}.c{self.short}.{self.region}.rds.amazonaws.com",
                "gcp": f"{self.account}:{self.region}:{name}",
                "azure": f"sql-{self.short}.database.windows.net"}[self.cloud]

    def db_attributes(self, name: str, public: bool) -> dict[str, Any]:
        if self.cloud == "aws":
            return {"engine": "postgres", "engine_version": "16.4", "instance_class": "db.r6g.large",
                    "endpoint": self.db_endpoint(name), "port": 5432, "storage_encrypted": not public,
                    "publicly_accessible": public, "multi_az": not public, "allocated_storage_gb": 200, "status": "available"}
        if self.cloud == "gcp":
            return {"database_version": "POSTGRES_16", "tier": "db-custom-4-16384", "connection_name": self.db_endpoint(name),
                    "public_ip_enabled": public, "encrypted": True}
        return {"sku": "GP_Gen5_4", "max_size_bytes": 268435456000, "status": "Online"}

    def bucket_attributes(self, public: bool) -> dict[str, Any]:
        if self.cloud == "aws":
            return {"public": public, "encrypted": True, "versioning": "Enabled", "block_public_access": not public}
        if self.cloud == "gcp":
            return {"public": public, "location": "EU", "storage_class": "STANDARD", "versioning": True, "encrypted": True}
        return {"sku": "Standard_ZRS", "kind": "StorageV2", "allow_blob_public_access": public, "https_only": True,
                "encrypted": True}

    def lb_dns(self, app_name: str) -> str:
        return {"aws": f"{app_name[:26]}-{self.short}.{self.region}.elb.amazonaws.com",
                "gcp": f"{app_name}.lb.{self.account}.example.net",
                "azure": f"{app_name}.{self.region}.cloudapp.azure.com"}[self.cloud]

    def lb_attributes(self, app_name: str, tls: bool) -> dict[str, Any]:
        if self.cloud == "aws":
            listeners = [{"protocol": "HTTPS", "port": 443}] if tls else [{"protocol": "HTTP", "port": 80}]
            return {"scheme": "internet-facing", "lb_type": "application", "dns_name": self.lb_dns(app_name),
                    "state": "active", "listeners": listeners}
        if self.cloud == "gcp":
            return {"protocol": "HTTPS" if tls else "HTTP", "load_balancing_scheme": "EXTERNAL_MANAGED", "port_name": "http"}
        return {"sku": "Standard", "frontend_ips": [f"20.{len(app_name)}.{self.short[:2]}.1"]}


def load_demo(store: Store, size: int = 3000, seed: int = 7, *, engine: SyncEngine | None = None) -> list[SyncReport]:
    """Sync day 0 (as of yesterday) then day 1 (now): real history, real stale CIs."""
    today = engine or SyncEngine(store)
    yesterday = SyncEngine(store, clock=lambda: now() - timedelta(days=1), grace=today.grace)
    return [
        yesterday.run(DemoConnector(size, seed, day=0), actor="demo"),
        today.run(DemoConnector(size, seed, day=1), actor="demo"),
    ]
