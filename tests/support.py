"""Small real helpers shared by tests: a settable clock and a connector whose sweep is given as data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

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
