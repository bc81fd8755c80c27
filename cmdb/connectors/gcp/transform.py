"""Cloud Asset Inventory assets into CIs and relationships (no I/O here).

An asset is the plain-JSON form of a CAI ``Asset`` (a ``ListAssets`` reply
element or one line of an asset export): ``name`` (the full resource name, our
CI id), ``asset_type``, ``ancestors`` and ``resource.data`` (the service's own
REST object). Links are read from ``resource.data``; every relationship carries
``Evidence(<resource.data path>, <the referenced value>)``.

Links that need two assets at once (firewall rules to the instances they target,
managed instance groups to the instances they created) are made by ``Linker``
after the whole sweep has been read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cmdb.errors import RecordError
from cmdb.model import CI, Evidence, Relationship

__all__ = ["ASSET_TYPES", "Linker", "Transformed", "asset_project", "project_number", "transform"]

COMPUTE = "//compute.googleapis.com/"
_COMPUTE_URL = re.compile(r"^https?://(?:www\.googleapis\.com|compute\.googleapis\.com)/compute/(?:v1|beta|alpha)/(.*)$")
_PROJECT_IN_NAME = re.compile(r"^//[^/]+/projects/([^/]+)(?:/|$)")
_PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})

JSON = dict[str, Any]


@dataclass(slots=True)
class Transformed:
    """What one asset became: its CI, the links it states, and its project id (for the scope)."""

    ci: CI
    relationships: list[Relationship] = field(default_factory=list)
    project: str = ""


# --- small readers -------------------------------------------------------------


def _obj(value: Any, path: str) -> JSON:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{path} must be an object, not {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{path} must be a list, not {type(value).__name__}")
    return value


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {value!r}") from None


def _last(url: Any) -> str:
    return _str(url).rstrip("/").rsplit("/", 1)[-1]


def _labels(data: JSON) -> dict[str, str]:
    return {str(k): _str(v) for k, v in _obj(data.get("labels"), "labels").items()}


def _region_of(location: str) -> str:
    """us-central1-a -> us-central1; a region or multi-region stays as it is."""
    parts = location.split("-")
    if len(parts) == 3 and len(parts[2]) == 1:
        return "-".join(parts[:2])
    return location


def compute_id(ref: Any, project: str = "") -> str:
    """A Compute Engine reference (self link, relative path) as a CAI full resource name."""
    text = _str(ref).strip()
    if not text:
        return ""
    match = _COMPUTE_URL.match(text)
    if match:
        return COMPUTE + match.group(1)
    if text.startswith("//"):
        return text
    if text.startswith("projects/"):
        return COMPUTE + text
    if project and text.startswith(("global/", "regions/", "zones/")):
        return f"{COMPUTE}projects/{project}/{text}"
    return ""


def asset_project(asset: Mapping[str, Any]) -> str:
    """The project id in an asset's name, or "" (buckets and projects name none)."""
    match = _PROJECT_IN_NAME.match(_str(asset.get("name")))
    if match and not _str(asset.get("asset_type")).startswith("cloudresourcemanager."):
        return match.group(1)
    return ""


def project_number(asset: Mapping[str, Any]) -> str:
    """The project number from an asset's ancestors (``projects/123...``), or ""."""
    ancestors = asset.get("ancestors")
    for ancestor in ancestors if isinstance(ancestors, list) else ():
        if isinstance(ancestor, str) and ancestor.startswith("projects/"):
            return ancestor.split("/", 1)[1]
    return ""


class _Builder:
    """Collects one asset's CI and relationships."""

    def __init__(self, asset_id: str, project: str) -> None:
        self.id = asset_id
        self.project = project
        self.rels: list[Relationship] = []

    def link(self, rel_type: str, to_id: str, path: str, value: Any) -> None:
        if not to_id or to_id == self.id:
            return
        evidence = Evidence(path, _str(value))
        for rel in self.rels:  # the same link stated in several fields: one relationship, all the evidence
            if rel.type == rel_type and rel.to_id == to_id:
                rel.evidence = (*rel.evidence, evidence)
                return
        self.rels.append(Relationship(self.id, rel_type, to_id, evidence=(evidence,)))

    def compute_link(self, rel_type: str, ref: Any, path: str) -> None:
        self.link(rel_type, compute_id(ref, self.project), path, ref)


