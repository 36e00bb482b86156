"""Schedules of the daily pipeline: what celery beat's daily metrics and hourly KPI tasks did."""

import dagster as dg

from analytics_pipeline.jobs import DAILY_ASSETS, daily_pipeline_job
from analytics_pipeline.partitions import last_complete_day_schedule

hourly_refresh_job = dg.define_asset_job(
    name="hourly_refresh",
    selection=dg.AssetSelection.assets(["marts", "fct_hourly_usage"], ["marts", "kpi_snapshots"]).upstream()
    & DAILY_ASSETS,
    description="Today's partition of hourly usage and the KPI snapshots, with what they are built from.",
)


daily_pipeline_schedule = last_complete_day_schedule(
    name="daily_pipeline_schedule",
    cron_schedule="0 1 * * *",
    job=daily_pipeline_job,
    description="01:00 UTC: yesterday's full daily pipeline (landing zone -> raw -> every daily dbt model).",
    run_key="daily",
)


@dg.schedule(
    name="hourly_refresh_schedule",
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    job=hourly_refresh_job,
    description="Every hour at :05: today's partition of hourly usage and KPI snapshots.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def hourly_refresh_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    hour = context.scheduled_execution_time
    return dg.RunRequest(run_key=f"hourly:{hour:%Y-%m-%dT%H}", partition_key=hour.date().isoformat())
