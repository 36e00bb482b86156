"""On-demand custom reports, launched from the Dagster UI's launchpad with run config.

The launchpad scaffolds :class:`CustomReportConfig` with its defaults: a date range, the schools
(empty: every school), the metrics (any of :data:`METRICS`) and the format (csv, xlsx or html). The
files land in ``<ANALYTICS_OUTPUT_DIR>/reports/custom/<run_id>/`` (the retention job leaves this
folder alone; it only deletes dated week folders):

- ``daily_metrics.<csv|xlsx|html>``: one row per day and school with the chosen daily metrics
- ``activity_mix.csv`` (csv; a sheet or section otherwise): events per activity type and school
  over the range, when ``activity_mix`` is chosen
- ``request.json``: the run config the report was made with
"""

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from pydantic import Field

from analytics_pipeline.defs.reporting.weekly import staging_folder
from analytics_pipeline.executors import REPORTS_QUEUE, on_queue
from analytics_pipeline.lazy import LazyModule
from analytics_pipeline.lib.log_context import get_logger
from analytics_pipeline.lib.reporting import charts
from analytics_pipeline.lib.reporting.documents import html_table, image, label, page, write_csv, write_xlsx
from analytics_pipeline.lib.reporting.figures import ALL_SCHOOLS, frame, school_names
from analytics_pipeline.resources.policies import TRANSIENT_RETRY_POLICY, WAREHOUSE_POOL, failures_are_final
from analytics_pipeline.resources.reports import ReportsResource
from analytics_pipeline.resources.warehouse import Warehouse, WarehouseResource

# the step's log lines, prefixed with [run=… asset=… partition=…] (log_context.py)
log = get_logger("analytics_pipeline.reporting")

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")

ENGAGEMENT_METRICS = ("active_users", "new_users", "returning_users", "events", "sessions", "events_per_active_user")
ROLLING_METRICS = ("dau", "wau", "mau", "stickiness")
METRICS = {
    "active_users": "distinct users with an event that day (fct_daily_engagement)",
    "new_users": "users whose first event ever is that day",
    "returning_users": "active_users - new_users",
    "events": "accepted events",
    "sessions": "distinct sessions",
    "events_per_active_user": "events / active_users",
    "dau": "daily active users (fct_engagement_rolling)",
    "wau": "distinct users active in the 7 days ending that day",
    "mau": "distinct users active in the 30 days ending that day",
    "stickiness": "dau / mau",
    "activity_mix": "events per activity type and school over the whole range (fct_activity_summary)",
}
DEFAULT_METRICS = ["active_users", "new_users", "events", "sessions", "wau"]
MAX_DAYS = 732


class CustomReportConfig(dg.Config):
    """What to report; every field has a default, so the launchpad scaffolds a runnable config."""

    start_date: str = Field(default="", description="First day, YYYY-MM-DD (UTC). Empty: 6 days before end_date.")
    end_date: str = Field(default="", description="Last day, YYYY-MM-DD, inclusive. Empty: yesterday (UTC).")
    schools: list[str] = Field(default=[], description="School org_ids to include; empty: every school.")
    metrics: list[str] = Field(
        default=DEFAULT_METRICS, description="Any of: " + "; ".join(f"{k} ({v})" for k, v in METRICS.items())
    )
    format: Literal["csv", "xlsx", "html"] = Field(default="csv", description="csv, xlsx or html (with charts).")


class CustomReportError(ValueError):
    """The request cannot be served; the message says which field to change."""


def _day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise CustomReportError(f"{name}={value!r} is not a date; use YYYY-MM-DD.") from None


def resolve_window(config: CustomReportConfig, today: date) -> tuple[date, date]:
    end = _day("end_date", config.end_date) if config.end_date.strip() else today - timedelta(days=1)
    start = _day("start_date", config.start_date) if config.start_date.strip() else end - timedelta(days=6)
    if end < start:
        raise CustomReportError(f"end_date {end} is before start_date {start}.")
    if (end - start).days >= MAX_DAYS:
        raise CustomReportError(f"{start} .. {end} is longer than {MAX_DAYS} days; choose a shorter range.")
    return start, end


