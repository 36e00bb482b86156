"""``analytics-pipeline metrics``: the pipeline's health and run history in Prometheus' text format.

A custom collector measures afresh on every scrape (opens the instance, pings the warehouse, reads
the run records and the rejected-record counts) and keeps no state between scrapes, so a scrape
always tells the present. ``metrics --serve PORT`` serves ``/metrics``; ``metrics`` alone prints
one scrape.

Run metrics cover the runs created in the last ``window_days`` (default 7), the same window as
``ops.pipeline_task_health``; they are gauges over that window, not lifetime counters.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from threading import Thread
from wsgiref.simple_server import WSGIServer

import dagster as dg
from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from analytics_pipeline.defs.operations import health
from analytics_pipeline.defs.operations.run_history import runs_since
from analytics_pipeline.defs.operations.task_health import summarize
from analytics_pipeline.lib.ingestion.readers import UNREADABLE_FILE_SQL
from analytics_pipeline.lib.log_context import get_logger
from analytics_pipeline.resources.warehouse import Warehouse, WarehouseError
from analytics_pipeline.settings import Settings, get_settings

PREFIX = "analytics_pipeline"
log = get_logger("analytics_pipeline.metrics")


def _gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=list(labels))


class PipelineCollector(Collector):
    def __init__(self, window_days: int = 7):
        self.window_days = window_days

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        settings, now = get_settings(), datetime.now(UTC)
        try:
            instance = health.open_instance()
        except Exception:
            instance = None
        try:
            report = health.evaluate(settings, instance=instance, now=now)
            yield from self._health(report)
            if instance is not None and report.check("instance").status == health.OK:
                try:
                    yield from list(self._runs(instance, now))
                except Exception as error:
                    log.warning(f"run metrics skipped this scrape: {error}")
            if report.check("warehouse").status == health.OK:
                yield from self._warehouse(settings)
        finally:
            if instance is not None:
                instance.dispose()
        duration = _gauge("scrape_duration_seconds", "Time this scrape took to measure everything.")
        duration.add_metric([], time.perf_counter() - started)
        yield duration

    @staticmethod
    def _health(report: health.HealthReport) -> Iterator[Metric]:
        status = _gauge(
            "health_status",
            "Health check status: 0 ok, 1 degraded, 2 down (see `analytics-pipeline health`).",
            ("check",),
        )
        for check in report.checks:
            status.add_metric([check.name], health.STATUSES.index(check.status))
        overall = _gauge("health_overall_status", "Worst health check status: 0 ok, 1 degraded, 2 down.")
        overall.add_metric([], report.exit_code)
        up = _gauge("up", "1 when the component answers this scrape, else 0.", ("component",))
        for name in ("warehouse", "instance"):
            up.add_metric([name], 1 if report.check(name).status == health.OK else 0)
        yield from (status, overall, up)

        daemons = _gauge("daemon_healthy", "1 when the daemon sent a recent heartbeat without errors.", ("daemon",))
        for daemon, state in report.check("daemon").details.get("daemons", {}).items():
            if state["healthy"] is not None:
                daemons.add_metric([daemon], 1 if state["healthy"] and not state["errors"] else 0)
        freshness = report.check("freshness").details
        age = _gauge(
            "key_mart_seconds_since_materialization",
            "Seconds since the key mart's latest materialization (absent if never).",
            ("asset",),
        )
        for asset, state in freshness.get("assets", {}).items():
            if state["age_seconds"] is not None:
                age.add_metric([asset], state["age_seconds"])
        yield from (daemons, age)
        if "fail_after_seconds" in freshness:
            limit = _gauge("key_mart_freshness_fail_after_seconds", "Freshness policy of the key marts: fails after.")
            limit.add_metric([], freshness["fail_after_seconds"])
            yield limit

        failing = report.check("checks").details.get("failing", [])
        counts = Counter(f["severity"] for f in failing)
        failed = _gauge("failed_asset_checks", "Asset checks whose latest evaluation failed.", ("severity",))
        for severity in ("ERROR", "WARN"):
            failed.add_metric([severity], counts.get(severity, 0))
        each = _gauge(
            "asset_check_failed",
            "1 for each asset check whose latest evaluation failed.",
            ("asset", "check", "severity"),
        )
        for f in failing:
            each.add_metric([f["asset"], f["check"], f["severity"]], 1)
        yield from (failed, each)

    def _runs(self, instance: dg.DagsterInstance, now: datetime) -> Iterator[Metric]:
        window = timedelta(days=self.window_days)
        runs = runs_since(instance, now - window)
        span = _gauge("run_window_seconds", "Length of the window the run metrics cover.")
        span.add_metric([], window.total_seconds())
        by_status = _gauge("runs", "Runs created in the window, by job and status.", ("job", "status"))
        for (job, status), count in sorted(Counter((r.job_name, r.status.value.lower()) for r in runs).items()):
            by_status.add_metric([job, status], count)
        rate = _gauge("run_success_ratio", "Successful / finished (success + failure) runs in the window.", ("job",))
        avg = _gauge("run_duration_avg_seconds", "Average duration of successful runs in the window.", ("job",))
        p95 = _gauge("run_duration_p95_seconds", "95th percentile duration of successful runs in the window.", ("job",))
        last = _gauge(
            "run_last_success_timestamp_seconds", "When the job's latest successful run in the window ended.", ("job",)
        )
        for row in (r for r in summarize(runs) if r.kind == "job"):
            for gauge, value in (
                (rate, row.success_rate),
                (avg, row.avg_duration_seconds),
                (p95, row.p95_duration_seconds),
                (last, row.last_success_at.timestamp() if row.last_success_at else None),
            ):
                if value is not None:
                    gauge.add_metric([row.name], value)
        yield from (span, by_status, rate, avg, p95, last)

    @staticmethod
    def _warehouse(settings: Settings) -> Iterator[Metric]:
        rejected = _gauge("rejected_records", "Records in raw.rejected_records, by dataset.", ("dataset",))
        lines = _gauge(
            "landing_lines_read", "Lines read from landing files (raw.ingested_files), by dataset.", ("dataset",)
        )
        files = _gauge("landing_files_rejected", "Landing files rejected whole (unreadable), by dataset.", ("dataset",))
        try:
            # a reader: shares the DuckDB file with other readers, never makes a writing step fail
            with Warehouse(settings).reading(wait_seconds=health.WAREHOUSE_CONNECT_TIMEOUT) as session:
                present = {
                    row["name"]
                    for row in session.query(
                        "select table_schema || '.' || table_name as name from information_schema.tables "
                        "where table_schema = 'raw' and table_name in ('rejected_records', 'ingested_files')"
                    ).to_pylist()
                }
                if "raw.rejected_records" in present:
                    for row in session.query(
                        "select dataset, count(*) as n from raw.rejected_records group by dataset"
                    ).to_pylist():
                        rejected.add_metric([row["dataset"]], row["n"])
                if "raw.ingested_files" in present:
                    for row in session.query(
                        # a file skipped on purpose (ledger 'skipped: ...') is not a rejected file
                        f"select dataset, sum(lines_read) as lines, sum(case when {UNREADABLE_FILE_SQL} "
                        "then 1 else 0 end) as bad from raw.ingested_files group by dataset"
                    ).to_pylist():
                        lines.add_metric([row["dataset"]], row["lines"] or 0)
                        files.add_metric([row["dataset"]], row["bad"] or 0)
        except WarehouseError as error:  # e.g. DuckDB locked by a run between the ping and now
            log.warning(f"rejected-record metrics skipped this scrape: {error}")
            return
        yield from (rejected, lines, files)


def build_registry(window_days: int = 7) -> CollectorRegistry:
    # auto_describe off: registering must not scrape; every collect() happens on a request
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(window_days))
    return registry


def render(window_days: int = 7) -> str:
    """One scrape in the Prometheus text format."""
    return generate_latest(build_registry(window_days)).decode()


def serve(port: int, host: str = "127.0.0.1", window_days: int = 7) -> tuple[WSGIServer, Thread]:
    """Serve ``/metrics`` on a background thread; returns the server (``shutdown()`` stops it)."""
    return start_http_server(port, addr=host, registry=build_registry(window_days))
