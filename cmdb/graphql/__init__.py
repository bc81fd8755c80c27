"""The GraphQL API (strawberry on starlette): the architects' interface to the graph.

Public surface::

    from cmdb.graphql import create_app, ApiSettings
    app = create_app(store, ApiSettings())      # an ASGI app serving /graphql (GraphiQL in a browser)

Parts, each small (NetBox style): ``enums``, ``filters`` (inputs), ``types``
(the CI interface and its per-class types), ``impact`` (blast radius, affected
services, change risk), ``schema`` (the Query composed from per-part mixins,
the Mutation), ``context`` (per-request dataloaders), ``auth`` (tokens and the
one permission check), ``limits`` and ``settings`` (every bound, in one
place), ``errors`` (exceptions to ``extensions.code``), ``pagination`` (Relay
connections), ``app`` and ``cli`` (``cmdb serve``, ``cmdb export-schema``).
Imports are lazy so that ``cmdb --help`` does not load strawberry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cmdb.graphql.app import create_app
    from cmdb.graphql.schema import build_schema, print_sdl
    from cmdb.graphql.settings import ApiSettings, Limits

__all__ = ["ApiSettings", "Limits", "build_schema", "create_app", "print_sdl"]

_WHERE = {
    "create_app": "cmdb.graphql.app",
    "build_schema": "cmdb.graphql.schema",
    "print_sdl": "cmdb.graphql.schema",
    "ApiSettings": "cmdb.graphql.settings",
    "Limits": "cmdb.graphql.settings",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'cmdb.graphql' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
