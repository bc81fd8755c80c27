"""Relay connections over the store's cursor pages.

The store issues one opaque cursor per page (after its last row). An edge's
cursor here is that store cursor plus how many rows of the following page to
skip, so any edge can be resumed after; the last edge of a page (and
``pageInfo.endCursor``) carries the store's own cursor with nothing to skip.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import orjson

from cmdb.errors import LimitExceeded, ValidationError
from cmdb.graphql.context import Context
from cmdb.graphql.limits import page_size
from cmdb.model import CI
from cmdb.store.base import MAX_PAGE, ChangeFilter, CIFilter, Page

if TYPE_CHECKING:
    from cmdb.graphql.types import ChangeConnection, CIConnection, PageInfo

__all__ = ["change_connection", "ci_connection", "decode_cursor", "encode_cursor"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Position:
    store_cursor: str | None
    skip: int


def encode_cursor(position: Position) -> str:
    raw = orjson.dumps([position.store_cursor, position.skip])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Position:
    if not cursor:
        return Position(None, 0)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        store_cursor, skip = orjson.loads(raw)
        if (store_cursor is not None and not isinstance(store_cursor, str)) or not isinstance(skip, int) or skip < 0:
            raise ValueError(cursor)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise ValidationError(f"not a cursor this API issued: {cursor!r}") from None
    return Position(store_cursor, skip)


async def _page(
    context: Context,
    fetch: Callable[[int, str | None], Page[T]],
    first: int | None,
    after: str | None,
) -> tuple[list[tuple[str, T]], bool, bool]:
    """(cursor, item) pairs of one page, whether more follow, whether any came before."""
    size = page_size(first, context.settings.graphql)
    position = decode_cursor(after)
    if position.skip + size > MAX_PAGE:
        raise ValidationError("cursor is too far inside a page: continue from pageInfo.endCursor")
    page = await context.run(fetch, position.skip + size, position.store_cursor)
    items = page.items[position.skip :]
    pairs: list[tuple[str, T]] = []
    for index, item in enumerate(items):
        last = index == len(items) - 1
        cursor = Position(page.end_cursor, 0) if last else Position(position.store_cursor, position.skip + index + 1)
        pairs.append((encode_cursor(cursor), item))
    return pairs, page.has_next, after is not None


def _page_info(cursors: list[str], has_next: bool, has_previous: bool) -> PageInfo:
    from cmdb.graphql.types import PageInfo

    return PageInfo(
        has_next_page=has_next,
        has_previous_page=has_previous,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


async def ci_connection(
    context: Context, store_filter: CIFilter, first: int | None, after: str | None, as_of: datetime | None = None
) -> CIConnection:
    from cmdb.graphql.types import CIConnection, CIEdge, ci_node

    if as_of is not None:
        return await _ci_connection_as_of(context, store_filter, first, after, as_of)
    pairs, has_next, has_previous = await _page(
        context, lambda n, cursor: context.store.list_cis(store_filter, n, cursor), first, after
    )

    async def count() -> int:
        return await context.run(context.store.count_cis, store_filter)

    info = _page_info([c for c, _ in pairs], has_next, has_previous)
    return CIConnection(edges=[CIEdge(cursor=c, node=ci_node(ci)) for c, ci in pairs], page_info=info, counter=count)


async def _ci_connection_as_of(
    context: Context, store_filter: CIFilter, first: int | None, after: str | None, as_of: datetime
) -> CIConnection:
    """CIs that pass the filter as they were at ``as_of``: a snapshot, filtered and paged by offset."""
    from cmdb.graphql.types import CIConnection, CIEdge, ci_node

    size = page_size(first, context.settings.graphql)
    offset = decode_cursor(after).skip
    cis = await context.run(_matching_as_of, context, store_filter, as_of)
    chosen = cis[offset : offset + size]
    edges = [
        CIEdge(cursor=encode_cursor(Position(None, offset + i + 1)), node=ci_node(ci, as_of))
        for i, ci in enumerate(chosen)
    ]
    info = _page_info([e.cursor for e in edges], offset + size < len(cis), offset > 0)

    async def count() -> int:
        return len(cis)

    return CIConnection(edges=edges, page_info=info, counter=count)


def _matching_as_of(context: Context, store_filter: CIFilter, as_of: datetime) -> list[CI]:
    from cmdb.history import snapshot

    cap = context.settings.graphql.max_snapshot_cis
    if context.store.count_cis(CIFilter()) > cap:
        raise LimitExceeded(
            f"cis(asOf) rewinds the whole estate, which holds more than {cap:,} CIs",
            hint="read single CIs as they were with ci(id, asOf), or raise CMDB_GRAPHQL__MAX_SNAPSHOT_CIS",
        )

    picture = snapshot(context.store, as_of)
    return [ci for ci in picture.cis.values() if _passes(ci, store_filter)]


def _passes(ci: CI, f: CIFilter) -> bool:
    if f.ids is not None and ci.id not in f.ids:
        return False
    if f.types is not None and ci.type not in f.types:
        return False
    if f.classes is not None and ci.ci_class not in f.classes:
        return False
    for name in ("provider", "scope", "region", "environment", "owner", "cost_centre", "business_unit", "criticality"):
        wanted = getattr(f, name)
        if wanted is not None and getattr(ci, name) != wanted:
            return False
    if f.lifecycle_states is not None and ci.lifecycle_state not in f.lifecycle_states:
        return False
    if f.tag_key is not None and (
        f.tag_key not in ci.tags or (f.tag_value is not None and ci.tags[f.tag_key] != f.tag_value)
    ):
        return False
    if f.missing_owner is not None and (ci.owner == "") != f.missing_owner:
        return False
    if f.text:
        haystack = " ".join((ci.id, ci.name, *ci.tags.keys(), *ci.tags.values())).lower()
        if not all(term in haystack for term in f.text.lower().split()):
            return False
    return True


async def change_connection(
    context: Context, store_filter: ChangeFilter, first: int | None, after: str | None
) -> ChangeConnection:
    from cmdb.graphql.types import Change, ChangeConnection, ChangeEdge

    pairs, has_next, has_previous = await _page(
        context, lambda n, cursor: context.store.changes(store_filter, n, cursor), first, after
    )
    info = _page_info([c for c, _ in pairs], has_next, has_previous)
    return ChangeConnection(edges=[ChangeEdge(cursor=c, node=Change(record=r)) for c, r in pairs], page_info=info)
