"""The AWS connector: every account and region it can reach, unit by unit.

For each account (the caller's, and one for each ``assume_roles`` ARN) it
sweeps the global services (IAM, S3, then CloudFront and Route53, which point
at regional resources) as the scope ``aws:<account>:global`` and each region as
``aws:<account>:<region>``, regions in parallel. Each unit (one service's one
kind of resource) is fetched, transformed and yielded as one batch; a unit that
fails (AccessDenied, throttled past retries, an unreachable endpoint) yields a
``Problem`` naming its service and region, its partial results are dropped,
and its scope's sweep is reported incomplete so nothing there goes stale.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.loaders  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.credentials import (  # type: ignore[import-untyped]
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
)

from cmdb.connectors.aws import apps, data, ec2, edge, iam
from cmdb.connectors.aws.base import GLOBAL, Client, Context, Index, Out, Place, Unit, why
from cmdb.connectors.aws.tagmap import TagMap
from cmdb.connectors.base import Batch, Event, Problem, ScopeDone
from cmdb.errors import ConnectorError

__all__ = ["GLOBAL_FIRST", "GLOBAL_LAST", "REGIONAL", "AwsConnector"]

log = logging.getLogger(__name__)

UnitSpec = tuple[str, str, Unit]

GLOBAL_FIRST: list[UnitSpec] = [*iam.GLOBAL_UNITS, *data.GLOBAL_UNITS]
"""Global units whose names regional units look up (roles, buckets)."""
REGIONAL: list[UnitSpec] = [*ec2.UNITS, *edge.UNITS, *data.UNITS, *apps.UNITS]
"""Regional units, in order: later ones use what earlier ones found."""
GLOBAL_LAST: list[UnitSpec] = list(edge.GLOBAL_UNITS)
"""Global units that point at regional resources (CloudFront origins, DNS records)."""

BATCH_SIZE = 2000
_INDEXED_GLOBAL = frozenset({"s3:buckets"})
"""Global units whose names regional units look up."""
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError)


_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def new_session(*, credential_provider: Any = None, **kwargs: Any) -> Any:
    """A boto3 session whose service models come from one loader per process.

    Each new session would otherwise parse botocore's JSON models again (about
    1.5 s for the endpoint rules and a dozen services); one assumed-role
    session per account makes that add up. Credentials are not shared:
    ``credential_provider`` replaces the standard chain for this session.
    """
    global _LOADER
    core = botocore.session.get_session()
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader(core.get_config_variable("data_path"))
        core.register_component("data_loader", _LOADER)
    if credential_provider is not None:
        core.register_component("credential_provider", CredentialResolver(providers=[credential_provider]))
    return boto3.Session(botocore_session=core, **kwargs)


_PARTITION_PREFIXES = {"aws-cn": ("cn-",), "aws-us-gov": ("us-gov-",), "aws-iso": ("us-iso-",),
                       "aws-iso-b": ("us-isob-",), "aws-iso-e": ("eu-isoe-",), "aws-iso-f": ("us-isof-",)}


def in_partition(region: str, partition: str) -> bool:
    """Whether a region belongs to a partition (``aws`` is every region no other partition claims)."""
    if partition in _PARTITION_PREFIXES:
        return region.startswith(_PARTITION_PREFIXES[partition])
    return not any(region.startswith(p) for prefixes in _PARTITION_PREFIXES.values() for p in prefixes)


class _AssumedRole(CredentialProvider):  # type: ignore[misc]
    """Credentials of an assumed role that renew themselves before they expire,
    so that a sweep longer than the role's session (one hour by default) goes on."""

    METHOD = "cmdb-assume-role"
    CANONICAL_NAME = "cmdb-assume-role"

    def __init__(self, fetcher: Any) -> None:
        super().__init__()
        self._fetcher = fetcher

    def load(self) -> Any:
        return DeferredRefreshableCredentials(refresh_using=self._fetcher.fetch_credentials, method=self.METHOD)


@dataclass(slots=True)
class _Account:
    session: Any  # boto3.Session
    account: str
    partition: str
    label: str


@dataclass(slots=True)
class _Sweep:
    """One scope's sweep: its events, and why it is incomplete if it is."""

    place: Place
    events: list[Event] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def done(self) -> ScopeDone:
        reason = "; ".join(self.failures)
        return ScopeDone(self.place.scope, not self.failures, reason)


