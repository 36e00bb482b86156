"""Jobs spanning domains."""

import dagster as dg

from analytics_pipeline.partitions import daily_partitions

# Everything that holds days: raw daily datasets and the daily dbt models, for one partition
# window. Schedules, the backfill command and UI backfills all target it.
daily_pipeline_job = dg.define_asset_job(
    name="daily_pipeline",
    selection=dg.AssetSelection.groups("ingestion", "engagement", "commerce").materializable(),
    partitions_def=daily_partitions,
    description="The daily pipeline for a partition window: load the landing zone, then build the daily dbt models.",
)
