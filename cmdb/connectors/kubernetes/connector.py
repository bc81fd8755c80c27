"""The Kubernetes connector: one scope a cluster, swept through the real kubernetes client.

For each kubeconfig context (all of them, or those named) it lists namespaces,
nodes, PVs, PVCs, ConfigMaps, service accounts, pods, ReplicaSets, Deployments,
StatefulSets, DaemonSets, Services and Ingresses, page by page (``limit`` /
``continue``), and turns them into CIs and the links the API states::

    (:Deployment|StatefulSet)-[:DEPENDS_ON]->(:ReplicaSet)      ownerReferences
    (:ReplicaSet|StatefulSet|DaemonSet)-[:COMPOSED_OF]->(:Pod)  ownerReferences (any-of)
    (:Pod)-[:RUNS_ON]->(:Node)                                  spec.nodeName
    (:Pod)-[:DEPENDS_ON]->(:PVC)-[:DEPENDS_ON]->(:PV)           volumes[].persistentVolumeClaim, spec.volumeName
    (:Pod)-[:DEPENDS_ON]->(:ConfigMap|:ServiceAccount)          volumes, env, envFrom, serviceAccountName
    (:Service)-[:ROUTES_TO]->(:Pod)                             spec.selector (any-of)
    (:Ingress)-[:ROUTES_TO]->(:Service)                         rules[].http.paths[].backend, defaultBackend
    (:namespaced)-[:MEMBER_OF]->(:Namespace)-[:MEMBER_OF]->(:Cluster)<-[:MEMBER_OF]-(:Node)

Ids are ``<cluster>/<namespace>/<kind>/<name>`` (``<cluster>/<kind>/<name>`` for
cluster-scoped objects, ``k8s:<cluster>`` for the cluster); the scope is
``k8s:<cluster>``.

Secrets are never listed. Env values and ConfigMap data are read in memory
only: what is kept is env var *names*, ConfigMap *keys* and the endpoint
hosts they name (``referenced_hosts``, see :mod:`.hosts`), which the
inference rules match against databases and caches. Annotations are not kept
(``last-applied-configuration`` holds whole manifests, env values included).

Completeness: throttling (429), server errors (5xx) and dropped connections
are retried with backoff (honouring Retry-After); a 410 Expired continue token
restarts that listing once; a second one, a 403, any other API error, errors
past the retries or a malformed reply is reported as a Problem and makes the
cluster's sweep incomplete, so nothing of it goes stale.

Replies are read as JSON (``_preload_content=False``) rather than as the
client's generated models: the models reject a reply outright on one
unexpected field, which would hide which record was malformed, and cost most of
the sweep's time on a large cluster.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kubernetes.client.exceptions import OpenApiException
from kubernetes.config import ConfigException
from urllib3 import Retry
from urllib3.exceptions import HTTPError

from cmdb.connectors.base import Batch, Event, Problem, ScopeDone
from cmdb.connectors.kubernetes.hosts import host_references, merge_refs
from cmdb.errors import ConnectorError
from cmdb.model import CI, Evidence, Relationship

__all__ = ["LISTINGS", "ClusterTarget", "KubernetesConnector"]

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
DEFAULT_PAGE_SIZE = 500

Json = Mapping[str, Any]
ListCall = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Listing:
    """One list call of the sweep: which API, which method, which kind it returns."""

    kind: str  # our id segment, e.g. "deployment"
    api: str  # "core", "apps" or "networking"
    method: str
    path: str  # for problems and logs


LISTINGS: tuple[Listing, ...] = (
    Listing("namespace", "core", "list_namespace", "/api/v1/namespaces"),
    Listing("node", "core", "list_node", "/api/v1/nodes"),
    Listing("persistentvolume", "core", "list_persistent_volume", "/api/v1/persistentvolumes"),
    Listing("persistentvolumeclaim", "core", "list_persistent_volume_claim_for_all_namespaces", "/api/v1/persistentvolumeclaims"),
    Listing("configmap", "core", "list_config_map_for_all_namespaces", "/api/v1/configmaps"),
    Listing("serviceaccount", "core", "list_service_account_for_all_namespaces", "/api/v1/serviceaccounts"),
    Listing("pod", "core", "list_pod_for_all_namespaces", "/api/v1/pods"),
    Listing("replicaset", "apps", "list_replica_set_for_all_namespaces", "/apis/apps/v1/replicasets"),
    Listing("deployment", "apps", "list_deployment_for_all_namespaces", "/apis/apps/v1/deployments"),
    Listing("statefulset", "apps", "list_stateful_set_for_all_namespaces", "/apis/apps/v1/statefulsets"),
    Listing("daemonset", "apps", "list_daemon_set_for_all_namespaces", "/apis/apps/v1/daemonsets"),
    Listing("service", "core", "list_service_for_all_namespaces", "/api/v1/services"),
    Listing("ingress", "networking", "list_ingress_for_all_namespaces", "/apis/networking.k8s.io/v1/ingresses"),
)  # fmt: skip

_CI_TYPES = {
    "namespace": "k8s.namespace",
    "node": "k8s.node",
    "persistentvolume": "k8s.pv",
    "persistentvolumeclaim": "k8s.pvc",
    "configmap": "k8s.configmap",
    "serviceaccount": "k8s.service_account",
    "pod": "k8s.pod",
    "replicaset": "k8s.replicaset",
    "deployment": "k8s.deployment",
    "statefulset": "k8s.statefulset",
    "daemonset": "k8s.daemonset",
    "service": "k8s.service",
    "ingress": "k8s.ingress",
}
_OWNER_KINDS = {
    "ReplicaSet": "replicaset",
    "StatefulSet": "statefulset",
    "DaemonSet": "daemonset",
    "Deployment": "deployment",
}


_API_ERRORS = (OpenApiException, HTTPError, OSError)
_TRANSIENT = frozenset({429, 500, 502, 503, 504})
"""What a call may raise: an API error reply (ApiException), a transport or socket failure."""


class Malformed(ConnectorError):
    """A reply that is not the List the API promises."""


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """One cluster to sweep, reached through one kubeconfig context."""

    context: str
    cluster: str

    @property
    def scope(self) -> str:
        return f"k8s:{self.cluster}"


# --- reading JSON safely ------------------------------------------------------
def _map(value: Any) -> Json:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _map(value).items() if isinstance(v, (str, int, float))}


# --- the sweep of one cluster -------------------------------------------------
@dataclass
class _PodSpecFacts:
    """What a pod spec (or a workload's pod template) says, secrets left out."""

    images: list[str] = field(default_factory=list)
    env_var_names: list[str] = field(default_factory=list)
    service_account: str = "default"
    claims: list[tuple[str, str]] = field(default_factory=list)  # (claim, evidence field)
    config_maps: list[tuple[str, str]] = field(default_factory=list)  # (name, evidence field)
    hosts: dict[str, str] = field(default_factory=dict)  # host -> where it was named


class _ClusterSweep:
    """Fetch, transform and link one cluster; the events come out of ``events()``."""

    def __init__(self, connector: KubernetesConnector, target: ClusterTarget) -> None:
        self.connector = connector
        self.target = target
        self.cluster = target.cluster
        self.scope = target.scope
        self.cluster_id = target.scope
        self.complete = True
        self.reasons: list[str] = []
        self.problems: list[Problem] = []
        self.cis: dict[str, CI] = {}
        self.rels: list[Relationship] = []
        # in memory only, for this sweep: ConfigMap (namespace, name) -> key -> hosts its value names
        self.config_hosts: dict[tuple[str, str], dict[str, list[str]]] = {}
        self.pods_by_owner: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self.pod_labels: dict[str, dict[tuple[str, str], set[str]]] = defaultdict(lambda: defaultdict(set))

    # --- ids -----------------------------------------------------------------
    def id(self, kind: str, name: str, namespace: str = "") -> str:
        return f"{self.cluster}/{namespace}/{kind}/{name}" if namespace else f"{self.cluster}/{kind}/{name}"

    def fail(self, where: str, reason: str, ci_id: str = "") -> None:
        self.complete = False
        self.reasons.append(f"{where}: {reason}")
        self.problems.append(Problem(f"kubernetes:{self.cluster} {where}", reason, ci_id))
        log.warning("kubernetes %s %s: %s", self.cluster, where, reason)

    def link(self, from_id: str, rel_type: str, to_id: str, field_name: str, value: str) -> None:
        self.rels.append(Relationship(from_id, rel_type, to_id, evidence=(Evidence(field_name, value),)))

    # --- fetch ---------------------------------------------------------------
    def fetch(self, listing: Listing, call: ListCall) -> list[Json]:
        """Every item of one listing, page by page; a 410 restarts the listing once."""
        for attempt in (1, 2):
            items: list[Json] = []
            token = ""
            page = 0
            try:
                while True:
                    kwargs: dict[str, Any] = {
                        "limit": self.connector.page_size,
                        "_preload_content": False,
                        "_request_timeout": self.connector.timeout,
                    }
                    if token:
                        kwargs["_continue"] = token
                    response = self.call(listing, page, call, kwargs)
                    found, token = self.parse_page(listing, page, response.data)
                    items.extend(found)
                    page += 1
                    if not token:
                        return items
            except Malformed as exc:
                self.fail(f"{listing.path} page {page + 1}", str(exc))
                return items
            except _API_ERRORS as exc:
                status = getattr(exc, "status", None)
                if status == 410 and token and attempt == 1:
                    log.info("kubernetes %s %s: continue token expired, listing again", self.cluster, listing.path)
                    continue
                self.fail(f"{listing.path} page {page + 1}", _describe(exc))
                return items
        return []  # not reached: the second attempt returns

    def call(self, listing: Listing, page: int, call: ListCall, kwargs: dict[str, Any]) -> Any:
        """One list call; throttling (429), server errors (5xx) and dropped connections are retried."""
        for attempt in range(self.connector.retries + 1):
            try:
                return call(**kwargs)
            except _API_ERRORS as exc:
                status = getattr(exc, "status", None)
                transient = status in _TRANSIENT or status is None  # None: no reply at all (connection, timeout)
                if not transient or attempt == self.connector.retries:
                    raise
                wait = _retry_after(exc, self.connector.retry_wait * 2**attempt)
                log.info(
                    "kubernetes %s %s page %d: %s; retrying in %.1fs",
                    self.cluster, listing.path, page + 1, _describe(exc), wait,
                )  # fmt: skip
                time.sleep(wait)
        raise AssertionError("not reached")

    def parse_page(self, listing: Listing, page: int, data: bytes) -> tuple[list[Json], str]:
        """The well-formed items of one page and its continue token."""
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise Malformed(f"not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise Malformed(f"expected a List object, got {type(body).__name__}")
        if "items" not in body:
            raise Malformed(
                f"expected a List object, got one without items (kind {_str(body.get('kind')) or 'unknown'})"
            )
        raw_items = body["items"] if body["items"] is not None else []
        if not isinstance(raw_items, list) or not isinstance(body.get("metadata", {}), dict):
            raise Malformed("the List's items is not an array or its metadata not an object")
        good: list[Json] = []
        for index, item in enumerate(raw_items):
            meta = _map(item.get("metadata")) if isinstance(item, dict) else {}
            if not _str(meta.get("name")):
                self.fail(f"{listing.path} page {page + 1} item {index}", "not an object with metadata.name")
                continue
            good.append(item)
        return good, _str(_map(body.get("metadata")).get("continue"))

    # --- events --------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        started = time.monotonic()
        try:
            api_client = self.connector.client_for(self.target)
        except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:  # a context that does not work
            yield Problem(
                f"kubernetes:{self.cluster}",
                f"cannot build a client for context {self.target.context}: {_describe(exc)}",
            )
            yield ScopeDone(self.scope, False, "no client for the cluster")
            return
        try:
            yield from self._events(api_client)
        finally:
            api_client.close()
        log.info(
            "kubernetes %s swept in %.1fs: %d CIs, %d relationships, complete=%s",
            self.cluster, time.monotonic() - started, len(self.cis), len(self.rels), self.complete,
        )  # fmt: skip

    def _events(self, api_client: Any) -> Iterator[Event]:
        from kubernetes import client as k8s

        apis = {
            "core": k8s.CoreV1Api(api_client),
            "apps": k8s.AppsV1Api(api_client),
            "networking": k8s.NetworkingV1Api(api_client),
        }
        version = self.version(k8s.VersionApi(api_client))
        if version is None:  # the cluster cannot be reached at all
            yield from self.problems
            yield ScopeDone(self.scope, False, "; ".join(self.reasons))
            return
        self.add(
            CI(
                id=self.cluster_id,
                type="k8s.cluster",
                name=self.cluster,
                attributes={
                    "server": api_client.configuration.host,
                    "version": version,
                    "context": self.target.context,
                    "cluster_name": self.cluster,
                },
            )
        )
        transforms: dict[str, Callable[[Json], None]] = {
            "namespace": self.namespace,
            "node": self.node,
            "persistentvolume": self.pv,
            "persistentvolumeclaim": self.pvc,
            "configmap": self.configmap,
            "serviceaccount": self.service_account,
            "pod": self.pod,
            "replicaset": self.replicaset,
            "deployment": lambda item: self.workload("deployment", item),
            "statefulset": lambda item: self.workload("statefulset", item),
            "daemonset": lambda item: self.workload("daemonset", item),
            "service": self.service,
            "ingress": self.ingress,
        }
        yielded = 0
        for listing in LISTINGS:
            items = self.fetch(listing, getattr(apis[listing.api], listing.method))
            for item in items:
                try:
                    transforms[listing.kind](item)
                except (TypeError, ValueError, AttributeError, KeyError) as exc:
                    meta = _map(item.get("metadata"))
                    ci_id = self.id(listing.kind, _str(meta.get("name")), _str(meta.get("namespace")))
                    self.fail(listing.path, f"malformed {listing.kind}: {type(exc).__name__}: {exc}", ci_id)
            yield from self.problems
            self.problems = []
            fresh = list(self.cis.values())[yielded:]
            yielded = len(self.cis)
            for start in range(0, len(fresh), BATCH_SIZE):
                yield Batch(self.scope, fresh[start : start + BATCH_SIZE])
        self.config_hosts.clear()
        rels = [r for r in self.rels if r.from_id in self.cis and r.to_id in self.cis]
        dropped = len(self.rels) - len(rels)
        if dropped:
            log.debug("kubernetes %s: %d links to objects not seen in this sweep left out", self.cluster, dropped)
        for start in range(0, len(rels), BATCH_SIZE):
            yield Batch(self.scope, [], rels[start : start + BATCH_SIZE])
        yield from self.problems
        yield ScopeDone(self.scope, self.complete, "; ".join(self.reasons[:5]))

    def version(self, version_api: Any) -> str | None:
        try:
            info = version_api.get_code(_request_timeout=self.connector.timeout)
        except (*_API_ERRORS, ValueError) as exc:  # ValueError: a reply the client's model rejects
            self.fail("/version/", _describe(exc))
            return None
        return str(info.git_version or "")

    # --- transforms ----------------------------------------------------------
    def add(self, ci: CI) -> CI:
        ci.provider = "kubernetes"
        ci.scope = self.scope
        self.cis[ci.id] = ci
        return ci

    def base(self, kind: str, item: Json, **attributes: Any) -> CI:
        meta = _map(item["metadata"])
        name = _str(meta["name"])
        namespace = _str(meta.get("namespace"))
        labels = _str_map(meta.get("labels"))
        attributes = {"uid": _str(meta.get("uid")), "created": _str(meta.get("creationTimestamp")), **attributes}
        if namespace:
            attributes["namespace"] = namespace
        ci = self.add(
            CI(
                id=self.id(kind, name, namespace),
                type=_CI_TYPES[kind],
                name=name,
                region=labels.get("topology.kubernetes.io/region", ""),
                tags=labels,
                attributes={k: v for k, v in attributes.items() if v not in ("", None)},
            )
        )
        if namespace:
            self.link(ci.id, "MEMBER_OF", self.id("namespace", namespace), "metadata.namespace", namespace)
        return ci

    def namespace(self, item: Json) -> None:
        ci = self.base("namespace", item, phase=_str(_map(item.get("status")).get("phase")))
        self.link(ci.id, "MEMBER_OF", self.cluster_id, "cluster", self.cluster)

    def node(self, item: Json) -> None:
        spec, status = _map(item.get("spec")), _map(item.get("status"))
        labels = _str_map(_map(item["metadata"]).get("labels"))
        info = _map(status.get("nodeInfo"))
        ready = next(
            (
                _str(c.get("status")) == "True"
                for c in map(_map, _list(status.get("conditions")))
                if c.get("type") == "Ready"
            ),
            False,
        )
        addresses = {_str(a.get("type")): _str(a.get("address")) for a in map(_map, _list(status.get("addresses")))}
        ci = self.base(
            "node",
            item,
            provider_id=_str(spec.get("providerID")),
            kubelet_version=_str(info.get("kubeletVersion")),
            os_image=_str(info.get("osImage")),
            instance_type=labels.get("node.kubernetes.io/instance-type")
            or labels.get("beta.kubernetes.io/instance-type", ""),
            zone=labels.get("topology.kubernetes.io/zone", ""),
            ready=ready,
            internal_ip=addresses.get("InternalIP", ""),
            external_ip=addresses.get("ExternalIP", ""),
            cpu=_str(_map(status.get("capacity")).get("cpu")),
            memory=_str(_map(status.get("capacity")).get("memory")),
        )
        self.link(ci.id, "MEMBER_OF", self.cluster_id, "cluster", self.cluster)

    def pv(self, item: Json) -> None:
        spec = _map(item.get("spec"))
        claim = _map(spec.get("claimRef"))
        self.base(
            "persistentvolume",
            item,
            storage_class=_str(spec.get("storageClassName")),
            capacity=_str(_map(spec.get("capacity")).get("storage")),
            phase=_str(_map(item.get("status")).get("phase")),
            csi_volume_handle=_str(_map(spec.get("csi")).get("volumeHandle")),
            csi_driver=_str(_map(spec.get("csi")).get("driver")),
            reclaim_policy=_str(spec.get("persistentVolumeReclaimPolicy")),
            claim=f"{_str(claim.get('namespace'))}/{_str(claim.get('name'))}" if claim else "",
        )

    def pvc(self, item: Json) -> None:
        spec, status = _map(item.get("spec")), _map(item.get("status"))
        volume = _str(spec.get("volumeName"))
        ci = self.base(
            "persistentvolumeclaim",
            item,
            storage_class=_str(spec.get("storageClassName")),
            capacity=_str(_map(status.get("capacity")).get("storage"))
            or _str(_map(_map(spec.get("resources")).get("requests")).get("storage")),
            phase=_str(status.get("phase")),
            volume_name=volume,
            access_modes=[_str(m) for m in _list(spec.get("accessModes"))],
        )
        if volume:
            self.link(ci.id, "DEPENDS_ON", self.id("persistentvolume", volume), "spec.volumeName", volume)

    def configmap(self, item: Json) -> None:
        meta = _map(item["metadata"])
        data = {**_str_map(item.get("binaryData")), **_str_map(item.get("data"))}
        hosts_by_key: dict[str, list[str]] = {}
        for key, value in _str_map(item.get("data")).items():
            hosts_by_key[key] = host_references(key, value)
        self.config_hosts[(_str(meta.get("namespace")), _str(meta["name"]))] = hosts_by_key
        refs = merge_refs((host, f"data[{key}]") for key, hosts in hosts_by_key.items() for host in hosts)
        self.base("configmap", item, keys=sorted(data), referenced_hosts=list(refs), host_sources=refs)

    def service_account(self, item: Json) -> None:
        self.base("serviceaccount", item)

    # --- pods and workloads --------------------------------------------------
    def pod_spec(self, namespace: str, spec: Json, where: str) -> _PodSpecFacts:
        facts = _PodSpecFacts(
            service_account=_str(spec.get("serviceAccountName")) or _str(spec.get("serviceAccount")) or "default"
        )
        refs: list[tuple[str, str]] = []
        names: set[str] = set()
        for group in ("initContainers", "containers"):
            for container in map(_map, _list(spec.get(group))):
                cname = _str(container.get("name"))
                if _str(container.get("image")):
                    facts.images.append(_str(container["image"]))
                for env in map(_map, _list(container.get("env"))):
                    name = _str(env.get("name"))
                    if not name:
                        continue
                    names.add(name)
                    at = f"{where}.{group}[{cname}].env[{name}]"
                    if isinstance(env.get("value"), str):
                        refs.extend((h, at) for h in host_references(name, env["value"]))
                    key_ref = _map(_map(env.get("valueFrom")).get("configMapKeyRef"))
                    if key_ref:
                        cm, key = _str(key_ref.get("name")), _str(key_ref.get("key"))
                        facts.config_maps.append((cm, f"{at}.valueFrom.configMapKeyRef"))
                        refs.extend(
                            (h, f"{at} <- configmap {cm}[{key}]")
                            for h in self.config_hosts.get((namespace, cm), {}).get(key, [])
                        )
                for source in map(_map, _list(container.get("envFrom"))):
                    cm = _str(_map(source.get("configMapRef")).get("name"))
                    if cm:
                        facts.config_maps.append((cm, f"{where}.{group}[{cname}].envFrom.configMapRef"))
                        refs.extend(self.config_refs(namespace, cm))
        for volume in map(_map, _list(spec.get("volumes"))):
            vname = _str(volume.get("name"))
            claim = _str(_map(volume.get("persistentVolumeClaim")).get("claimName"))
            if claim:
                facts.claims.append((claim, f"{where}.volumes[{vname}].persistentVolumeClaim.claimName"))
            cm_sources = [(_str(_map(volume.get("configMap")).get("name")), f"{where}.volumes[{vname}].configMap")]
            for index, projected in enumerate(map(_map, _list(_map(volume.get("projected")).get("sources")))):
                cm_sources.append(
                    (
                        _str(_map(projected.get("configMap")).get("name")),
                        f"{where}.volumes[{vname}].projected.sources[{index}].configMap",
                    )
                )
            for cm, at in cm_sources:
                if cm:
                    facts.config_maps.append((cm, at))
                    refs.extend(self.config_refs(namespace, cm))
        facts.env_var_names = sorted(names)
        facts.hosts = merge_refs(refs)
        return facts

    def config_refs(self, namespace: str, name: str) -> list[tuple[str, str]]:
        keys = self.config_hosts.get((namespace, name), {})
        return [(host, f"configmap {name}[{key}]") for key, hosts in keys.items() for host in hosts]

    def spec_links(self, ci_id: str, namespace: str, facts: _PodSpecFacts) -> None:
        for claim, at in facts.claims:
            self.link(ci_id, "DEPENDS_ON", self.id("persistentvolumeclaim", claim, namespace), at, claim)
        for cm, at in dict(reversed(facts.config_maps)).items():
            self.link(ci_id, "DEPENDS_ON", self.id("configmap", cm, namespace), at, cm)
        self.link(
            ci_id,
            "DEPENDS_ON",
            self.id("serviceaccount", facts.service_account, namespace),
            "spec.serviceAccountName",
            facts.service_account,
        )

    def pod(self, item: Json) -> None:
        meta, spec, status = _map(item["metadata"]), _map(item.get("spec")), _map(item.get("status"))
        namespace = _str(meta.get("namespace"))
        facts = self.pod_spec(namespace, spec, "spec")
        owner = next((_map(o) for o in _list(meta.get("ownerReferences")) if _map(o).get("controller")), {})
        controller = f"{_str(owner.get('kind'))}/{_str(owner.get('name'))}" if owner else ""
        node = _str(spec.get("nodeName"))
        restarts = sum(_int(_map(c).get("restartCount")) for c in _list(status.get("containerStatuses")))
        ci = self.base(
            "pod",
            item,
            phase=_str(status.get("phase")),
            node_name=node,
            images=facts.images,
            pod_ip=_str(status.get("podIP")),
            host_ip=_str(status.get("hostIP")),
            labels=_str_map(meta.get("labels")),
            controller=controller,
            service_account=facts.service_account,
            env_var_names=facts.env_var_names,
            referenced_hosts=list(facts.hosts),
            host_sources=facts.hosts,
            restart_count=restarts,
            qos_class=_str(status.get("qosClass")),
        )
        if node:
            self.link(ci.id, "RUNS_ON", self.id("node", node), "spec.nodeName", node)
        self.spec_links(ci.id, namespace, facts)
        if owner and _str(owner.get("kind")) in _OWNER_KINDS:
            key = (namespace, _OWNER_KINDS[_str(owner["kind"])], _str(owner.get("name")))
            self.pods_by_owner[key].append(ci.id)
        for pair in _str_map(meta.get("labels")).items():
            self.pod_labels[namespace][pair].add(ci.id)

    def template(self, item: Json) -> _PodSpecFacts:
        namespace = _str(_map(item["metadata"]).get("namespace"))
        spec = _map(_map(_map(item.get("spec")).get("template")).get("spec"))
        return self.pod_spec(namespace, spec, "spec.template.spec")

    def members(self, ci: CI, kind: str) -> None:
        namespace = ci.attributes.get("namespace", "")
        for pod_id in self.pods_by_owner.get((namespace, kind, ci.name), []):
            self.link(ci.id, "COMPOSED_OF", pod_id, "pod metadata.ownerReferences", f"{kind} {ci.name}")

    def replicaset(self, item: Json) -> None:
        meta, spec, status = _map(item["metadata"]), _map(item.get("spec")), _map(item.get("status"))
        facts = self.template(item)
        owner = next((_map(o) for o in _list(meta.get("ownerReferences")) if _map(o).get("controller")), {})
        replicas = _int(spec.get("replicas", 1))
        ci = self.base(
            "replicaset",
            item,
            replicas=replicas,
            ready_replicas=_int(status.get("readyReplicas")),
            images=facts.images,
            selector=_str_map(_map(spec.get("selector")).get("matchLabels")),
            controller=f"{_str(owner.get('kind'))}/{_str(owner.get('name'))}" if owner else "",
            env_var_names=facts.env_var_names,
            referenced_hosts=list(facts.hosts),
            host_sources=facts.hosts,
        )
        self.members(ci, "replicaset")
        # A Deployment needs the ReplicaSets that run its pods; the old, scaled-down revisions it keeps are history.
        if _str(owner.get("kind")) == "Deployment" and (
            replicas > 0 or self.pods_by_owner.get((ci.attributes["namespace"], "replicaset", ci.name))
        ):
            deployment = self.id("deployment", _str(owner.get("name")), ci.attributes["namespace"])
            self.link(
                deployment,
                "DEPENDS_ON",
                ci.id,
                "replicaset metadata.ownerReferences",
                f"Deployment {_str(owner.get('name'))}",
            )

    def workload(self, kind: str, item: Json) -> None:
        spec, status = _map(item.get("spec")), _map(item.get("status"))
        facts = self.template(item)
        common: dict[str, Any] = {
            "images": facts.images,
            "selector": _str_map(_map(spec.get("selector")).get("matchLabels")),
            "service_account": facts.service_account,
            "env_var_names": facts.env_var_names,
            "referenced_hosts": list(facts.hosts),
            "host_sources": facts.hosts,
        }
        if kind == "daemonset":
            ci = self.base(
                kind,
                item,
                desired=_int(status.get("desiredNumberScheduled")),
                ready=_int(status.get("numberReady")),
                **common,
            )
        else:
            ci = self.base(
                kind,
                item,
                replicas=_int(spec.get("replicas", 1)),
                ready_replicas=_int(status.get("readyReplicas")),
                **common,
            )
        if kind == "statefulset":
            ci.attributes["service_name"] = _str(spec.get("serviceName"))
        if kind in ("statefulset", "daemonset"):
            self.members(ci, kind)

    def service(self, item: Json) -> None:
        meta, spec, status = _map(item["metadata"]), _map(item.get("spec")), _map(item.get("status"))
        namespace = _str(meta.get("namespace"))
        selector = _str_map(spec.get("selector"))
        ingress = [
            _str(entry.get("hostname")) or _str(entry.get("ip"))
            for entry in map(_map, _list(_map(status.get("loadBalancer")).get("ingress")))
            if _str(entry.get("hostname")) or _str(entry.get("ip"))
        ]
        ports = [
            f"{_map(p).get('port')}/{_str(_map(p).get('protocol')) or 'TCP'}"
            + (f" ({_str(_map(p).get('name'))})" if _map(p).get("name") else "")
            for p in _list(spec.get("ports"))
        ]
        ci = self.base(
            "service",
            item,
            service_type=_str(spec.get("type")) or "ClusterIP",
            cluster_ip=_str(spec.get("clusterIP")),
            selector=selector,
            ports=ports,
            external_name=_str(spec.get("externalName")).lower().rstrip("."),
            load_balancer_ingress=ingress,
        )
        if selector:
            matched: set[str] | None = None
            for pair in selector.items():
                found = self.pod_labels.get(namespace, {}).get(pair, set())
                matched = set(found) if matched is None else matched & found
            value = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
            for pod_id in sorted(matched or ()):
                self.link(ci.id, "ROUTES_TO", pod_id, "spec.selector", value)

    def ingress(self, item: Json) -> None:
        meta, spec, status = _map(item["metadata"]), _map(item.get("spec")), _map(item.get("status"))
        namespace = _str(meta.get("namespace"))
        backends: list[tuple[str, str]] = []
        default = _str(_map(_map(spec.get("defaultBackend")).get("service")).get("name"))
        if default:
            backends.append((default, "spec.defaultBackend.service.name"))
        hosts: list[str] = []
        for r_index, rule in enumerate(map(_map, _list(spec.get("rules")))):
            if _str(rule.get("host")):
                hosts.append(_str(rule["host"]))
            for p_index, path in enumerate(map(_map, _list(_map(rule.get("http")).get("paths")))):
                name = _str(_map(_map(path.get("backend")).get("service")).get("name"))
                if name:
                    backends.append((name, f"spec.rules[{r_index}].http.paths[{p_index}].backend.service.name"))
        lb = [
            _str(e.get("hostname")) or _str(e.get("ip"))
            for e in map(_map, _list(_map(status.get("loadBalancer")).get("ingress")))
            if _str(e.get("hostname")) or _str(e.get("ip"))
        ]
        ci = self.base(
            "ingress",
            item,
            hosts=hosts,
            ingress_class=_str(spec.get("ingressClassName")),
            backends=sorted({name for name, _ in backends}),
            load_balancer_ingress=lb,
        )
        for name, at in dict(reversed(backends)).items():
            self.link(ci.id, "ROUTES_TO", self.id("service", name, namespace), at, name)


def _retry_after(exc: BaseException, default: float) -> float:
    headers = getattr(exc, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return min(float(value), 60.0) if value is not None else default
    except ValueError:
        return default


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    if status is not None:
        body = getattr(exc, "body", None)
        message = ""
        if isinstance(body, (str, bytes)):
            try:
                message = _str(_map(orjson.loads(body)).get("message"))
            except orjson.JSONDecodeError:
                message = ""
        reason = getattr(exc, "reason", "") or ""
        return f"HTTP {status} {reason}".strip() + (f": {message}" if message else "")
    return f"{type(exc).__name__}: {exc}"


class KubernetesConnector:
    """Sweeps every cluster named by the kubeconfig's contexts (or the contexts given)."""

    source = "kubernetes"

    def __init__(
        self,
        kubeconfig: str | Path | None = None,
        contexts: Sequence[str] = (),
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        timeout: float = 30.0,
        retries: int = 3,
        retry_wait: float = 1.0,
    ) -> None:
        if page_size < 1:
            raise ConnectorError(f"page size must be at least 1, not {page_size}", hint="pass --page-size 500")
        self.kubeconfig = (
            str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        )
        self.page_size = page_size
        self.timeout = timeout
        self.retries = max(0, retries)
        self.retry_wait = retry_wait
        self.targets = self._targets(contexts)

    def _targets(self, wanted: Sequence[str]) -> list[ClusterTarget]:
        from kubernetes import config as k8s_config

        try:
            contexts, _active = k8s_config.list_kube_config_contexts(config_file=self.kubeconfig)  # type: ignore[no-untyped-call]
        except (k8s_config.ConfigException, OSError, ValueError) as exc:
            raise ConnectorError(
                f"cannot read kubeconfig {self.kubeconfig}: {exc}", hint="pass --kubeconfig or set KUBECONFIG"
            ) from None
        by_name = {_str(c.get("name")): _map(c.get("context")) for c in contexts or [] if isinstance(c, dict)}
        unknown = [name for name in wanted if name not in by_name]
        if unknown:
            raise ConnectorError(
                f"no context {', '.join(unknown)} in {self.kubeconfig}",
                hint=f"known contexts: {', '.join(sorted(by_name)) or '(none)'}",
            )
        targets: dict[str, ClusterTarget] = {}
        for name in wanted or sorted(by_name):
            cluster = _str(by_name[name].get("cluster"))
            if not cluster:
                raise ConnectorError(f"context {name} in {self.kubeconfig} names no cluster", hint="fix the kubeconfig")
            targets.setdefault(cluster, ClusterTarget(name, cluster))  # two contexts on one cluster: sweep it once
        return list(targets.values())

    def client_for(self, target: ClusterTarget) -> Any:
        from kubernetes import config as k8s_config
        from kubernetes.client import Configuration

        configuration = Configuration()
        # Retries live in one place, ``_ClusterSweep.call``: urllib3 must not retry on its own as well
        # (by default it repeats 429/503 replies that carry Retry-After, and failed connections).
        configuration.retries = Retry(total=0, respect_retry_after_header=False)
        return k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=self.kubeconfig,
            context=target.context,
            persist_config=False,
            client_configuration=configuration,
        )

    def sweep(self) -> Iterator[Event]:
        for target in self.targets:
            yield from _ClusterSweep(self, target).events()
