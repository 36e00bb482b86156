"""Weekly reports: what the Monday 09:00 report task did, as a weekly-partitioned asset.

One partition is one week, Monday to Sunday (UTC). A run writes, for every school and for the
platform, CSV tables, an XLSX workbook and a self-contained HTML page with charts:

    <ANALYTICS_OUTPUT_DIR>/reports/<week start YYYY-MM-DD>/<org_id>/summary.csv, daily.csv, activity.csv,
                                                           report.xlsx, report.html
    <ANALYTICS_OUTPUT_DIR>/reports/<week start YYYY-MM-DD>/platform/...   (+ schools.csv, kpis.csv, ...)
    <ANALYTICS_OUTPUT_DIR>/reports/<week start YYYY-MM-DD>/manifest.json

The week's folder is written next to its final place and swapped in when complete, so re-running a
week replaces that week's files and nobody ever reads a half-written report. The retention job
deletes week folders older than ``ANALYTICS_RETENTION_REPORT_DAYS``.
"""

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from analytics_pipeline.executors import REPORTS_QUEUE, on_queue
from analytics_pipeline.lib.log_context import get_logger
from analytics_pipeline.lib.reporting.documents import cell, write_report
from analytics_pipeline.lib.reporting.figures import (
    ReportDataError,
    TargetReport,
    Week,
    forecast_highlights,
    kpis,
    platform_report,
    read_week,
    school_report,
)
from analytics_pipeline.metadata import markdown_table
from analytics_pipeline.partitions import weekly_partitions
from analytics_pipeline.resources.policies import TRANSIENT_RETRY_POLICY, WAREHOUSE_POOL, failures_are_final
from analytics_pipeline.resources.reports import ReportsResource
from analytics_pipeline.resources.warehouse import Warehouse, WarehouseResource

# the step's log lines, prefixed with [run=… asset=… partition=…] (log_context.py)
log = get_logger("analytics_pipeline.reporting")

WEEKLY_REPORTS_KEY = dg.AssetKey(["reporting", "weekly_reports"])
MANIFEST = "manifest.json"

# A week's report reads that week's days; engagement numbers are compared with the week before, so
# those marts map to the previous week's days as well. Days before ANALYTICS_START_DATE do not exist.
_THE_WEEK = dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)
_WITH_PREVIOUS_WEEK = dg.TimeWindowPartitionMapping(start_offset=-1, allow_nonexistent_upstream_partitions=True)
REPORT_DEPS = [
    dg.AssetDep(dg.AssetKey(["marts", "fct_daily_engagement"]), partition_mapping=_WITH_PREVIOUS_WEEK),
    dg.AssetDep(dg.AssetKey(["marts", "fct_engagement_rolling"]), partition_mapping=_WITH_PREVIOUS_WEEK),
    dg.AssetDep(dg.AssetKey(["marts", "fct_activity_summary"]), partition_mapping=_WITH_PREVIOUS_WEEK),
    dg.AssetDep(dg.AssetKey(["marts", "fct_kpi_daily"]), partition_mapping=_THE_WEEK),
    dg.AssetDep(dg.AssetKey(["marts", "kpi_snapshots"]), partition_mapping=_THE_WEEK),
    dg.AssetDep(dg.AssetKey(["raw", "organizations"])),  # school names
    # forecast highlights of the platform report: the latest vintage up to the week's end
    dg.AssetDep(dg.AssetKey(["forecast", "demand_forecasts"]), partition_mapping=_THE_WEEK),
    dg.AssetDep(dg.AssetKey(["marts", "mart_reorder_recommendations"])),
]


def week_folder(reports_dir: Path, week: Week) -> Path:
    return reports_dir / week.start.isoformat()


@dataclass
class WeeklyBuild:
    week: Week
    folder: Path
    platform: TargetReport
    schools: list[TargetReport]
    files: dict[str, list[Path]] = field(default_factory=dict)  # report folder name -> final file paths


