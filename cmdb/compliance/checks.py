"""Named checks for rules that need more than a condition on one CI's values.

A check takes the evaluation context, the rule's ``params`` and a batch of
candidate CIs (already narrowed to the rule's types and states) and returns,
for each CI that fails it, a short evidence text. Checks that read the graph
ask the store once per batch, never once per CI.

Attribute shapes read here are the ones declared in ``cmdb/vocab/*.yaml`` and
filled by the connectors; the readers are lenient about key spellings
(``from_port``/``fromPort``) because providers and helpers differ.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cmdb.model import CI
from cmdb.store.base import Store

__all__ = ["CHECKS", "CheckContext", "check", "open_ports", "port_ranges"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CheckContext:
    store: Store
    at: datetime
    owner_tags: tuple[str, ...] = ()
    cache: dict[str, Any] = field(default_factory=dict)


Check = Callable[[CheckContext, dict[str, Any], Sequence[CI]], dict[str, str]]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    """Register a check under ``name`` (what a rule's ``check:`` names)."""

    def register(fn: Check) -> Check:
        CHECKS[name] = fn
        return fn

    return register


def _get(item: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in item and item[name] is not None:
            return item[name]
    return None


def _is_anywhere(cidr: str) -> bool:
    text = str(cidr).strip().lower()
    if text in ("*", "any", "internet", "0.0.0.0/0", "::/0", "0.0.0.0", "::"):
        return True
    try:
        return ipaddress.ip_network(text, strict=False).prefixlen == 0
    except ValueError:
        return False


_ALL_PROTOCOLS = frozenset({"-1", "all", "*", "any"})


def port_ranges(value: Any) -> list[tuple[int, int]]:
    """Port ranges from "22", "1000-2000", "*", 22, [..] or None (meaning all ports)."""
    if value is None:
        return [(0, 65535)]
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [(value, value)]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in port_ranges(v)]
    text = str(value).strip()
    if text in ("*", "", "all", "-1"):
        return [(0, 65535)]
    low, _, high = text.partition("-")
    try:
        return [(int(low), int(high or low))]
    except ValueError:
        return []


def _exposed(ranges: Iterable[tuple[int, int]], ports: Sequence[int]) -> list[int]:
    return sorted({p for p in ports for low, high in ranges if low <= p <= high})


def _aws_rules(ci: CI) -> Iterable[tuple[str, list[str], list[tuple[int, int]]]]:
    for rule in ci.attributes.get("ingress_rules") or []:
        if not isinstance(rule, dict):
            continue
        protocol = str(_get(rule, "protocol", "ip_protocol", "IpProtocol") or "-1").lower()
        cidrs = _get(rule, "cidrs", "cidr_blocks", "ip_ranges", "IpRanges") or []
        cidrs = [c.get("CidrIp", c.get("CidrIpv6", "")) if isinstance(c, dict) else str(c) for c in cidrs]
        cidrs += [str(c) for c in (_get(rule, "ipv6_cidrs", "ipv6_ranges") or [])]
        low, high = _get(rule, "from_port", "FromPort"), _get(rule, "to_port", "ToPort")
        if protocol in _ALL_PROTOCOLS or low is None or (isinstance(low, int) and low < 0):
            ranges = [(0, 65535)]
        else:
            ranges = [(int(low), int(high if high is not None else low))]
        yield protocol, cidrs, ranges


def _azure_rules(ci: CI) -> Iterable[tuple[str, list[str], list[tuple[int, int]]]]:
    for rule in ci.attributes.get("rules") or []:
        if not isinstance(rule, dict):
            continue
        direction = str(_get(rule, "direction") or "inbound").lower()
        access = str(_get(rule, "access") or "allow").lower()
        if direction != "inbound" or access != "allow":
            continue
        sources = _get(rule, "source_address_prefixes", "sourceAddressPrefixes") or []
        single = _get(rule, "source_address_prefix", "sourceAddressPrefix", "source")
        if single is not None:
            sources = [*sources, single]
        ports = _get(rule, "destination_port_ranges", "destinationPortRanges") or []
        one = _get(rule, "destination_port_range", "destinationPortRange", "port", "ports")
        ranges = port_ranges([*ports, one] if one is not None else (ports or None))
        yield str(_get(rule, "protocol") or "*").lower(), [str(s) for s in sources], ranges


def _gcp_rules(ci: CI) -> Iterable[tuple[str, list[str], list[tuple[int, int]]]]:
    attrs = ci.attributes
    if attrs.get("disabled") is True or str(attrs.get("direction") or "INGRESS").upper() != "INGRESS":
        return
    sources = [str(s) for s in attrs.get("source_ranges") or []]
    for allowed in attrs.get("allowed") or []:
        if not isinstance(allowed, dict):
            continue
        protocol = str(_get(allowed, "IPProtocol", "ip_protocol", "protocol") or "all").lower()
        ports = _get(allowed, "ports")
        yield protocol, sources, port_ranges(ports if ports else None)


def open_ports(ci: CI, ports: Sequence[int]) -> list[int]:
    """Which of ``ports`` ``ci`` (security group, NSG or firewall) lets in from anywhere over TCP."""
    readers = {"aws.ec2.security_group": _aws_rules, "azure.network.nsg": _azure_rules, "gcp.compute.firewall": _gcp_rules}
    reader = readers.get(ci.type)
    if reader is None:
        return []
    exposed: set[int] = set()
    for protocol, sources, ranges in reader(ci):
        if protocol not in (*_ALL_PROTOCOLS, "tcp", "6"):
            continue
        if any(_is_anywhere(s) for s in sources):
            exposed.update(_exposed(ranges, ports))
    return sorted(exposed)


@check("open_ingress")
def _open_ingress(ctx: CheckContext, params: dict[str, Any], cis: Sequence[CI]) -> dict[str, str]:
    ports = [int(p) for p in params.get("ports", [22, 3389])]
    found: dict[str, str] = {}
    for ci in cis:
        exposed = open_ports(ci, ports)
        if exposed:
            found[ci.id] = f"open to the internet (0.0.0.0/0) on port {', '.join(map(str, exposed))}"
    return found


def _principals(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key in ("AWS", "Service", "Federated", "CanonicalUser", "arn", "principal"):
                yield from _principals(inner)
            elif key == "*":
                yield "*"
    elif isinstance(value, (list, tuple)):
        for inner in value:
            yield from _principals(inner)


@check("trusts_any_principal")
def _trusts_any(ctx: CheckContext, params: dict[str, Any], cis: Sequence[CI]) -> dict[str, str]:
    found: dict[str, str] = {}
    for ci in cis:
        principals = list(_principals(ci.attributes.get("trusted_principals") or []))
        wide = [p for p in principals if p.strip() in ("*", "arn:aws:iam::*:root")]
        if wide:
            found[ci.id] = f"trust policy allows principal {wide[0]!r} (any AWS account)"
    return found


_TLS = frozenset({"https", "tls", "ssl"})


def _listener_protocols(value: Any) -> list[str]:
    protocols: list[str] = []
    for listener in value or []:
        if isinstance(listener, dict):
            protocols.append(str(_get(listener, "protocol", "Protocol") or "").lower())
        else:
            protocols.append(str(listener).split(":", 1)[0].lower())
    return protocols


@check("no_tls_listener")
def _no_tls(ctx: CheckContext, params: dict[str, Any], cis: Sequence[CI]) -> dict[str, str]:
    found: dict[str, str] = {}
    for ci in cis:
        if str(ci.attributes.get("lb_type", "")).lower() == "gateway" or "listeners" not in ci.attributes:
            continue  # gateway load balancers do not terminate traffic; unknown listeners are not a finding
        protocols = _listener_protocols(ci.attributes.get("listeners"))
        if not _TLS & set(protocols):
            shown = ", ".join(p.upper() for p in protocols) or "none"
            found[ci.id] = f"no HTTPS/TLS listener (listeners: {shown})"
    return found


@check("missing_owner")
def _missing_owner(ctx: CheckContext, params: dict[str, Any], cis: Sequence[CI]) -> dict[str, str]:
    spellings = {s.lower() for s in (params.get("tags") or ctx.owner_tags)}
    found: dict[str, str] = {}
    for ci in cis:
        if ci.owner:
            continue
        if any(k.lower() in spellings and v.strip() for k, v in ci.tags.items()):
            continue
        found[ci.id] = "no owner, and no owner tag (" + ", ".join(sorted(spellings)[:4]) + ", ...)"
    return found


@check("retired_still_referenced")
def _retired_referenced(ctx: CheckContext, params: dict[str, Any], cis: Sequence[CI]) -> dict[str, str]:
    """A retired or disposed CI that an active CI still needs (an active edge into it)."""
    if not cis:
        return {}
    ids = [ci.id for ci in cis]
    rels = [r for r in ctx.store.relationships(ids, "in") if r.lifecycle_state == "active" and r.type != "OWNED_BY"]
    dependents = ctx.store.get_cis(list({r.from_id for r in rels}))
    live = set(params.get("dependent_states") or ("active", "optimise", "provisioned"))
    by_target: dict[str, list[str]] = {}
    for rel in rels:
        dependent = dependents.get(rel.from_id)
        if dependent is not None and dependent.lifecycle_state in live:
            by_target.setdefault(rel.to_id, []).append(f"{rel.from_id} ({rel.type})")
    found: dict[str, str] = {}
    for ci in cis:
        users = sorted(by_target.get(ci.id, []))
        if users:
            more = f" and {len(users) - 3} more" if len(users) > 3 else ""
            found[ci.id] = f"{ci.lifecycle_state}, still needed by {', '.join(users[:3])}{more}"
    return found


def mutable_images(images: Any) -> list[str]:
    """Images pinned neither by digest nor by a tag other than ``latest``."""
    found: list[str] = []
    for image in images or []:
        text = str(image)
        if "@sha256:" in text:
            continue
        last = text.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else ""
        if not tag or tag == "latest":
            found.append(text)
    return found


@check("mutable_image_tag")
def _mutable_image_tag(ctx: CheckContext, params: dict[str, Any], cis: Sequence[CI]) -> dict[str, str]:
    found: dict[str, str] = {}
    for ci in cis:
        loose = mutable_images(ci.attributes.get("images"))
        if loose:
            found[ci.id] = "image not pinned (no tag, or :latest): " + ", ".join(loose[:3])
    return found
