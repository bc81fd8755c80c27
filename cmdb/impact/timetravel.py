"""The blast radius as it was, and how it changed between two times.

Reads the graph as of a time through ``cmdb.history`` (an ``AsOfView``), so a
relationship added after that time is not walked and one retired since is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cmdb.errors import NotFound
from cmdb.impact.graph import GraphLike, StoreView, as_view
from cmdb.impact.radius import BlastRadius, blast_radius
from cmdb.model import now
from cmdb.store.base import Traversal

__all__ = ["RadiusDiff", "blast_radius_diff"]


@dataclass(slots=True)
class RadiusDiff:
    """What joined and left the blast radius of ``ci_ids`` between ``before`` and ``after``."""

    ci_ids: tuple[str, ...]
    before: datetime
    after: datetime
    added: list[str]
    removed: list[str]
    services_added: list[str]
    services_removed: list[str]
    radius_before: BlastRadius
    radius_after: BlastRadius

    def summary(self) -> str:
        subject = ", ".join(self.ci_ids)
        more = len(self.services_added) - len(self.services_removed)
        trend = f"{more} more" if more >= 0 else f"{-more} fewer"
        return (
            f"since {self.before:%Y-%m-%d %H:%M}, {trend} services depend on {subject} "
            f"({len(self.services_added)} joined, {len(self.services_removed)} left; "
            f"{len(self.added)} CIs joined the blast radius, {len(self.removed)} left)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ci_ids": list(self.ci_ids),
            "before": self.before.isoformat(),
            "after": self.after.isoformat(),
            "added": self.added,
            "removed": self.removed,
            "services_added": self.services_added,
            "services_removed": self.services_removed,
            "summary": self.summary(),
        }


def blast_radius_diff(
    graph: GraphLike,
    ci_ids: str | Sequence[str],
    before: datetime,
    after: datetime | None = None,
    *,
    max_depth: int = 6,
    types: Sequence[str] | None = None,
    limit: int = 10_000,
) -> RadiusDiff:
    """The blast radius at ``before`` against the one at ``after`` (default: now, the live graph)."""
    view = as_view(graph)
    live = isinstance(view, StoreView) and after is None
    try:
        then = blast_radius(view, ci_ids, max_depth=max_depth, types=types, limit=limit, details=False, as_of=before)
    except NotFound:  # the CIs did not exist yet: everything that depends on them now is new
        ids = tuple(sorted({ci_ids} if isinstance(ci_ids, str) else set(ci_ids)))
        then = BlastRadius(
            ids, "in", max_depth, tuple(sorted(types)) if types else None, Traversal([], []), [], [], False, before
        )
    later = blast_radius(
        view, ci_ids, max_depth=max_depth, types=types, limit=limit, details=False, as_of=None if live else after
    )
    old, new = set(then.ids), set(later.ids)
    old_services = {s.ci_id for s in then.services}
    new_services = {s.ci_id for s in later.services}
    return RadiusDiff(
        ci_ids=then.start_ids,
        before=before,
        after=after or now(),
        added=sorted(new - old),
        removed=sorted(old - new),
        services_added=sorted(new_services - old_services),
        services_removed=sorted(old_services - new_services),
        radius_before=then,
        radius_after=later,
    )
