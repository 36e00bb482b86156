"""The weekly report job and its schedule: what the Monday 09:00 report task did."""

from datetime import timedelta

import dagster as dg

from analytics_pipeline.defs.reporting.delivery import weekly_report_delivery
from analytics_pipeline.defs.reporting.weekly import weekly_reports
from analytics_pipeline.partitions import weekly_partitions

weekly_report_job = dg.define_asset_job(
    name="weekly_report",
    selection=dg.AssetSelection.assets(weekly_reports, weekly_report_delivery),
    partitions_def=weekly_partitions,
    description="A week's reports for every school and the platform, then their delivery by e-mail (if configured).",
)


@dg.schedule(
    name="weekly_report_schedule",
    cron_schedule="0 9 * * 1",
    execution_timezone="UTC",
    job=weekly_report_job,
    description="Mondays 09:00 UTC: the reports of the last complete week (Monday to Sunday).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def weekly_report_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    today = context.scheduled_execution_time.date()
    week_start = today - timedelta(days=today.weekday() + 7)
    if week_start < weekly_partitions.start.date():
        return dg.SkipReason(
            f"The week of {week_start} is before the first report week {weekly_partitions.start.date()}."
        )
    key = week_start.isoformat()
    return dg.RunRequest(run_key=f"weekly-report:{key}", partition_key=key)
