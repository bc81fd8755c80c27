"""Settings of the GraphQL API, in one place: tokens, anonymous access, CORS, every limit,
and the response cache.

Read from ``CMDB_*`` environment variables (pydantic-settings); limits nest
under ``CMDB_GRAPHQL__``, e.g. ``CMDB_GRAPHQL__MAX_PAGE_SIZE=200``; the response
cache under ``CMDB_RESPONSE_CACHE__``, e.g. ``CMDB_RESPONSE_CACHE__ENABLED=false``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ApiSettings", "Limits", "ResponseCacheSettings"]


class Limits(BaseModel):
    """Every bound a request is checked against; each violation is a LIMIT_EXCEEDED error."""

    model_config = {"frozen": True}

    max_query_depth: int = Field(12, ge=1, description="deepest selection nesting (QueryDepthLimiter)")
    max_aliases: int = Field(30, ge=0, description="aliases in one document (MaxAliasesLimiter)")
    max_tokens: int = Field(5000, ge=10, description="tokens in one document (MaxTokensLimiter)")
    max_page_size: int = Field(500, ge=1, description="largest `first` of a page or traversal")
    default_page_size: int = Field(50, ge=1, description="`first` when a query does not say")
    max_traversal_depth: int = Field(8, ge=1, description="deepest `depth` of dependencies, dependents, impact")
    max_traversal_cost: int = Field(
        20_000,
        ge=1,
        description="bound on the sum over traversal fields of depth x first x the pages enclosing them",
    )
    impact_walk_limit: int = Field(10_000, ge=1, description="most CIs affectedServices and changeRisk walk")
    max_snapshot_cis: int = Field(
        200_000, ge=1, description="largest estate cis(asOf) rewinds (it rewinds the whole estate)"
    )
    max_path_depth: int = Field(12, ge=1, description="longest path `path(from, to)` looks for")
    dataloader_batch_size: int = Field(500, ge=1, description="most keys one dataloader call sends to the store")


class ResponseCacheSettings(BaseModel):
    """The cache of whole query responses (``cmdb.graphql.cache``), checked against the store's
    data generation on every request: a committed write from any process retires every entry."""

    model_config = {"frozen": True}

    enabled: bool = Field(True, description="serve repeated read queries from memory while the data is unchanged")
    max_entries: int = Field(2048, ge=1, description="most responses kept (least recently used go first)")
    max_mb: float = Field(64.0, gt=0, description="most megabytes of response bodies kept")


class ApiSettings(BaseSettings):
    """Who may use the API and how much one request may ask for."""

    model_config = SettingsConfigDict(env_prefix="CMDB_", env_nested_delimiter="__", extra="ignore")

    tokens: SecretStr = Field(
        SecretStr(""), description="bearer tokens as NAME:ROLE:TOKEN[,NAME:ROLE:TOKEN...], ROLE read or write"
    )
    tokens_file: Path | None = Field(None, description="a file of NAME:ROLE:TOKEN lines (# starts a comment)")
    anonymous_read: bool = Field(False, description="allow queries without a token")
    cors_origins: str = Field("", description="comma-separated origins allowed by CORS; * for any")
    graphql: Limits = Field(default_factory=Limits)
    response_cache: ResponseCacheSettings = Field(default_factory=ResponseCacheSettings)
    store_threads: int = Field(
        2,
        ge=1,
        description="most store calls running at once, in worker threads, across all requests "
        "(the embedded store's work holds the GIL: more threads only fight over it; "
        "two, so that one slow call does not hold up every other request)",
    )
    concurrent_requests: int = Field(
        2,
        ge=1,
        description="most GraphQL requests executing at once; the others wait their turn, first come "
        "first served (requests share one event loop and the GIL: letting more interleave spreads every "
        "one's latency; two, so that one slow request does not hold up every other)",
    )
    plain_lists: bool = Field(
        True,
        description="complete lists of plain objects by compiled plans (the same answers, faster); "
        "false: graphql-core completes every field",
    )

    def origins(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]
