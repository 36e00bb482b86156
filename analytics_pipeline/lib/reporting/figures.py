"""The numbers of a weekly report, read from the marts.

A report week runs Monday to Sunday (UTC) and is compared with the week before. Per school (and for
the whole platform) the headline numbers are:

- ``weekly_active_users``: distinct users active Monday..Sunday (``fct_engagement_rolling.wau`` on Sunday)
- ``avg_daily_active_users``: the week's daily active users summed, divided by 7
- ``peak_daily_active_users``: the busiest day's active users
- ``new_users``, ``events``, ``sessions``: summed over the week (``fct_daily_engagement``)
- ``events_per_active_user``: events / the week's summed daily active users
- ``monthly_active_users``: ``fct_engagement_rolling.mau`` on Sunday (30 days ending Sunday)
- platform only: ``active_schools`` (schools with at least one active user in the week)

Platform daily active users are distinct users across schools (``org_id = '__all__'`` in the rolling
mart), not a sum. A day the rolling mart has no platform row for is not loaded yet: its WAU / MAU are
left empty rather than reported as 0.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from analytics_pipeline.lazy import LazyModule
from analytics_pipeline.resources.warehouse import Warehouse

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")

PLATFORM = "platform"
ALL_SCHOOLS = "__all__"
REQUIRED_MARTS = ("marts.fct_daily_engagement", "marts.fct_engagement_rolling", "marts.fct_activity_summary")
COUNT_COLUMNS = ("active_users", "new_users", "returning_users", "events", "sessions")
HEADLINES = (
    "weekly_active_users",
    "avg_daily_active_users",
    "peak_daily_active_users",
    "new_users",
    "events",
    "sessions",
    "events_per_active_user",
    "monthly_active_users",
)
DECIMALS = 4


class ReportDataError(RuntimeError):
    """The marts a report needs are missing; the message says which command builds them."""


@dataclass(frozen=True)
class Week:
    start: date

    @classmethod
    def from_key(cls, partition_key: str) -> Week:
        return cls(date.fromisoformat(partition_key))

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)

    @property
    def previous(self) -> Week:
        return Week(self.start - timedelta(days=7))

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=offset) for offset in range(7)]

    def __str__(self) -> str:
        return f"{self.start.isoformat()} .. {self.end.isoformat()}"


@dataclass
class TargetReport:
    """Everything one report (a school's or the platform's) shows; written by ``documents``."""

    target: str  # org_id, or PLATFORM
    name: str
    folder: str  # folder name under the week's folder
    week: Week
    summary: pd.DataFrame  # metric, this_week, previous_week, change_pct
    daily: pd.DataFrame  # one row per day of the week
    activity: pd.DataFrame  # activity_type, events, share_of_events_pct, previous_week_events, change_pct
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)  # platform: schools, kpis, forecast, ...
    notes: list[str] = field(default_factory=list)

    @property
    def is_platform(self) -> bool:
        return self.target == PLATFORM

    def headline(self, metric: str) -> Any:
        row = self.summary.loc[self.summary["metric"] == metric]
        return None if row.empty else row.iloc[0]["this_week"]


# -- reading ---------------------------------------------------------------------------------------


def frame(table: pa.Table) -> pd.DataFrame:
    """A pandas frame with decimals as floats, so both engines give the same types."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=False):
        if pa.types.is_decimal(column.type):
            column = column.cast(pa.float64())
        columns[name] = column
    return pa.table(columns).to_pandas() if columns else pd.DataFrame()


