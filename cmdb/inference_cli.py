"""``cmdb links``: list, confirm and reject the links inference found.

A confirmed link is one a person vouched for; a rejected one stays rejected
across syncs (the engine never writes it back) and is left out of every walk.
"""

from __future__ import annotations

import getpass
from typing import Any

import click
import orjson
from rich.table import Table

from cmdb.cli import App, out, pass_app
from cmdb.errors import NotFound
from cmdb.model import Relationship
from cmdb.store.base import MAX_PAGE, RelFilter
from cmdb.vocabulary import vocabulary

__all__ = ["links"]

_REVIEWS = {"unreviewed": "", "confirmed": "confirmed", "rejected": "rejected"}


def _record(rel: Relationship) -> dict[str, Any]:
    return {
        "from": rel.from_id,
        "type": rel.type,
        "to": rel.to_id,
        "confidence": rel.confidence,
        "review": rel.review or "unreviewed",
        "lifecycle_state": rel.lifecycle_state,
        "evidence": [str(e) for e in rel.evidence],
        "first_seen": rel.first_seen.isoformat() if rel.first_seen else None,
        "last_seen": rel.last_seen.isoformat() if rel.last_seen else None,
    }


@click.group()
def links() -> None:
    """Links inferred across sources: list them, confirm or reject them."""


@links.command("list")
@click.option("--review", type=click.Choice(sorted(_REVIEWS)), help="Only links with this review.")
@click.option("--all", "include_stale", is_flag=True, help="Also links no longer found (stale).")
@click.option("--limit", default=1000, show_default=True, help="At most this many links.")
@click.option("--json", "json_output", is_flag=True, help="Print JSON lines.")
@pass_app
def list_links(app: App, review: str | None, include_stale: bool, limit: int, json_output: bool) -> None:
    """List inferred links with their evidence and confidence."""
    states = None if include_stale else ("active",)
    page = app.store.list_relationships(
        RelFilter(inferred=True, review=_REVIEWS[review] if review else None, lifecycle_states=states),
        first=min(limit, MAX_PAGE),
    )
    if json_output:
        for rel in page.items:
            click.echo(orjson.dumps(_record(rel)).decode())
        return
    table = Table(title=f"inferred links ({len(page.items)}{'+' if page.has_next else ''})")
    for column in ("from", "type", "to", "confidence", "review", "state", "evidence"):
        table.add_column(column)
    for rel in page.items:
        table.add_row(
            rel.from_id,
            rel.type,
            rel.to_id,
            f"{rel.confidence:.2f}",
            rel.review or "unreviewed",
            rel.lifecycle_state,
            "; ".join(str(e) for e in rel.evidence),
        )
    out.print(table)


def _review(app: App, from_id: str, rel_type: str, to_id: str, verdict: str, actor: str | None) -> None:
    rel_type = rel_type.upper()
    vocabulary().relationship_type(rel_type)
    key = (from_id, rel_type, to_id)
    found = app.store.get_relationships([key]).get(key)
    if found is None or not found.inferred:
        raise NotFound(
            f"no inferred link {from_id} -{rel_type}-> {to_id}",
            hint="list them with 'cmdb links list'",
        )
    rel = app.engine().review_relationship(key, verdict, actor=actor or f"cli:{getpass.getuser()}")
    out.print(f"{verdict}: {rel.from_id} -{rel.type}-> {rel.to_id}", highlight=False)


_ACTOR = click.option("--actor", help="Who reviews (recorded in the change history); default cli:<user>.")


@links.command("confirm")
@click.argument("from_id", metavar="FROM")
@click.argument("rel_type", metavar="TYPE")
@click.argument("to_id", metavar="TO")
@_ACTOR
@pass_app
def confirm(app: App, from_id: str, rel_type: str, to_id: str, actor: str | None) -> None:
    """Confirm an inferred link: a person vouches for it."""
    _review(app, from_id, rel_type, to_id, "confirmed", actor)


@links.command("reject")
@click.argument("from_id", metavar="FROM")
@click.argument("rel_type", metavar="TYPE")
@click.argument("to_id", metavar="TO")
@_ACTOR
@pass_app
def reject(app: App, from_id: str, rel_type: str, to_id: str, actor: str | None) -> None:
    """Reject an inferred link: it stays rejected across syncs and is left out of impact walks."""
    _review(app, from_id, rel_type, to_id, "rejected", actor)
