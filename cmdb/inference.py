"""Cross-source inference: links that no single API states, found by matching names.

``infer_links(store)`` is the sync engine's inferrer (``SyncEngine(store,
inferrer=infer_links)``): at the end of every run it yields the relationships
these rules find, each with the field and the value that matched as evidence
and a confidence; the engine writes them as ``source = "inference"``, marks the
ones no longer found stale and never brings back one a person rejected.

Rules (dependent -> what it needs)::

    (:k8s.node)-[:RUNS_ON]->(:EC2 instance | GCE instance | Azure VM)   spec.providerID
    (:k8s.cluster)-[:RUNS_ON]->(:EKS | GKE | AKS cluster)               kubeconfig server host = cluster endpoint
    (:k8s.service | k8s.ingress)-[:ROUTES_TO]->(:cloud load balancer)   status.loadBalancer.ingress hostname / IP
    (:k8s workload)-[:DEPENDS_ON]->(:managed database or cache)         env values, ConfigMap data name its endpoint
                                                                        (or a Service / DNS record that stands for it)
    (:k8s.service ExternalName)-[:DEPENDS_ON]->(:database or cache)     spec.externalName
    (:CDN | URL map)-[:DEPENDS_ON]->(:bucket)                           an origin names a bucket host

Every rule reads only the CI types it needs (``store.iter_cis`` filtered by
type) and finds its candidates with batched ``store.resolve_aliases`` /
``store.known_ids`` calls, never by scanning the estate: cost grows with the
number of CIs of the rule's own types, not with the size of the store.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any
from urllib.parse import urlsplit

from cmdb.errors import ValidationError
from cmdb.model import CI, Evidence, Relationship
from cmdb.store.base import CIFilter, Store
from cmdb.vocabulary import vocabulary

__all__ = ["RULES", "Candidate", "infer_links"]

log = logging.getLogger(__name__)

LOOKUP_BATCH = 5000
_LIVE = ("planned", "provisioned", "active", "optimise")
_COMPUTE_TARGETS = ("aws.ec2.instance", "gcp.compute.instance", "azure.compute.vm", "azure.compute.vmss_vm")
_CLUSTER_TARGETS = ("aws.eks.cluster", "gcp.container.cluster", "azure.aks.cluster")
_WORKLOADS = ("k8s.deployment", "k8s.statefulset", "k8s.daemonset", "k8s.replicaset", "k8s.pod")
_DNS_RECORDS = ("aws.route53.record",)
_COVERED_BY_OWNER = ("ReplicaSet/", "StatefulSet/", "DaemonSet/")
_DATABASE_PORTS = frozenset({"1433", "1521", "3306", "5432", "6379", "9042", "11211", "27017"})
_SECRETISH = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One name a CI gives for something it needs, and what to make of a match."""

    from_id: str
    rel_type: str
    name: str  # an alias (or id) to look up
    field: str  # where the name was read
    value: str  # the value shown as evidence
    confidence: float
    accepts: Callable[[str], bool]  # does a CI of this type fit the rule?
    by_id: bool = False  # the name is a CI id, not an alias


# --- which types a rule may land on -------------------------------------------
def _of_class(ci_class: str) -> Callable[[str], bool]:
    def accepts(type_name: str) -> bool:
        return not type_name.startswith("k8s.") and _class(type_name) == ci_class

    return accepts


def _class(type_name: str) -> str:
    try:
        return vocabulary().class_of(type_name)
    except ValidationError:  # a type this installation does not know
        return ""


def _one_of(*names: str) -> Callable[[str], bool]:
    allowed = frozenset(names)
    return lambda type_name: type_name in allowed


def _load_balancer(type_name: str) -> bool:
    return (
        not type_name.startswith("k8s.")
        and _class(type_name) == "network"
        and any(
            word in type_name
            for word in ("load_balancer", "forwarding_rule", "frontend", "public_ip", "address", "gateway")
        )
    )


def _bucket(type_name: str) -> bool:
    return (
        not type_name.startswith("k8s.")
        and _class(type_name) == "storage"
        and ("bucket" in type_name or type_name == "azure.storage.account")
    )


_DATABASE = _of_class("database")


# --- reading CIs ----------------------------------------------------------------
def _live(store: Store, types: Sequence[str]) -> Iterator[CI]:
    known = [t for t in types if t in vocabulary().types]
    if known:
        yield from store.iter_cis(CIFilter(types=tuple(known), lifecycle_states=_LIVE))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _host(url_or_host: str) -> str:
    text = url_or_host.strip()
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.rpartition("@")[2]
    if text.startswith("["):
        return text.partition("]")[0] + "]"
    return text.partition(":")[0].lower().rstrip(".")


