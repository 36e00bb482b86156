"""How long data is kept, as a Dagster resource (``defs/operations/retention.py`` applies it)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from analytics_pipeline.settings import Settings


class RetentionResource(dg.ConfigurableResource):
    """Retention periods, and where Dagster keeps runs' step outputs. Built from
    ``ANALYTICS_RETENTION_*_DAYS`` and ``DAGSTER_HOME`` (the alert and report folders are the
    ``alerting`` and ``reports`` resources')."""

    activity_days: int = Field(default=90, description="Raw activity events (ANALYTICS_RETENTION_ACTIVITY_DAYS).")
    ops_days: int = Field(
        default=30,
        description="ops tables, resolved alerts and runs' step outputs (ANALYTICS_RETENTION_OPS_DAYS).",
    )
    report_days: int = Field(default=180, description="Weekly report folders (ANALYTICS_RETENTION_REPORT_DAYS).")
    storage_dir: str = Field(description="Runs' step outputs, one folder per run ($DAGSTER_HOME/storage).")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionResource:
        return cls(
            activity_days=settings.retention_activity_days,
            ops_days=settings.retention_ops_days,
            report_days=settings.retention_report_days,
            storage_dir=str(settings.dagster_home / "storage"),
        )

    @property
    def storage(self) -> Path:
        return Path(self.storage_dir)
