"""What every AWS discovery unit shares: where it runs, how it builds CIs and
relationships, and the names other resources use to point at them.

A *unit* is one fetch-and-transform step for one service in one place (an
account's region, or its global services): ``def unit(ctx: Context, out: Out)``.
It reads through ``ctx.client(service)`` and writes with ``out.ci`` / ``out.rel``.
An exception from a unit makes the connector drop what that unit saw, report a
``Problem`` for the service and region, and mark the scope's sweep incomplete.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cmdb.connectors.aws.tagmap import TagMap
from cmdb.model import CI, Evidence, Relationship

__all__ = [
    "GLOBAL",
    "Client",
    "Context",
    "Index",
    "Out",
    "Place",
    "Unit",
    "gone",
    "host_of",
    "items",
    "tag_dict",
    "why",
]

T = TypeVar("T")
R = TypeVar("R")

GLOBAL = "global"
"""The region name of an account's global services (IAM, CloudFront, Route53, S3 listing)."""

Client = Any
"""A boto3 client (boto3 ships no type information)."""

Record = dict[str, Any]
"""One resource as an AWS API returned it."""


@dataclass(frozen=True, slots=True)
class Place:
    """One account's region (or its global services): the unit of a sweep."""

    partition: str
    account: str
    region: str

    @property
    def scope(self) -> str:
        return f"aws:{self.account}:{self.region}"

    def arn(self, service: str, resource: str, *, region: str | None = None, account: str | None = None) -> str:
        """An ARN in this place; ``region``/``account`` may be given as "" where the format omits them."""
        the_region = self.region if region is None else region
        if the_region == GLOBAL:
            the_region = ""
        the_account = self.account if account is None else account
        return f"arn:{self.partition}:{service}:{the_region}:{the_account}:{resource}"

    def ec2_arn(self, kind: str, resource_id: str) -> str:
        return self.arn("ec2", f"{kind}/{resource_id}")


class Index:
    """Names that resources of one account use to point at each other.

    Endpoint hostnames, DNS names, bucket and table names and ARNs, mapped to
    the id of the CI they name, kept per region ("" for global names such as
    bucket names). A regional unit looks names up in its own region and the
    global ones only: regions are swept in parallel, so what another region
    holds may or may not be known yet. Global units that run after every
    region (CloudFront, Route53) look names up in all regions.
    """

    def __init__(self) -> None:
        self._names: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str) -> str:
        return name.strip().rstrip(".").lower()

    def add(self, ci_id: str, *names: str, region: str = "") -> None:
        with self._lock:
            for name in names:
                if name:
                    self._names.setdefault(self._key(name), {})[region] = ci_id

    def find(self, name: str, region: str | None = None) -> str | None:
        """The CI a name refers to: in ``region`` or globally, or (``region=None``) anywhere."""
        with self._lock:
            found = self._names.get(self._key(name)) if name.strip() else None
            if not found:
                return None
            if region is not None:
                return found.get(region) or found.get("")
            return found.get("") or found[min(found)]


class Out:
    """What one unit saw in one place: CIs and relationships, built the same way everywhere."""

    def __init__(self, place: Place, tag_map: TagMap) -> None:
        self.place = place
        self.tag_map = tag_map
        self.cis: list[CI] = []
        self.rels: list[Relationship] = []
        self._rels: dict[tuple[str, str, str], Relationship] = {}
        #: records the unit could not read while it read the rest: (what, why, ci_id)
        self.failures: list[tuple[str, str, str]] = []

    def failed(self, what: str, why: str, ci_id: str = "") -> None:
        """One record could not be read: it is left out, and the scope's sweep is incomplete."""
        self.failures.append((what, why, ci_id))

    def ci(
        self,
        ci_id: str,
        ci_type: str,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        attributes: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
        region: str | None = None,
        scope: str | None = None,
    ) -> CI:
        the_tags = dict(tags or {})
        fields = self.tag_map.fields(the_tags)
        ci = CI(
            id=ci_id,
            type=ci_type,
            name=the_tags.get("Name") or name or ci_id,
            provider="aws",
            scope=scope or self.place.scope,
            region=self.place.region if region is None else region,
            tags=the_tags,
            attributes={k: v for k, v in (attributes or {}).items() if v is not None},
            aliases=tuple(dict.fromkeys(a for a in aliases if a)),
            owner=fields.get("owner", ""),
            cost_centre=fields.get("cost_centre", ""),
            environment=fields.get("environment", ""),
            business_unit=fields.get("business_unit", ""),
        )
        self.cis.append(ci)
        return ci

    def rel(self, from_id: str, rel_type: str, to_id: str, field: str, value: str = "") -> None:
        """A relationship and why it exists; the same one found twice keeps both reasons."""
        if not from_id or not to_id or from_id == to_id:
            return
        evidence = Evidence(field, value)
        known = self._rels.get((from_id, rel_type, to_id))
        if known is not None:
            if evidence not in known.evidence:
                known.evidence = (*known.evidence, evidence)
            return
        rel = Relationship(from_id=from_id, type=rel_type, to_id=to_id, scope=self.place.scope, evidence=(evidence,))
        self._rels[rel.key] = rel
        self.rels.append(rel)


