"""Freshness of the key marts: each must have been updated within the last 26 hours (the daily
schedule runs at 01:00 UTC, the hourly one refreshes today). A sensor evaluates the checks, so an
overdue mart shows as a failed check in the UI."""

from datetime import timedelta

import dagster as dg

KEY_MARTS = [
    dg.AssetKey(["raw", "activity_events"]),
    dg.AssetKey(["marts", "fct_daily_engagement"]),
    dg.AssetKey(["marts", "fct_engagement_rolling"]),
    dg.AssetKey(["marts", "fct_kpi_daily"]),
    dg.AssetKey(["marts", "fct_item_daily_demand"]),
]

freshness_checks = dg.build_last_update_freshness_checks(
    assets=KEY_MARTS, lower_bound_delta=timedelta(hours=26), severity=dg.AssetCheckSeverity.WARN
)

freshness_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=freshness_checks,
    name="freshness_checks_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
