"""Failure that respects redundancy: which CIs go down, which only lose redundancy.

How failure travels along an edge ``A -> B`` (A needs B) is the relationship
type's ``impact`` in the vocabulary:

- ``all`` (DEPENDS_ON, RUNS_ON, CONTAINED_IN, SECURED_BY): B down takes A down.
- ``any`` (ROUTES_TO, COMPOSED_OF): A's targets of that type are alternatives;
  A goes down only when every one of them is down (a load balancer with three
  healthy targets survives one), otherwise it is *degraded*.
- ``none`` (MEMBER_OF, OWNED_BY, COVERED_BY): nothing travels.

A CI upstream of a failure that does not go down has lost some redundancy and
is *degraded*. The evaluation is the least fixpoint of these rules (a worklist
where each CI goes down at most once and each edge fails at most once), so
cycles terminate and a ring of mutual alternatives does not take itself down.
"""

from __future__ import annotations

import logging
import operator
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cmdb.errors import LimitExceeded, NotFound
from cmdb.impact.graph import GraphLike, GraphView, Reached, as_view, bfs, impact_types, path_to
from cmdb.model import Relationship, RelKey

__all__ = [
    "MAX_DEPTH",
    "Affected",
    "FailureImpact",
    "State",
    "failure_impact",
    "propagate",
]

log = logging.getLogger(__name__)

_rel_order = operator.attrgetter("from_id", "type", "to_id")

State = Literal["down", "degraded", "unaffected"]

MAX_DEPTH = 20
"""The deepest walk any impact function accepts."""


def check_bounds(max_depth: int, limit: int) -> None:
    if not 0 <= max_depth <= MAX_DEPTH:
        raise LimitExceeded(f"depth {max_depth} is outside 0..{MAX_DEPTH}")
    if not 1 <= limit <= 1_000_000:
        raise LimitExceeded(f"limit {limit} is outside 1..1000000")


@dataclass(frozen=True, slots=True)
class Affected:
    """One CI a failure reaches, and how.

    ``path`` runs from a failing CI up to this one, edge by edge as stored
    (dependent -> dependency): for a CI that is down, the edges the failure
    travelled along; otherwise the shortest path.
    """

    ci_id: str
    state: State
    depth: int
    path: tuple[Relationship, ...]
    reason: str


@dataclass(slots=True)
class FailureImpact:
    """What a set of failures does upstream, CI by CI (nearest first, then by id)."""

    failing: tuple[str, ...]
    degraded_inputs: tuple[str, ...]
    removed_relationships: tuple[RelKey, ...]
    affected: dict[str, Affected] = field(default_factory=dict)
    truncated: bool = False

    def state(self, ci_id: str) -> State:
        found = self.affected.get(ci_id)
        return found.state if found is not None else "unaffected"

    @property
    def down(self) -> list[str]:
        return [a.ci_id for a in self.affected.values() if a.state == "down"]

    @property
    def degraded(self) -> list[str]:
        return [a.ci_id for a in self.affected.values() if a.state == "degraded"]


def propagate(
    in_edges: dict[str, list[Relationship]],
    group_size: dict[tuple[str, str], int],
    any_types: frozenset[str],
    seeds: Iterable[str],
    failed: Iterable[Relationship] = (),
    stop_at: str | None = None,
    forced: Iterable[Relationship] = (),
) -> tuple[dict[str, Relationship | None], dict[tuple[str, str], int]]:
    """The CIs that go down, each with the edge that took it down (None for a seed).

    ``in_edges`` maps a CI to the edges ending at it (its dependents' edges);
    ``group_size`` maps (CI, any-of type) to how many targets of that type it
    has. ``failed`` edges fail on their own (a removed relationship). Returns
    also how many alternatives of each any-of group failed. Stops early once
    ``stop_at`` is down. ``forced`` edges take their dependent down outright
    (an any-of group whose remaining alternatives only lead back into the failure).
    """
    down: dict[str, Relationship | None] = {s: None for s in seeds}
    for rel in forced:
        down.setdefault(rel.from_id, rel)
    lost: dict[tuple[str, str], int] = {}
    failed_keys: set[RelKey] = set()
    queue: deque[str] = deque(down)

    def fail(rel: Relationship) -> bool:
        key = (rel.from_id, rel.type, rel.to_id)
        if key in failed_keys:
            return False
        failed_keys.add(key)
        source = rel.from_id
        if source in down:
            return False
        if rel.type in any_types:
            group = (source, rel.type)
            lost[group] = lost.get(group, 0) + 1
            if lost[group] < group_size.get(group, 1):
                return False
        down[source] = rel
        queue.append(source)
        return source == stop_at

    for rel in failed:
        if fail(rel):
            return down, lost
    while queue:
        for rel in in_edges.get(queue.popleft(), ()):
            if fail(rel):
                return down, lost
    return down, lost