# --- per asset type ---------------------------------------------------------------


def _instance(b: _Builder, data: JSON, ci: CI) -> None:
    zone = _last(data.get("zone"))
    private_ip = public_ip = ""
    for i, nic in enumerate(_list(data.get("networkInterfaces"), "networkInterfaces")):
        nic = _obj(nic, f"networkInterfaces[{i}]")
        private_ip = private_ip or _str(nic.get("networkIP"))
        for config in _list(nic.get("accessConfigs"), f"networkInterfaces[{i}].accessConfigs"):
            public_ip = public_ip or _str(_obj(config, "accessConfigs[]").get("natIP"))
        b.compute_link("CONTAINED_IN", nic.get("subnetwork"), f"networkInterfaces[{i}].subnetwork")
        b.compute_link("CONTAINED_IN", nic.get("network"), f"networkInterfaces[{i}].network")
    for i, disk in enumerate(_list(data.get("disks"), "disks")):
        b.compute_link("DEPENDS_ON", _obj(disk, f"disks[{i}]").get("source"), f"disks[{i}].source")
    ci.region = _region_of(zone)
    ci.attributes.update(
        machine_type=_last(data.get("machineType")),
        status=_str(data.get("status")),
        zone=zone,
        private_ip=private_ip,
        public_ip=public_ip,
        instance_id=_str(data.get("id")),
        network_tags=[_str(t) for t in _list(_obj(data.get("tags"), "tags").get("items"), "tags.items")],
        service_accounts=[
            _str(_obj(sa, "serviceAccounts[]").get("email")) for sa in _list(data.get("serviceAccounts"), "serviceAccounts")
        ],
    )
    aliases = [f"gce://{b.project}/{zone}/{ci.name}"]
    if data.get("id"):
        aliases.append(_str(data["id"]))
    ci.aliases = tuple(aliases)


def _disk(b: _Builder, data: JSON, ci: CI) -> None:
    zone = _last(data.get("zone") or data.get("region"))
    ci.region = _region_of(zone)
    key = _obj(data.get("diskEncryptionKey"), "diskEncryptionKey")
    ci.attributes.update(
        size_gb=_int(data.get("sizeGb")),
        disk_type=_last(data.get("type")),
        encrypted=True,  # Compute Engine encrypts every disk at rest
        kms_key=_str(key.get("kmsKeyName")),
        zone=zone,
        status=_str(data.get("status")),
    )


def _network(b: _Builder, data: JSON, ci: CI) -> None:
    ci.attributes.update(
        auto_create_subnetworks=bool(data.get("autoCreateSubnetworks", False)),
        routing_mode=_str(_obj(data.get("routingConfig"), "routingConfig").get("routingMode")),
    )


def _subnetwork(b: _Builder, data: JSON, ci: CI) -> None:
    ci.region = _last(data.get("region"))
    b.compute_link("CONTAINED_IN", data.get("network"), "network")
    ci.attributes.update(
        ip_cidr_range=_str(data.get("ipCidrRange")),
        region=ci.region,
        private_ip_google_access=bool(data.get("privateIpGoogleAccess", False)),
    )


def _firewall_rules(data: JSON) -> list[JSON]:
    direction = _str(data.get("direction") or "INGRESS").lower()
    if direction == "ingress":
        sources = [_str(s) for s in _list(data.get("sourceRanges"), "sourceRanges")]
        sources += [f"tag:{_str(s)}" for s in _list(data.get("sourceTags"), "sourceTags")]
        sources += [f"serviceAccount:{_str(s)}" for s in _list(data.get("sourceServiceAccounts"), "sourceServiceAccounts")]
    else:
        sources = [_str(s) for s in _list(data.get("destinationRanges"), "destinationRanges")] or ["0.0.0.0/0"]
    rules: list[JSON] = []
    for action in ("allowed", "denied"):
        for i, entry in enumerate(_list(data.get(action), action)):
            entry = _obj(entry, f"{action}[{i}]")
            protocol = _str(entry.get("IPProtocol") or entry.get("ipProtocol") or "all").lower()
            ports = [_str(p) for p in _list(entry.get("ports"), f"{action}[{i}].ports")] or ["0-65535"]
            rules.append(
                {
                    "direction": direction,
                    "action": "allow" if action == "allowed" else "deny",
                    "protocol": protocol,
                    "ports": ports,
                    "sources": sources,
                    "priority": _int(data.get("priority")) or 1000,
                }
            )
    return rules