def resolve_metrics(config: CustomReportConfig) -> list[str]:
    metrics = list(dict.fromkeys(m.strip().lower() for m in config.metrics if m.strip()))
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        problem = f"Unknown metric(s) {', '.join(map(repr, unknown))}" if unknown else "No metric chosen"
        raise CustomReportError(f"{problem}; choose from: {', '.join(METRICS)}.")
    return metrics


def _in_clause(schools: list[str]) -> tuple[str, list[str]]:
    if not schools:
        return "", []
    return f" and org_id in ({', '.join('?' for _ in schools)})", list(schools)


def daily_metrics(
    warehouse: Warehouse, start: date, end: date, schools: list[str], metrics: list[str]
) -> "pd.DataFrame":
    """One row per (day, school) with the chosen daily metrics; days a school is in neither mart are absent."""
    where, params = _in_clause(schools)
    data = frame(
        warehouse.query(
            f"""
        with engagement as (
            select * from marts.fct_daily_engagement where activity_date between ? and ?{where}
        ),
        rolling as (
            select * from marts.fct_engagement_rolling
            where activity_date between ? and ? and org_id <> '{ALL_SCHOOLS}'{where}
        )
        select coalesce(engagement.activity_date, rolling.activity_date) as activity_date,
               coalesce(engagement.org_id, rolling.org_id) as org_id,
               {", ".join(f"engagement.{m}" for m in ENGAGEMENT_METRICS)},
               {", ".join(f"rolling.{m}" for m in ROLLING_METRICS)}
        from engagement
        full outer join rolling
            on engagement.activity_date = rolling.activity_date and engagement.org_id = rolling.org_id
        order by 1, 2
        """,
            [start, end, *params, start, end, *params],
        )
    )
    if data.empty:
        return pd.DataFrame(columns=["activity_date", "org_id", *metrics])
    for column in ("active_users", "new_users", "returning_users", "events", "sessions"):
        data[column] = pd.to_numeric(data[column]).fillna(0).astype("int64")  # no engagement row: no activity
    return data[["activity_date", "org_id", *[m for m in metrics if m in data.columns]]]


def activity_mix(warehouse: Warehouse, start: date, end: date, schools: list[str]) -> "pd.DataFrame":
    where, params = _in_clause(schools)
    return frame(
        warehouse.query(
            f"""
        select org_id, activity_type, cast(sum(events) as bigint) as events,
               100.0 * sum(events) / sum(sum(events)) over (partition by org_id) as share_of_events_pct
        from marts.fct_activity_summary
        where activity_date between ? and ?{where}
        group by org_id, activity_type
        order by org_id, events desc, activity_type
        """,
            [start, end, *params],
        )
    )


def _known_schools(warehouse: Warehouse) -> set[str]:
    rows = warehouse.query("select distinct org_id from marts.fct_daily_engagement").to_pylist()
    return set(school_names(warehouse)) | {row["org_id"] for row in rows}