def _cause_path(ci_id: str, down: dict[str, Relationship | None]) -> tuple[Relationship, ...]:
    """The edges the failure travelled to ``ci_id``, from where it began; empty when they go round a ring."""
    steps: list[Relationship] = []
    seen: set[str] = set()
    node = ci_id
    while (edge := down.get(node)) is not None:
        if node in seen:
            return ()
        seen.add(node)
        steps.append(edge)
        node = edge.to_id
    steps.reverse()
    return tuple(steps)


def failure_impact(
    graph: GraphLike,
    failing: Sequence[str] = (),
    *,
    degraded: Sequence[str] = (),
    removed_relationships: Sequence[RelKey] = (),
    types: Sequence[str] | None = None,
    max_depth: int = 8,
    limit: int = 10_000,
) -> FailureImpact:
    """What fails upstream when ``failing`` CIs are down, ``degraded`` ones are impaired
    and ``removed_relationships`` are gone.

    Walks towards dependents over impact-carrying relationship types (within
    ``types`` when given), one batched edge query per level, up to
    ``max_depth`` and ``limit`` CIs (``truncated`` says when the limit cut it).
    """
    check_bounds(max_depth, limit)
    view: GraphView = as_view(graph)
    carrying = impact_types(("all", "any"), types)
    any_types = frozenset(impact_types(("any",), types))
    seeds = sorted(set(failing))
    impaired = sorted(set(degraded) - set(seeds))
    removed = tuple(sorted(set(removed_relationships)))
    starts = sorted({*seeds, *impaired, *(k[0] for k in removed)})
    missing = sorted(set(starts) - view.known_ids(starts))
    if missing:
        raise NotFound(
            f"no CI with id {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    result = FailureImpact(tuple(seeds), tuple(impaired), removed)
    if not starts:
        return result

    in_edges: dict[str, list[Relationship]] = {}

    def dependents(frontier: Sequence[str]) -> Iterable[tuple[str, Relationship, str]]:
        for rel in view.edges(frontier, "in", carrying):
            in_edges.setdefault(rel.to_id, []).append(rel)
            yield rel.to_id, rel, rel.from_id

    reached, result.truncated = bfs(dependents, starts, max_depth, limit)
    for edges in in_edges.values():
        edges.sort(key=_rel_order)

    # Removed relationships: the edges themselves, as the store holds them.
    failed_edges: list[Relationship] = []
    if removed:
        present = {r.key: r for r in view.edges(sorted({k[0] for k in removed}), "out", carrying)}
        for key in removed:
            if key not in present:
                raise NotFound(f"no impact-carrying relationship {key[0]} -{key[1]}-> {key[2]}")
            failed_edges.append(present[key])

    # How many alternatives each any-of group has (targets outside the walk count as healthy).
    grouped = sorted(
        {r.from_id for edges in in_edges.values() for r in edges if r.type in any_types}
        | {r.from_id for r in failed_edges if r.type in any_types}
    )
    group_size: dict[tuple[str, str], int] = {}
    if grouped and any_types:
        for rel in view.edges(grouped, "out", sorted(any_types)):
            group = (rel.from_id, rel.type)
            group_size[group] = group_size.get(group, 0) + 1

    down, lost = propagate(in_edges, group_size, any_types, seeds, failed_edges)
    forced: dict[str, Relationship] = {}
    while ungrounded := _ungrounded(reached, in_edges, group_size, any_types, down):
        forced.update(ungrounded)
        down, lost = propagate(in_edges, group_size, any_types, seeds, failed_edges, forced=forced.values())
    result.affected = _describe(
        reached, down, lost, group_size, set(impaired), {r.from_id: r for r in failed_edges}, set(forced)
    )
    log.debug(
        "failure of %d CIs: %d down, %d degraded%s",
        len(seeds),
        len(result.down),
        len(result.degraded),
        " (truncated)" if result.truncated else "",
    )
    return result


def _ungrounded(
    reached: Reached,
    in_edges: dict[str, list[Relationship]],
    group_size: dict[tuple[str, str], int],
    any_types: frozenset[str],
    down: dict[str, Relationship | None],
) -> dict[str, Relationship]:
    """CIs not down whose every remaining alternative of some any-of group leads back into the failure.

    A CI is grounded when each of its any-of groups keeps an alternative outside
    the walked region (untouched by the failure) or one that is itself grounded;
    all-of edges inside the region are taken optimistically (a cycle of needs
    does not fail itself). What is left ungrounded is down: its redundancy is a
    ring of CIs that only reach each other (x routes to y routes to x). Returns,
    for each, the edge to the alternative it last had.
    """
    inside: dict[tuple[str, str], list[Relationship]] = {}
    for target, edges in in_edges.items():
        if target not in reached:
            continue
        for rel in edges:
            if rel.type in any_types and rel.from_id in reached and rel.from_id not in down:
                inside.setdefault((rel.from_id, rel.type), []).append(rel)
    if not inside:
        return {}
    waiting: dict[str, set[tuple[str, str]]] = {}  # CI -> its groups not yet satisfied
    for (ci_id, rel_type), edges in inside.items():
        if group_size.get((ci_id, rel_type), 0) > len(edges):
            continue  # an alternative outside the region is healthy
        waiting.setdefault(ci_id, set()).add((ci_id, rel_type))
    if not waiting:
        return {}
    grounded: set[str] = {c for c in reached if c not in down and c not in waiting}
    queue = deque(sorted(grounded))
    while queue:
        node = queue.popleft()
        for rel in in_edges.get(node, ()):
            groups = waiting.get(rel.from_id)
            if groups is None or (rel.from_id, rel.type) not in groups:
                continue
            groups.discard((rel.from_id, rel.type))
            if not groups:
                del waiting[rel.from_id]
                grounded.add(rel.from_id)
                queue.append(rel.from_id)
    lost: dict[str, Relationship] = {}
    for ci_id in sorted(waiting):
        group = min(waiting[ci_id])
        lost[ci_id] = min(inside[group], key=lambda r: r.key)
    return lost


def _describe(
    reached: Reached,
    down: dict[str, Relationship | None],
    lost: dict[tuple[str, str], int],
    group_size: dict[tuple[str, str], int],
    impaired: set[str],
    removed_from: dict[str, Relationship],
    forced: set[str],
) -> dict[str, Affected]:
    lost_by_ci: dict[str, list[str]] = {}
    for (ci_id, rel_type), count in sorted(lost.items()):
        total = group_size.get((ci_id, rel_type), count)
        lost_by_ci.setdefault(ci_id, []).append(f"{count} of {total} {rel_type} targets down")
    affected: list[Affected] = []
    for ci_id, (depth, _, parent) in reached.items():
        if ci_id in down:
            cause = down[ci_id]
            if cause is None:
                affected.append(Affected(ci_id, "down", 0, (), "failing"))
                continue
            path = _cause_path(ci_id, down) or path_to(ci_id, reached)
            if ci_id in forced:
                reason = f"every remaining {cause.type} alternative leads back into the failure"
            elif (ci_id, cause.type) in group_size:
                total = group_size.get((ci_id, cause.type), 1)
                reason = f"all {total} {cause.type} targets are down"
            elif ci_id in removed_from and removed_from[ci_id].key == cause.key:
                reason = f"lost {cause.type} -> {cause.to_id} (removed)"
            else:
                reason = f"needs {cause.to_id} ({cause.type})"
            affected.append(Affected(ci_id, "down", len(path), path, reason))
        elif ci_id in impaired:
            affected.append(Affected(ci_id, "degraded", 0, (), "degraded"))
        else:
            if ci_id in lost_by_ci:
                reason = "; ".join(lost_by_ci[ci_id])
            elif ci_id in removed_from:
                rel = removed_from[ci_id]
                reason = f"lost {rel.type} -> {rel.to_id} (removed)"
            elif parent is not None:
                reason = f"needs {parent}, which is {'down' if parent in down else 'degraded'}"
            else:
                reason = "lost redundancy"
            affected.append(Affected(ci_id, "degraded", depth, path_to(ci_id, reached), reason))
    affected.sort(key=lambda a: (a.depth, a.ci_id))
    return {a.ci_id: a for a in affected}