def _firewall(b: _Builder, data: JSON, ci: CI) -> None:
    b.compute_link("CONTAINED_IN", data.get("network"), "network")
    ci.attributes.update(
        direction=_str(data.get("direction") or "INGRESS"),
        source_ranges=[_str(s) for s in _list(data.get("sourceRanges"), "sourceRanges")],
        allowed=[_obj(a, "allowed[]") for a in _list(data.get("allowed"), "allowed")],
        priority=_int(data.get("priority")) or 1000,
        disabled=bool(data.get("disabled", False)),
        target_tags=[_str(t) for t in _list(data.get("targetTags"), "targetTags")],
        target_service_accounts=[_str(t) for t in _list(data.get("targetServiceAccounts"), "targetServiceAccounts")],
        rules=_firewall_rules(data),
    )


def _instance_group(b: _Builder, data: JSON, ci: CI) -> None:
    zone = _last(data.get("zone") or data.get("region"))
    ci.region = _region_of(zone)
    b.compute_link("CONTAINED_IN", data.get("subnetwork"), "subnetwork")
    b.compute_link("CONTAINED_IN", data.get("network"), "network")
    ci.attributes.update(zone=zone, size=_int(data.get("size")))


def _instance_group_manager(b: _Builder, data: JSON, ci: CI) -> None:
    zone = _last(data.get("zone") or data.get("region"))
    ci.region = _region_of(zone)
    ci.attributes.update(
        zone=zone,
        target_size=_int(data.get("targetSize")),
        instance_template=_last(data.get("instanceTemplate")),
        instance_group=compute_id(data.get("instanceGroup"), b.project),
        base_instance_name=_str(data.get("baseInstanceName")),
    )


def _backend_service(b: _Builder, data: JSON, ci: CI) -> None:
    if data.get("region"):
        ci.region = _last(data.get("region"))
    for i, backend in enumerate(_list(data.get("backends"), "backends")):
        b.compute_link("ROUTES_TO", _obj(backend, f"backends[{i}]").get("group"), f"backends[{i}].group")
    ci.attributes.update(
        protocol=_str(data.get("protocol")),
        load_balancing_scheme=_str(data.get("loadBalancingScheme")),
        port_name=_str(data.get("portName")),
        enable_cdn=bool(data.get("enableCDN", False)),
    )


def _backend_bucket(b: _Builder, data: JSON, ci: CI) -> None:
    bucket = _str(data.get("bucketName"))
    if bucket:
        b.link("DEPENDS_ON", f"//storage.googleapis.com/{bucket}", "bucketName", bucket)
    ci.attributes.update(bucket_name=bucket, enable_cdn=bool(data.get("enableCdn", False)))


def _url_map(b: _Builder, data: JSON, ci: CI) -> None:
    b.compute_link("DEPENDS_ON", data.get("defaultService"), "defaultService")
    for i, matcher in enumerate(_list(data.get("pathMatchers"), "pathMatchers")):
        matcher = _obj(matcher, f"pathMatchers[{i}]")
        b.compute_link("DEPENDS_ON", matcher.get("defaultService"), f"pathMatchers[{i}].defaultService")
        for j, rule in enumerate(_list(matcher.get("pathRules"), f"pathMatchers[{i}].pathRules")):
            path = f"pathMatchers[{i}].pathRules[{j}].service"
            b.compute_link("DEPENDS_ON", _obj(rule, path).get("service"), path)
        for j, rule in enumerate(_list(matcher.get("routeRules"), f"pathMatchers[{i}].routeRules")):
            rule = _obj(rule, f"pathMatchers[{i}].routeRules[{j}]")
            b.compute_link("DEPENDS_ON", rule.get("service"), f"pathMatchers[{i}].routeRules[{j}].service")
            action = _obj(rule.get("routeAction"), "routeAction")
            for k, weighted in enumerate(_list(action.get("weightedBackendServices"), "weightedBackendServices")):
                path = f"pathMatchers[{i}].routeRules[{j}].routeAction.weightedBackendServices[{k}].backendService"
                b.compute_link("ROUTES_TO", _obj(weighted, path).get("backendService"), path)
    ci.attributes.update(default_service=compute_id(data.get("defaultService"), b.project))


