"""Azure Resource Manager resources (their REST JSON) into CIs and relationships (no I/O).

Every id is an ARM resource id, lower-cased for stable identity (ARM ids are
case-insensitive and different APIs spell them differently). Links are read from
ARM properties; each relationship carries ``Evidence(<ARM property path>, <the
referenced id>)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cmdb.errors import RecordError
from cmdb.model import CI, Evidence, Relationship

__all__ = ["GRAPH_TYPES", "TRANSFORMS", "Context", "Result", "arm_id", "nic_of"]

JSON = dict[str, Any]
_ANYWHERE = frozenset({"*", "internet", "any", "0.0.0.0/0"})


def arm_id(value: Any) -> str:
    """An ARM id in its stable (lower-cased, no trailing slash) form."""
    return str(value or "").strip().rstrip("/").lower()


def nic_of(ip_configuration_id: str) -> str:
    """What a backend IP configuration belongs to: a NIC, or a scale set instance.

    .../networkInterfaces/nic-1/ipConfigurations/ipconfig1 -> .../networkInterfaces/nic-1;
    .../virtualMachineScaleSets/ss/virtualMachines/3/networkInterfaces/n/ipConfigurations/c
    -> .../virtualMachineScaleSets/ss/virtualMachines/3.
    """
    text = arm_id(ip_configuration_id)
    marker = "/ipconfigurations/"
    if marker not in text:
        return ""
    if "/microsoft.compute/virtualmachinescalesets/" in text and "/virtualmachines/" in text:
        return text.split("/networkinterfaces/", 1)[0]
    if "/microsoft.network/networkinterfaces/" in text:
        return text.split(marker, 1)[0]
    return ""


def _resource_group(resource_id: str) -> str:
    parts = str(resource_id).split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == "resourcegroups":
            return parts[i + 1]
    return ""


def _obj(value: Any, path: str) -> JSON:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{path} must be an object, not {type(value).__name__}")
    return dict(value)


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{path} must be a list, not {type(value).__name__}")
    return value


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {value!r}") from None


def _ref(value: Any, path: str) -> str:
    """The ``id`` inside a sub-resource reference ``{"id": ...}``."""
    return arm_id(_obj(value, path).get("id"))


@dataclass(slots=True)
class Context:
    """What one subscription's sweep knows across listings."""

    subscription: str
    public_ips: dict[str, str] = field(default_factory=dict)  # public IP id -> address
    nic_ips: dict[str, str] = field(default_factory=dict)  # private IP -> NIC id
    scale_sets: list[tuple[str, str, str, str]] = field(default_factory=list)  # (id, group, name, AKS pool tag)
    aks_pools: list[tuple[str, str, int, str]] = field(default_factory=list)  # (cluster id, node group, index, pool)

    def aks_links(self) -> list[Relationship]:
        """AKS cluster -> the scale sets of its agent pools (in its node resource group)."""
        links: list[Relationship] = []
        for cluster, node_group, index, pool in self.aks_pools:
            for vmss, group, _, pool_tag in self.scale_sets:
                if group.lower() == node_group.lower() and pool_tag == pool:
                    evidence = Evidence(f"properties.agentPoolProfiles[{index}].name", vmss)
                    links.append(Relationship(cluster, "COMPOSED_OF", vmss, evidence=(evidence,)))
        return links


@dataclass(slots=True)
class Result:
    cis: list[CI] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)

    def link(self, from_id: str, rel_type: str, to_id: str, path: str, value: str = "") -> None:
        """One relationship per (from, type, to); a link stated in several places keeps all the evidence."""
        if not to_id or not from_id or to_id == from_id:
            return
        evidence = Evidence(path, value or to_id)
        for rel in self.relationships:
            if rel.from_id == from_id and rel.type == rel_type and rel.to_id == to_id:
                rel.evidence = (*rel.evidence, evidence)
                return
        self.relationships.append(Relationship(from_id, rel_type, to_id, evidence=(evidence,)))


