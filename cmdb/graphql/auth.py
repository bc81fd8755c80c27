"""Bearer tokens, roles, and the one hook that checks them.

Tokens come from configuration (``CMDB_TOKENS`` as ``NAME:ROLE:TOKEN,...`` or
``CMDB_TOKENS_FILE`` with one ``NAME:ROLE:TOKEN`` a line). ``read`` may query;
``write`` may also mutate. Without a token a request is anonymous, which may
only query and only when ``CMDB_ANONYMOUS_READ=true``. The token's NAME is the
actor of every change a mutation makes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from graphql import ExecutionResult, GraphQLError
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from cmdb.errors import ConfigError
from cmdb.graphql.errors import Code
from cmdb.graphql.settings import ApiSettings

if TYPE_CHECKING:
    from cmdb.graphql.context import Context

__all__ = ["Principal", "Role", "TokenBook", "check_permission"]

log = logging.getLogger(__name__)


class Role(StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request speaks for."""

    name: str
    role: Role

    @property
    def can_write(self) -> bool:
        return self.role is Role.WRITE


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenBook:
    """The configured tokens, kept as digests; lookups compare digests in constant time."""

    def __init__(self, entries: Iterable[tuple[str, Role, str]]) -> None:
        self._by_digest: dict[bytes, Principal] = {}
        for name, role, token in entries:
            digest = _digest(token)
            if digest in self._by_digest:
                raise ConfigError(f"token of {name!r} is also the token of {self._by_digest[digest].name!r}")
            self._by_digest[digest] = Principal(name, role)

    def __len__(self) -> int:
        return len(self._by_digest)

    @classmethod
    def parse(cls, text: str, *, origin: str = "CMDB_TOKENS") -> TokenBook:
        return cls(_parse_entries(text, origin))

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> TokenBook:
        entries = list(_parse_entries(settings.tokens.get_secret_value(), "CMDB_TOKENS"))
        if settings.tokens_file is not None:
            try:
                text = settings.tokens_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read the tokens file {settings.tokens_file}: {exc}") from exc
            entries.extend(_parse_entries(text, str(settings.tokens_file)))
        return cls(entries)

    def principal(self, token: str) -> Principal | None:
        digest = _digest(token)
        found: Principal | None = None
        for known, principal in self._by_digest.items():  # every entry, so timing says nothing
            if hmac.compare_digest(known, digest):
                found = principal
        return found


def _parse_entries(text: str, origin: str) -> Iterator[tuple[str, Role, str]]:
    for number, raw in enumerate(text.replace(",", "\n").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(":", 2)
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise ConfigError(f"{origin} entry {number} is not NAME:ROLE:TOKEN")
        name, role, token = (p.strip() for p in parts)
        if role not in (Role.READ, Role.WRITE):
            raise ConfigError(f"{origin} entry {number} ({name}): role must be read or write, not {role!r}")
        yield name, Role(role), token


def _denied(message: str) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": Code.UNAUTHORIZED.value})])


def check_permission(execution: ExecutionContext) -> None:
    """The one permission check: reads need a token (or anonymous read), mutations a write token.

    A refusal becomes the operation's result (UNAUTHORIZED, HTTP 401) and nothing runs.
    """
    context: Context = execution.context
    operation = execution.operation_type
    problem = context.auth_problem
    principal = context.principal
    if problem is None:
        if operation is OperationType.MUTATION and (principal is None or not principal.can_write):
            problem = "this operation needs a token with the write role"
        elif principal is None and not context.settings.anonymous_read:
            problem = "this API needs a bearer token (anonymous read is off)"
    if problem is not None:
        log.info("denied %s for %s: %s", operation.value, principal.name if principal else "anonymous", problem)
        context.deny()
        execution.result = _denied(problem)