def _target_proxy(b: _Builder, data: JSON, ci: CI) -> None:
    b.compute_link("DEPENDS_ON", data.get("urlMap"), "urlMap")
    b.compute_link("DEPENDS_ON", data.get("service"), "service")  # SSL and TCP proxies
    if data.get("region"):
        ci.region = _last(data.get("region"))
    ci.attributes.update(
        url_map=compute_id(data.get("urlMap"), b.project),
        ssl_certificates=[_last(c) for c in _list(data.get("sslCertificates"), "sslCertificates")],
    )


def _forwarding_rule(b: _Builder, data: JSON, ci: CI) -> None:
    if data.get("region"):
        ci.region = _last(data.get("region"))
    b.compute_link("DEPENDS_ON", data.get("target"), "target")
    b.compute_link("DEPENDS_ON", data.get("backendService"), "backendService")
    b.compute_link("CONTAINED_IN", data.get("subnetwork"), "subnetwork")
    b.compute_link("CONTAINED_IN", data.get("network"), "network")
    address = _str(data.get("IPAddress") or data.get("ipAddress"))
    ci.attributes.update(
        ip_address=address,
        ip_protocol=_str(data.get("IPProtocol") or data.get("ipProtocol")),
        port_range=_str(data.get("portRange")),
        load_balancing_scheme=_str(data.get("loadBalancingScheme")),
        target=compute_id(data.get("target"), b.project),
        public=_str(data.get("loadBalancingScheme")).startswith("EXTERNAL"),
    )
    if address:
        ci.aliases = (address,)


def _cluster_network(b: _Builder, data: JSON, location: str) -> None:
    config = _obj(data.get("networkConfig"), "networkConfig")
    if config.get("subnetwork"):
        b.compute_link("CONTAINED_IN", config["subnetwork"], "networkConfig.subnetwork")
    elif data.get("subnetwork"):
        ref = f"projects/{b.project}/regions/{_region_of(location)}/subnetworks/{_str(data['subnetwork'])}"
        b.link("CONTAINED_IN", compute_id(ref), "subnetwork", data["subnetwork"])
    if config.get("network"):
        b.compute_link("CONTAINED_IN", config["network"], "networkConfig.network")
    elif data.get("network"):
        b.link("CONTAINED_IN", compute_id(f"projects/{b.project}/global/networks/{_str(data['network'])}"), "network", data["network"])


def _pool_attributes(b: _Builder, pool: JSON, path: str) -> dict[str, Any]:
    for i, url in enumerate(_list(pool.get("instanceGroupUrls"), f"{path}instanceGroupUrls")):
        b.compute_link("COMPOSED_OF", url, f"{path}instanceGroupUrls[{i}]")
    config = _obj(pool.get("config"), f"{path}config")
    autoscaling = _obj(pool.get("autoscaling"), f"{path}autoscaling")
    return {
        "machine_type": _str(config.get("machineType")),
        "node_count": _int(pool.get("initialNodeCount")),
        "version": _str(pool.get("version")),
        "status": _str(pool.get("status")),
        "autoscaling": bool(autoscaling.get("enabled", False)),
        "min_node_count": _int(autoscaling.get("minNodeCount")),
        "max_node_count": _int(autoscaling.get("maxNodeCount")),
    }


