"""Partition definitions shared by every domain.

Days are UTC dates starting at ``ANALYTICS_START_DATE``. Today is a partition as well (the hourly
schedule refreshes it while the day is in progress); the daily schedule and ``backfill --days``
work on complete days only.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from analytics_pipeline.settings import get_settings

# Partitions are part of the definitions, so the start date is read when they load (every process
# that loads the code location reads the same ANALYTICS_START_DATE).
START_DATE = get_settings().start_date

# end_offset=1: today is a partition too, refreshed hourly while the day is in progress.
daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE.isoformat(), timezone="UTC", end_offset=1)

# Weeks run Monday to Sunday (UTC; day_offset=1 is Monday). The first week is the one holding
# ANALYTICS_START_DATE (its days before the start date are simply empty); a week becomes a partition
# once it is complete.
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=(START_DATE - timedelta(days=START_DATE.weekday())).isoformat(), day_offset=1, timezone="UTC"
)


def partition_dates(start: date, end: date) -> list[date]:
    """Every date from ``start`` to ``end`` inclusive."""
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def last_complete_day_schedule(
    *,
    name: str,
    cron_schedule: str,
    job: dg.UnresolvedAssetJobDefinition,
    description: str,
    run_key: str,
    per_tick: bool = False,
) -> dg.ScheduleDefinition:
    """A schedule (UTC, running by default) whose every tick runs ``job`` for the last complete day.

    Not Dagster's ``build_schedule_from_partitioned_job``: with ``end_offset=1`` (today is a
    partition) it would target today, and it takes one tick a day. The run key is
    ``<run_key>:<day>``, or ``<run_key>:<tick hour>`` with ``per_tick`` (a schedule that runs the
    same day several times, to pick up late files).
    """

    @dg.schedule(
        name=name,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        job=job,
        description=description,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        tick = context.scheduled_execution_time
        day = (tick - timedelta(days=1)).date().isoformat()
        return dg.RunRequest(
            run_key=f"{run_key}:{tick:%Y-%m-%dT%H}" if per_tick else f"{run_key}:{day}", partition_key=day
        )

    return _schedule
