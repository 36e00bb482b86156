"""Freshness of the key marts, as Dagster freshness policies (evaluated by the daemon's freshness
evaluator, shown on each asset and in asset health; no sensor needed in this Dagster version).

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


def with_freshness_policies(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with the freshness policy on every key mart."""
    return defs.map_resolved_asset_specs(
        func=lambda spec: dg.apply_freshness_policy(spec, KEY_MART_FRESHNESS),
        selection=dg.AssetSelection.assets(*KEY_MARTS),
    )
