"""The warehouse as a Dagster resource: its connection is typed configuration, on the UI's resource page."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from analytics_pipeline.resources.warehouse.client import Warehouse
from analytics_pipeline.settings import Settings, resolved, secret


class WarehouseResource(dg.ConfigurableResource):
    """The analytics warehouse: DuckDB (one file) or PostgreSQL. Assets ask it for a
    :class:`Warehouse` client; dbt gets the same connection through :meth:`dbt_env`.

    Built from the settings (``ANALYTICS_WAREHOUSE``, ``ANALYTICS_DUCKDB_PATH``, ``ANALYTICS_PG_*``,
    ``ANALYTICS_READ_WAIT_SECONDS``) by :meth:`from_settings`; the password stays an environment
    variable (``dg.EnvVar``), so the UI never shows it.
    """

    engine: str = Field(default="duckdb", description="'duckdb' or 'postgres' (ANALYTICS_WAREHOUSE).")
    duckdb_path: str = Field(description="The DuckDB file, an absolute path (ANALYTICS_DUCKDB_PATH).")
    pg_host: str = Field(default="127.0.0.1", description="PostgreSQL host (ANALYTICS_PG_HOST).")
    pg_port: int = Field(default=5432, description="PostgreSQL port (ANALYTICS_PG_PORT).")
    pg_user: str = Field(default="postgres", description="PostgreSQL user (ANALYTICS_PG_USER).")
    pg_password: str = Field(default="", description="PostgreSQL password (ANALYTICS_PG_PASSWORD).")
    pg_database: str = Field(default="analytics", description="PostgreSQL database (ANALYTICS_PG_DATABASE).")
    read_wait_seconds: float = Field(
        default=300.0,
        description="How long a reader of the DuckDB file waits for a writing step (ANALYTICS_READ_WAIT_SECONDS).",
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> WarehouseResource:
        return cls(
            engine=settings.warehouse,
            duckdb_path=str(settings.duckdb_path),
            pg_host=settings.pg_host,
            pg_port=settings.pg_port,
            pg_user=settings.pg_user,
            pg_password=secret("ANALYTICS_PG_PASSWORD", settings.pg_password),
            pg_database=settings.pg_database,
            read_wait_seconds=settings.read_wait_seconds,
        )

    def get_client(self) -> Warehouse:
        return Warehouse(self)

    def dbt_env(self) -> dict[str, str]:
        """The connection as ``dbt_project/profiles.yml`` reads it from a dbt process's environment."""
        return {
            "ANALYTICS_WAREHOUSE": self.engine,
            "ANALYTICS_DUCKDB_PATH": self.duckdb_path,
            "ANALYTICS_PG_HOST": self.pg_host,
            "ANALYTICS_PG_PORT": str(self.pg_port),
            "ANALYTICS_PG_USER": self.pg_user,
            "ANALYTICS_PG_PASSWORD": resolved(self.pg_password),
            "ANALYTICS_PG_DATABASE": self.pg_database,
        }