_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


# --- rules ----------------------------------------------------------------------
def node_to_vm(store: Store) -> Iterator[Candidate]:
    """A node's spec.providerID names the cloud VM under it."""
    vm = _one_of(*_COMPUTE_TARGETS)
    for node in _live(store, ("k8s.node",)):
        provider_id = str(node.attributes.get("provider_id") or "")
        if not provider_id:
            continue
        names: list[str] = []
        if provider_id.startswith("aws://"):
            instance = provider_id.rstrip("/").rsplit("/", 1)[-1]
            if instance.startswith("i-"):
                names.append(instance)
        elif provider_id.startswith("azure://"):
            names.append(provider_id.lower())
            names.append(provider_id[len("azure://") :].lower())  # the VM's own (lower-cased ARM) id
        else:
            names.append(provider_id)
        for name in names:
            yield Candidate(
                node.id, "RUNS_ON", name, "spec.providerID", provider_id, 0.98, vm, by_id=name.startswith("/")
            )


_EKS_ARN = re.compile(r"^arn:aws[\w-]*:eks:[\w-]+:\d{12}:cluster/[\w.-]+$")
_GKE_NAME = re.compile(r"^gke_([\w-]+)_([\w-]+)_([\w.-]+)$")


def cluster_to_cloud(store: Store) -> Iterator[Candidate]:
    """The kubeconfig server is the managed cluster's endpoint."""
    managed = _one_of(*_CLUSTER_TARGETS)
    for cluster in _live(store, ("k8s.cluster",)):
        server = str(cluster.attributes.get("server") or "")
        host = _host(server) if server else ""
        if host:
            for name in dict.fromkeys((host, server.rstrip("/"), f"https://{host}")):
                yield Candidate(cluster.id, "RUNS_ON", name, "server", host, 0.95, managed)
        name = str(cluster.attributes.get("cluster_name") or cluster.name)
        if _EKS_ARN.match(name):  # aws eks update-kubeconfig names the cluster by its ARN
            yield Candidate(cluster.id, "RUNS_ON", name, "cluster_name", name, 0.9, managed, by_id=True)
        gke = _GKE_NAME.match(name)
        if gke:  # gcloud container clusters get-credentials: gke_<project>_<location>_<name>
            project, location, short = gke.groups()
            full = f"//container.googleapis.com/projects/{project}/locations/{location}/clusters/{short}"
            yield Candidate(cluster.id, "RUNS_ON", full, "cluster_name", name, 0.9, managed, by_id=True)


def service_to_load_balancer(store: Store) -> Iterator[Candidate]:
    """A LoadBalancer Service's (or an Ingress's) status names the cloud load balancer in front of it."""
    for service in _live(store, ("k8s.service", "k8s.ingress")):
        if service.type == "k8s.service" and service.attributes.get("service_type") != "LoadBalancer":
            continue
        for entry in _strings(service.attributes.get("load_balancer_ingress")):
            host = entry.strip().lower().rstrip(".")
            confidence = 0.8 if _IPV4.match(host) else 0.95
            yield Candidate(
                service.id, "ROUTES_TO", host, "status.loadBalancer.ingress", host, confidence, _load_balancer
            )


def _in_cluster_names(host: str) -> tuple[str, str] | None:
    """(service, namespace or "") for a name that may be a Service's in-cluster DNS name."""
    labels = host.split(".")
    if len(labels) == 1:
        return labels[0], ""
    if len(labels) == 2 or (len(labels) >= 3 and labels[2] == "svc"):
        return labels[0], labels[1]
    return None