def _cluster(b: _Builder, data: JSON, ci: CI) -> list[CI]:
    """A GKE cluster and its node pools (CAI's cluster data carries them; NodePool assets would repeat them)."""
    location = _str(data.get("location") or data.get("zone"))
    ci.region = _region_of(location)
    _cluster_network(b, data, location)
    pools: list[CI] = []
    for i, pool in enumerate(_list(data.get("nodePools"), "nodePools")):
        pool = _obj(pool, f"nodePools[{i}]")
        name = _str(pool.get("name"))
        if not name:
            raise ValueError(f"nodePools[{i}].name is missing")
        pool_id = f"{b.id}/nodePools/{name}"
        b.link("COMPOSED_OF", pool_id, f"nodePools[{i}].name", name)
        pool_builder = _Builder(pool_id, b.project)
        attributes = _pool_attributes(pool_builder, pool, "")
        pool_ci = CI(pool_id, "gcp.container.node_pool", name=name, provider="gcp", region=ci.region,
                     attributes={**attributes, "cluster": b.id})
        b.rels.extend(pool_builder.rels)
        pools.append(pool_ci)
    endpoint = _str(data.get("endpoint"))
    ci.attributes.update(
        version=_str(data.get("currentMasterVersion")),
        endpoint=endpoint,
        status=_str(data.get("status")),
        location=location,
        private_cluster=bool(_obj(data.get("privateClusterConfig"), "privateClusterConfig").get("enablePrivateNodes", False)),
    )
    ci.tags = {str(k): _str(v) for k, v in _obj(data.get("resourceLabels"), "resourceLabels").items()}
    ci.aliases = tuple(a for a in (ci.name, endpoint) if a)
    return pools


def _sql_instance(b: _Builder, data: JSON, ci: CI) -> None:
    settings = _obj(data.get("settings"), "settings")
    ip_config = _obj(settings.get("ipConfiguration"), "settings.ipConfiguration")
    network = ip_config.get("privateNetwork")
    b.compute_link("CONTAINED_IN", network, "settings.ipConfiguration.privateNetwork")
    private_ip = public_ip = ""
    for i, address in enumerate(_list(data.get("ipAddresses"), "ipAddresses")):
        address = _obj(address, f"ipAddresses[{i}]")
        kind = _str(address.get("type"))
        if kind == "PRIVATE":
            private_ip = private_ip or _str(address.get("ipAddress"))
        elif kind == "PRIMARY":
            public_ip = public_ip or _str(address.get("ipAddress"))
    connection = _str(data.get("connectionName"))
    ci.region = _str(data.get("region"))
    ci.tags = {str(k): _str(v) for k, v in _obj(settings.get("userLabels"), "settings.userLabels").items()}
    ci.attributes.update(
        database_version=_str(data.get("databaseVersion")),
        tier=_str(settings.get("tier")),
        private_ip=private_ip,
        public_ip=public_ip,
        connection_name=connection,
        public_ip_enabled=bool(ip_config.get("ipv4Enabled", False)),
        public=bool(ip_config.get("ipv4Enabled", False))
        and any(
            _str(_obj(n, "authorizedNetworks[]").get("value")) in ("0.0.0.0/0", "::/0")
            for n in _list(ip_config.get("authorizedNetworks"), "settings.ipConfiguration.authorizedNetworks")
        ),
        require_ssl=bool(ip_config.get("requireSsl", False)),
        authorized_networks=[
            _str(_obj(n, "authorizedNetworks[]").get("value"))
            for n in _list(ip_config.get("authorizedNetworks"), "settings.ipConfiguration.authorizedNetworks")
        ],
        encrypted=True,  # Cloud SQL encrypts at rest; kms_key says whether the key is the customer's
        kms_key=_str(_obj(data.get("diskEncryptionConfiguration"), "diskEncryptionConfiguration").get("kmsKeyName")),
        state=_str(data.get("state")),
        availability_type=_str(settings.get("availabilityType")),
    )
    ci.aliases = tuple(a for a in (private_ip, public_ip, connection) if a)


