"""How long data is kept, as a Dagster resource (``defs/operations/retention.py`` applies it)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from analytics_pipeline.settings import Settings


class RetentionResource(dg.ConfigurableResource):
    """Retention periods, and the folders the weekly retention job tidies. Built from
    ``ANALYTICS_RETENTION_*_DAYS``, ``ANALYTICS_OUTPUT_DIR`` and ``DAGSTER_HOME``."""

    activity_days: int = Field(default=90, description="Raw activity events (ANALYTICS_RETENTION_ACTIVITY_DAYS).")
    ops_days: int = Field(
        default=30,
        description="ops tables, resolved alerts and runs' step outputs (ANALYTICS_RETENTION_OPS_DAYS).",
    )
    report_days: int = Field(default=180, description="Weekly report folders (ANALYTICS_RETENTION_REPORT_DAYS).")
    output_dir: str = Field(description="Reports and alerts live here (ANALYTICS_OUTPUT_DIR).")
    storage_dir: str = Field(description="Runs' step outputs, one folder per run ($DAGSTER_HOME/storage).")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionResource:
        return cls(
            activity_days=settings.retention_activity_days,
            ops_days=settings.retention_ops_days,
            report_days=settings.retention_report_days,
            output_dir=str(settings.output_dir),
            storage_dir=str(settings.dagster_home / "storage"),
        )

    @property
    def output(self) -> Path:
        return Path(self.output_dir)

    @property
    def storage(self) -> Path:
        return Path(self.storage_dir)
