"""The landing zone and how much of it may be rejected, as a Dagster resource."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from analytics_pipeline.settings import Settings


class LandingZoneResource(dg.ConfigurableResource):
    """Where the product's files land (a folder, or ``s3://bucket/prefix``) and the reject-rate
    check's threshold. Built from ``ANALYTICS_LANDING_DIR`` and ``ANALYTICS_MAX_REJECT_RATE`` /
    ``ANALYTICS_REJECT_RATE_CONFIDENCE``."""

    location: str = Field(description="A folder (absolute path) or s3://bucket/prefix (ANALYTICS_LANDING_DIR).")
    max_reject_rate: float = Field(
        default=0.01, description="A day's share of rejected lines the check tolerates (ANALYTICS_MAX_REJECT_RATE)."
    )
    reject_rate_confidence: float = Field(
        default=0.95,
        description="A day fails only when its rate is over the threshold with this confidence, one-sided binomial "
        "test; 0 fails any day over it (ANALYTICS_REJECT_RATE_CONFIDENCE).",
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> LandingZoneResource:
        return cls(
            location=str(settings.landing_dir),
            max_reject_rate=settings.max_reject_rate,
            reject_rate_confidence=settings.reject_rate_confidence,
        )
