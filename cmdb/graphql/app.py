"""The ASGI application: strawberry's GraphQL view (with GraphiQL) mounted on Starlette."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from cmdb.graphql.auth import Principal, TokenBook
from cmdb.graphql.context import Context
from cmdb.graphql.schema import build_schema
from cmdb.graphql.settings import ApiSettings
from cmdb.store.base import Store
from cmdb.sync import SyncEngine

__all__ = ["CmdbGraphQL", "create_app"]

log = logging.getLogger(__name__)


class CmdbGraphQL(GraphQL[Context, None]):
    """The GraphQL view: builds each request's context from its bearer token."""

    def __init__(self, store: Store, engine: SyncEngine, settings: ApiSettings, tokens: TokenBook) -> None:
        super().__init__(build_schema(settings.graphql), graphql_ide="graphiql", allow_queries_via_get=True)
        self.store = store
        self.engine = engine
        self.settings = settings
        self.tokens = tokens

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        principal: Principal | None = None
        problem: str | None = None
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                problem = "the Authorization header must be 'Bearer TOKEN'"
            else:
                principal = self.tokens.principal(token.strip())
                if principal is None:
                    problem = "unknown token"
        return Context(
            store=self.store,
            engine=self.engine,
            settings=self.settings,
            principal=principal,
            auth_problem=problem,
            request=request if isinstance(request, Request) else None,
            response=response if isinstance(response, Response) else None,
        )

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def create_app(
    store: Store,
    settings: ApiSettings | None = None,
    *,
    engine: SyncEngine | None = None,
    close_store: bool = False,
    freeze_gc: bool = False,
) -> Starlette:
    """The app serving ``/graphql`` over ``store``.

    ``close_store`` closes the store on shutdown. ``freeze_gc`` (for a server
    process) moves everything alive at startup out of the garbage collector's
    sight: the schema, vocabulary and modules live as long as the process, and
    a request no longer pays for full collections over them (this more than
    halves the time of a small query).
    """
    settings = settings or ApiSettings()
    tokens = TokenBook.from_settings(settings)
    if not len(tokens) and not settings.anonymous_read:
        log.warning("no tokens configured and anonymous read is off: every request will be refused")
    view = CmdbGraphQL(store, engine or SyncEngine(store), settings, tokens)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def home(request: Request) -> Response:
        return RedirectResponse("/graphql")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if close_store:
                store.close()

    middleware: list[Middleware] = []
    origins = settings.origins()
    if origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        )
    routes: list[Any] = [Route("/graphql", view, methods=["GET", "POST"]), Route("/healthz", health), Route("/", home)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