def workload_to_database(store: Store) -> Iterator[Candidate]:
    """A workload whose configuration names a managed database or cache endpoint needs it.

    Pods made by a ReplicaSet, StatefulSet or DaemonSet are left to their
    workload's template, so the link sits on the Deployment / StatefulSet /
    DaemonSet (or a bare pod or ReplicaSet) once.
    """
    external: dict[tuple[str, str, str], tuple[str, str]] = {}  # (scope, namespace, service) -> (service id, host)
    for service in _live(store, ("k8s.service",)):
        target = str(service.attributes.get("external_name") or "")
        if service.attributes.get("service_type") == "ExternalName" and target:
            namespace = str(service.attributes.get("namespace") or "")
            external[(service.scope, namespace, service.name)] = (service.id, target)
            yield Candidate(service.id, "DEPENDS_ON", target, "spec.externalName", target, 0.9, _DATABASE)
    cnames = _dns_records(store)
    for ci in _live(store, _WORKLOADS):
        controller = str(ci.attributes.get("controller") or "")
        if ci.type == "k8s.pod" and controller.startswith(_COVERED_BY_OWNER):
            continue
        if ci.type == "k8s.replicaset" and controller.startswith("Deployment/"):
            continue
        sources = ci.attributes.get("host_sources")
        sources = sources if isinstance(sources, Mapping) else {}
        namespace = str(ci.attributes.get("namespace") or "")
        for ref in _strings(ci.attributes.get("referenced_hosts")):
            where = str(sources.get(ref) or "referenced_hosts")
            if _SECRETISH.search(where.rpartition("[")[2]):
                continue  # never match on a value kept under a secret's name (the connector drops them too)
            host, _, port = ref.rpartition(":") if re.search(r":\d+$", ref) else (ref, "", "")
            ip = bool(_IPV4.match(host))
            if port:
                yield Candidate(ci.id, "DEPENDS_ON", ref, where, ref, 0.95, _DATABASE)
            # an address is weaker evidence than a name (private ranges repeat across networks) unless a
            # database's port goes with it
            confidence = (0.8 if port in _DATABASE_PORTS else 0.6) if ip else 0.9
            yield Candidate(ci.id, "DEPENDS_ON", host, where, ref, confidence, _DATABASE)
            names = None if ip else _in_cluster_names(host)
            if names is not None:
                service_name, service_namespace = names
                found = external.get((ci.scope, service_namespace or namespace, service_name))
                if found is not None:
                    service_id, target = found
                    yield Candidate(
                        ci.id, "DEPENDS_ON", target, f"{where} -> {service_id} spec.externalName", f"{ref} -> {target}",
                        0.85, _DATABASE,
                    )  # fmt: skip
            for record_id, target in cnames.get(host, ()):
                yield Candidate(
                    ci.id, "DEPENDS_ON", target, f"{where} -> {record_id}", f"{ref} -> {target}", 0.85, _DATABASE
                )


def _dns_records(store: Store) -> dict[str, list[tuple[str, str]]]:
    """DNS names that stand for another name (CNAME and alias records): name -> [(record id, target)]."""
    names: dict[str, list[tuple[str, str]]] = {}
    for record in _live(store, _DNS_RECORDS):
        name = str(record.attributes.get("record_name") or "").lower().rstrip(".")
        targets = [str(record.attributes.get("alias_target") or "")]
        if record.attributes.get("record_type") == "CNAME":
            targets += _strings(record.attributes.get("values"))
        for target in targets:
            if name and target:
                names.setdefault(name, []).append((record.id, target.lower().rstrip(".")))
    return names


_S3_HOST = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\.s3(?:[.-](?:website[.-])?[a-z0-9-]+)*\.amazonaws\.com$"
)
_GCS = re.compile(
    r"(?:gs://|storage\.googleapis\.com/|storage\.cloud\.google\.com/)(?P<bucket>[a-z0-9][a-z0-9._-]{1,221}[a-z0-9])"
    r"|(?P<host_bucket>[a-z0-9][a-z0-9._-]{1,61}[a-z0-9])\.storage\.googleapis\.com"
)


def origin_to_bucket(store: Store) -> Iterator[Candidate]:
    """A CDN origin (CloudFront) or URL map whose configuration names a bucket host."""
    for cdn in _live(store, ("aws.cloudfront.distribution",)):
        for index, origin in enumerate(_origins(cdn.attributes.get("origins"))):
            host = origin.lower().rstrip(".")
            field_name = f"origins[{index}].domain_name"
            yield Candidate(cdn.id, "DEPENDS_ON", host, field_name, origin, 0.9, _bucket)
            match = _S3_HOST.match(host)
            if match:
                bucket = match.group("bucket")
                yield Candidate(
                    cdn.id, "DEPENDS_ON", f"arn:aws:s3:::{bucket}", field_name, origin, 0.9, _bucket, by_id=True
                )
    for url_map in _live(store, ("gcp.compute.url_map",)):
        for value in _strings(url_map.attributes):
            for match in _GCS.finditer(value.lower()):
                bucket = match.group("bucket") or match.group("host_bucket")
                yield Candidate(
                    url_map.id, "DEPENDS_ON", f"//storage.googleapis.com/{bucket}", "attributes", value, 0.85, _bucket, by_id=True
                )  # fmt: skip


