"""Partition definitions shared by every domain.

Days are UTC dates starting at ``ANALYTICS_START_DATE``; the current (incomplete) day is not a
partition until it is over, so a "daily" partition always means a complete day of data.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from analytics_pipeline.settings import get_settings

_START = get_settings().start_date

daily_partitions = dg.DailyPartitionsDefinition(start_date=_START.isoformat(), timezone="UTC")

# Weeks run Monday to Sunday, the way school reports are read.
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=(_START + timedelta(days=(7 - _START.weekday()) % 7)).isoformat(),
    day_offset=1,
    timezone="UTC",
)


def partition_dates(start: date, end: date) -> list[date]:
    """Every date from ``start`` to ``end`` inclusive."""
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
