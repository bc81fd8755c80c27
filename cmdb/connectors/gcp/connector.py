"""The GCP connector: Cloud Asset Inventory listings, or asset export files, into CIs.

One scope per project (``gcp:<project-id>``). A sweep lists the supported asset
types under a project, folder or organisation (``ListAssets``, content type
RESOURCE, paged), plus the IAM policies of buckets (content type IAM_POLICY) to
tell whether a bucket is public. A listing that fails part-way (403, a page that
is not valid JSON or not shaped like ``ListAssetsResponse``) is reported as a
Problem naming the call and page, and every scope it touched ends incomplete, so
the sync engine marks nothing stale there. One malformed asset is reported on its
own, the rest lands, and its scope ends incomplete (its CI would otherwise look
gone).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmdb.connectors.base import Batch, Event, Problem, ScopeDone
from cmdb.connectors.gcp.transform import ASSET_TYPES, Linker, asset_project, project_number, transform
from cmdb.errors import ConfigError, ConnectorError, RecordError

if TYPE_CHECKING:
    from google.cloud.asset_v1 import AssetServiceClient

__all__ = ["GcpConnector", "GcpExportConnector", "asset_client"]

log = logging.getLogger(__name__)

BUCKET = "storage.googleapis.com/Bucket"
PROJECT = "cloudresourcemanager.googleapis.com/Project"
PAGE_SIZE = 500
BATCH_SIZE = 2000
_CAMEL = {"assetType": "asset_type", "iamPolicy": "iam_policy", "updateTime": "update_time"}


def asset_client(endpoint: str | None = None, token: str | None = None) -> AssetServiceClient:
    """A Cloud Asset client over REST.

    ``endpoint`` (``CMDB_GCP_ENDPOINT``) replaces ``https://cloudasset.googleapis.com``;
    ``token`` (``CMDB_GCP_TOKEN``) is a static OAuth bearer token for pipelines;
    without it Application Default Credentials are used.
    """
    from google.api_core.client_options import ClientOptions
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import asset_v1
    from google.oauth2.credentials import Credentials

    endpoint = endpoint or os.environ.get("CMDB_GCP_ENDPOINT") or None
    token = token or os.environ.get("CMDB_GCP_TOKEN") or None
    options = ClientOptions(api_endpoint=endpoint.rstrip("/")) if endpoint else None
    credentials = Credentials(token) if token else None  # type: ignore[no-untyped-call]
    try:
        return asset_v1.AssetServiceClient(credentials=credentials, transport="rest", client_options=options)
    except DefaultCredentialsError as exc:
        raise ConfigError(
            f"no GCP credentials: {exc}",
            hint="run 'gcloud auth application-default login', set GOOGLE_APPLICATION_CREDENTIALS or CMDB_GCP_TOKEN",
        ) from None


def _normalise(record: Mapping[str, Any]) -> dict[str, Any]:
    """An asset with snake_case top-level keys (export files may use either case)."""
    return {_CAMEL.get(key, key): value for key, value in record.items()}


class _Sweep:
    """The state of one listing (one parent) or one set of export files."""

    def __init__(self, default_project: str = "") -> None:
        self.default_project = default_project
        self.linker = Linker()
        self.iam: dict[str, dict[str, Any]] = {}
        self.iam_known = False
        self.buckets: list[tuple[str, dict[str, Any]]] = []  # kept until the IAM policies are known
        self.pending: list[tuple[str, dict[str, Any]]] = []  # project not known yet
        self.scopes: set[str] = {f"gcp:{default_project}"} if default_project else set()
        self.incomplete: dict[str, str] = {}  # scope -> reason
        self.failed = ""  # why the whole sweep is incomplete
        self.counts: dict[str, int] = {}
        self.skipped = 0
        self.hold_buckets = False  # leave buckets untouched (their IAM policies could not be read)

    # --- reading ------------------------------------------------------------
    def project_of(self, asset: Mapping[str, Any]) -> str:
        if asset.get("asset_type") == PROJECT:
            resource = asset.get("resource")
            data = resource.get("data") if isinstance(resource, dict) else None
            if isinstance(data, dict) and data.get("projectId"):
                return str(data["projectId"])
        project = asset_project(asset)
        if project:
            number = project_number(asset)
            if number:
                self.linker.project_ids.setdefault(number, project)
            return project
        number = project_number(asset)
        return self.linker.project_ids.get(number, "") or self.default_project

    def take(self, assets: Iterable[tuple[str, Mapping[str, Any]]]) -> Iterator[Event]:
        """Read one page of assets; yield what they became, one Batch per scope."""
        batches: dict[str, Batch] = {}
        for where, raw in assets:
            asset = _normalise(raw)
            if asset.get("iam_policy") is not None and not asset.get("resource"):
                policy = asset["iam_policy"]
                if isinstance(policy, dict):
                    self.iam[str(asset.get("name", ""))] = policy
                else:
                    yield Problem(where, "iam_policy is not an object", str(asset.get("name", "")))
                continue
            if asset.get("asset_type") not in ASSET_TYPES:
                self.skipped += 1  # export files hold every asset type; we model these
                continue
            if asset.get("asset_type") == BUCKET:
                self.buckets.append((where, asset))
                continue
            if not self.project_of(asset):
                self.pending.append((where, asset))
                continue
            yield from self.convert(where, asset, batches)
            if sum(len(b.cis) for b in batches.values()) >= BATCH_SIZE:
                yield from batches.values()
                batches = {}
        yield from batches.values()

    def convert(self, where: str, asset: dict[str, Any], batches: dict[str, Batch]) -> Iterator[Event]:
        project = self.project_of(asset) or project_number(asset)
        name = str(asset.get("name", ""))
        policy: dict[str, Any] | None = None
        if asset.get("asset_type") == BUCKET:
            policy = self.iam.get(name, {} if self.iam_known else None)
        scope = f"gcp:{project}" if project else "gcp:unknown"
        self.scopes.add(scope)
        try:
            done = transform(asset, project, policy)
            self.linker.note(asset, done)
        except RecordError as exc:
            self.incomplete.setdefault(scope, "an asset could not be read")
            yield Problem(where, exc.reason, name)
            return
        except (TypeError, ValueError, AttributeError) as exc:  # a field only the cross-asset links read
            self.incomplete.setdefault(scope, "an asset could not be read")
            yield Problem(where, f"malformed {asset.get('asset_type')}: {exc}", name)
            return
        for item in done:
            batch = batches.setdefault(item.ci.scope, Batch(item.ci.scope))
            batch.cis.append(item.ci)
            batch.relationships.extend(item.relationships)
            self.counts[item.ci.type] = self.counts.get(item.ci.type, 0) + 1

    def fail(self, where: str, reason: str) -> Problem:
        self.failed = self.failed or f"{where}: {reason}"
        return Problem(where, reason)

    # --- the end ------------------------------------------------------------
    def finish(self) -> Iterator[Event]:
        batches: dict[str, Batch] = {}
        if self.hold_buckets and self.buckets:
            log.warning("gcp: %d buckets left as they were: their IAM policies could not be read", len(self.buckets))
            self.buckets = []
        for where, asset in [*self.pending, *self.buckets]:
            yield from self.convert(where, asset, batches)
        self.pending, self.buckets = [], []
        for project, rel in self.linker.links():
            scope = f"gcp:{project}"
            batches.setdefault(scope, Batch(scope)).relationships.append(rel)
        yield from batches.values()
        for scope in sorted(self.scopes):
            reason = self.failed or self.incomplete.get(scope, "")
            yield ScopeDone(scope, not reason, reason)
        log.info("gcp sweep read %s", ", ".join(f"{n} {t}" for t, n in sorted(self.counts.items())) or "nothing")


class GcpConnector:
    """Sweeps GCP through Cloud Asset Inventory.

    ``parent`` is ``projects/<id>``, ``folders/<number>`` or ``organizations/<number>``.
    """

    source = "gcp"

    def __init__(
        self,
        parent: str,
        *,
        client: AssetServiceClient | None = None,
        endpoint: str | None = None,
        token: str | None = None,
        asset_types: Sequence[str] = tuple(ASSET_TYPES),
        page_size: int = PAGE_SIZE,
    ) -> None:
        if not parent.startswith(("projects/", "folders/", "organizations/")) or parent.endswith("/"):
            raise ConfigError(f"not a project, folder or organisation: {parent!r}", hint="e.g. projects/my-project")
        self.parent = parent
        self.client = client if client is not None else asset_client(endpoint, token)
        self.asset_types = list(asset_types)
        self.page_size = page_size

    def sweep(self) -> Iterator[Event]:
        from google.cloud import asset_v1

        project = self.parent.split("/", 1)[1] if self.parent.startswith("projects/") else ""
        state = _Sweep(project)
        if BUCKET in self.asset_types:
            yield from self._pages(state, asset_v1.ContentType.IAM_POLICY, [BUCKET])
            state.iam_known = not state.failed
            # without the policies a bucket's `public` is unknown: its CI is left as it was
            state.hold_buckets = not state.iam_known
        yield from self._pages(state, asset_v1.ContentType.RESOURCE, self.asset_types)
        yield from state.finish()

    def _pages(self, state: _Sweep, content_type: Any, asset_types: list[str]) -> Iterator[Event]:
        from google.api_core.exceptions import GoogleAPIError
        from google.auth.exceptions import GoogleAuthError
        from google.protobuf.json_format import MessageToDict, ParseError  # type: ignore[import-untyped]
        from requests.exceptions import RequestException

        call = f"ListAssets {self.parent} contentType={content_type.name}"
        number = 1
        try:
            pager = self.client.list_assets(
                request={
                    "parent": self.parent,
                    "asset_types": asset_types,
                    "content_type": content_type,
                    "page_size": self.page_size,
                }
            )
            for page in pager.pages:
                where = f"{call} page {number}"
                assets = [(where, MessageToDict(a._pb, preserving_proto_field_name=True)) for a in page.assets]
                log.debug("%s: %d assets", where, len(assets))
                yield from state.take(assets)
                number += 1
        except (GoogleAPIError, GoogleAuthError, ParseError, RequestException, ValueError) as exc:
            where = f"{call} page {number}"
            message = getattr(exc, "message", None) or str(exc)
            code = getattr(exc, "code", None)
            reason = f"{code} {message}" if isinstance(code, int) else f"{type(exc).__name__}: {message}"
            log.warning("%s failed: %s", where, reason)
            yield state.fail(where, reason)


class GcpExportConnector:
    """Reads Cloud Asset Inventory export files (JSON lines), for offline use.

    Resource and IAM-policy exports may be given together (``gcloud asset
    export --content-type=resource`` and ``--content-type=iam-policy``).
    """

    source = "gcp"

    def __init__(self, paths: Sequence[str | Path], *, project: str = "") -> None:
        self.paths = [Path(p) for p in paths]
        self.project = project
        for path in self.paths:
            if not path.is_file():
                raise ConnectorError(f"{path}: no such file", hint="check the --export-file path")

    def sweep(self) -> Iterator[Event]:
        state = _Sweep(self.project)
        records: list[tuple[str, dict[str, Any]]] = []
        problems: list[Problem] = []
        for path in self.paths:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(state.fail(str(path), f"cannot read: {exc}"))
                continue
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    problems.append(state.fail(where, f"not valid JSON: {exc.msg} at column {exc.colno}"))
                    continue
                if not isinstance(record, dict):
                    problems.append(state.fail(where, "an asset must be a JSON object"))
                    continue
                records.append((where, record))
        yield from problems
        state.iam_known = any("iam_policy" in r or "iamPolicy" in r for _, r in records)
        # IAM lines first, so buckets are judged with their policy
        records.sort(key=lambda item: 0 if ("iam_policy" in item[1] or "iamPolicy" in item[1]) and not item[1].get("resource") else 1)
        yield from state.take(records)
        yield from state.finish()
