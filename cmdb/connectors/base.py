"""What a connector is: something that sweeps one or more scopes of a source.

A connector only fetches and transforms. It yields, in any order:

- ``Batch``: CIs and relationships seen in one scope;
- ``Problem``: one record it could not read (where and why) — the rest goes on;
- ``ScopeDone``: the end of one scope's sweep, saying whether it was complete.

Only a complete sweep lets the sync engine mark the scope's unseen CIs stale,
so a connector must say ``complete=False`` whenever anything was not read
(access denied, throttled past retries, a malformed page).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from cmdb.model import CI, Relationship

__all__ = ["Batch", "Connector", "Event", "Problem", "ScopeDone"]


@dataclass(slots=True)
class Batch:
    scope: str
    cis: list[CI] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Problem:
    """A record or part of a sweep that could not be read."""

    location: str  # file:line, API call and page, region/service
    reason: str
    ci_id: str = ""

    def __str__(self) -> str:
        subject = f" ({self.ci_id})" if self.ci_id else ""
        return f"{self.location}{subject}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ScopeDone:
    scope: str
    complete: bool
    reason: str = ""  # why it was not complete


Event = Batch | Problem | ScopeDone


@runtime_checkable
class Connector(Protocol):
    #: the source name recorded as provenance ("aws", "kubernetes", "file")
    source: str

    def sweep(self) -> Iterator[Event]: ...
