"""What the endpoint keeps per parsed document or operation, across requests."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["DOCUMENTS", "KeptPer"]

K = TypeVar("K")
V = TypeVar("V")

DOCUMENTS = 256
"""How many query texts' parsed documents are kept, and as many of what is kept per document
or operation (plans, costs, validation verdicts, response shapes)."""


class KeptPer(Generic[K, V]):
    """Values kept per object (a parsed document, one of its operations), by the object's
    identity: documents are parsed once and cached, so the same query text brings back the
    same objects, and identity is a cheap key (a document's own hash walks its whole tree).

    Up to ``size`` entries, the least recently used dropped first. Each entry holds its
    object, so that its id is not reused while the entry lasts.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[int, tuple[K, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(id(key))
        if entry is None or entry[0] is not key:
            return None
        self._entries.move_to_end(id(key))
        return entry[1]

    def put(self, key: K, value: V) -> V:
        self._entries[id(key)] = (key, value)
        self._entries.move_to_end(id(key))
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value
