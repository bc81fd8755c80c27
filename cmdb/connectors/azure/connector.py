"""The Azure connector: Azure Resource Manager into CIs, one scope per subscription.

For each subscription (``azure:<subscription-id>``) it pages through the SDK
listings that have a dedicated client (resource groups, virtual networks with
their subnets, NSGs, public IPs, NICs, load balancers, application gateways,
VMs, disks) and asks Azure Resource Graph for the types that have none here
(storage accounts, SQL servers and databases, AKS clusters), looping on its
skip token. Without ``--subscription`` every subscription the credential can
see is swept (listed through Resource Graph).

A listing that fails (403, a page that is not JSON or not shaped like an ARM
list) is reported as a Problem naming the call and page, and the subscription's
sweep ends incomplete, so nothing there is marked stale; the other listings go
on. One malformed resource is reported on its own; the rest lands, and the
sweep ends incomplete (its CI would otherwise look gone).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from cmdb.connectors.azure.transform import GRAPH_TYPES, TRANSFORMS, Context, Result, Transform, transform
from cmdb.connectors.base import Batch, Event, Problem, ScopeDone
from cmdb.errors import ConfigError, ConnectorError, RecordError

__all__ = ["DEFAULT_ENDPOINT", "AzureConnector", "StaticTokenCredential", "default_credential"]

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://management.azure.com"
GRAPH_PAGE = 1000
GRAPH_QUERY = (
    "Resources"
    " | where type in~ ('microsoft.storage/storageaccounts', 'microsoft.sql/servers',"
    " 'microsoft.sql/servers/databases', 'microsoft.containerservice/managedclusters')"
    " | project id, name, type, location, resourceGroup, subscriptionId, tags, sku, kind, properties"
    " | order by id asc"
)
SUBSCRIPTIONS_QUERY = (
    "ResourceContainers | where type =~ 'microsoft.resources/subscriptions'"
    " | project subscriptionId, name | order by subscriptionId asc"
)


class StaticTokenCredential:
    """A bearer token handed over by a pipeline (``CMDB_AZURE_TOKEN``); never stored."""

    def __init__(self, token: str, expires_in: int = 3600) -> None:
        self._token = token
        self._expires_in = expires_in

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + self._expires_in)


def default_credential(token: str | None = None) -> Any:
    """``CMDB_AZURE_TOKEN`` as a static credential, else azure-identity's DefaultAzureCredential."""
    token = token or os.environ.get("CMDB_AZURE_TOKEN") or None
    if token:
        return StaticTokenCredential(token)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _wire(item: Any) -> Any:
    """An SDK model as its REST JSON (property paths as ARM spells them)."""
    as_dict = getattr(item, "as_dict", None)
    if isinstance(item, Mapping) and callable(as_dict):
        return as_dict()
    return item


class _MalformedPage(Exception):
    pass


class _Unauthenticated(Exception):
    """The credential was refused (401) or gave no token: stop this subscription's sweep."""


