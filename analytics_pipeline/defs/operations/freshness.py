"""Freshness of the key marts, as Dagster freshness policies (evaluated by the daemon's freshness
evaluator, shown on each asset and in asset health; no sensor needed in this Dagster version).
The policy is attached once, over the selection of key marts, in ``definitions.py``.

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


def with_key_mart_freshness(spec: dg.AssetSpec) -> dg.AssetSpec:
    """``spec``, with the key marts' freshness policy if it is one of them (``dg.map_asset_specs``)."""
    return spec.replace_attributes(freshness_policy=KEY_MART_FRESHNESS) if spec.key in KEY_MARTS else spec
