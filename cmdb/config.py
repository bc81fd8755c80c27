"""Settings, from CMDB_* environment variables (and the CLI options that mirror them)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_db_path"]


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("cmdb")) / "cmdb.db"


class Settings(BaseSettings):
    """Where the graph lives and how syncs behave. Credentials for clouds are
    never here: each SDK's own chain provides them."""

    model_config = SettingsConfigDict(env_prefix="CMDB_", extra="ignore")

    db: Path = Field(default_factory=default_db_path, description="embedded store file")
    neo4j_uri: str = Field("", description="bolt:// or neo4j:// URI; when set, Neo4j is the store")
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("")
    neo4j_database: str = "neo4j"
    stale_grace_days: float = Field(7.0, description="days a CI stays stale before it is retired")
    evaluate_findings: bool = Field(True, description="evaluate compliance rules after each sync from the CLI")
    graph_cache: Literal["auto", "off", "background", "blocking"] = Field(
        "auto",
        description="walk an in-memory copy of the embedded store's graph: auto = for cmdb serve and notebooks, "
        "read in the background; off for one-shot commands (see SqliteStore)",
    )
