"""Headline numbers of a mart's partition window, attached to its materialization.

An operator looking at a run in the UI should see what the partition says (active users, events,
stickiness) without opening a SQL client; numeric values are also plotted over time by the UI.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from analytics_pipeline.metadata import markdown_table
from analytics_pipeline.resources.warehouse import Warehouse

# asset key path -> (preview query over [?, ?] dates, columns plotted as numbers when one day)
PREVIEWS: dict[tuple[str, ...], str] = {
    ("marts", "fct_daily_engagement"): """
        select activity_date, count(*) as schools, sum(active_users) as active_users,
               sum(new_users) as new_users, sum(returning_users) as returning_users,
               sum(events) as events, sum(sessions) as sessions
        from marts.fct_daily_engagement where activity_date between ? and ?
        group by activity_date order by activity_date desc limit 14
    """,
    ("marts", "fct_engagement_rolling"): """
        select activity_date, dau, wau, mau, round(cast(stickiness as numeric(12,6)), 4) as stickiness
        from marts.fct_engagement_rolling
        where org_id = '__all__' and activity_date between ? and ?
        order by activity_date desc limit 14
    """,
    ("marts", "fct_activity_summary"): """
        select activity_type, sum(events) as events, max(users) as max_daily_users_per_school
        from marts.fct_activity_summary where activity_date between ? and ?
        group by activity_type order by events desc limit 15
    """,
    ("marts", "fct_kpi_daily"): """
        select kpi_date, revenue, refunds, net_revenue, orders, units,
               round(cast(gross_margin_pct as numeric(12,6)), 2) as gross_margin_pct,
               new_customers, active_customers_30d, stockout_items,
               round(cast(stockout_rate as numeric(12,6)), 4) as stockout_rate
        from marts.fct_kpi_daily where kpi_date between ? and ?
        order by kpi_date desc limit 14
    """,
    ("marts", "kpi_snapshots"): """
        select kpi_name, grain, period_start, round(cast(value as numeric(20,6)), 4) as value, trend, status
        from marts.kpi_snapshots
        where status <> 'ok' and period_start between ? and ?
        order by status, kpi_name, grain, period_start desc limit 20
    """,
    ("marts", "fct_item_daily_demand"): """
        select item_id, sum(units) as units, sum(revenue) as revenue,
               sum(case when stockout then 1 else 0 end) as stockout_days
        from marts.fct_item_daily_demand where demand_date between ? and ?
        group by item_id order by units desc limit 10
    """,
    ("marts", "fct_hourly_usage"): """
        select activity_hour, sum(events) as events, sum(users) as users_summed_over_types
        from marts.fct_hourly_usage where activity_date between ? and ?
        group by activity_hour order by events desc limit 5
    """,
}


def partition_preview(
    warehouse: Warehouse, asset_key: dg.AssetKey, window_column: str | None, min_date: str, max_date: str
) -> dict[str, Any]:
    """Window metadata for a dbt model: rows in the window and, for marts, the headline numbers."""
    metadata: dict[str, Any] = {"partition_window": f"{min_date} .. {max_date}"}
    if window_column:
        table_name = ".".join(asset_key.path)
        metadata["rows_in_window"] = int(warehouse.scalar(
            f"select count(*) from {table_name} where {window_column} between ? and ?", (min_date, max_date)
        ))  # fmt: skip
    sql = PREVIEWS.get(tuple(asset_key.path))
    if sql is None:
        return metadata
    table = warehouse.query(sql, (min_date, max_date))
    metadata["preview"] = dg.MetadataValue.md(
        markdown_table(table.column_names, [row.values() for row in table.to_pylist()])
    ) if table.num_rows else "no rows in window"
    if min_date == max_date and table.num_rows == 1 and "activity_date" in table.column_names:
        for name, value in table.to_pylist()[0].items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                metadata[name] = float(value) if isinstance(value, float) else int(value)
    return metadata
