"""Small real helpers shared by tests: a settable clock and a connector whose sweep is given as data."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cmdb.connectors.base import Batch, Event, Problem, ScopeDone
from cmdb.model import CI, Relationship


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class ListConnector:
    """A source whose sweep is given as data: what a real connector yields, nothing faked below it."""

    def __init__(self, source: str, scope: str, cis: list[CI], rels: list[Relationship] | None = None,
                 complete: bool = True) -> None:
        self.source = source
        self.scope = scope
        self.cis = cis
        self.rels = rels or []
        self.complete = complete

    def sweep(self) -> Iterator[Event]:
        yield Batch(self.scope, [ci.copy(tags=dict(ci.tags), attributes=dict(ci.attributes)) for ci in self.cis],
                    [r.copy() for r in self.rels])
        if not self.complete:
            yield Problem("ec2:DescribeVolumes eu-west-1", "AccessDenied")
        yield ScopeDone(self.scope, self.complete, "" if self.complete else "AccessDenied on DescribeVolumes")


def moto_post(url: str, path: str, body: bytes = b"") -> None:
    """POST to moto's own API (reset, reset-auth)."""
    request = urllib.request.Request(f"{url}{path}", data=body, method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        reply.read()


def reset_moto(url: str) -> None:
    moto_post(url, "/moto-api/reset-auth", b"inf")
    moto_post(url, "/moto-api/reset")


def point_boto3_at(url: str, env: pytest.MonkeyPatch, folder: Path, region: str = "eu-west-1") -> None:
    """The environment of a machine whose AWS is the moto server: no profile, dummy keys.

    Setting the environment is how users configure boto3 too; nothing in the SDK is patched.
    """
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "CMDB_AWS_TAG_MAP"):
        env.delenv(name, raising=False)
    env.setenv("AWS_ENDPOINT_URL", url)
    env.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY000001")
    env.setenv("AWS_SECRET_ACCESS_KEY", "example/secret/access/key/0000000000000")
    env.setenv("AWS_DEFAULT_REGION", region)
    env.setenv("AWS_CONFIG_FILE", str(folder / "aws-config"))
    env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "aws-credentials"))
    env.setenv("AWS_EC2_METADATA_DISABLED", "true")
