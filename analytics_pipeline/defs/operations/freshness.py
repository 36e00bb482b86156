"""Freshness of the key marts, as Dagster freshness policies (evaluated by the daemon's freshness
evaluator, shown on each asset and in asset health; no sensor needed in this Dagster version).
The policies are attached where the assets are defined: the ingestion assets and the dbt translator.

Each key mart must have been updated within 26 hours (the daily schedule runs at 01:00 UTC and the
hourly one refreshes today), and warns after 24.
"""

from datetime import timedelta

import dagster as dg

KEY_MARTS = [
    dg.AssetKey(["raw", "activity_events"]),
    dg.AssetKey(["marts", "fct_daily_engagement"]),
    dg.AssetKey(["marts", "fct_engagement_rolling"]),
    dg.AssetKey(["marts", "fct_kpi_daily"]),
    dg.AssetKey(["marts", "fct_item_daily_demand"]),
]

KEY_MART_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26), warn_window=timedelta(hours=24))


def freshness_policy_for(key: dg.AssetKey) -> dg.FreshnessPolicy | None:
    """The policy an asset carries (set where the asset is defined: ingestion and the dbt translator)."""
    return KEY_MART_FRESHNESS if key in KEY_MARTS else None