def _html(request: dict[str, Any], daily: "pd.DataFrame | None", mix: "pd.DataFrame | None", metrics: list[str]) -> str:
    sections = [
        (
            "Request",
            html_table(
                pd.DataFrame(
                    [{"setting": k, "value": ", ".join(v) if isinstance(v, list) else v} for k, v in request.items()]
                )
            ),
        )
    ]
    if daily is not None:
        dates = sorted(daily["activity_date"].unique())
        for metric in (m for m in metrics if m in daily.columns):
            series = {
                name: [rows.set_index("activity_date")[metric].get(day) for day in dates]
                for name, rows in daily.groupby("school")
            }
            png = charts.lines([d.isoformat() for d in dates], series, label(metric))
            sections.append((label(metric), image(png, f"{label(metric)} by school")))
        sections.append(("Daily metrics", html_table(daily)))
    if mix is not None:
        totals = mix.groupby("activity_type", as_index=False)["events"].sum().sort_values("events", ascending=False)
        png = charts.activity_mix(list(totals["activity_type"]), [int(v) for v in totals["events"]])
        sections.append(("Activity mix", image(png, "Activity mix, all chosen schools") + html_table(mix)))
    title = f"Custom report {request['start_date']} to {request['end_date']}"
    return page(title, f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.", sections)


def build_custom_report(
    warehouse: Warehouse, reports_dir: Path, config: CustomReportConfig, run_id: str, today: date
) -> list[Path]:
    """Validate the request, query the marts and write the files; returns the written paths."""
    start, end = resolve_window(config, today)
    metrics = resolve_metrics(config)
    schools = list(dict.fromkeys(s.strip() for s in config.schools if s.strip()))
    if not warehouse.table_exists("marts.fct_daily_engagement"):
        raise CustomReportError("The engagement marts are not built yet; run `analytics-pipeline backfill` first.")
    unknown = sorted(set(schools) - _known_schools(warehouse))
    if unknown:
        raise CustomReportError(f"Unknown school(s): {', '.join(unknown)}; give org_ids as in the organizations data.")
    names = school_names(warehouse)

    daily = mix = None
    if any(m != "activity_mix" for m in metrics):
        daily = daily_metrics(warehouse, start, end, schools, [m for m in metrics if m != "activity_mix"])
        daily.insert(2, "school", [names.get(org, org) for org in daily["org_id"]])
    if "activity_mix" in metrics:
        mix = activity_mix(warehouse, start, end, schools)
        mix.insert(1, "school", [names.get(org, org) for org in mix["org_id"]])
    if all(table is None or table.empty for table in (daily, mix)):
        chosen = ", ".join(schools) if schools else "any school"
        raise CustomReportError(f"No data from {start} to {end} for {chosen}; nothing was written.")

    request = {
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "schools": schools or ["(all)"],
        "metrics": metrics,
        "format": config.format,
        "run_id": run_id,
    }
    final = reports_dir / "custom" / run_id
    staging = staging_folder(final)
    try:
        (staging / "request.json").write_text(json.dumps(request, indent=2))
        tables = {name: t for name, t in (("daily_metrics", daily), ("activity_mix", mix)) if t is not None}
        if config.format == "csv":
            for name, table in tables.items():
                write_csv(table, staging / f"{name}.csv")
        elif config.format == "xlsx":
            write_xlsx(tables, staging / "custom_report.xlsx")
        else:
            (staging / "custom_report.html").write_text(_html(request, daily, mix, metrics), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)  # a re-executed run replaces its own report
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(final.iterdir())


@dg.op(
    pool=WAREHOUSE_POOL,
    tags=on_queue(REPORTS_QUEUE),
    retry_policy=TRANSIENT_RETRY_POLICY,
    description="Write a custom report (date range, schools, metrics, format) under reports/custom/<run_id>/.",
)
def write_custom_report(
    context: dg.OpExecutionContext, config: CustomReportConfig, warehouse: WarehouseResource, reports: ReportsResource
) -> None:
    with failures_are_final("The custom report", CustomReportError):
        files = build_custom_report(
            warehouse.get_client(), reports.folder, config, context.run_id, datetime.now(UTC).date()
        )
    log.info(f"custom report: {', '.join(str(path) for path in files)}")
    context.add_output_metadata(
        {
            "folder": dg.MetadataValue.path(str(files[0].parent)),
            **{path.name: dg.MetadataValue.path(str(path)) for path in files},
        }
    )


@dg.job(
    name="custom_report",
    description="On-demand report: set the date range, schools, metrics and format in the launchpad.",
    tags={"kind": "report"},
)
def custom_report_job() -> None:
    write_custom_report()