def school_folder(org_id: str) -> str:
    """A folder name for a school that is safe on any filesystem and never clashes with ``platform``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", org_id).lstrip(".")
    if safe != org_id or safe.lower() == PLATFORM or not safe:
        safe = f"{safe or 'school'}-{hashlib.sha1(org_id.encode()).hexdigest()[:8]}"
    return safe


def school_names(warehouse: Warehouse) -> dict[str, str]:
    """org_id -> name from the organizations dimension (empty when it has not been loaded)."""
    for table, name_column in (("staging.stg_product__organizations", "org_name"), ("raw.organizations", "name")):
        if warehouse.table_exists(table):
            rows = warehouse.query(f"select org_id, {name_column} as name from {table}").to_pylist()
            return {row["org_id"]: row["name"] or row["org_id"] for row in rows}
    return {}


def _require_marts(warehouse: Warehouse) -> None:
    missing = [table for table in REQUIRED_MARTS if not warehouse.table_exists(table)]
    if missing:
        raise ReportDataError(
            f"{', '.join(missing)} not built yet; run the daily pipeline first "
            "(`analytics-pipeline backfill --days 14`, or a backfill from the UI)."
        )


@dataclass
class WeekData:
    week: Week
    engagement: pd.DataFrame  # fct_daily_engagement, both weeks
    rolling: pd.DataFrame  # fct_engagement_rolling, both weeks, schools and __all__
    activity: pd.DataFrame  # org_id, activity_type, events, previous_week_events
    names: dict[str, str]

    @property
    def schools(self) -> list[str]:
        seen = set(self.names) | set(self.engagement["org_id"]) | set(self.rolling["org_id"])
        return sorted(seen - {ALL_SCHOOLS})

    def loaded_days(self) -> set[date]:
        """Days the rolling mart has a platform row for: loaded, so a missing school row means 0."""
        platform = self.rolling[self.rolling["org_id"] == ALL_SCHOOLS]
        return set(platform["activity_date"])


def read_week(warehouse: Warehouse, week: Week) -> WeekData:
    """The marts' rows for the week and the week before, in three queries."""
    _require_marts(warehouse)
    first, last = week.previous.start, week.end
    engagement = frame(
        warehouse.query(
            "select activity_date, org_id, active_users, new_users, returning_users, events, sessions "
            "from marts.fct_daily_engagement where activity_date between ? and ?",
            (first, last),
        )
    )
    rolling = frame(
        warehouse.query(
            "select activity_date, org_id, dau, wau, mau, stickiness "
            "from marts.fct_engagement_rolling where activity_date between ? and ?",
            (first, last),
        )
    )
    activity = frame(
        warehouse.query(
            "select org_id, activity_type, "
            "sum(case when activity_date >= ? then events else 0 end) as events, "
            "sum(case when activity_date < ? then events else 0 end) as previous_week_events "
            "from marts.fct_activity_summary where activity_date between ? and ? "
            "group by org_id, activity_type",
            (week.start, week.start, first, last),
        )
    )
    for data, columns in (
        (engagement, ["activity_date", "org_id", *COUNT_COLUMNS]),
        (rolling, ["activity_date", "org_id", "dau", "wau", "mau", "stickiness"]),
        (activity, ["org_id", "activity_type", "events", "previous_week_events"]),
    ):
        for column in columns:
            if column not in data.columns:
                data[column] = pd.Series(dtype="object")
    return WeekData(week, engagement, rolling, activity, school_names(warehouse))


# -- computing ------------------------------------------------------------------------------------


def _round(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return round(float(value), DECIMALS) if isinstance(value, float) else int(value)


def change_pct(this: Any, previous: Any) -> float | None:
    if this is None or previous is None or previous == 0:
        return None
    return round((float(this) - float(previous)) * 100 / abs(float(previous)), DECIMALS)


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, DECIMALS) if denominator else None