def _bucket(b: _Builder, data: JSON, ci: CI, iam_policy: JSON | None) -> None:
    iam_config = _obj(data.get("iamConfiguration"), "iamConfiguration")
    prevention = _str(iam_config.get("publicAccessPrevention"))
    members: list[str] = []
    if iam_policy is not None:
        for i, binding in enumerate(_list(iam_policy.get("bindings"), "iam_policy.bindings")):
            binding = _obj(binding, f"iam_policy.bindings[{i}]")
            members += [_str(m) for m in _list(binding.get("members"), f"iam_policy.bindings[{i}].members")]
    public_members = sorted({m for m in members if m in _PUBLIC_MEMBERS})
    ci.region = _str(data.get("location")).lower()
    ci.attributes.update(
        public=bool(public_members) and prevention != "enforced",
        public_members=public_members,
        public_access_prevention=prevention,
        uniform_bucket_level_access=bool(_obj(iam_config.get("uniformBucketLevelAccess"), "uniformBucketLevelAccess").get("enabled", False)),
        location=_str(data.get("location")),
        storage_class=_str(data.get("storageClass")),
        versioning=bool(_obj(data.get("versioning"), "versioning").get("enabled", False)),
        encrypted=True,  # Cloud Storage encrypts every object at rest
        kms_key=_str(_obj(data.get("encryption"), "encryption").get("defaultKmsKeyName")),
    )
    if iam_policy is None:
        ci.attributes.pop("public")
        ci.attributes.pop("public_members")
    ci.aliases = (ci.name, f"storage.googleapis.com/{ci.name}")


def _run_service(b: _Builder, data: JSON, ci: CI) -> None:
    metadata = _obj(data.get("metadata"), "metadata")
    spec = _obj(data.get("spec"), "spec")
    template = _obj(spec.get("template"), "spec.template")
    annotations = _obj(_obj(template.get("metadata"), "spec.template.metadata").get("annotations"), "annotations")
    key = "run.googleapis.com/cloudsql-instances"
    for connection in filter(None, (c.strip() for c in _str(annotations.get(key)).split(","))):
        parts = connection.split(":")
        if len(parts) == 3:
            b.link("DEPENDS_ON", f"//cloudsql.googleapis.com/projects/{parts[0]}/instances/{parts[2]}",
                   f"spec.template.metadata.annotations[{key}]", connection)
    containers = _list(_obj(template.get("spec"), "spec.template.spec").get("containers"), "containers")
    url = _str(_obj(data.get("status"), "status").get("url") or data.get("uri"))
    labels = _obj(metadata.get("labels"), "metadata.labels")
    ci.region = _str(labels.get("cloud.googleapis.com/location")) or ci.region
    ci.tags = {str(k): _str(v) for k, v in labels.items() if not str(k).startswith(("cloud.googleapis.com/", "run.googleapis.com/"))}
    ci.attributes.update(
        url=url,
        images=[_str(_obj(c, "containers[]").get("image")) for c in containers],
        service_account=_str(_obj(template.get("spec"), "spec.template.spec").get("serviceAccountName")),
        vpc_connector=_str(annotations.get("run.googleapis.com/vpc-access-connector")),
        ingress=_str(_obj(metadata.get("annotations"), "metadata.annotations").get("run.googleapis.com/ingress")),
    )
    host = url.split("://", 1)[-1].rstrip("/")
    ci.aliases = (host,) if host else ()


def _topic(b: _Builder, data: JSON, ci: CI) -> None:
    ci.attributes.update(
        kms_key=_str(data.get("kmsKeyName")),
        encrypted=True,
        message_retention=_str(data.get("messageRetentionDuration")),
    )


def _project(b: _Builder, data: JSON, ci: CI) -> None:
    ci.name = _str(data.get("projectId")) or ci.name
    ci.attributes.update(
        project_number=_str(data.get("projectNumber")),
        project_id=_str(data.get("projectId")),
        state=_str(data.get("lifecycleState")),
    )


_Handler = Callable[[_Builder, JSON, CI], Any]

