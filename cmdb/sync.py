"""The sync engine: the one place that turns what sources saw into the graph.

For each run it reconciles identities (aliases), diffs each observation against
what its source reported last, writes what changed with a change record for
every create, attribute change, relationship change and lifecycle transition,
and — only for scopes whose sweep was complete — marks what was not seen stale.
A run is one store transaction: a crash leaves the last committed state.
Nothing is ever deleted; stale CIs past the grace period become retired.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from cmdb.connectors.base import Batch, Connector, Event, Problem, ScopeDone
from cmdb.errors import CmdbError, NotFound, ValidationError
from cmdb.model import (
    CI,
    COMMON_FIELDS,
    ChangeKind,
    ChangeRecord,
    Relationship,
    RelKey,
    SyncRun,
    now,
    validate_ci,
    validate_relationship,
)
from cmdb.store.base import Store

__all__ = ["INFERENCE", "Inferrer", "Progress", "SyncEngine", "SyncReport"]

log = logging.getLogger(__name__)

Inferrer = Callable[[Store], Iterable[Relationship]]
"""Infers relationships no single source states, from the whole store (after a run's writes)."""

INFERENCE = "inference"  # source and scope of inferred relationships

Progress = Callable[[str, int, int], None]
"""Called after each batch with (scope, CIs in the batch, relationships in it)."""

# States a person or a rule sets; a source saying "active" does not undo them.
_KEPT_STATES = frozenset({"optimise", "disposed", "planned"})
_GONE_STATES = frozenset({"stale", "retired"})
_MERGED_FIELDS = tuple(f for f in COMMON_FIELDS if f != "lifecycle_state")


@dataclass(slots=True)
class SyncReport:
    """What one run did, for the CLI and callers."""

    run: SyncRun
    problems: list[Problem] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return self.run.counts


def _fingerprint(values: Any) -> str:
    return hashlib.blake2b(orjson.dumps(values, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()


def _ci_fingerprint(ci: CI) -> str:
    return _fingerprint(
        [ci.type, *(getattr(ci, f) for f in COMMON_FIELDS), ci.tags, ci.attributes, sorted(ci.aliases)]
    )


def _rel_fingerprint(rel: Relationship) -> str:
    return _fingerprint([rel.source, rel.scope, [(e.field, e.value) for e in rel.evidence], rel.confidence, rel.inferred])


def new_sync_id(source: str, at: datetime) -> str:
    return f"{source}-{at.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


class _Run:
    """The state of one run while it is applied (inside the store transaction)."""

    def __init__(self, engine: SyncEngine, source: str, actor: str) -> None:
        self.engine = engine
        self.store = engine.store
        self.source = source
        self.at = engine.clock()
        self.sync_id = new_sync_id(source, self.at)
        self.run = SyncRun(self.sync_id, source, self.at, actor=actor)
        self.counts: dict[str, int] = dict.fromkeys(
            (
                "seen",
                "created",
                "updated",
                "unchanged",
                "restored",
                "stale",
                "retired",
                "relationships_added",
                "relationships_updated",
                "relationships_removed",
                "errors",
            ),
            0,
        )
        self.problems: list[Problem] = []
        self.changes: list[ChangeRecord] = []
        self.renamed: dict[str, str] = {}  # incoming id -> id of the CI it was reconciled with
        self.deferred: list[tuple[str, Relationship]] = []  # relationships whose ends were not there yet

    # --- bookkeeping --------------------------------------------------------
    def change(self, kind: ChangeKind, ci_id: str, scope: str, **fields: Any) -> None:
        self.changes.append(
            ChangeRecord(
                seq=0,
                at=self.at,
                kind=kind,
                ci_id=ci_id,
                sync_id=self.sync_id,
                actor=self.run.actor,
                scope=scope,
                **fields,
            )
        )

    def problem(self, problem: Problem) -> None:
        self.problems.append(problem)
        self.counts["errors"] += 1
        log.debug("%s", problem)

    def flush_changes(self) -> None:
        if self.changes:
            self.store.append_changes(self.changes)
            self.changes = []

    # --- CIs ----------------------------------------------------------------
    def apply(self, batch: Batch) -> None:
        incoming = self.reconcile(self.valid_cis(batch))
        self.apply_cis(batch.scope, incoming)
        self.apply_relationships(batch.scope, batch.relationships)
        self.flush_changes()

    def valid_cis(self, batch: Batch) -> list[CI]:
        valid: list[CI] = []
        for ci in batch.cis:
            if not ci.scope:
                ci.scope = batch.scope
            try:
                validate_ci(ci)
            except ValidationError as exc:
                self.problem(Problem(f"{self.source}:{batch.scope}", str(exc), getattr(ci, "id", "")))
                continue
            valid.append(ci)
        return valid

    def reconcile(self, cis: list[CI]) -> dict[str, CI]:
        """Fold CIs known under another name (an alias of a stored CI) into that CI."""
        by_id: dict[str, CI] = {}
        names = [name for ci in cis for name in (ci.id, *ci.aliases)]
        owners = self.store.resolve_aliases(names) if names else {}
        for ci in cis:
            target = next(
                (owners[n] for n in (ci.id, *ci.aliases) if n in owners and owners[n] != ci.id), None
            )
            if target is not None and owners.get(ci.id) != target and self._reports(target):
                # this source reports the target itself, under its own id: a different CI that shares
                # a name (a private DNS name in another account, a table name in another region)
                target = None
            if target is not None and not self.store.known_ids([ci.id]):
                self.renamed[ci.id] = target
                ci.aliases = tuple(dict.fromkeys((*ci.aliases, ci.id)))
                ci.id = target
            if ci.id in by_id:  # the same CI twice in one batch: the later one wins field by field
                ci = _merge_incoming(by_id[ci.id], ci)
            by_id[ci.id] = ci
        return by_id

    def _reports(self, ci_id: str) -> bool:
        """Whether this run's source reports ``ci_id`` as a CI of its own."""
        return ci_id in self.store.source_states([ci_id], self.source)

    def apply_cis(self, scope: str, incoming: dict[str, CI]) -> None:
        if not incoming:
            return
        ids = list(incoming)
        self.counts["seen"] += len(ids)
        states = self.store.source_states(ids, self.source)
        fingerprints = {ci_id: _ci_fingerprint(ci) for ci_id, ci in incoming.items()}
        unchanged = [
            ci_id
            for ci_id in ids
            if ci_id in states
            and states[ci_id].fingerprint == fingerprints[ci_id]
            and states[ci_id].lifecycle_state not in _GONE_STATES
        ]
        if unchanged:
            self.store.touch(unchanged, self.source, self.at)
            self.counts["unchanged"] += len(unchanged)
        same = set(unchanged)
        todo = [ci_id for ci_id in ids if ci_id not in same]
        if not todo:
            return
        stored = self.store.get_cis(todo)
        written: list[CI] = []
        for ci_id in todo:
            before = stored.get(ci_id)
            if before is None:
                written.append(self.create(incoming[ci_id]))
            else:
                written.append(self.update(before, incoming[ci_id]))
        self.store.put_cis(written)
        self.store.put_source_states(self.source, scope, {ci_id: (fingerprints[ci_id], self.at) for ci_id in todo})

    def create(self, ci: CI) -> CI:
        ci.sources = (self.source,)
        ci.provenance = {
            name: self.source for name in (*_MERGED_FIELDS, "lifecycle_state") if getattr(ci, name)
        }
        ci.first_seen = ci.last_seen = self.at
        ci.stale_since = None
        self.counts["created"] += 1
        self.change("ci.created", ci.id, ci.scope, after={"type": ci.type, "name": ci.name})
        return ci

    def update(self, before: CI, seen: CI) -> CI:
        after = before.copy(tags=dict(before.tags), attributes=dict(before.attributes), provenance=dict(before.provenance))
        changed = False

        def setting(name: str, old: Any, new: Any) -> None:
            nonlocal changed
            if old != new:
                changed = True
                self.change("ci.updated", after.id, after.scope or seen.scope, field=name, before=old, after=new)

        if seen.type != before.type:
            setting("type", before.type, seen.type)
            after.type = seen.type
        for name in _MERGED_FIELDS:
            new, old = getattr(seen, name), getattr(before, name)
            if new:
                if new != old:
                    setting(name, old, new)
                    setattr(after, name, new)
                after.provenance[name] = self.source
            elif old and before.provenance.get(name) == self.source:  # this source cleared what it had set
                setting(name, old, new)
                setattr(after, name, new)
                after.provenance.pop(name, None)
        for label, old_map, new_map in (("tags", before.tags, seen.tags), ("attributes", before.attributes, seen.attributes)):
            target = after.tags if label == "tags" else after.attributes
            for key, value in new_map.items():
                if old_map.get(key) != value:
                    setting(f"{label}.{key}", old_map.get(key), value)
                    target[key] = value
                after.provenance[f"{label}.{key}"] = self.source
            for key in list(old_map):
                if key not in new_map and before.provenance.get(f"{label}.{key}") == self.source:
                    setting(f"{label}.{key}", old_map[key], None)
                    del target[key]
                    after.provenance.pop(f"{label}.{key}", None)
        after.aliases = tuple(dict.fromkeys((*before.aliases, *seen.aliases)))
        after.sources = tuple(dict.fromkeys((*before.sources, self.source)))
        state = self.next_state(before.lifecycle_state, seen.lifecycle_state)
        if state != before.lifecycle_state:
            self.change("ci.lifecycle", after.id, after.scope, field="lifecycle_state", before=before.lifecycle_state, after=state)
            if before.lifecycle_state in _GONE_STATES:
                self.counts["restored"] += 1
            after.lifecycle_state = state
            after.stale_since = None
            after.provenance["lifecycle_state"] = self.source
            changed = True
        after.last_seen = self.at
        if changed:
            self.counts["updated"] += 1
        else:
            self.counts["unchanged"] += 1
        return after

    @staticmethod
    def next_state(current: str, reported: str) -> str:
        if current in _GONE_STATES:
            return reported if reported not in _GONE_STATES else current
        if current in _KEPT_STATES and reported == "active" and current != "planned":
            return current
        return reported

    # --- relationships ------------------------------------------------------
    def apply_relationships(self, scope: str, rels: Iterable[Relationship], *, final: bool = False) -> None:
        ready: dict[RelKey, Relationship] = {}
        candidates: list[Relationship] = []
        for rel in rels:
            rel.from_id = self.renamed.get(rel.from_id, rel.from_id)
            rel.to_id = self.renamed.get(rel.to_id, rel.to_id)
            rel.source = rel.source or self.source
            rel.scope = rel.scope or scope
            try:
                validate_relationship(rel)
            except ValidationError as exc:
                self.problem(Problem(f"{self.source}:{scope}", str(exc), rel.from_id))
                continue
            candidates.append(rel)
        known = self.store.known_ids([end for rel in candidates for end in (rel.from_id, rel.to_id)])
        for rel in candidates:
            if rel.from_id in known and rel.to_id in known:
                ready[rel.key] = rel
            elif final:
                missing = rel.to_id if rel.from_id in known else rel.from_id
                evidence = "; ".join(str(e) for e in rel.evidence)
                self.problem(
                    Problem(
                        f"{self.source}:{scope}",
                        f"relationship {rel.type} names unknown CI {missing}" + (f" ({evidence})" if evidence else ""),
                        rel.from_id,
                    )
                )
            else:
                self.deferred.append((scope, rel))
        if ready:
            self.write_relationships(list(ready.values()))

    def write_relationships(self, rels: list[Relationship]) -> None:
        existing = self.store.rel_fingerprints([rel.key for rel in rels])
        fingerprints = [_rel_fingerprint(rel) for rel in rels]
        touch: list[RelKey] = []
        todo: list[tuple[Relationship, str]] = []
        for rel, fingerprint in zip(rels, fingerprints, strict=True):
            found = existing.get(rel.key)
            if found is None:
                todo.append((rel, fingerprint))
            elif found[2] == "rejected":
                continue  # a person rejected this link; it stays rejected
            elif found[0] == fingerprint and found[1] == "active":
                touch.append(rel.key)
            else:
                todo.append((rel, fingerprint))
        if touch:
            self.store.touch_relationships(touch, self.at)
        if not todo:
            return
        stored = self.store.get_relationships([rel.key for rel, _ in todo if rel.key in existing])
        written: list[Relationship] = []
        for rel, _ in todo:
            before = stored.get(rel.key)
            rel.last_seen = self.at
            rel.lifecycle_state = "active"
            rel.stale_since = None
            if before is None:
                rel.first_seen = self.at
                self.counts["relationships_added"] += 1
                self.rel_change("rel.added", rel)
            else:
                rel.first_seen = before.first_seen
                rel.review = before.review
                if before.lifecycle_state != "active":
                    self.rel_change("rel.restored", rel, "lifecycle_state", before.lifecycle_state, "active")
                    self.counts["relationships_added"] += 1
                for name in ("source", "confidence", "evidence"):
                    old, new = getattr(before, name), getattr(rel, name)
                    if old != new:
                        if name == "evidence":
                            old, new = [str(e) for e in old], [str(e) for e in new]
                        self.rel_change("rel.updated", rel, name, old, new)
                if before.lifecycle_state == "active":
                    self.counts["relationships_updated"] += 1
            written.append(rel)
        self.store.put_relationships(written, [fingerprint for _, fingerprint in todo])

    def rel_change(self, kind: ChangeKind, rel: Relationship, name: str = "", before: Any = None, after: Any = None) -> None:
        self.change(kind, rel.from_id, rel.scope, rel_type=rel.type, to_id=rel.to_id, field=name, before=before, after=after)

    # --- end of run ---------------------------------------------------------
    def finish_deferred(self) -> None:
        by_scope: dict[str, list[Relationship]] = {}
        for scope, rel in self.deferred:
            by_scope.setdefault(scope, []).append(rel)
        self.deferred = []
        for scope, rels in by_scope.items():
            self.apply_relationships(scope, rels, final=True)
        self.flush_changes()

    def mark_unseen(self, scope: str) -> None:
        """A complete sweep of ``scope``: what its source no longer reports is stale."""
        gone = self.store.unseen(scope, self.source, self.at)
        if gone:
            self.store.drop_source(gone, self.source)
            marked: list[CI] = []
            for ci in self.store.get_cis(gone).values():
                ci.sources = tuple(s for s in ci.sources if s != self.source)
                if not ci.sources and ci.lifecycle_state not in (*_GONE_STATES, "disposed"):
                    self.change("ci.lifecycle", ci.id, ci.scope, field="lifecycle_state", before=ci.lifecycle_state, after="stale")
                    ci.lifecycle_state = "stale"
                    ci.stale_since = self.at
                    self.counts["stale"] += 1
                marked.append(ci)
            self.store.put_cis(marked)
        rels = self.store.unseen_relationships(scope, self.source, self.at)
        for rel in rels:
            self.rel_change("rel.removed", rel, "lifecycle_state", "active", "stale")
            rel.lifecycle_state = "stale"
            rel.stale_since = self.at
        if rels:
            self.store.put_relationships(rels, [_rel_fingerprint(rel) for rel in rels])
            self.counts["relationships_removed"] += len(rels)
        self.flush_changes()

    def apply_inferred(self, rels: Iterable[Relationship]) -> None:
        """Write what the inferrer found; inferred links it no longer finds go stale."""
        found: dict[RelKey, Relationship] = {}
        for rel in rels:
            rel.source, rel.scope, rel.inferred = INFERENCE, INFERENCE, True
            found[rel.key] = rel
        known = self.store.known_ids([end for key in found for end in (key[0], key[2])])
        self.write_relationships([r for r in found.values() if r.from_id in known and r.to_id in known])
        gone = self.store.unseen_relationships(INFERENCE, INFERENCE, self.at)
        for rel in gone:
            self.rel_change("rel.removed", rel, "lifecycle_state", "active", "stale")
            rel.lifecycle_state, rel.stale_since = "stale", self.at
        if gone:
            self.store.put_relationships(gone, [_rel_fingerprint(rel) for rel in gone])
            self.counts["relationships_removed"] += len(gone)
        self.flush_changes()

    def retire_overdue(self) -> None:
        cis, rels = self.store.stale_before(self.at - self.engine.grace)
        for ci in cis:
            self.change("ci.lifecycle", ci.id, ci.scope, field="lifecycle_state", before="stale", after="retired")
            ci.lifecycle_state = "retired"
        for rel in rels:
            self.rel_change("rel.removed", rel, "lifecycle_state", "stale", "retired")
            rel.lifecycle_state = "retired"
        self.store.put_cis(cis)
        if rels:
            self.store.put_relationships(rels, [_rel_fingerprint(rel) for rel in rels])
        self.counts["retired"] += len(cis)
        self.flush_changes()


def _merge_incoming(first: CI, second: CI) -> CI:
    merged = first.copy(tags={**first.tags, **second.tags}, attributes={**first.attributes, **second.attributes})
    for name in COMMON_FIELDS:
        if getattr(second, name):
            setattr(merged, name, getattr(second, name))
    merged.aliases = tuple(dict.fromkeys((*first.aliases, *second.aliases)))
    return merged


class SyncEngine:
    """Applies connector sweeps and hand edits to a store.

    ``clock`` is injectable so that tests and replays can say when a run
    happened; ``grace`` is how long a CI stays stale before it is retired.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime] = now,
        grace: timedelta = timedelta(days=7),
        inferrer: Inferrer | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.grace = grace
        self.inferrer = inferrer

    def run(self, connector: Connector, *, actor: str = "", progress: Progress | None = None) -> SyncReport:
        """Sweep ``connector`` into the store as one run (one transaction)."""
        return self.apply_events(connector.source, connector.sweep(), actor=actor or f"sync:{connector.source}", progress=progress)

    def apply_events(
        self,
        source: str,
        events: Iterable[Event],
        *,
        actor: str,
        progress: Progress | None = None,
        mark_stale: bool = True,
    ) -> SyncReport:
        run = _Run(self, source, actor)
        started = time.monotonic()
        log.info("sync %s started (%s)", run.sync_id, source)
        try:
            with self.store.transaction():
                for event in events:
                    if isinstance(event, Batch):
                        run.run.scopes.setdefault(event.scope, False)
                        run.apply(event)
                        if progress is not None:
                            progress(event.scope, len(event.cis), len(event.relationships))
                    elif isinstance(event, ScopeDone):
                        run.run.scopes[event.scope] = event.complete
                        if not event.complete:
                            run.problem(Problem(f"{source}:{event.scope}", f"sweep incomplete: {event.reason}"))
                    elif isinstance(event, Problem):
                        run.problem(event)
                    else:
                        raise TypeError(f"a connector yielded {type(event).__name__}, not a Batch, Problem or ScopeDone")
                run.finish_deferred()
                if self.inferrer is not None and mark_stale:
                    run.apply_inferred(self.inferrer(self.store))
                if mark_stale:
                    for scope, complete in run.run.scopes.items():
                        if complete:
                            run.mark_unseen(scope)
                    run.retire_overdue()
                run.run.finished_at = self.clock()
                run.run.status = "complete" if all(run.run.scopes.values()) and not run.problems else "partial"
                run.run.counts = run.counts
                run.run.errors = [str(p) for p in run.problems[:1000]]
                self.store.save_sync_run(run.run)
        except BaseException as exc:
            log.error("sync %s failed, nothing of it was kept: %s", run.sync_id, exc)
            self._record_failure(run, exc)
            raise
        log.info(
            "sync %s ended in %.1fs: scopes=%s counts=%s",
            run.sync_id,
            time.monotonic() - started,
            ",".join(run.run.scopes),
            run.counts,
        )
        return SyncReport(run.run, run.problems)

    def _record_failure(self, run: _Run, exc: BaseException) -> None:
        run.run.status = "failed"
        run.run.finished_at = self.clock()
        run.run.errors = [f"{type(exc).__name__}: {exc}"]
        run.run.counts = {}
        try:
            with self.store.transaction():
                self.store.save_sync_run(run.run)
        except (CmdbError, OSError):  # the store itself is what failed; the caller hears of exc
            pass

    # --- hand edits (CLI, GraphQL mutations) --------------------------------
    def edit(
        self,
        *,
        actor: str,
        cis: Sequence[CI] = (),
        relationships: Sequence[Relationship] = (),
        scope: str = "manual",
    ) -> SyncReport:
        """Create or update hand-kept CIs and relationships, recorded as ``actor``'s changes."""
        report = self.apply_events(
            "manual", [Batch(scope, list(cis), list(relationships))], actor=actor, mark_stale=False
        )
        if report.problems:
            raise ValidationError("; ".join(str(p) for p in report.problems))
        return report

    def set_fields(self, ci_id: str, *, actor: str, **values: str) -> CI:
        """Set common fields (owner, cost_centre, criticality, lifecycle_state, ...) of one CI."""
        unknown = set(values) - set(COMMON_FIELDS)
        if unknown:
            raise ValidationError(f"cannot set {', '.join(sorted(unknown))}: not a common CI field")
        with self.store.transaction():
            found = self.store.get_cis([ci_id])
            if ci_id not in found:
                raise NotFound(f"no CI with id {ci_id!r}")
            before = found[ci_id]
            after = before.copy(provenance=dict(before.provenance), **values)
            validate_ci(after)
            at = self.clock()
            changes = []
            for name, value in values.items():
                old = getattr(before, name)
                if old == value:
                    continue
                kind: ChangeKind = "ci.lifecycle" if name == "lifecycle_state" else "ci.updated"
                changes.append(
                    ChangeRecord(0, at, kind, ci_id, actor=actor, scope=before.scope, field=name, before=old, after=value)
                )
                after.provenance[name] = f"manual:{actor}"
            if after.lifecycle_state != before.lifecycle_state:
                after.stale_since = at if after.lifecycle_state == "stale" else None
            self.store.put_cis([after])
            self.store.append_changes(changes)
        return after

    def remove_relationship(self, key: RelKey, *, actor: str) -> Relationship:
        return self._set_relationship(key, actor=actor, kind="rel.removed", field="lifecycle_state", value="retired")

    def review_relationship(self, key: RelKey, verdict: str, *, actor: str) -> Relationship:
        """Confirm or reject an inferred relationship; a rejection holds across syncs."""
        if verdict not in ("confirmed", "rejected"):
            raise ValidationError(f"a review is 'confirmed' or 'rejected', not {verdict!r}")
        return self._set_relationship(key, actor=actor, kind="rel.reviewed", field="review", value=verdict)

    def _set_relationship(self, key: RelKey, *, actor: str, kind: ChangeKind, field: str, value: str) -> Relationship:
        with self.store.transaction():
            found = self.store.get_relationships([key])
            if key not in found:
                raise NotFound(f"no relationship {key[0]} -{key[1]}-> {key[2]}")
            rel = found[key]
            old = getattr(rel, field)
            if old != value:
                at = self.clock()
                setattr(rel, field, value)
                if field == "lifecycle_state":
                    rel.stale_since = at
                self.store.put_relationships([rel], [_rel_fingerprint(rel)])
                self.store.append_changes(
                    [
                        ChangeRecord(
                            0, at, kind, rel.from_id, actor=actor, scope=rel.scope, field=field,
                            before=old, after=value, rel_type=rel.type, to_id=rel.to_id,
                        )
                    ]
                )
        return rel