def _origins(value: Any) -> list[str]:
    found: list[str] = []
    for origin in value if isinstance(value, list) else []:
        if isinstance(origin, str):
            found.append(origin)
        elif isinstance(origin, Mapping):
            domain = origin.get("domain_name") or origin.get("DomainName") or origin.get("domain")
            if isinstance(domain, str) and domain:
                found.append(domain)
    return found


Rule = Callable[[Store], Iterable[Candidate]]
RULES: dict[str, Rule] = {
    "node_to_vm": node_to_vm,
    "cluster_to_cloud": cluster_to_cloud,
    "service_to_load_balancer": service_to_load_balancer,
    "workload_to_database": workload_to_database,
    "origin_to_bucket": origin_to_bucket,
}
# rules that add a link only when the sources did not state one already
_UNLESS_STATED = frozenset({"origin_to_bucket"})


# --- matching -------------------------------------------------------------------
def _chunks(items: Iterable[Candidate], size: int) -> Iterator[list[Candidate]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _resolve(store: Store, batch: list[Candidate]) -> dict[Candidate, str]:
    aliases = list(dict.fromkeys(c.name for c in batch if not c.by_id))
    ids = list(dict.fromkeys(c.name for c in batch if c.by_id))
    owners = store.resolve_aliases(aliases) if aliases else {}
    known = store.known_ids(ids) if ids else set()
    found: dict[Candidate, str] = {}
    for candidate in batch:
        target = candidate.name if candidate.by_id and candidate.name in known else owners.get(candidate.name)
        if target is not None and target != candidate.from_id:
            found[candidate] = target
    return found


def _stated(store: Store, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Of (from, to) pairs, those a source already links, directly or through one CI in between."""
    if not pairs:
        return set()
    starts = sorted({f for f, _ in pairs})
    first = [r for r in store.relationships(starts, "out") if not r.inferred]
    reach: dict[str, set[str]] = {}
    for rel in first:
        reach.setdefault(rel.from_id, set()).add(rel.to_id)
    middles = sorted({r.to_id for r in first})
    onward: dict[str, set[str]] = {}
    for rel in store.relationships(middles, "out") if middles else []:
        if not rel.inferred:
            onward.setdefault(rel.from_id, set()).add(rel.to_id)
    stated = set()
    for from_id, to_id in pairs:
        direct = reach.get(from_id, set())
        if to_id in direct or any(to_id in onward.get(m, set()) for m in direct):
            stated.add((from_id, to_id))
    return stated


def _matches(store: Store, rule: str, candidates: Iterable[Candidate]) -> Iterator[Relationship]:
    best: dict[tuple[str, str, str], tuple[float, Evidence]] = {}
    for batch in _chunks(candidates, LOOKUP_BATCH):
        found = _resolve(store, batch)
        targets = store.get_cis(sorted(set(found.values()))) if found else {}
        for candidate, target_id in found.items():
            target = targets.get(target_id)
            if target is None or target.lifecycle_state not in _LIVE or not candidate.accepts(target.type):
                continue
            key = (candidate.from_id, candidate.rel_type, target_id)
            evidence = Evidence(candidate.field, candidate.value)
            if key not in best or candidate.confidence > best[key][0]:
                best[key] = (candidate.confidence, evidence)
    # a link a source states is the source's: inference neither restates nor downgrades it
    existing = store.get_relationships(list(best)) if best else {}
    best = {
        k: v
        for k, v in best.items()
        if k not in existing or existing[k].inferred or existing[k].lifecycle_state != "active"
    }
    if rule in _UNLESS_STATED:
        stated = _stated(store, {(f, t) for f, _, t in best})
        best = {k: v for k, v in best.items() if (k[0], k[2]) not in stated}
    for (from_id, rel_type, to_id), (confidence, evidence) in best.items():
        yield Relationship(from_id, rel_type, to_id, evidence=(evidence,), confidence=confidence, inferred=True)


def infer_links(store: Store) -> Iterator[Relationship]:
    """Every link the rules find in ``store`` now."""
    for name, rule in RULES.items():
        started = time.monotonic()
        count = 0
        for rel in _matches(store, name, rule(store)):
            count += 1
            yield rel
        log.info("inference rule %s: %d links in %.2fs", name, count, time.monotonic() - started)