#: CAI asset type -> (CI type, transform)
ASSET_TYPES: dict[str, tuple[str, _Handler]] = {
    "cloudresourcemanager.googleapis.com/Project": ("gcp.project", _project),
    "compute.googleapis.com/Instance": ("gcp.compute.instance", _instance),
    "compute.googleapis.com/Disk": ("gcp.compute.disk", _disk),
    "compute.googleapis.com/Network": ("gcp.compute.network", _network),
    "compute.googleapis.com/Subnetwork": ("gcp.compute.subnetwork", _subnetwork),
    "compute.googleapis.com/Firewall": ("gcp.compute.firewall", _firewall),
    "compute.googleapis.com/InstanceGroup": ("gcp.compute.instance_group", _instance_group),
    "compute.googleapis.com/InstanceGroupManager": ("gcp.compute.instance_group_manager", _instance_group_manager),
    "compute.googleapis.com/BackendService": ("gcp.compute.backend_service", _backend_service),
    "compute.googleapis.com/RegionBackendService": ("gcp.compute.backend_service", _backend_service),
    "compute.googleapis.com/BackendBucket": ("gcp.compute.backend_bucket", _backend_bucket),
    "compute.googleapis.com/UrlMap": ("gcp.compute.url_map", _url_map),
    "compute.googleapis.com/TargetHttpProxy": ("gcp.compute.target_proxy", _target_proxy),
    "compute.googleapis.com/TargetHttpsProxy": ("gcp.compute.target_proxy", _target_proxy),
    "compute.googleapis.com/TargetSslProxy": ("gcp.compute.target_proxy", _target_proxy),
    "compute.googleapis.com/TargetTcpProxy": ("gcp.compute.target_proxy", _target_proxy),
    "compute.googleapis.com/ForwardingRule": ("gcp.compute.forwarding_rule", _forwarding_rule),
    "compute.googleapis.com/GlobalForwardingRule": ("gcp.compute.forwarding_rule", _forwarding_rule),
    "container.googleapis.com/Cluster": ("gcp.container.cluster", _cluster),
    "sqladmin.googleapis.com/Instance": ("gcp.sqladmin.instance", _sql_instance),
    "storage.googleapis.com/Bucket": ("gcp.storage.bucket", lambda b, data, ci: _bucket(b, data, ci, None)),
    "run.googleapis.com/Service": ("gcp.run.service", _run_service),
    "pubsub.googleapis.com/Topic": ("gcp.pubsub.topic", _topic),
}


def transform(asset: Mapping[str, Any], project: str, iam_policy: JSON | None = None) -> list[Transformed]:
    """One asset as CIs (a cluster brings its node pools) with the links it states.

    Raises RecordError when the asset is not shaped as its type should be.
    """
    name = _str(asset.get("name"))
    asset_type = _str(asset.get("asset_type"))
    if asset_type not in ASSET_TYPES:
        raise RecordError(name or "(unnamed asset)", f"unsupported asset type {asset_type!r}", ci_id=name)
    ci_type, handler = ASSET_TYPES[asset_type]
    builder = _Builder(name, project)
    try:
        if not name:
            raise ValueError("the asset has no name")
        resource = _obj(asset.get("resource"), "resource")
        data = _obj(resource.get("data"), "resource.data")
        if not data:
            raise ValueError("resource.data is missing")
        location = _str(resource.get("location"))
        ci = CI(
            id=name,
            type=ci_type,
            name=_str(data.get("name")).rsplit("/", 1)[-1] or name.rsplit("/", 1)[-1],
            provider="gcp",
            region=_region_of(location) if location else "",
            tags=_labels(data) if asset_type != "run.googleapis.com/Service" else {},
        )
        extra: list[CI] = []
        if asset_type == "storage.googleapis.com/Bucket":
            _bucket(builder, data, ci, iam_policy)
        else:
            result = handler(builder, data, ci)
            if isinstance(result, list):
                extra = result
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise RecordError(name or "(unnamed asset)", f"malformed {asset_type or 'asset'}: {exc}", ci_id=name) from None
    ci.attributes = {k: v for k, v in ci.attributes.items() if v is not None}
    ci.scope = ci.scope or (f"gcp:{project}" if project else "")
    out = [Transformed(ci, builder.rels, project)]
    for pool in extra:
        pool.scope = ci.scope
        out.append(Transformed(pool, [], project))
    return out


@dataclass(slots=True)
class _InstanceFacts:
    id: str
    networks: set[str]
    tags: set[str]
    service_accounts: set[str]
    created_by: str


