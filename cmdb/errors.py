"""The exceptions cmdb raises.

Every error the package raises on purpose descends from ``CmdbError``; the CLI
turns each into one line with a hint and a non-zero exit code::

    CmdbError
    ├── ConfigError          settings, credentials, a missing database file
    ├── ValidationError      a record, file line or argument that breaks the model
    │   └── RecordError      one malformed record from a source (where + why)
    ├── NotFound             a CI, relationship or run that does not exist
    ├── StoreError           the backend failed (locked, unreachable, corrupt)
    ├── ConnectorError       a source could not be read at all
    └── LimitExceeded        a query asked for more than the configured bounds
"""

from __future__ import annotations

__all__ = [
    "CmdbError",
    "ConfigError",
    "ConnectorError",
    "LimitExceeded",
    "NotFound",
    "RecordError",
    "StoreError",
    "ValidationError",
]


class CmdbError(Exception):
    """Root of every error cmdb raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class ConfigError(CmdbError):
    hint = "check the command's options and the CMDB_* environment variables"


class ValidationError(CmdbError):
    hint = "fix the value named in the message"


class RecordError(ValidationError):
    """One malformed record: ``location`` says where (file:line, API page, id)."""

    def __init__(self, location: str, reason: str, *, ci_id: str | None = None) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason
        self.ci_id = ci_id


class NotFound(CmdbError):
    hint = "search for it with 'cmdb search TEXT'"


class StoreError(CmdbError):
    hint = "check that the database path or Neo4j URI is reachable and writable"


class ConnectorError(CmdbError):
    hint = "check the source's credentials, endpoint and permissions"


class LimitExceeded(CmdbError):
    hint = "narrow the query: lower its depth, page size or number of start CIs"