class AwsConnector:
    """Discovers AWS accounts through boto3's standard credential chain.

    ``profile`` picks a named profile (else the environment, SSO cache, instance
    role, ...); ``regions`` limits the regions (default: every enabled region);
    each ARN in ``assume_roles`` adds the account that role lives in.
    ``page_size`` asks every paginated call for pages of that size (default: each
    API's own); every page is followed either way.
    ``endpoint_urls`` maps a region to an endpoint to use for it (VPC or proxy
    endpoints; boto3's own ``AWS_ENDPOINT_URL*`` settings apply otherwise).
    """

    source = "aws"

    def __init__(
        self,
        *,
        profile: str | None = None,
        regions: Sequence[str] | None = None,
        assume_roles: Sequence[str] = (),
        include_caller: bool = True,
        tag_map: TagMap | None = None,
        session: Any = None,
        endpoint_urls: Mapping[str, str] | None = None,
        max_attempts: int = 8,
        workers: int = 4,
        page_size: int | None = None,
        external_id: str | None = None,
        on_progress: Callable[[str, str, int, float], None] | None = None,
    ) -> None:
        self.profile = profile
        self.regions = list(dict.fromkeys(regions)) if regions else None
        self.assume_roles = list(assume_roles)
        self.include_caller = include_caller
        self.tag_map = tag_map or TagMap.load()
        self.endpoint_urls = dict(endpoint_urls or {})
        self.workers = max(1, workers)
        self.page_size = page_size
        self.external_id = external_id
        self.on_progress = on_progress
        self.config = Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=max(10, workers * 4),
            user_agent_extra="cmdb",
        )
        self._session = session
        self._lock = threading.RLock()
        self._unreachable: set[str] = set()
        self._clients: dict[tuple[str, str, str], Client] = {}
        #: seconds spent in each unit, for benchmarks: (scope, service.unit) -> seconds
        self.timings: dict[tuple[str, str], float] = {}

    # --- accounts -----------------------------------------------------------
    def _base_session(self) -> Any:
        if self._session is None:
            try:
                self._session = new_session(profile_name=self.profile)
            except BotoCoreError as exc:
                raise ConnectorError(f"AWS profile {self.profile!r}: {exc}", hint="check ~/.aws/config") from None
        return self._session

    def _identity(self, session: Any) -> tuple[str, str]:
        sts = session.client("sts", config=self.config, region_name=session.region_name or "us-east-1")
        identity = sts.get_caller_identity()
        arn = str(identity["Arn"])
        return str(identity["Account"]), arn.split(":")[1] if arn.startswith("arn:") else "aws"

    def _accounts(self) -> Iterator[_Account | tuple[Problem, list[ScopeDone]]]:
        base = self._base_session()
        try:
            account, partition = self._identity(base)
        except NoCredentialsError:
            raise ConnectorError("no AWS credentials found",
                                 hint="set AWS_PROFILE, run 'aws sso login', or pass --profile") from None
        except (ClientError, BotoCoreError) as exc:
            raise ConnectorError(f"cannot identify the AWS caller: {exc}") from None
        if self.include_caller:
            yield _Account(base, account, partition, f"caller {account}")
        for role_arn in self.assume_roles:
            parts = role_arn.split(":")
            role_account = parts[4] if len(parts) > 5 else "unknown"
            try:
                session = self._assumed_session(base, role_arn)
                assumed_account, assumed_partition = self._identity(session)  # assumes the role now
            except (ClientError, BotoCoreError) as exc:
                reason = f"cannot assume {role_arn}: {why(exc)}"
                scopes = [ScopeDone(f"aws:{role_account}:{r}", False, reason) for r in [GLOBAL, *(self.regions or [])]]
                yield Problem(f"aws:{role_account}/sts", reason), scopes
                continue
            yield _Account(session, assumed_account, assumed_partition, role_arn)

    def _assumed_session(self, base: Any, role_arn: str) -> Any:
        extra: dict[str, str] = {"RoleSessionName": "cmdb-discovery"}
        if self.external_id:
            extra["ExternalId"] = self.external_id
        region = base.region_name or "us-east-1"

        def sts_client(service: str, **credentials: Any) -> Client:
            with self._lock:
                return base.client(service, region_name=region, config=self.config, **credentials)

        fetcher = AssumeRoleCredentialFetcher(
            client_creator=sts_client, source_credentials=base.get_credentials(), role_arn=role_arn, extra_args=extra
        )
        return new_session(credential_provider=_AssumedRole(fetcher), region_name=base.region_name)

    def _region_names(self, acct: _Account) -> list[str]:
        if self.regions:
            return list(self.regions)
        ec2_client = self._client(acct, "ec2", acct.session.region_name or "us-east-1")
        found = ec2_client.describe_regions(
            Filters=[{"Name": "opt-in-status", "Values": ["opt-in-not-required", "opted-in"]}]
        )["Regions"]
        return sorted(r["RegionName"] for r in found if in_partition(r["RegionName"], acct.partition))

    def _client(self, acct: _Account, service: str, region: str) -> Client:
        key = (acct.label, service, region)
        with self._lock:  # a boto3 session is not thread-safe; its clients are
            client = self._clients.get(key)
            if client is None:
                endpoint = self.endpoint_urls.get(region)
                client = acct.session.client(service, region_name=region, config=self.config, endpoint_url=endpoint)
                client._cmdb_page_size = self.page_size  # read by base.items()
                self._clients[key] = client
            return client

    # --- the sweep ----------------------------------------------------------
    def sweep(self) -> Iterator[Event]:
        for found in self._accounts():
            if isinstance(found, tuple):
                problem, scopes = found
                yield problem
                yield from scopes
                continue
            yield from self._sweep_account(found)

    def _sweep_account(self, acct: _Account) -> Iterator[Event]:
        index = Index()
        started = time.monotonic()
        log.info("aws: sweeping account %s (%s)", acct.account, acct.label)
        global_place = Place(acct.partition, acct.account, GLOBAL)
        global_sweep = _Sweep(global_place)
        global_ctx = Context(global_place, index, lambda service, region: self._client(acct, service, region))
        yield from self._run_units(global_ctx, global_sweep, GLOBAL_FIRST)
        try:
            regions = self._region_names(acct)
        except (ClientError, BotoCoreError) as exc:
            reason = f"cannot list the enabled regions: {why(exc)}"
            yield Problem(f"aws:{acct.account}/ec2:DescribeRegions", reason)
            global_sweep.failures.append(reason)
            regions = []
        # regional units link to what global ones found (functions to buckets): when those could
        # not be read, links that were there may be missing, so nothing may go stale for it
        unknown = [f"{f.split(' ', 1)[0]} failed, so links to what it lists are not known"
                   for f in global_sweep.failures if f.split(" ", 1)[0] in _INDEXED_GLOBAL]
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="cmdb-aws") as pool:
            futures: list[Future[_Sweep]] = [
                pool.submit(self._sweep_region, acct, index, region) for region in regions
            ]
            for future in futures:  # in submission order: a stable order of batches
                sweep = future.result()
                sweep.failures.extend(unknown)
                yield from sweep.events
                yield sweep.done()
                if sweep.failures:  # CloudFront origins and DNS records may point into it
                    global_sweep.failures.append(f"region {sweep.place.region} incomplete, links into it not known")
        yield from self._run_units(global_ctx, global_sweep, GLOBAL_LAST)
        yield global_sweep.done()
        log.info("aws: account %s swept in %.1fs (%d regions)", acct.account, time.monotonic() - started, len(regions))

    def _sweep_region(self, acct: _Account, index: Index, region: str) -> _Sweep:
        place = Place(acct.partition, acct.account, region)
        sweep = _Sweep(place)
        ctx = Context(place, index, lambda service, where: self._client(acct, service, where))
        sweep.events.extend(self._run_units(ctx, sweep, REGIONAL))
        return sweep

    def _run_units(self, ctx: Context, sweep: _Sweep, units: list[UnitSpec]) -> Iterator[Event]:
        for service, name, unit in units:
            where = f"{ctx.place.scope}/{service}:{name}"
            out = Out(ctx.place, self.tag_map)
            started = time.monotonic()
            endpoint = ""
            try:
                endpoint = str(ctx.client(service).meta.endpoint_url)
                if endpoint in self._unreachable:
                    raise EndpointConnectionError(endpoint_url=endpoint)
                unit(ctx, out)
            except (ClientError, BotoCoreError) as exc:
                if isinstance(exc, _UNREACHABLE) and endpoint:
                    self._unreachable.add(endpoint)
                reason = why(exc)
                log.warning("aws: %s failed: %s", where, reason)
                sweep.failures.append(f"{service}:{name} {reason}")
                yield Problem(where, reason)
                continue
            except (KeyError, TypeError, ValueError) as exc:  # a reply not shaped as documented
                reason = f"unexpected reply: {type(exc).__name__}: {exc}"
                log.warning("aws: %s failed: %s", where, reason)
                sweep.failures.append(f"{service}:{name} {reason}")
                yield Problem(where, reason)
                continue
            for what, cause, ci_id in out.failures:
                log.warning("aws: %s: %s: %s", where, what, cause)
                sweep.failures.append(f"{service}:{name} {what}: {cause}")
                yield Problem(f"{where}/{what}", cause, ci_id)
            elapsed = time.monotonic() - started
            self.timings[(ctx.place.scope, f"{service}:{name}")] = elapsed
            log.info("aws: %s: %d CIs, %d relationships in %.2fs", where, len(out.cis), len(out.rels), elapsed)
            if self.on_progress is not None:
                self.on_progress(ctx.place.scope, f"{service}:{name}", len(out.cis), elapsed)
            for start in range(0, max(len(out.cis), len(out.rels)), BATCH_SIZE):
                yield Batch(
                    ctx.place.scope,
                    out.cis[start : start + BATCH_SIZE],
                    out.rels[start : start + BATCH_SIZE],
                )
