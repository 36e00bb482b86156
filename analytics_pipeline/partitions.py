"""Partition definitions shared by every domain.

Days are UTC dates starting at ``ANALYTICS_START_DATE``. Today is a partition as well (the hourly
schedule refreshes it while the day is in progress); the daily schedule and ``backfill --days``
work on complete days only.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from analytics_pipeline.settings import get_settings

_START = get_settings().start_date

# end_offset=1: today is a partition too, refreshed hourly while the day is in progress.
daily_partitions = dg.DailyPartitionsDefinition(start_date=_START.isoformat(), timezone="UTC", end_offset=1)

# Weeks run Monday to Sunday (UTC; day_offset=1 is Monday). The first week is the one holding
# ANALYTICS_START_DATE (its days before the start date are simply empty); a week becomes a partition
# once it is complete.
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=(_START - timedelta(days=_START.weekday())).isoformat(), day_offset=1, timezone="UTC"
)


def partition_dates(start: date, end: date) -> list[date]:
    """Every date from ``start`` to ``end`` inclusive."""
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
