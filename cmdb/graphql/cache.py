"""The response cache: whole answers to read queries, kept while the data they read is unchanged.

A response is kept under ``ResponseKey``: the query's document as printed
from its parse (whitespace and comments do not matter), the operation name,
the variables, who asks (see below), and the store's data generation read
*before* the query ran. ``store.generation()`` returns a token that changes
whenever committed data changes, in this process or any other; a store
without it, or one that answers None, is never cached. So a write anywhere
retires every entry at once: later requests see a new generation and miss,
and a query that ran while a write committed was filed under the generation
before it, which no request sees again. Entries of older generations are
dropped the first time a newer one is seen.

Kept: successful queries (no errors at all) over POST with a JSON body.
Never kept: mutations, subscriptions, any response with errors (refusals,
limits, bad input, not found), requests whose token is missing, unknown or
not allowed to read, and documents that select a field whose answer depends
on the time of asking (``CLOCK_FIELDS``). Who asks: the caller's role
(``anonymous``, ``read``, ``write``), and also the token's name when the
document selects a field that differs between callers of one role
(``PER_CALLER_FIELDS``).

``asOf`` reads are keyed by their asOf value like any other argument.
Bounded by entries and bytes, least recently used first out; turned off with
``CMDB_RESPONSE_CACHE__ENABLED=false``.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import DocumentNode, FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse, print_ast
from graphql.language import Visitor, visit

from cmdb.graphql.kept import DOCUMENTS
from cmdb.graphql.settings import ResponseCacheSettings

__all__ = ["CLOCK_FIELDS", "PER_CALLER_FIELDS", "DocumentShape", "ResponseCache", "ResponseKey", "document_shape"]

log = logging.getLogger(__name__)

PER_CALLER_FIELDS = frozenset({"viewer"})
"""Fields whose answer differs between two tokens of one role: kept per token."""

CLOCK_FIELDS = frozenset({"changeRisk", "affectedServices"})
"""Fields whose answer depends on when they are asked (recent changes before now): never kept."""


@dataclass(frozen=True, slots=True)
class DocumentShape:
    """What the cache needs to know of a query text."""

    canonical: str
    """the document printed from its parse: one key for texts that differ only in layout"""
    operations: dict[str | None, OperationType]
    field_names: frozenset[str]

    def operation(self, name: str | None) -> OperationType | None:
        """The type of the operation a request with ``operationName`` ``name`` runs (None: an error)."""
        if name is not None:
            return self.operations.get(name)
        if len(self.operations) == 1:
            return next(iter(self.operations.values()))
        return None


class _FieldNames(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        self.names.add(node.name.value)


@functools.lru_cache(maxsize=DOCUMENTS)
def document_shape(query: str, max_tokens: int) -> DocumentShape | None:
    """The shape of ``query``, or None when it does not parse within ``max_tokens`` (never kept)."""
    try:
        document: DocumentNode = parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return None
    operations = {
        (d.name.value if d.name else None): d.operation
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    }
    names = _FieldNames()
    visit(document, names)
    return DocumentShape(print_ast(document), operations, frozenset(names.names))


@dataclass(frozen=True, slots=True)
class ResponseKey:
    document: str
    operation_name: str | None
    variables: bytes
    caller: tuple[str, str | None]
    generation: Hashable


def variables_key(variables: dict[str, Any] | None) -> bytes | None:
    """The variables as canonical JSON (sorted keys), or None when they cannot be encoded."""
    try:
        return orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


class ResponseCache:
    """Response bodies by ``ResponseKey``, least recently used out first, within entries and bytes."""

    def __init__(self, settings: ResponseCacheSettings) -> None:
        self.max_entries = settings.max_entries
        self.max_bytes = int(settings.max_mb * 1024 * 1024)
        self._entries: OrderedDict[ResponseKey, bytes] = OrderedDict()
        self._bytes = 0
        self._generation: Hashable = None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: ResponseKey) -> bytes | None:
        if key.generation != self._generation:
            # Generations only move on: nothing kept under another one will be asked for again.
            self.clear()
            self._generation = key.generation
        body = self._entries.get(key)
        if body is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return body

    def put(self, key: ResponseKey, body: bytes) -> None:
        if key.generation != self._generation or len(body) > self.max_bytes:
            return  # filed under a generation already gone, or too large to keep
        previous = self._entries.pop(key, None)
        if previous is not None:
            self._bytes -= len(previous)
        self._entries[key] = body
        self._bytes += len(body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