def _days_frame(week: Week, rows: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """One row per day of ``week`` with ``columns`` from ``rows`` (0 where the day has no row)."""
    base = pd.DataFrame({"activity_date": week.days})
    if rows.empty:
        merged = base.assign(**{column: 0 for column in columns})
    else:
        merged = base.merge(rows[["activity_date", *columns]], on="activity_date", how="left")
    for column in columns:
        merged[column] = pd.to_numeric(merged[column]).fillna(0).astype("int64")
    return merged


def _rolling_days(week: Week, rows: pd.DataFrame, loaded: set[date]) -> pd.DataFrame:
    base = pd.DataFrame({"activity_date": week.days})
    merged = base.merge(rows[["activity_date", "dau", "wau", "mau", "stickiness"]], on="activity_date", how="left")
    # object columns: a day that is not loaded stays None instead of becoming NaN in a float column
    for column in ("dau", "wau", "mau"):
        values = pd.to_numeric(merged[column])
        merged[column] = pd.Series(
            [
                int(v) if not pd.isna(v) else (0 if day in loaded else None)
                for v, day in zip(values, merged["activity_date"], strict=False)
            ],
            dtype=object,
        )
    merged["stickiness"] = pd.Series(
        [None if pd.isna(v) else round(float(v), DECIMALS) for v in merged["stickiness"]], dtype=object
    )
    return merged


def _daily(data: WeekData, week: Week, org: str) -> pd.DataFrame:
    """The week's days for one school, or for the platform when ``org`` is ``__all__``."""
    loaded = data.loaded_days()
    rolling = _rolling_days(week, data.rolling[data.rolling["org_id"] == org], loaded)
    if org == ALL_SCHOOLS:
        engagement = (
            data.engagement.assign(active_school=(pd.to_numeric(data.engagement["active_users"]) > 0).astype("int64"))
            .groupby("activity_date", as_index=False)[["new_users", "events", "sessions", "active_school"]]
            .sum()
        )
        days = _days_frame(week, engagement, ("new_users", "events", "sessions", "active_school"))
        days = days.rename(columns={"active_school": "active_schools"})
        days.insert(1, "active_users", [0 if d is None else d for d in rolling["dau"]])
        order = ["active_users", "new_users", "events", "sessions", "active_schools"]
    else:
        days = _days_frame(week, data.engagement[data.engagement["org_id"] == org], COUNT_COLUMNS)
        order = list(COUNT_COLUMNS)
    days["events_per_active_user"] = pd.Series(
        [_ratio(e, a) for e, a in zip(days["events"], days["active_users"], strict=False)], dtype=object
    )
    days["wau"], days["mau"], days["stickiness"] = rolling["wau"], rolling["mau"], rolling["stickiness"]
    days.insert(1, "weekday", [day.strftime("%a") for day in days["activity_date"]])
    return days[["activity_date", "weekday", *order, "events_per_active_user", "wau", "mau", "stickiness"]]


def _headlines(days: pd.DataFrame) -> dict[str, Any]:
    active_user_days = int(days["active_users"].sum())
    sunday = days.iloc[-1]
    return {
        "weekly_active_users": _round(sunday["wau"]),
        "avg_daily_active_users": active_user_days / 7,
        "peak_daily_active_users": int(days["active_users"].max()),
        "new_users": int(days["new_users"].sum()),
        "events": int(days["events"].sum()),
        "sessions": int(days["sessions"].sum()),
        "events_per_active_user": int(days["events"].sum()) / active_user_days if active_user_days else None,
        "monthly_active_users": _round(sunday["mau"]),
    }


def _summary(this: dict[str, Any], previous: dict[str, Any]) -> pd.DataFrame:
    # dtype=object keeps counts as integers next to averages (a float column would print 3 as 3.0)
    return pd.DataFrame(
        [
            {
                "metric": metric,
                "this_week": _round(this[metric]),
                "previous_week": _round(previous.get(metric)),
                "change_pct": change_pct(this[metric], previous.get(metric)),
            }
            for metric in this
        ],
        dtype=object,
    )


def _activity(data: WeekData, org: str | None) -> pd.DataFrame:
    rows = data.activity if org is None else data.activity[data.activity["org_id"] == org]
    columns = ["activity_type", "events", "share_of_events_pct", "previous_week_events", "change_pct"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    mix = rows.groupby("activity_type", as_index=False)[["events", "previous_week_events"]].sum()
    mix["events"] = pd.to_numeric(mix["events"]).astype("int64")
    mix["previous_week_events"] = pd.to_numeric(mix["previous_week_events"]).astype("int64")
    total = int(mix["events"].sum())
    mix["share_of_events_pct"] = [_ratio(e * 100, total) if total else 0.0 for e in mix["events"]]
    mix["change_pct"] = [change_pct(e, p) for e, p in zip(mix["events"], mix["previous_week_events"], strict=False)]
    mix = mix.sort_values(["events", "activity_type"], ascending=[False, True])
    return mix[columns].reset_index(drop=True)


def _active_schools(data: WeekData, week: Week) -> int:
    rows = data.engagement[
        (data.engagement["activity_date"] >= week.start) & (data.engagement["activity_date"] <= week.end)
    ]
    return int(rows.loc[pd.to_numeric(rows["active_users"]) > 0, "org_id"].nunique())


def _notes(data: WeekData) -> list[str]:
    if data.week.end not in data.loaded_days():
        return [
            f"{data.week.end} (the week's last day) is not loaded yet: weekly and monthly active users "
            "are left empty; run the daily pipeline for the whole week, then this report again."
        ]
    return []


def school_report(data: WeekData, org: str) -> TargetReport:
    this = _daily(data, data.week, org)
    previous = _daily(data, data.week.previous, org)
    this["active_users_previous_week"] = previous["active_users"].to_numpy()
    return TargetReport(
        target=org,
        name=data.names.get(org, org),
        folder=school_folder(org),
        week=data.week,
        summary=_summary(_headlines(this), _headlines(previous)),
        daily=this,
        activity=_activity(data, org),
        notes=_notes(data),
    )


def platform_report(data: WeekData, schools: list[TargetReport]) -> TargetReport:
    this = _daily(data, data.week, ALL_SCHOOLS)
    previous = _daily(data, data.week.previous, ALL_SCHOOLS)
    this["active_users_previous_week"] = previous["active_users"].to_numpy()
    numbers = _headlines(this) | {"active_schools": _active_schools(data, data.week)}
    before = _headlines(previous) | {"active_schools": _active_schools(data, data.week.previous)}
    report = TargetReport(
        target=PLATFORM,
        name="Platform",
        folder=PLATFORM,
        week=data.week,
        summary=_summary(numbers, before),
        daily=this,
        activity=_activity(data, None),
        notes=_notes(data),
    )
    report.extra["schools"] = schools_table(schools)
    return report


def schools_table(schools: list[TargetReport]) -> pd.DataFrame:
    """One row per school: the figures the platform report names for each school."""
    rows = []
    for school in schools:
        summary = school.summary.set_index("metric")
        rows.append(
            {
                "org_id": school.target,
                "school": school.name,
                **{
                    metric: summary.at[metric, "this_week"]
                    for metric in ("weekly_active_users", "avg_daily_active_users", "new_users", "events", "sessions")
                },
                "weekly_active_users_previous_week": summary.at["weekly_active_users", "previous_week"],
                "weekly_active_users_change_pct": summary.at["weekly_active_users", "change_pct"],
                "events_change_pct": summary.at["events", "change_pct"],
            }
        )
    return pd.DataFrame(rows, dtype=object)


# -- platform extras: KPIs and forecasts -------------------------------------------------------------


def kpis(warehouse: Warehouse, week: Week) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the week's KPI snapshot rows, fct_kpi_daily for the week's days); empty when not built."""
    snapshots = pd.DataFrame()
    if warehouse.table_exists("marts.kpi_snapshots"):
        snapshots = frame(
            warehouse.query(
                "select kpi_name, value, previous_value, change_pct, trend, status from marts.kpi_snapshots "
                "where grain = 'week' and period_start = ? order by kpi_name",
                (week.start,),
            )
        )
    daily = pd.DataFrame()
    if warehouse.table_exists("marts.fct_kpi_daily"):
        daily = frame(
            warehouse.query(
                "select * from marts.fct_kpi_daily where kpi_date between ? and ? order by kpi_date",
                (week.start, week.end),
            )
        )
    return snapshots, daily


def _columns(warehouse: Warehouse, table: str) -> list[str]:
    schema, name = table.split(".")
    rows = warehouse.query(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position",
        (schema, name),
    ).to_pylist()
    return [row["column_name"] for row in rows]


def forecast_highlights(warehouse: Warehouse, week: Week) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(top items by forecast demand for the next 7 days, reorder recommendations, notes).

    Built by the forecasting assets; a report never fails because they are missing or different
    (both frames empty: the report says "No forecast yet.").
    """
    notes: list[str] = []
    demand, reorder = pd.DataFrame(), pd.DataFrame()
    try:
        if warehouse.table_exists("forecast.demand_forecasts"):
            demand = frame(
                warehouse.query(
                    """
                with vintage as (
                    select max(as_of_date) as as_of_date from forecast.demand_forecasts where as_of_date <= ?
                )
                select f.item_id, f.model, f.as_of_date,
                       sum(f.yhat) as forecast_units_7d,
                       sum(f.yhat_lo_80) as lo_80, sum(f.yhat_hi_80) as hi_80
                from forecast.demand_forecasts f
                inner join vintage on f.as_of_date = vintage.as_of_date
                where f.forecast_date > f.as_of_date and f.forecast_date <= f.as_of_date + 7
                group by f.item_id, f.model, f.as_of_date
                order by forecast_units_7d desc, f.item_id
                limit 10
                """,
                    (week.end,),
                )
            )
        if warehouse.table_exists("marts.mart_reorder_recommendations"):
            columns = _columns(warehouse, "marts.mart_reorder_recommendations")
            order = next((c for c in ("projected_stockout_date", "days_of_cover") if c in columns), None)
            order_by = f" order by {order} nulls last" if order else ""
            reorder = frame(warehouse.query(f"select * from marts.mart_reorder_recommendations{order_by} limit 10"))
    except Exception as error:  # another team's tables: a report without them beats no report
        notes.append(f"Forecast tables could not be read ({str(error).splitlines()[0]}).")
        demand, reorder = pd.DataFrame(), pd.DataFrame()
    return demand, reorder, notes