class AzureConnector:
    """Sweeps one or more Azure subscriptions."""

    source = "azure"

    def __init__(
        self,
        subscriptions: Sequence[str] = (),
        *,
        credential: Any = None,
        endpoint: str | None = None,
        connection_verify: str | bool | None = None,
    ) -> None:
        self.subscriptions = [s.strip().lower() for s in subscriptions if s.strip()]
        self.credential = credential if credential is not None else default_credential()
        self.endpoint = (endpoint or os.environ.get("CMDB_AZURE_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        if not self.endpoint.startswith("https://"):
            raise ConfigError(f"the Azure endpoint must be https: {self.endpoint}", hint="e.g. https://management.azure.com")
        self.options: dict[str, Any] = {
            "base_url": self.endpoint,
            "credential_scopes": [f"{self.endpoint}/.default"],
        }
        if connection_verify is not None:  # otherwise REQUESTS_CA_BUNDLE (or the system store) applies
            self.options["connection_verify"] = connection_verify

    # --- clients --------------------------------------------------------------
    def _graph(self) -> Any:
        from azure.mgmt.resourcegraph import ResourceGraphClient

        return ResourceGraphClient(self.credential, **self.options)

    def _clients(self, subscription: str) -> tuple[Any, Any, Any]:
        from azure.mgmt.compute import ComputeManagementClient
        from azure.mgmt.network import NetworkManagementClient
        from azure.mgmt.resource.resources import ResourceManagementClient

        return (
            ResourceManagementClient(self.credential, subscription, **self.options),
            NetworkManagementClient(self.credential, subscription, **self.options),
            ComputeManagementClient(self.credential, subscription, **self.options),
        )

    @staticmethod
    def _listings(resources: Any, network: Any, compute: Any) -> list[tuple[str, str, Callable[[], Iterable[Any]]]]:
        """(listing name, the call as a Problem names it, a pager factory) in sweep order."""
        return [
            ("resource_groups", "resource_groups.list", resources.resource_groups.list),
            ("virtual_networks", "virtual_networks.list_all", network.virtual_networks.list_all),
            ("network_security_groups", "network_security_groups.list_all", network.network_security_groups.list_all),
            ("public_ip_addresses", "public_ip_addresses.list_all", network.public_ip_addresses.list_all),
            ("network_interfaces", "network_interfaces.list_all", network.network_interfaces.list_all),
            ("load_balancers", "load_balancers.list_all", network.load_balancers.list_all),
            ("application_gateways", "application_gateways.list_all", network.application_gateways.list_all),
            ("virtual_machines", "virtual_machines.list_all", compute.virtual_machines.list_all),
            ("virtual_machine_scale_sets", "virtual_machine_scale_sets.list_all", compute.virtual_machine_scale_sets.list_all),
            ("disks", "disks.list", compute.disks.list),
        ]

    # --- the sweep ------------------------------------------------------------
    def sweep(self) -> Iterator[Event]:
        subscriptions = self.subscriptions or self._visible_subscriptions()
        for subscription in subscriptions:
            yield from self._sweep_subscription(subscription)

    def _visible_subscriptions(self) -> list[str]:
        from azure.core.exceptions import AzureError

        try:
            rows = [row for page in self._graph_pages(SUBSCRIPTIONS_QUERY, None) for row in page]
        except (AzureError, _MalformedPage) as exc:
            raise ConnectorError(f"cannot list the visible Azure subscriptions: {_reason(exc)}",
                                 hint="name them with --subscription, or check the credential's access") from None
        found = sorted({str(row.get("subscriptionId", "")).lower() for row in rows if isinstance(row, Mapping)} - {""})
        log.info("azure: %d visible subscriptions", len(found))
        return found

    def _sweep_subscription(self, subscription: str) -> Iterator[Event]:
        from azure.core.exceptions import AzureError

        scope = f"azure:{subscription}"
        ctx = Context(subscription)
        incomplete: list[str] = []
        counts: dict[str, int] = {}
        started = time.monotonic()
        try:
            clients = self._clients(subscription)
        except (AzureError, ValueError) as exc:
            yield Problem(f"azure subscription {subscription}", f"cannot create the clients: {exc}")
            yield ScopeDone(scope, False, "the clients could not be created")
            return
        try:
            for name, call, pager in self._listings(*clients):
                where = f"{call} subscription {subscription}"
                yield from self._listing(scope, where, pager, TRANSFORMS[name], ctx, incomplete, counts)
            compute = clients[2]
            for _, group, scale_set, _ in list(ctx.scale_sets):
                where = f"virtual_machine_scale_set_vms.list {group}/{scale_set} subscription {subscription}"
                pager = functools.partial(compute.virtual_machine_scale_set_vms.list, group, scale_set)
                yield from self._listing(scope, where, pager, TRANSFORMS["virtual_machine_scale_set_vms"], ctx, incomplete, counts)
            yield from self._graph_sweep(scope, subscription, ctx, incomplete, counts)
        except _Unauthenticated:
            log.warning("azure %s: not authenticated; the rest of its sweep was skipped", subscription)
        finally:
            for client in clients:
                client.close()
        links = ctx.aks_links()
        if links:
            yield Batch(scope, [], links)
        log.info(
            "azure %s swept in %.1fs: %s", subscription, time.monotonic() - started,
            ", ".join(f"{n} {t}" for t, n in sorted(counts.items())) or "nothing",
        )
        yield ScopeDone(scope, not incomplete, "; ".join(incomplete[:3]))

    def _listing(
        self, scope: str, where: str, pager: Callable[[], Iterable[Any]], kind: Transform,
        ctx: Context, incomplete: list[str], counts: dict[str, int],
    ) -> Iterator[Event]:
        """One ARM listing, page by page; a failed page ends it and makes the sweep incomplete."""
        from azure.core.exceptions import AzureError, ClientAuthenticationError

        page_number = 1
        try:
            for page in pager().by_page():  # type: ignore[attr-defined]
                items = [_wire(item) for item in page]
                if any(not isinstance(item, Mapping) for item in items):
                    raise _MalformedPage("the page's 'value' is not a list of resources")
                yield from self._batch(scope, f"{where} page {page_number}", kind, items, ctx, incomplete, counts)
                page_number += 1
        except ClientAuthenticationError as exc:  # 401 or no token at all: the next listing would fail alike
            yield self._failed(f"{where} page {page_number}", exc, incomplete)
            raise _Unauthenticated from exc
        except (AzureError, _MalformedPage) as exc:
            yield self._failed(f"{where} page {page_number}", exc, incomplete)

    def _graph_sweep(
        self, scope: str, subscription: str, ctx: Context, incomplete: list[str], counts: dict[str, int]
    ) -> Iterator[Event]:
        from azure.core.exceptions import AzureError

        where = f"resourcegraph.resources subscription {subscription}"
        page_number = 1
        try:
            for rows in self._graph_pages(GRAPH_QUERY, [subscription]):
                by_type: dict[str, list[Any]] = {}
                for row in rows:
                    kind = str(row.get("type", "")).lower() if isinstance(row, Mapping) else ""
                    by_type.setdefault(kind, []).append(row)
                for kind, items in by_type.items():
                    if kind not in GRAPH_TYPES:
                        yield Problem(f"{where} page {page_number}", f"unexpected resource type {kind!r} in the reply")
                        continue
                    yield from self._batch(scope, f"{where} page {page_number}", GRAPH_TYPES[kind], items, ctx, incomplete, counts)
                page_number += 1
        except (AzureError, _MalformedPage) as exc:
            yield self._failed(f"{where} page {page_number}", exc, incomplete)

    @staticmethod
    def _failed(where: str, exc: BaseException, incomplete: list[str]) -> Problem:
        reason = _reason(exc)
        log.warning("%s failed: %s", where, reason)
        incomplete.append(f"{where} failed")
        return Problem(where, reason)

    @staticmethod
    def _batch(
        scope: str, where: str, kind: Transform, items: Iterable[Any], ctx: Context, incomplete: list[str], counts: dict[str, int]
    ) -> Iterator[Event]:
        batch = Batch(scope)
        for item in items:
            try:
                result: Result = transform(kind, item, ctx)
            except RecordError as exc:
                if not incomplete or incomplete[-1] != f"{where}: a resource could not be read":
                    incomplete.append(f"{where}: a resource could not be read")
                yield Problem(where, exc.reason, exc.ci_id or "")
                continue
            batch.cis.extend(result.cis)
            batch.relationships.extend(result.relationships)
            for ci in result.cis:
                counts[ci.type] = counts.get(ci.type, 0) + 1
        if batch.cis or batch.relationships:
            yield batch

    def _graph_pages(self, query: str, subscriptions: list[str] | None) -> Iterator[list[Any]]:
        """Resource Graph pages of rows (objectArray), following ``$skipToken``."""
        with self._graph() as client:
            yield from self._graph_loop(client, query, subscriptions)

    @staticmethod
    def _graph_loop(client: Any, query: str, subscriptions: list[str] | None) -> Iterator[list[Any]]:
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        skip_token: str | None = None
        while True:
            options = QueryRequestOptions(result_format="objectArray", top=GRAPH_PAGE, skip_token=skip_token)
            reply = client.resources(QueryRequest(subscriptions=subscriptions, query=query, options=options))
            if not isinstance(reply.data, list):
                raise _MalformedPage(f"'data' is not a list of rows (got {type(reply.data).__name__})")
            yield reply.data
            skip_token = reply.skip_token
            if not skip_token:
                if str(reply.result_truncated).lower() == "true":
                    raise _MalformedPage("the result was truncated and no $skipToken was given")
                return


def _reason(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    message = str(message).splitlines()[0] if message else type(exc).__name__
    parts = [str(p) for p in (status, code) if p]
    return f"{' '.join(parts)} {message}".strip() if parts else f"{type(exc).__name__}: {message}"