@dataclass(slots=True)
class Context:
    """What a unit may use: its place, clients for it, the account's index, and
    facts earlier units of the same place left for later ones."""

    place: Place
    index: Index
    make_client: Callable[[str, str], Client]
    shared: dict[str, Any] = field(default_factory=dict)
    #: calls made at once for per-resource details (a bucket's settings, a role's tags)
    detail_workers: int = 8

    def client(self, service: str, region: str | None = None) -> Client:
        region = region or self.place.region
        if region == GLOBAL:
            region = "us-east-1"
        return self.make_client(service, region)

    def each(self, fetch: Callable[[T], R], values: Sequence[T]) -> list[R | Exception]:
        """``fetch`` applied to every value, several at once, in order; a failure is returned, not raised."""

        def call(value: T) -> R | Exception:
            try:
                return fetch(value)
            except Exception as exc:  # noqa: BLE001 - handed back to the unit, which decides what it means
                return exc

        if len(values) <= 1 or self.detail_workers <= 1:
            return [call(v) for v in values]
        workers = min(self.detail_workers, len(values))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cmdb-aws-detail") as pool:
            return list(pool.map(call, values))


Unit = Callable[[Context, Out], None]


_MIN_PAGE = {"rds": 20, "elasticache": 20, "ec2": 5, "route53": 1, "cloudfront": 1}


def items(client: Client, operation: str, path: str, **params: Any) -> Iterator[Any]:
    """Every item at ``path`` (a JMESPath such as ``Reservations[].Instances[]``)
    across all pages of ``operation``; operations without a paginator are called once."""
    if client.can_paginate(operation):
        paginator = client.get_paginator(operation)
        size = getattr(client, "_cmdb_page_size", None)
        if size and getattr(paginator, "_pagination_cfg", {}).get("limit_key"):  # some pages have a fixed size
            service = client.meta.service_model.service_name
            params["PaginationConfig"] = {"PageSize": max(size, _MIN_PAGE.get(service, 1))}
        for item in paginator.paginate(**params).search(path):
            if item is not None:
                yield item
        return
    import jmespath  # type: ignore[import-untyped]  # botocore's own dependency

    found = jmespath.search(path, getattr(client, operation)(**params))
    if isinstance(found, list):
        yield from (i for i in found if i is not None)
    elif found is not None:
        yield found


def tag_dict(tags: Any) -> dict[str, str]:
    """AWS tags in any of their shapes ([{Key, Value}], [{key, value}], {k: v}) as a dict."""
    if not tags:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in tags.items()}
    result: dict[str, str] = {}
    for tag in tags:
        key = tag.get("Key", tag.get("key"))
        if key is not None:
            value = tag.get("Value", tag.get("value"))
            result[str(key)] = "" if value is None else str(value)
    return result


_URL_HOST = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?([^:/?#]+)", re.IGNORECASE)


def host_of(value: str) -> str:
    """The hostname in a URL or ``host:port`` value (never its user or password), else the value."""
    value = value.strip()
    match = _URL_HOST.match(value)
    if match:
        return match.group(1).lower()
    if "@" in value:
        value = value.rsplit("@", 1)[1]
    return value.split("/", 1)[0].split(":", 1)[0].lower()


def why(exc: BaseException) -> str:
    """One line saying what an AWS call failed with (error code, operation, message)."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error", {})
        operation = getattr(exc, "operation_name", "")
        return f"{error.get('Code', 'Error')} in {operation}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


_GONE = frozenset({
    "ResourceNotFoundException", "ResourceNotFoundFault", "NoSuchEntity", "NoSuchBucket", "NotFoundException",
    "DBInstanceNotFound", "DBClusterNotFoundFault", "CacheClusterNotFound", "ClusterNotFoundException",
    "LoadBalancerNotFound", "TargetGroupNotFound", "NoSuchHostedZone", "NoSuchDistribution",
})


def gone(exc: BaseException) -> bool:
    """Whether an AWS error says the resource no longer exists (deleted between a list and a describe)."""
    response = getattr(exc, "response", None)
    return isinstance(response, Mapping) and response.get("Error", {}).get("Code") in _GONE
