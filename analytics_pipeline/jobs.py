"""Jobs spanning domains."""

import dagster as dg

from analytics_pipeline.defs.ingestion.assets import daily_ingestion_assets
from analytics_pipeline.defs.transform.assets import daily_dbt_models

DAILY_DBT_KEYS = sorted(daily_dbt_models.keys)
DAILY_ASSETS = dg.AssetSelection.assets(*daily_ingestion_assets, daily_dbt_models)

# Everything that holds days: raw daily datasets and the daily dbt models, for one partition
# window. Schedules, the backfill command and UI backfills all target it.
# The code location's executor runs it: in the run's process (ANALYTICS_EXECUTOR=celery: on the
# workers of the warehouse queue). Its steps take turns on the warehouse pool anyway, so a process per
# step would only add a code-location load (5-9 s) to each of them (bench/RESULTS.md).
daily_pipeline_job = dg.define_asset_job(
    name="daily_pipeline",
    selection=DAILY_ASSETS,
    description="The daily pipeline for a partition window: load the landing zone, then build the daily dbt models.",
)