def staging_folder(final: Path) -> Path:
    """A new empty folder beside ``final`` to write into before :func:`swap_in`.

    Created exclusively under a random name (``mkdtemp``), so a folder or link someone planted
    where it would go is never written through; its permissions are an ordinary folder's."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.partial-"))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def swap_in(staging: Path, final: Path) -> None:
    """Put the complete ``staging`` folder in ``final``'s place; the old folder goes only after."""
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _manifest(build: WeeklyBuild, run_id: str) -> dict[str, Any]:
    return {
        "week_start": build.week.start.isoformat(),
        "week_end": build.week.end.isoformat(),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        "reports": [
            {
                "target": report.target,
                "name": report.name,
                "folder": report.folder,
                "files": [path.name for path in build.files[report.folder]],
            }
            for report in (build.platform, *build.schools)
        ],
    }


def build_weekly_reports(warehouse: Warehouse, reports_dir: Path, week: Week, run_id: str = "manual") -> WeeklyBuild:
    """Read the week's numbers and write every school's report and the platform's, replacing the week."""
    data = read_week(warehouse, week)
    schools = [school_report(data, org) for org in data.schools]
    platform = platform_report(data, schools)
    platform.extra["kpis"], platform.extra["kpi_daily"] = kpis(warehouse, week)
    platform.extra["forecast"], platform.extra["reorder"], notes = forecast_highlights(warehouse, week)
    platform.notes += notes

    final = week_folder(reports_dir, week)
    build = WeeklyBuild(week, final, platform, schools)
    staging = staging_folder(final)
    try:
        for report in (platform, *schools):
            written = write_report(report, staging / report.folder)
            build.files[report.folder] = [final / report.folder / path.name for path in written]
        (staging / MANIFEST).write_text(json.dumps(_manifest(build, run_id), indent=2))
        swap_in(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return build


# -- the asset -------------------------------------------------------------------------------------


def _preview(build: WeeklyBuild) -> str:
    metrics = ("weekly_active_users", "avg_daily_active_users", "new_users", "events")
    rows = []
    for report in (build.platform, *build.schools):
        summary = report.summary.set_index("metric")
        rows.append([report.name, *(summary.at[m, "this_week"] for m in metrics), summary.at["events", "change_pct"]])
    return markdown_table(["report", "WAU", "avg DAU", "new users", "events", "events change %"], rows, cell)


def _metadata(build: WeeklyBuild) -> dict[str, Any]:
    platform = build.files[build.platform.folder]
    metadata: dict[str, Any] = {
        "week": str(build.week),
        "folder": dg.MetadataValue.path(str(build.folder)),
        "platform_report": dg.MetadataValue.path(str(next(p for p in platform if p.suffix == ".html"))),
        "platform_workbook": dg.MetadataValue.path(str(next(p for p in platform if p.suffix == ".xlsx"))),
        "schools": len(build.schools),
        "files": sum(len(files) for files in build.files.values()),
        "preview": dg.MetadataValue.md(_preview(build)),
        "reports": dg.MetadataValue.md(
            markdown_table(
                ["report", "HTML"],
                [[r.name, str(build.folder / r.folder / "report.html")] for r in build.schools],
                cell,
            )
        ),
    }
    for metric in ("weekly_active_users", "events", "new_users"):
        value = build.platform.headline(metric)
        if value is not None:
            metadata[metric] = int(value)  # plotted over time in the UI
    if build.platform.notes:
        metadata["notes"] = " ".join(build.platform.notes)
    return metadata


@dg.asset(
    key=WEEKLY_REPORTS_KEY,
    group_name="reporting",
    partitions_def=weekly_partitions,
    deps=REPORT_DEPS,
    retry_policy=TRANSIENT_RETRY_POLICY,
    op_tags=on_queue(REPORTS_QUEUE),
    pool=WAREHOUSE_POOL,  # reads the warehouse: waits for writers instead of hitting the DuckDB lock
    kinds={"python", "html", "csv"},
    description="Weekly report per school and for the platform (CSV, XLSX, HTML with charts) under "
    "<ANALYTICS_OUTPUT_DIR>/reports/<week start>/.",
)
def weekly_reports(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, reports: ReportsResource
) -> dg.MaterializeResult:
    week = Week.from_key(context.partition_key)
    with failures_are_final(f"Writing the weekly reports for {week}", ReportDataError):
        build = build_weekly_reports(warehouse.get_client(), reports.folder, week, context.run_id)
    log.info(f"weekly reports for {week}: {len(build.schools)} schools and the platform in {build.folder}")
    for note in build.platform.notes:
        log.warning(note)
    return dg.MaterializeResult(metadata=_metadata(build))
