"""Headline numbers of a dbt model's partitions, attached to their materializations.

An operator looking at a run in the UI should see what the partition says (active users, events,
stickiness) without opening a SQL client. Each day's materialization carries that day's own numbers
(:func:`daily_numbers`: rows, and for the marts their headline figures), so the UI's plots over
partitions are real time series; the run's window comes with every day of the run and a preview
table of it with its last day (:func:`partition_preview`). Both are read with one query per model, whatever the number of
days, and ride on the materializations Dagster records anyway: no event is added.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import dagster as dg

from analytics_pipeline.metadata import markdown_table
from analytics_pipeline.resources.warehouse import Session

# asset key path -> preview query over [?, ?] dates (a table of the window, on the run's last day)
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


# asset key path -> its numbers per day over [?, ?] (a column ``day``, then the numbers); models with a
# window column and no entry here get their rows per day
DAILY_NUMBERS: dict[tuple[str, ...], str] = {
    ("marts", "fct_daily_engagement"): """
        select activity_date as day, count(*) as rows, count(*) as schools, sum(active_users) as active_users,
               sum(new_users) as new_users, sum(returning_users) as returning_users, sum(events) as events,
               sum(sessions) as sessions
        from marts.fct_daily_engagement where activity_date between ? and ? group by activity_date
    """,
    ("marts", "fct_engagement_rolling"): """
        select activity_date as day, count(*) as rows,
               max(case when org_id = '__all__' then dau end) as dau,
               max(case when org_id = '__all__' then wau end) as wau,
               max(case when org_id = '__all__' then mau end) as mau,
               max(case when org_id = '__all__' then stickiness end) as stickiness
        from marts.fct_engagement_rolling where activity_date between ? and ? group by activity_date
    """,
    ("marts", "fct_activity_summary"): """
        select activity_date as day, count(*) as rows, sum(events) as events,
               count(distinct activity_type) as activity_types
        from marts.fct_activity_summary where activity_date between ? and ? group by activity_date
    """,
    ("marts", "fct_hourly_usage"): """
        select activity_date as day, count(*) as rows, sum(events) as events
        from marts.fct_hourly_usage where activity_date between ? and ? group by activity_date
    """,
    ("marts", "fct_kpi_daily"): """
        select kpi_date as day, count(*) as rows, max(revenue) as revenue, max(net_revenue) as net_revenue,
               max(orders) as orders, max(units) as units, max(new_customers) as new_customers,
               max(active_customers_30d) as active_customers_30d, max(stockout_rate) as stockout_rate
        from marts.fct_kpi_daily where kpi_date between ? and ? group by kpi_date
    """,
    ("marts", "fct_item_daily_demand"): """
        select demand_date as day, count(*) as rows, sum(units) as units, sum(revenue) as revenue,
               sum(case when stockout then 1 else 0 end) as items_stocked_out
        from marts.fct_item_daily_demand where demand_date between ? and ? group by demand_date
    """,
}


def _number(value: Any) -> int | float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return float(value) if isinstance(value, float) else None


def daily_numbers(
    warehouse: Session, asset_key: dg.AssetKey, window_column: str | None, days: list[str]
) -> dict[str, dict[str, int | float]]:
    """Partition key -> that day's numbers for every day of ``days`` (a day without rows: ``rows`` 0,
    and no other number), from one query over the window; empty for a model without days."""
    sql = DAILY_NUMBERS.get(tuple(asset_key.path))
    if sql is None and window_column:
        sql = (
            f"select {window_column} as day, count(*) as rows from {'.'.join(asset_key.path)} "
            f"where {window_column} between ? and ? group by {window_column}"
        )
    if sql is None or not days:
        return {}
    found: dict[str, dict[str, int | float]] = {}
    for row in warehouse.query(sql, (min(days), max(days))).to_pylist():
        day = row.pop("day")
        day = day.isoformat() if isinstance(day, date) else str(day)
        found[day] = {name: number for name, value in row.items() if (number := _number(value)) is not None}
    return {day: found.get(day, {"rows": 0}) for day in days}


def partition_preview(
    warehouse: Session, asset_key: dg.AssetKey, rows_in_window: int | None, min_date: str, max_date: str
) -> dict[str, Any]:
    """What a run says of its whole window: the window, its rows (the sum of the
    days' rows of :func:`daily_numbers`, for a model with days) and, for the marts, a preview table of
    its headline numbers."""
    metadata: dict[str, Any] = {"run_window": f"{min_date} .. {max_date}"}
    if rows_in_window is not None:
        metadata["rows_in_window"] = rows_in_window
    sql = PREVIEWS.get(tuple(asset_key.path))
    if sql is None:
        return metadata
    table = warehouse.query(sql, (min_date, max_date))
    metadata["preview"] = (
        dg.MetadataValue.md(markdown_table(table.column_names, [row.values() for row in table.to_pylist()]))
        if table.num_rows
        else "no rows in window"
    )
    return metadata
