"""The ASGI application: strawberry's GraphQL view (with GraphiQL) mounted on Starlette.

Read queries over POST go through the response cache (``cmdb.graphql.cache``)
when it is on: a hit is answered before strawberry sees the request; a miss
runs as usual and its answer is kept when it has no errors. Requests run
``concurrent_requests`` at a time, in the order they came (``Turns``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from graphql import OperationType
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from cmdb.graphql.auth import Principal, TokenBook
from cmdb.graphql.cache import (
    CLOCK_FIELDS,
    PER_CALLER_FIELDS,
    ResponseCache,
    ResponseKey,
    document_shape,
    variables_key,
)
from cmdb.graphql.context import Context, StoreThreads
from cmdb.graphql.schema import build_schema
from cmdb.graphql.settings import ApiSettings
from cmdb.store.base import Store
from cmdb.sync import SyncEngine

__all__ = ["CmdbGraphQL", "create_app"]

log = logging.getLogger(__name__)

_JSON = "application/json"

GC_THRESHOLD = (10_000, 20, 20)
"""The garbage collector's thresholds in a server process (``create_app(freeze_gc=True)``)."""


class Turns:
    """At most ``size`` requests executing at once; the others wait their turn, first come first
    served. One async semaphore per event loop (an app may outlive the loop it first ran on)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._bound: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def __call__(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            self._bound = (loop, asyncio.Semaphore(self.size))
        return self._bound[1]


class CmdbGraphQL(GraphQL[Context, None]):
    """The GraphQL view: builds each request's context from its bearer token; keeps the
    answers of read queries in the response cache."""

    def __init__(self, store: Store, engine: SyncEngine, settings: ApiSettings, tokens: TokenBook) -> None:
        super().__init__(
            build_schema(settings.graphql, plain_lists=settings.plain_lists),
            graphql_ide="graphiql",
            allow_queries_via_get=True,
        )
        self.store = store
        self.engine = engine
        self.settings = settings
        self.tokens = tokens
        self.threads = StoreThreads(settings.store_threads)
        self.turns = Turns(settings.concurrent_requests)
        # A store that cannot tell when its data changed (no ``generation``) is never cached.
        knows_generation = callable(getattr(store, "generation", None))
        self.cache = (
            ResponseCache(settings.response_cache) if settings.response_cache.enabled and knows_generation else None
        )

    def caller(self, request: Request | WebSocket) -> tuple[Principal | None, str | None]:
        """Who the request speaks for, or what is wrong with its Authorization header."""
        header = request.headers.get("authorization", "")
        if not header:
            return None, None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "the Authorization header must be 'Bearer TOKEN'"
        principal = self.tokens.principal(token.strip())
        return principal, None if principal is not None else "unknown token"

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        principal, problem = self.caller(request)
        return Context(
            store=self.store,
            engine=self.engine,
            settings=self.settings,
            principal=principal,
            auth_problem=problem,
            request=request if isinstance(request, Request) else None,
            response=response if isinstance(response, Response) else None,
            threads=self.threads,
        )

    async def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        context = kwargs.get("context")
        result = await super().execute_operation(*args, **kwargs)
        # A whole answer (not a stream, whose later parts still load) needs the loaders no more.
        if isinstance(context, Context) and isinstance(result, (ExecutionResult, list)):
            context.loaders.release()
        return result

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)  # its error is a json.JSONDecodeError: strawberry's 400 still applies

    # --- the response cache ------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # The whole body is read before the request waits for its turn: a slow client holds none.
        # Strawberry reads the body again: hand it what was read, then the connection's own messages.
        request = Request(scope, receive)
        read = await request.body()
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": read, "more_body": False}

        cache = self.cache
        key = await self.response_key(request) if cache is not None and scope["method"] == "POST" else None
        if cache is None or key is None:
            async with self.turns():
                await super().__call__(scope, replay, send)
            return
        body = cache.get(key)
        if body is not None:  # a cached answer does not wait for a turn
            await Response(body, media_type=_JSON)(scope, receive, send)
            return

        plain_json = False  # a 200 with one JSON document (not a stream of parts)
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal plain_json
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", ()))
                plain_json = message["status"] == 200 and headers.get(b"content-type", b"").startswith(
                    b"application/json"
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        async with self.turns():
            await super().__call__(scope, replay, keep)
        if plain_json and not getattr(request.state, "graphql_errors", True):
            cache.put(key, b"".join(chunks))

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        request.state.graphql_errors = bool(result.errors)
        return await super().process_result(request, result)

    async def response_key(self, request: Request) -> ResponseKey | None:
        """The key the answer to ``request`` is kept under, or None when it must not be kept."""
        if not request.headers.get("content-type", "").startswith(_JSON):
            return None
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None  # strawberry answers it (400)
        if not isinstance(payload, dict) or payload.get("extensions"):
            return None
        query, variables, name = payload.get("query"), payload.get("variables"), payload.get("operationName")
        if not (isinstance(query, str) and (variables is None or isinstance(variables, dict))):
            return None
        if name is not None and not isinstance(name, str):
            return None
        principal, problem = self.caller(request)
        if problem is not None or (principal is None and not self.settings.anonymous_read):
            return None  # refused as usual, never from the cache
        shape = document_shape(query, self.settings.graphql.max_tokens)
        if shape is None or shape.operation(name) is not OperationType.QUERY or shape.field_names & CLOCK_FIELDS:
            return None
        encoded = variables_key(variables)
        generation = self.generation()
        if encoded is None or generation is None:
            return None
        if principal is None:
            caller: tuple[str, str | None] = ("anonymous", None)
        else:
            caller = (principal.role.value, principal.name if shape.field_names & PER_CALLER_FIELDS else None)
        return ResponseKey(shape.canonical, name, encoded, caller, generation)

    def generation(self) -> Hashable | None:
        """The store's data generation (None: the store cannot tell, so nothing is kept).

        Called on the event loop: a backend's ``generation()`` is a cheap read
        (SQLite: one PRAGMA on an idle connection).
        """
        read = getattr(self.store, "generation", None)
        if not callable(read):
            return None
        try:
            token: Hashable | None = read()
        except Exception:  # the request itself will meet and report the store's trouble
            log.debug("could not read the store's generation", exc_info=True)
            return None
        return token


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
    halves the time of a small query). It also lets the youngest generation
    grow to ``GC_THRESHOLD`` objects before a collection, not 700: a walk of 100
    CIs allocates thousands of short-lived objects, and collecting every 700 of
    them cost a tenth of such a request.
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
            gc.set_threshold(*GC_THRESHOLD)
        try:
            yield
        finally:
            view.threads.close()
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