def _ci(resource: Mapping[str, Any], ci_type: str, ctx: Context, **attributes: Any) -> CI:
    raw_id = _str(resource.get("id"))
    if not raw_id.startswith("/"):
        raise ValueError(f"id is not an ARM resource id: {raw_id!r}")
    tags = _obj(resource.get("tags"), "tags")
    attributes = {k: v for k, v in attributes.items() if v is not None}
    attributes.setdefault("resource_group", _resource_group(raw_id))
    return CI(
        id=arm_id(raw_id),
        type=ci_type,
        name=_str(resource.get("name")) or raw_id.rsplit("/", 1)[-1],
        provider="azure",
        scope=f"azure:{ctx.subscription}",
        region=_str(resource.get("location")).lower(),
        tags={str(k): _str(v) for k, v in tags.items()},
        attributes=attributes,
    )


def _props(resource: Mapping[str, Any]) -> JSON:
    return _obj(resource.get("properties"), "properties")


# --- per resource type ------------------------------------------------------------------


def _resource_group_ci(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    ci = _ci(r, "azure.resource_group", ctx, location=_str(r.get("location")),
             provisioning_state=_str(_props(r).get("provisioningState")))
    ci.attributes.pop("resource_group", None)
    out.cis.append(ci)


def _vnet(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    space = _obj(props.get("addressSpace"), "properties.addressSpace")
    vnet = _ci(r, "azure.network.vnet", ctx,
               address_prefixes=[_str(p) for p in _list(space.get("addressPrefixes"), "properties.addressSpace.addressPrefixes")])
    out.cis.append(vnet)
    for i, subnet in enumerate(_list(props.get("subnets"), "properties.subnets")):
        subnet = _obj(subnet, f"properties.subnets[{i}]")
        sp = _obj(subnet.get("properties"), f"properties.subnets[{i}].properties")
        prefix = _str(sp.get("addressPrefix")) or ", ".join(_str(p) for p in _list(sp.get("addressPrefixes"), "addressPrefixes"))
        ci = _ci({**subnet, "location": r.get("location")}, "azure.network.subnet", ctx, address_prefix=prefix,
                 vnet=vnet.id, private_endpoint_network_policies=_str(sp.get("privateEndpointNetworkPolicies")))
        out.cis.append(ci)
        out.link(ci.id, "CONTAINED_IN", vnet.id, f"properties.subnets[{i}].id")
        base = f"properties.subnets[{i}].properties"
        out.link(ci.id, "SECURED_BY", _ref(sp.get("networkSecurityGroup"), f"{base}.networkSecurityGroup"),
                 f"{base}.networkSecurityGroup.id")
        out.link(ci.id, "DEPENDS_ON", _ref(sp.get("natGateway"), f"{base}.natGateway"), f"{base}.natGateway.id")


def _nsg_rule(rule: JSON, path: str) -> JSON:
    p = _obj(rule.get("properties"), f"{path}.properties")
    sources = [_str(s) for s in _list(p.get("sourceAddressPrefixes"), f"{path}.sourceAddressPrefixes")]
    if p.get("sourceAddressPrefix") is not None:
        sources.append(_str(p["sourceAddressPrefix"]))
    ports = [_str(s) for s in _list(p.get("destinationPortRanges"), f"{path}.destinationPortRanges")]
    if p.get("destinationPortRange") is not None:
        ports.append(_str(p["destinationPortRange"]))
    ports = ["0-65535" if port == "*" else port for port in ports] or ["0-65535"]
    protocol = _str(p.get("protocol") or "*").lower()
    return {
        "name": _str(rule.get("name")),
        "direction": _str(p.get("direction") or "Inbound").lower(),
        "access": _str(p.get("access") or "Allow").lower(),
        "action": _str(p.get("access") or "Allow").lower(),
        "protocol": "all" if protocol in ("*", "any") else protocol,
        "ports": ports,
        "sources": ["0.0.0.0/0" if s.lower() in _ANYWHERE else s for s in sources],
        "priority": _int(p.get("priority")),
        # Azure's own spellings, as the compliance checks also read them
        "source_address_prefixes": sources,
        "destination_port_ranges": [_str(s) for s in _list(p.get("destinationPortRanges"), "x")]
        + ([_str(p["destinationPortRange"])] if p.get("destinationPortRange") is not None else []),
    }


def _nsg(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    rules = [
        _nsg_rule(_obj(rule, f"properties.securityRules[{i}]"), f"properties.securityRules[{i}]")
        for i, rule in enumerate(_list(props.get("securityRules"), "properties.securityRules"))
    ]
    rules.sort(key=lambda rule: (rule["direction"], rule["priority"] or 0))
    out.cis.append(_ci(r, "azure.network.nsg", ctx, rules=rules,
                       default_rules=len(_list(props.get("defaultSecurityRules"), "properties.defaultSecurityRules"))))


def _nic(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    nic_id = arm_id(r.get("id"))
    private_ip = ""
    for i, config in enumerate(_list(props.get("ipConfigurations"), "properties.ipConfigurations")):
        base = f"properties.ipConfigurations[{i}].properties"
        cp = _obj(_obj(config, f"properties.ipConfigurations[{i}]").get("properties"), base)
        private_ip = private_ip or _str(cp.get("privateIPAddress"))
        if cp.get("privateIPAddress"):
            ctx.nic_ips.setdefault(_str(cp["privateIPAddress"]), nic_id)
        out.link(nic_id, "CONTAINED_IN", _ref(cp.get("subnet"), f"{base}.subnet"), f"{base}.subnet.id")
        out.link(nic_id, "DEPENDS_ON", _ref(cp.get("publicIPAddress"), f"{base}.publicIPAddress"), f"{base}.publicIPAddress.id")
        for j, pool in enumerate(_list(cp.get("loadBalancerBackendAddressPools"), f"{base}.loadBalancerBackendAddressPools")):
            path = f"{base}.loadBalancerBackendAddressPools[{j}]"
            out.link(nic_id, "MEMBER_OF", _ref(pool, path), f"{path}.id")
        for j, pool in enumerate(_list(cp.get("applicationGatewayBackendAddressPools"), f"{base}.applicationGatewayBackendAddressPools")):
            path = f"{base}.applicationGatewayBackendAddressPools[{j}]"
            out.link(nic_id, "MEMBER_OF", _ref(pool, path), f"{path}.id")
    out.link(nic_id, "SECURED_BY", _ref(props.get("networkSecurityGroup"), "properties.networkSecurityGroup"),
             "properties.networkSecurityGroup.id")
    out.cis.append(_ci(r, "azure.network.nic", ctx, private_ip=private_ip, mac_address=_str(props.get("macAddress")),
                       virtual_machine=_ref(props.get("virtualMachine"), "properties.virtualMachine"),
                       accelerated_networking=bool(props.get("enableAcceleratedNetworking", False))))


def _public_ip(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    address = _str(props.get("ipAddress"))
    ci = _ci(r, "azure.network.public_ip", ctx, ip_address=address,
             allocation_method=_str(props.get("publicIPAllocationMethod")),
             sku=_str(_obj(r.get("sku"), "sku").get("name")),
             fqdn=_str(_obj(props.get("dnsSettings"), "properties.dnsSettings").get("fqdn")))
    ctx.public_ips[ci.id] = address
    out.cis.append(ci)


def _frontends(owner: str, props: JSON, ctx: Context, out: Result, key: str) -> list[str]:
    addresses: list[str] = []
    for i, frontend in enumerate(_list(props.get(key), f"properties.{key}")):
        base = f"properties.{key}[{i}].properties"
        fp = _obj(_obj(frontend, f"properties.{key}[{i}]").get("properties"), base)
        public_ip = _ref(fp.get("publicIPAddress"), f"{base}.publicIPAddress")
        out.link(owner, "DEPENDS_ON", public_ip, f"{base}.publicIPAddress.id")
        out.link(owner, "CONTAINED_IN", _ref(fp.get("subnet"), f"{base}.subnet"), f"{base}.subnet.id")
        for address in (ctx.public_ips.get(public_ip, ""), _str(fp.get("privateIPAddress"))):
            if address and address not in addresses:
                addresses.append(address)
    return addresses


def _pool(owner: CI, pool: JSON, path: str, kind: str, ctx: Context, out: Result) -> None:
    pp = _obj(pool.get("properties"), f"{path}.properties")
    pool_ci = _ci({**pool, "location": owner.region}, "azure.network.backend_pool", ctx, kind=kind, owner=owner.id,
                  addresses=[_str(_obj(a, "backendAddresses[]").get("ipAddress") or _obj(a, "backendAddresses[]").get("fqdn"))
                             for a in _list(pp.get("backendAddresses"), f"{path}.properties.backendAddresses")])
    out.cis.append(pool_ci)
    out.link(owner.id, "ROUTES_TO", pool_ci.id, f"{path}.id")
    for j, address in enumerate(_list(pp.get("backendAddresses"), f"{path}.properties.backendAddresses")):
        ip = _str(_obj(address, f"{path}.properties.backendAddresses[{j}]").get("ipAddress"))
        if ip in ctx.nic_ips:  # an application gateway names its backends by address
            out.link(pool_ci.id, "ROUTES_TO", ctx.nic_ips[ip], f"{path}.properties.backendAddresses[{j}].ipAddress", ip)
    for j, config in enumerate(_list(pp.get("backendIPConfigurations"), f"{path}.properties.backendIPConfigurations")):
        config_path = f"{path}.properties.backendIPConfigurations[{j}]"
        config_id = _ref(config, config_path)
        out.link(pool_ci.id, "ROUTES_TO", nic_of(config_id), f"{config_path}.id", config_id)


def _load_balancer(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    lb = _ci(r, "azure.network.load_balancer", ctx, sku=_str(_obj(r.get("sku"), "sku").get("name")))
    lb.attributes["frontend_ips"] = _frontends(lb.id, props, ctx, out, "frontendIPConfigurations")
    lb.attributes["rules"] = [
        {
            "name": _str(rule.get("name")),
            "protocol": _str(_obj(rule.get("properties"), "rule").get("protocol")).lower(),
            "frontend_port": _int(_obj(rule.get("properties"), "rule").get("frontendPort")),
            "backend_port": _int(_obj(rule.get("properties"), "rule").get("backendPort")),
        }
        for rule in (_obj(x, "properties.loadBalancingRules[]") for x in _list(props.get("loadBalancingRules"), "properties.loadBalancingRules"))
    ]
    lb.attributes["public"] = any(rel.type == "DEPENDS_ON" and "/publicipaddresses/" in rel.to_id for rel in out.relationships if rel.from_id == lb.id)
    lb.aliases = tuple(lb.attributes["frontend_ips"])
    out.cis.append(lb)
    for i, pool in enumerate(_list(props.get("backendAddressPools"), "properties.backendAddressPools")):
        _pool(lb, _obj(pool, f"properties.backendAddressPools[{i}]"), f"properties.backendAddressPools[{i}]", "load_balancer", ctx, out)


def _app_gateway(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    gw = _ci(r, "azure.network.application_gateway", ctx,
             sku=_str(_obj(props.get("sku"), "properties.sku").get("name")),
             operational_state=_str(props.get("operationalState")))
    for i, config in enumerate(_list(props.get("gatewayIPConfigurations"), "properties.gatewayIPConfigurations")):
        base = f"properties.gatewayIPConfigurations[{i}].properties"
        cp = _obj(_obj(config, base).get("properties"), base)
        out.link(gw.id, "CONTAINED_IN", _ref(cp.get("subnet"), f"{base}.subnet"), f"{base}.subnet.id")
    gw.attributes["frontend_ips"] = _frontends(gw.id, props, ctx, out, "frontendIPConfigurations")
    gw.attributes["listeners"] = [
        {"name": _str(x.get("name")), "protocol": _str(_obj(x.get("properties"), "listener").get("protocol")).lower()}
        for x in (_obj(x, "properties.httpListeners[]") for x in _list(props.get("httpListeners"), "properties.httpListeners"))
    ]
    gw.attributes["public"] = any(rel.type == "DEPENDS_ON" and "/publicipaddresses/" in rel.to_id for rel in out.relationships if rel.from_id == gw.id)
    gw.aliases = tuple(gw.attributes["frontend_ips"])
    out.cis.append(gw)
    for i, pool in enumerate(_list(props.get("backendAddressPools"), "properties.backendAddressPools")):
        _pool(gw, _obj(pool, f"properties.backendAddressPools[{i}]"), f"properties.backendAddressPools[{i}]", "application_gateway", ctx, out)


def _vm(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    vm = _ci(r, "azure.compute.vm", ctx)
    hardware = _obj(props.get("hardwareProfile"), "properties.hardwareProfile")
    storage = _obj(props.get("storageProfile"), "properties.storageProfile")
    os_disk = _obj(storage.get("osDisk"), "properties.storageProfile.osDisk")
    network = _obj(props.get("networkProfile"), "properties.networkProfile")
    for i, nic in enumerate(_list(network.get("networkInterfaces"), "properties.networkProfile.networkInterfaces")):
        path = f"properties.networkProfile.networkInterfaces[{i}]"
        out.link(vm.id, "DEPENDS_ON", _ref(nic, path), f"{path}.id")
    path = "properties.storageProfile.osDisk.managedDisk"
    out.link(vm.id, "DEPENDS_ON", _ref(os_disk.get("managedDisk"), path), f"{path}.id")
    for i, disk in enumerate(_list(storage.get("dataDisks"), "properties.storageProfile.dataDisks")):
        path = f"properties.storageProfile.dataDisks[{i}].managedDisk"
        out.link(vm.id, "DEPENDS_ON", _ref(_obj(disk, path).get("managedDisk"), path), f"{path}.id")
    image = _obj(storage.get("imageReference"), "properties.storageProfile.imageReference")
    vm_id = _str(props.get("vmId"))
    vm.attributes.update(
        vm_size=_str(hardware.get("vmSize")),
        os_type=_str(os_disk.get("osType")),
        vm_id=vm_id,
        image=":".join(_str(image.get(k)) for k in ("publisher", "offer", "sku", "version") if image.get(k)),
        computer_name=_str(_obj(props.get("osProfile"), "properties.osProfile").get("computerName")),
        provisioning_state=_str(props.get("provisioningState")),
        zones=[_str(z) for z in _list(r.get("zones"), "zones")],
    )
    vm.aliases = tuple(a for a in (f"azure://{vm.id}", vm_id.lower()) if a and a != "azure://")
    out.cis.append(vm)


def _network_profile(owner: str, profile: JSON, base: str, out: Result) -> None:
    """A scale set's NIC configurations: subnets, NSGs, backend pools."""
    key = "networkInterfaceConfigurations"
    for i, config in enumerate(_list(profile.get(key), f"{base}.{key}")):
        cpath = f"{base}.{key}[{i}].properties"
        cp = _obj(_obj(config, f"{base}.{key}[{i}]").get("properties"), cpath)
        out.link(owner, "SECURED_BY", _ref(cp.get("networkSecurityGroup"), f"{cpath}.networkSecurityGroup"),
                 f"{cpath}.networkSecurityGroup.id")
        for j, ip_config in enumerate(_list(cp.get("ipConfigurations"), f"{cpath}.ipConfigurations")):
            ipath = f"{cpath}.ipConfigurations[{j}].properties"
            ip = _obj(_obj(ip_config, ipath).get("properties"), ipath)
            out.link(owner, "CONTAINED_IN", _ref(ip.get("subnet"), f"{ipath}.subnet"), f"{ipath}.subnet.id")
            for pool_key in ("loadBalancerBackendAddressPools", "applicationGatewayBackendAddressPools"):
                for k, pool in enumerate(_list(ip.get(pool_key), f"{ipath}.{pool_key}")):
                    out.link(owner, "MEMBER_OF", _ref(pool, f"{ipath}.{pool_key}[{k}]"), f"{ipath}.{pool_key}[{k}].id")


def _scale_set(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    sku = _obj(r.get("sku"), "sku")
    ci = _ci(r, "azure.compute.vmss", ctx, vm_size=_str(sku.get("name")), capacity=_int(sku.get("capacity")),
             orchestration_mode=_str(props.get("orchestrationMode")), unique_id=_str(props.get("uniqueId")),
             zones=[_str(z) for z in _list(r.get("zones"), "zones")])
    base = "properties.virtualMachineProfile.networkProfile"
    profile = _obj(_obj(props.get("virtualMachineProfile"), "properties.virtualMachineProfile").get("networkProfile"), base)
    _network_profile(ci.id, profile, base, out)
    ctx.scale_sets.append((ci.id, _resource_group(_str(r.get("id"))), ci.name, ci.tags.get("aks-managed-poolName", "")))
    out.cis.append(ci)


def _scale_set_vm(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    vm = _ci(r, "azure.compute.vmss_vm", ctx)
    scale_set = vm.id.split("/virtualmachines/", 1)[0]
    out.link(scale_set, "COMPOSED_OF", vm.id, "id")
    storage = _obj(props.get("storageProfile"), "properties.storageProfile")
    os_disk = _obj(storage.get("osDisk"), "properties.storageProfile.osDisk")
    path = "properties.storageProfile.osDisk.managedDisk"
    out.link(vm.id, "DEPENDS_ON", _ref(os_disk.get("managedDisk"), path), f"{path}.id")
    for i, disk in enumerate(_list(storage.get("dataDisks"), "properties.storageProfile.dataDisks")):
        path = f"properties.storageProfile.dataDisks[{i}].managedDisk"
        out.link(vm.id, "DEPENDS_ON", _ref(_obj(disk, path).get("managedDisk"), path), f"{path}.id")
    vm_id = _str(props.get("vmId"))
    vm.attributes.update(
        scale_set=scale_set,
        instance_id=_str(r.get("instanceId")),
        vm_size=_str(_obj(r.get("sku"), "sku").get("name")),
        os_type=_str(os_disk.get("osType")),
        vm_id=vm_id,
        computer_name=_str(_obj(props.get("osProfile"), "properties.osProfile").get("computerName")),
        provisioning_state=_str(props.get("provisioningState")),
        latest_model_applied=bool(props.get("latestModelApplied", True)),
    )
    vm.aliases = tuple(a for a in (f"azure://{vm.id}", vm_id.lower()) if a)
    out.cis.append(vm)


def _disk(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    encryption = _obj(props.get("encryption"), "properties.encryption")
    out.cis.append(_ci(
        r, "azure.compute.disk", ctx,
        size_gb=_int(props.get("diskSizeGB")),
        sku=_str(_obj(r.get("sku"), "sku").get("name")),
        encrypted=True,  # managed disks are always encrypted at rest (platform or customer key)
        encryption_type=_str(encryption.get("type")),
        disk_state=_str(props.get("diskState")),
        os_type=_str(props.get("osType")),
        managed_by=arm_id(r.get("managedBy")),
    ))


def _storage_account(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    endpoints = _obj(props.get("primaryEndpoints"), "properties.primaryEndpoints")
    blob = urlsplit(_str(endpoints.get("blob"))).hostname or ""
    encryption = _obj(props.get("encryption"), "properties.encryption")
    blob_encryption = _obj(_obj(encryption.get("services"), "encryption.services").get("blob"), "encryption.services.blob")
    allow_public = bool(props.get("allowBlobPublicAccess", False))
    network_access = _str(props.get("publicNetworkAccess") or "Enabled")
    acls = _obj(props.get("networkAcls"), "properties.networkAcls")
    ci = _ci(
        r, "azure.storage.account", ctx,
        sku=_str(_obj(r.get("sku"), "sku").get("name")),
        kind=_str(r.get("kind")),
        allow_blob_public_access=allow_public,
        public=allow_public and network_access.lower() != "disabled",
        public_network_access=network_access,
        network_default_action=_str(acls.get("defaultAction")),
        https_only=bool(props.get("supportsHttpsTrafficOnly", True)),
        minimum_tls_version=_str(props.get("minimumTlsVersion")),
        encrypted=bool(blob_encryption.get("enabled", True)),
        key_source=_str(encryption.get("keySource")),
        blob_endpoint=blob,
    )
    ci.aliases = (blob,) if blob else ()
    out.cis.append(ci)


def _sql_server(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    fqdn = _str(props.get("fullyQualifiedDomainName")).lower()
    ci = _ci(r, "azure.sql.server", ctx, fqdn=fqdn, version=_str(props.get("version")),
             public_network_access=_str(props.get("publicNetworkAccess")),
             minimal_tls_version=_str(props.get("minimalTlsVersion")), state=_str(props.get("state")))
    ci.attributes["public"] = ci.attributes["public_network_access"].lower() != "disabled"
    ci.aliases = (fqdn,) if fqdn else ()
    out.cis.append(ci)


def _sql_database(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    ci = _ci(r, "azure.sql.database", ctx,
             sku=_str(_obj(r.get("sku"), "sku").get("name")),
             max_size_bytes=_int(props.get("maxSizeBytes")),
             status=_str(props.get("status")),
             zone_redundant=bool(props.get("zoneRedundant", False)))
    server = ci.id.rsplit("/databases/", 1)[0]
    if "/microsoft.sql/servers/" in server:
        ci.attributes["server"] = server
        out.link(ci.id, "CONTAINED_IN", server, "id")
    out.cis.append(ci)


def _aks(r: Mapping[str, Any], ctx: Context, out: Result) -> None:
    props = _props(r)
    ci = _ci(r, "azure.aks.cluster", ctx)
    pools = []
    for i, pool in enumerate(_list(props.get("agentPoolProfiles"), "properties.agentPoolProfiles")):
        pool = _obj(pool, f"properties.agentPoolProfiles[{i}]")
        path = f"properties.agentPoolProfiles[{i}].vnetSubnetID"
        out.link(ci.id, "CONTAINED_IN", arm_id(pool.get("vnetSubnetID")), path)
        pools.append({"name": _str(pool.get("name")), "vm_size": _str(pool.get("vmSize")), "count": _int(pool.get("count")),
                      "mode": _str(pool.get("mode"))})
    node_group = _str(props.get("nodeResourceGroup"))
    for i, pool in enumerate(pools):
        ctx.aks_pools.append((ci.id, node_group, i, str(pool["name"])))
    fqdn = _str(props.get("fqdn")).lower()
    private_fqdn = _str(props.get("privateFQDN")).lower()
    ci.attributes.update(
        kubernetes_version=_str(props.get("kubernetesVersion") or props.get("currentKubernetesVersion")),
        fqdn=fqdn,
        private_fqdn=private_fqdn,
        node_resource_group=_str(props.get("nodeResourceGroup")),
        power_state=_str(_obj(props.get("powerState"), "properties.powerState").get("code")),
        agent_pools=pools,
        private_cluster=bool(_obj(props.get("apiServerAccessProfile"), "apiServerAccessProfile").get("enablePrivateCluster", False)),
    )
    ci.aliases = tuple(a for a in (ci.name, fqdn, private_fqdn) if a)
    out.cis.append(ci)


Transform = Callable[[Mapping[str, Any], Context, Result], None]

#: listing name -> transform (the listings the connector makes, in order)
TRANSFORMS: dict[str, Transform] = {
    "resource_groups": _resource_group_ci,
    "virtual_networks": _vnet,
    "network_security_groups": _nsg,
    "public_ip_addresses": _public_ip,
    "network_interfaces": _nic,
    "load_balancers": _load_balancer,
    "application_gateways": _app_gateway,
    "virtual_machines": _vm,
    "virtual_machine_scale_sets": _scale_set,
    "virtual_machine_scale_set_vms": _scale_set_vm,
    "disks": _disk,
}

#: Resource Graph ``type`` (lower case) -> transform
GRAPH_TYPES: dict[str, Transform] = {
    "microsoft.storage/storageaccounts": _storage_account,
    "microsoft.sql/servers": _sql_server,
    "microsoft.sql/servers/databases": _sql_database,
    "microsoft.containerservice/managedclusters": _aks,
}


def transform(kind: Transform, resource: Any, ctx: Context) -> Result:
    """One ARM resource as CIs and relationships; RecordError when it is malformed."""
    out = Result()
    rid = resource.get("id") if isinstance(resource, Mapping) else None
    where = arm_id(rid) if isinstance(rid, str) else "(resource without an id)"
    try:
        if not isinstance(resource, Mapping):
            raise TypeError(f"a resource must be an object, not {type(resource).__name__}")
        kind(resource, ctx, out)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise RecordError(where, f"malformed resource: {exc}", ci_id=where if rid else "") from None
    return out
