"""How errors reach GraphQL clients: one mapping from exceptions to ``extensions.code``.

Domain errors (``cmdb.errors``) keep their message and carry a code; anything
else raised inside a resolver is masked as "Unexpected error." and logged::

    NotFound                          -> NOT_FOUND
    Unauthorized                      -> UNAUTHORIZED
    LimitExceeded, limiter rejections -> LIMIT_EXCEEDED
    ValidationError, bad documents    -> BAD_INPUT
    anything else                     -> INTERNAL_SERVER_ERROR (message masked)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from enum import StrEnum

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from cmdb.errors import CmdbError, LimitExceeded, NotFound, ValidationError

__all__ = ["Code", "ErrorCodes", "Unauthorized", "code_of"]

log = logging.getLogger(__name__)


class Code(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    UNAUTHORIZED = "UNAUTHORIZED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    BAD_INPUT = "BAD_INPUT"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class Unauthorized(CmdbError):
    """The request's token is missing, unknown, or lacks the role the operation needs."""

    hint = "send 'Authorization: Bearer TOKEN' with a token configured in CMDB_TOKENS"


_DOMAIN_CODES: tuple[tuple[type[CmdbError], Code], ...] = (
    (NotFound, Code.NOT_FOUND),
    (Unauthorized, Code.UNAUTHORIZED),
    (LimitExceeded, Code.LIMIT_EXCEEDED),
    (ValidationError, Code.BAD_INPUT),
)

# What strawberry's own limiters (and graphql-core's token limit) say when they reject a document.
_LIMITER_MESSAGES = (
    re.compile(r"exceeds maximum operation depth"),
    re.compile(r"aliases found\. Allowed"),
    re.compile(r"more than \d+ tokens"),
)


def code_of(error: GraphQLError) -> Code | None:
    """The code ``error`` should carry, or None when it must be masked."""
    given = (error.extensions or {}).get("code")
    if given is not None:
        return Code(given)
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        # Raised by parsing or validation: the client's document is at fault.
        if any(pattern.search(error.message) for pattern in _LIMITER_MESSAGES):
            return Code.LIMIT_EXCEEDED
        return Code.BAD_INPUT
    for kind, code in _DOMAIN_CODES:
        if isinstance(original, kind):
            return code
    return None


class ErrorCodes(MaskErrors):
    """Gives every error a code and masks what is not the client's business."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda error: code_of(error) is None)

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result  # an execution result, or None when the operation raised
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[union-attr]

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed: list[GraphQLError] = []
        for error in errors:
            code = code_of(error)
            if code is None:
                log.error("unexpected error in %s", ".".join(map(str, error.path or [])), exc_info=error.original_error)
                masked = self.anonymise_error(error)
                masked.extensions = {"code": Code.INTERNAL_SERVER_ERROR.value}
                processed.append(masked)
                continue
            extensions = dict(error.extensions or {})
            extensions["code"] = code.value
            hint = getattr(error.original_error, "hint", "")
            if hint and "hint" not in extensions:
                extensions["hint"] = hint
            error.extensions = extensions
            processed.append(error)
        return processed
