"""``ops.pipeline_task_health``: what Flower's task table told an operator, built from the Dagster
instance's run records.

One row per job and one per asset (``kind`` = ``job`` / ``asset``) over a window of days (asset
config ``window_days``, default 7) of runs created in it:

- ``runs``: runs in the window (for an asset: runs that materialized it or failed in its step);
  ``successes`` and ``failures``; canceled, queued and running runs count in ``runs`` only.
- ``success_rate`` = successes / (successes + failures), null while nothing has finished.
- ``avg_duration_seconds`` / ``p95_duration_seconds`` of successful runs (p95 interpolated linearly
  between ranks, like ``percentile_cont``). An asset's duration is its step's; the dbt models built
  by one dbt invocation share that step's duration.
- ``last_failure_at``, ``last_error`` (the failed step and its message) and ``last_failure_run_id``.

The table holds the latest snapshot, replaced in one transaction by each refresh (hourly schedule),
with ``recorded_at`` = when it was taken; the weekly retention job removes ``ops`` rows by
``recorded_at``. The history of the headline numbers is kept as the asset's materialization
metadata, which the UI plots over time.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow as pa
from pydantic import Field

from analytics_pipeline.defs.operations.run_history import RunFacts, runs_since
from analytics_pipeline.executors import WAREHOUSE_QUEUE, on_queue
from analytics_pipeline.lib.log_context import get_logger
from analytics_pipeline.metadata import markdown_table
from analytics_pipeline.resources.policies import TRANSIENT_RETRY_POLICY, WAREHOUSE_POOL, failures_are_final
from analytics_pipeline.resources.warehouse import (
    Column,
    Table,
    WarehouseResource,
)

# the step's log lines, prefixed with [run=… asset=… partition=…] (log_context.py)
log = get_logger("analytics_pipeline.task_health")

TASK_HEALTH_TABLE = Table(
    "ops.pipeline_task_health",
    (
        Column("recorded_at", "timestamp"),
        Column("window_start", "timestamp"),
        Column("window_days", "bigint"),
        Column("kind", "varchar"),
        Column("name", "varchar"),
        Column("runs", "bigint"),
        Column("successes", "bigint"),
        Column("failures", "bigint"),
        Column("success_rate", "double precision"),
        Column("avg_duration_seconds", "double precision"),
        Column("p95_duration_seconds", "double precision"),
        Column("last_success_at", "timestamp"),
        Column("last_failure_at", "timestamp"),
        Column("last_error", "varchar"),
        Column("last_failure_run_id", "varchar"),
    ),
)
_ARROW_SCHEMA = pa.schema(
    [
        ("recorded_at", pa.timestamp("us")),
        ("window_start", pa.timestamp("us")),
        ("window_days", pa.int64()),
        ("kind", pa.string()),
        ("name", pa.string()),
        ("runs", pa.int64()),
        ("successes", pa.int64()),
        ("failures", pa.int64()),
        ("success_rate", pa.float64()),
        ("avg_duration_seconds", pa.float64()),
        ("p95_duration_seconds", pa.float64()),
        ("last_success_at", pa.timestamp("us")),
        ("last_failure_at", pa.timestamp("us")),
        ("last_error", pa.string()),
        ("last_failure_run_id", pa.string()),
    ]
)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile with linear interpolation between closest ranks (SQL's ``percentile_cont``)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class TaskHealth:
    kind: str  # job or asset
    name: str
    runs: int = 0
    successes: int = 0
    failures: int = 0
    durations: list[float] = field(default_factory=list)
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error: str | None = None
    last_failure_run_id: str | None = None

    @property
    def success_rate(self) -> float | None:
        finished = self.successes + self.failures
        return self.successes / finished if finished else None

    @property
    def avg_duration_seconds(self) -> float | None:
        return sum(self.durations) / len(self.durations) if self.durations else None

    @property
    def p95_duration_seconds(self) -> float | None:
        return percentile(self.durations, 0.95)

    def record(
        self, succeeded: bool | None, at: datetime | None, seconds: float | None, error: str | None, run_id: str
    ) -> None:
        self.runs += 1
        if succeeded:
            self.successes += 1
            if seconds is not None:
                self.durations.append(seconds)
            if at and (self.last_success_at is None or at >= self.last_success_at):
                self.last_success_at = at
        elif succeeded is False:
            self.failures += 1
            if at and (self.last_failure_at is None or at >= self.last_failure_at):
                self.last_failure_at, self.last_error, self.last_failure_run_id = at, error, run_id


def summarize(runs: Sequence[RunFacts]) -> list[TaskHealth]:
    """Per job, then per asset, sorted by name."""
    jobs: dict[str, TaskHealth] = {}
    assets: dict[str, TaskHealth] = {}
    for run in runs:
        outcome = {dg.DagsterRunStatus.SUCCESS: True, dg.DagsterRunStatus.FAILURE: False}.get(run.status)
        job = jobs.setdefault(run.job_name, TaskHealth("job", run.job_name))
        job.record(outcome, run.ended_at, run.seconds if outcome else None, run.error, run.run_id)
        for attempt in run.assets:
            asset = assets.setdefault(attempt.asset, TaskHealth("asset", attempt.asset))
            asset.record(attempt.succeeded, attempt.at, attempt.seconds, attempt.error, run.run_id)
    return [jobs[name] for name in sorted(jobs)] + [assets[name] for name in sorted(assets)]


def compute_task_health(
    instance: dg.DagsterInstance, window_start: datetime, exclude_run_ids: Sequence[str] = ()
) -> list[TaskHealth]:
    return summarize(runs_since(instance, window_start, with_assets=True, exclude=exclude_run_ids))


def _naive(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC).replace(tzinfo=None) if value else None


def to_arrow(rows: Sequence[TaskHealth], recorded_at: datetime, window_start: datetime, window_days: int) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "recorded_at": _naive(recorded_at),
                "window_start": _naive(window_start),
                "window_days": window_days,
                "kind": r.kind,
                "name": r.name,
                "runs": r.runs,
                "successes": r.successes,
                "failures": r.failures,
                "success_rate": r.success_rate,
                "avg_duration_seconds": r.avg_duration_seconds,
                "p95_duration_seconds": r.p95_duration_seconds,
                "last_success_at": _naive(r.last_success_at),
                "last_failure_at": _naive(r.last_failure_at),
                "last_error": r.last_error,
                "last_failure_run_id": r.last_failure_run_id,
            }
            for r in rows
        ],
        schema=_ARROW_SCHEMA,
    )


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if value < 1 else f"{value:.1f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value).replace("|", "/").replace("\n", " ")[:120]


def preview(rows: Sequence[TaskHealth], limit: int = 25) -> str:
    """Markdown table: every job, then the assets with the most failures."""
    jobs = [r for r in rows if r.kind == "job"]
    assets = sorted((r for r in rows if r.kind == "asset"), key=lambda r: (-r.failures, r.name))
    header = ["kind", "name", "runs", "ok", "failed", "success rate", "avg s", "p95 s", "last failure", "last error"]
    rows = [
        [
            r.kind,
            r.name,
            r.runs,
            r.successes,
            r.failures,
            r.success_rate,
            r.avg_duration_seconds,
            r.p95_duration_seconds,
            r.last_failure_at,
            r.last_error,
        ]
        for r in [*jobs, *assets][:limit]
    ]
    return markdown_table(header, rows, _cell)


class TaskHealthConfig(dg.Config):
    window_days: int = Field(default=7, description="Days of runs (by creation time) to summarize.")


@dg.asset(
    key=["ops", "pipeline_task_health"],
    group_name="operations",
    pool=WAREHOUSE_POOL,
    op_tags=on_queue(WAREHOUSE_QUEUE),
    retry_policy=TRANSIENT_RETRY_POLICY,
    kinds={"python"},
    description="Per job and per asset over a window of days: runs, successes, failures, success rate, "
    "average and p95 duration of successful runs, last failure and its error (from the Dagster instance).",
)
def pipeline_task_health(
    context: dg.AssetExecutionContext, config: TaskHealthConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    if config.window_days < 1:
        raise dg.Failure(description=f"window_days={config.window_days}: give at least 1 day.", allow_retries=False)
    recorded_at = datetime.now(UTC)
    window_start = recorded_at - timedelta(days=config.window_days)
    # the run computing the snapshot is still going: leave it out rather than count it as neither
    rows = compute_task_health(context.instance, window_start, exclude_run_ids=[context.run_id])
    client = warehouse.get_client()
    with failures_are_final("Writing ops.pipeline_task_health"):
        client.ensure_ready([TASK_HEALTH_TABLE])
        client.replace_rows([(TASK_HEALTH_TABLE, {}, to_arrow(rows, recorded_at, window_start, config.window_days))])
    jobs = [r for r in rows if r.kind == "job"]
    successes, failures = sum(r.successes for r in jobs), sum(r.failures for r in jobs)
    log.info(f"task health over {config.window_days} days: {len(jobs)} jobs, {len(rows) - len(jobs)} assets")
    metadata: dict[str, object] = {
        "window_days": config.window_days,
        "jobs": len(jobs),
        "assets": len(rows) - len(jobs),
        "runs": sum(r.runs for r in jobs),
        "failed_runs": failures,
        "failing_assets": sum(1 for r in rows if r.kind == "asset" and r.failures),
        "preview": dg.MetadataValue.md(preview(rows)),
    }
    if successes + failures:
        metadata["run_success_rate"] = successes / (successes + failures)
    return dg.MaterializeResult(metadata=metadata)


task_health_job = dg.define_asset_job(
    name="task_health_refresh",
    selection=[pipeline_task_health],
    description="Rebuild ops.pipeline_task_health from the instance's run records.",
)

task_health_schedule = dg.ScheduleDefinition(
    name="task_health_schedule",
    job=task_health_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    description="Hourly at :15: refresh ops.pipeline_task_health (runs, failures, durations per job and asset).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
