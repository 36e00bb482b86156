"""When forecasting runs: what celery beat's 6-hourly forecast update and weekly model training did.

Both target the last complete day as the as-of date. The forecast runs after the 01:00 daily
pipeline has loaded that day, and again every six hours so late files for it are picked up; the
model selection runs on Monday morning over the week that just ended.
"""

import dagster as dg

from analytics_pipeline.defs.forecasting.assets import DEMAND_FORECASTS, MODEL_EVALUATIONS
from analytics_pipeline.partitions import last_complete_day_schedule

FORECAST_MARTS = dg.AssetSelection.assets(["marts", "fct_forecast_accuracy"], ["marts", "mart_reorder_recommendations"])

demand_forecast_job = dg.define_asset_job(
    name="demand_forecast",
    selection=dg.AssetSelection.assets(DEMAND_FORECASTS) | FORECAST_MARTS,
    description="The forecast vintage for an as-of date, then the accuracy and reorder marts built on it.",
)

model_selection_job = dg.define_asset_job(
    name="model_selection",
    selection=dg.AssetSelection.assets(MODEL_EVALUATIONS),
    description="Cross-validate the candidate models for every item and select each item's model.",
)


demand_forecast_schedule = last_complete_day_schedule(
    name="demand_forecast_schedule",
    cron_schedule="30 2,8,14,20 * * *",
    job=demand_forecast_job,
    description="Every 6 hours from 02:30 UTC: the forecast as of yesterday, and the accuracy and reorder marts.",
    run_key="forecast",
    per_tick=True,
)

model_selection_schedule = last_complete_day_schedule(
    name="model_selection_schedule",
    cron_schedule="0 3 * * 1",
    job=model_selection_job,
    description="Mondays 03:00 UTC: cross-validation and model selection as of Sunday.",
    run_key="selection",
)