@dataclass(slots=True)
class _FirewallFacts:
    id: str
    network: str
    target_tags: list[str]
    target_service_accounts: list[str]
    disabled: bool


class Linker:
    """Links that need more than one asset: firewall -> instance, group -> instance."""

    def __init__(self) -> None:
        self.instances: list[tuple[str, _InstanceFacts]] = []  # (project, facts)
        self.firewalls: list[_FirewallFacts] = []
        self.managers: dict[str, str] = {}  # IGM id -> its instance group id
        self.project_ids: dict[str, str] = {}  # project number -> project id

    def note(self, asset: Mapping[str, Any], done: Iterable[Transformed]) -> None:
        for item in done:
            ci = item.ci
            data = _obj(_obj(asset.get("resource"), "resource").get("data"), "data")
            number = project_number(asset)
            if number and item.project:
                self.project_ids.setdefault(number, item.project)
            if ci.type == "gcp.compute.instance":
                networks = {
                    compute_id(_obj(n, "nic").get("network"), item.project)
                    for n in _list(data.get("networkInterfaces"), "networkInterfaces")
                }
                created_by = ""
                for entry in _list(_obj(data.get("metadata"), "metadata").get("items"), "metadata.items"):
                    entry = _obj(entry, "metadata.items[]")
                    if entry.get("key") == "created-by":
                        created_by = _str(entry.get("value"))
                facts = _InstanceFacts(
                    ci.id,
                    networks - {""},
                    set(ci.attributes.get("network_tags") or ()),
                    set(ci.attributes.get("service_accounts") or ()),
                    created_by,
                )
                self.instances.append((item.project, facts))
            elif ci.type == "gcp.compute.firewall":
                self.firewalls.append(
                    _FirewallFacts(
                        ci.id,
                        compute_id(data.get("network"), item.project),
                        list(ci.attributes.get("target_tags") or ()),
                        list(ci.attributes.get("target_service_accounts") or ()),
                        bool(ci.attributes.get("disabled")),
                    )
                )
            elif ci.type == "gcp.compute.instance_group_manager":
                self.managers[ci.id] = _str(ci.attributes.get("instance_group"))

    def links(self) -> Iterable[tuple[str, Relationship]]:
        """(project of the dependent, relationship) for every cross-asset link."""
        by_network: dict[str, list[_FirewallFacts]] = {}
        for rule in self.firewalls:
            if not rule.disabled:
                by_network.setdefault(rule.network, []).append(rule)
        for project, inst in self.instances:
            for network in sorted(inst.networks):
                for rule in by_network.get(network, ()):
                    if rule.target_tags:
                        hits = sorted(inst.tags.intersection(rule.target_tags))
                        if hits:
                            yield project, Relationship(inst.id, "SECURED_BY", rule.id, evidence=(Evidence("targetTags", hits[0]),))
                    elif rule.target_service_accounts:
                        hits = sorted(inst.service_accounts.intersection(rule.target_service_accounts))
                        if hits:
                            yield project, Relationship(
                                inst.id, "SECURED_BY", rule.id, evidence=(Evidence("targetServiceAccounts", hits[0]),)
                            )
                    else:  # a rule without targets applies to every instance in its network
                        yield project, Relationship(inst.id, "SECURED_BY", rule.id, evidence=(Evidence("network", network),))
            manager = self._manager_id(inst.created_by)
            if manager and manager in self.managers:
                evidence = (Evidence("metadata.items[created-by]", inst.created_by),)
                yield project, Relationship(manager, "COMPOSED_OF", inst.id, evidence=evidence)
                group = self.managers[manager]
                if group:
                    yield project, Relationship(group, "COMPOSED_OF", inst.id, evidence=evidence)

    def _manager_id(self, created_by: str) -> str:
        """``projects/<number>/zones/<z>/instanceGroupManagers/<n>`` -> the IGM's full resource name."""
        match = re.match(r"^(?:.*/)?projects/([^/]+)/(.*)$", created_by)
        if not match:
            return ""
        project = self.project_ids.get(match.group(1), match.group(1))
        return f"{COMPUTE}projects/{project}/{match.group(2)}"
