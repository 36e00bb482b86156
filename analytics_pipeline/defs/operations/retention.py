"""Weekly retention: what the old cleanup tasks did, with the periods in configuration.

- raw activity events (and their rejected records and file ledger) older than
  ``ANALYTICS_RETENTION_ACTIVITY_DAYS`` (default 90) are deleted from the warehouse. The derived
  history is kept: ``int_user_activity_daily`` and the marts still know every user's first day, and
  the landing files are left alone, so an old day can always be re-loaded.
- pipeline operations data older than ``ANALYTICS_RETENTION_OPS_DAYS`` (default 30): the
  ``ops`` schema's tables with a ``recorded_at`` column and resolved alert files.
- step outputs of runs (``$DAGSTER_HOME/storage/<run id>/``) older than the same ops period.
- report folders (``<ANALYTICS_OUTPUT_DIR>/reports/<YYYY-MM-DD>/``, one per week) older than
  ``ANALYTICS_RETENTION_REPORT_DAYS`` (default 180).
"""

import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from analytics_pipeline.executors import WAREHOUSE_QUEUE, on_queue
from analytics_pipeline.lib.log_context import get_logger
from analytics_pipeline.resources.alerting import AlertingResource
from analytics_pipeline.resources.policies import WAREHOUSE_POOL
from analytics_pipeline.resources.reports import ReportsResource
from analytics_pipeline.resources.retention import RetentionResource
from analytics_pipeline.resources.warehouse import Warehouse, WarehouseResource

# a run's folder of step outputs is named by its run id; nothing else there is touched
_RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# the step's log lines, prefixed with [run=… asset=… partition=…] (log_context.py)
log = get_logger("analytics_pipeline.retention")


@dataclass
class RetentionReport:
    rows_deleted: dict[str, int] = field(default_factory=dict)
    files_deleted: list[str] = field(default_factory=list)


def _count_and_delete(warehouse: Warehouse, table: str, where: str, params: tuple) -> int:
    with warehouse.transaction() as session:
        count = session.query(f"select count(*) as n from {table} where {where}", params).column(0)[0].as_py()
        session.execute(f"delete from {table} where {where}", params)
    return int(count)


def _ops_tables(warehouse: Warehouse) -> list[str]:
    rows = warehouse.query(
        "select table_schema || '.' || table_name as name from information_schema.columns "
        "where table_schema = 'ops' and column_name = 'recorded_at' order by 1"
    ).to_pylist()
    return [row["name"] for row in rows]


def apply_retention(
    warehouse: Warehouse,
    retention: RetentionResource,
    alerting: AlertingResource,
    reports: ReportsResource,
    today: date,
) -> RetentionReport:
    """Delete what is past its period; files are named relative to the output folder that holds them."""
    report = RetentionReport()
    activity_cutoff = today - timedelta(days=retention.activity_days)
    if warehouse.table_exists("raw.activity_events"):
        report.rows_deleted["raw.activity_events"] = _count_and_delete(
            warehouse, "raw.activity_events", "_partition_date < ?", (activity_cutoff,)
        )
        for table in ("raw.rejected_records", "raw.ingested_files"):
            report.rows_deleted[table] = _count_and_delete(
                warehouse, table, "dataset = 'activity_events' and partition_date < ?", (activity_cutoff,)
            )
    ops_cutoff = datetime.combine(today - timedelta(days=retention.ops_days), datetime.min.time())
    for table in _ops_tables(warehouse):
        report.rows_deleted[table] = _count_and_delete(warehouse, table, "recorded_at < ?", (ops_cutoff,))
    resolved = alerting.folder / "resolved"
    if resolved.is_dir():
        for path in sorted(resolved.glob("*.json")):
            if datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).date() < ops_cutoff.date():
                path.unlink()
                report.files_deleted.append(str(path.relative_to(alerting.folder.parent)))
    # Step outputs Dagster keeps per run under $DAGSTER_HOME/storage/<run id>/ (the forecasting range
    # steps hand their results to the writer through them): a run folder past the ops period goes.
    storage = retention.storage
    if storage.is_dir():
        for folder in sorted(p for p in storage.iterdir() if p.is_dir() and _RUN_ID.match(p.name)):
            if datetime.fromtimestamp(folder.stat().st_mtime, tz=UTC).date() < ops_cutoff.date():
                shutil.rmtree(folder)
                report.files_deleted.append(f"$DAGSTER_HOME/storage/{folder.name}/")
    report_cutoff = today - timedelta(days=retention.report_days)
    if reports.folder.is_dir():
        for folder in sorted(p for p in reports.folder.iterdir() if p.is_dir()):
            try:
                week = date.fromisoformat(folder.name)
            except ValueError:
                continue  # not a week folder: never delete what we did not write
            if week < report_cutoff:
                shutil.rmtree(folder)
                report.files_deleted.append(str(folder.relative_to(reports.folder.parent)) + "/")
    return report


@dg.op(
    description="Delete data past its retention period (see analytics_pipeline/defs/operations/retention.py).",
    pool=WAREHOUSE_POOL,
    tags=on_queue(WAREHOUSE_QUEUE),
)
def apply_retention_policies(
    context: dg.OpExecutionContext,
    warehouse: WarehouseResource,
    retention: RetentionResource,
    alerting: AlertingResource,
    reports: ReportsResource,
) -> None:
    report = apply_retention(warehouse.get_client(), retention, alerting, reports, datetime.now(UTC).date())
    log.info(f"retention: {report.rows_deleted}, {len(report.files_deleted)} files")
    context.add_output_metadata(
        {
            **{f"rows_deleted.{table}": count for table, count in report.rows_deleted.items()},
            "files_deleted": len(report.files_deleted),
            "activity_days": retention.activity_days,
            "ops_days": retention.ops_days,
            "report_days": retention.report_days,
        }
    )


@dg.job(description="Weekly retention of raw activity, operations data and report files.")
def retention_job() -> None:
    apply_retention_policies()


retention_schedule = dg.ScheduleDefinition(
    name="weekly_retention_schedule",
    job=retention_job,
    cron_schedule="0 3 * * 0",
    execution_timezone="UTC",
    description="Sundays 03:00 UTC: delete data past its retention period (periods are settings).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
