"""Schedules, the landing-file sensor and run-failure alerting, evaluated with Dagster's test
contexts against real files and a real (ephemeral) instance."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest
from conftest import pipeline_resources

from analytics_pipeline.defs.ingestion import sensors
from analytics_pipeline.defs.ingestion.sensors import contiguous_ranges, landing_file_sensor
from analytics_pipeline.defs.operations.alerts import run_failure_alert, run_success_clears_alert
from analytics_pipeline.defs.transform.schedules import daily_pipeline_schedule, hourly_refresh_schedule
from analytics_pipeline.resources.policies import failures_are_final
from analytics_pipeline.resources.warehouse import TransientWarehouseError, WarehouseError


@pytest.fixture
def warehouse_engine() -> str:
    """Nothing here touches the warehouse: one engine is enough."""
    return "duckdb"


OLD = time.time() - 3600  # settled files: written an hour ago


def put(landing: Path, relative: str, text: str = '{"event_id": "e"}\n', mtime: float = OLD) -> Path:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    return landing_file_sensor(
        dg.build_sensor_context(instance=instance, cursor=cursor, resources=pipeline_resources())
    )


def summary(result: dg.SensorResult) -> list[tuple[str | None, str | None, str | None, list[str]]]:
    return [
        (
            r.partition_key,
            r.tags.get("dagster/asset_partition_range_start"),
            r.tags.get("dagster/asset_partition_range_end"),
            sorted(k.to_user_string() for k in r.asset_selection if k.path[0] == "raw"),
        )
        for r in result.run_requests or []
    ]


def test_daily_schedule_runs_yesterday_and_hourly_runs_today(env) -> None:
    at_one = datetime(2025, 3, 5, 1, 0, tzinfo=UTC)
    request = daily_pipeline_schedule(dg.build_schedule_context(scheduled_execution_time=at_one))
    assert (request.partition_key, request.run_key) == ("2025-03-04", "daily:2025-03-04")
    request = hourly_refresh_schedule(
        dg.build_schedule_context(scheduled_execution_time=datetime(2025, 3, 5, 14, 5, tzinfo=UTC))
    )
    assert (request.partition_key, request.run_key) == ("2025-03-05", "hourly:2025-03-05T14")


def test_contiguous_ranges() -> None:
    days = [date(2025, 1, d) for d in (5, 1, 2, 3, 9, 10, 2)]
    assert contiguous_ranges(days) == [
        (date(2025, 1, 1), date(2025, 1, 3)),
        (date(2025, 1, 5), date(2025, 1, 5)),
        (date(2025, 1, 9), date(2025, 1, 10)),
    ]


def test_sensor_requests_exactly_the_affected_days_once(env) -> None:
    landing, instance = Path(env["ANALYTICS_LANDING_DIR"]), dg.DagsterInstance.ephemeral()
    put(landing, "activity_events/date=2025-03-01/a.jsonl")
    put(landing, "activity_events/date=2025-03-02/a.jsonl")
    put(landing, "order_lines/date=2025-03-02/o.csv", "order_id\n")
    put(landing, "activity_events/date=2025-03-07/a.jsonl")
    put(landing, "activity_events/date=2025-03-07/.a.jsonl.tmp")  # being written by the product: ignored
    put(landing, "users/users.csv", "user_id\n")

    # Dimensions first: the days of the same tick wait for the dimension run (their KPIs join them).
    dimensions_first = tick(instance, None)
    assert summary(dimensions_first) == [(None, None, None, ["raw/users"])]
    assert dimensions_first.run_requests[0].job_name == "dimension_refresh"
    waiting = tick(instance, dimensions_first.cursor)  # the dimension run has not ended: still waiting
    assert [r.run_key for r in waiting.run_requests] == [r.run_key for r in dimensions_first.run_requests]
    instance.report_runless_asset_event(dg.AssetMaterialization(["raw", "users"]))  # the dimension run loaded them

    first = tick(instance, waiting.cursor)
    assert summary(first) == [
        (None, "2025-03-01", "2025-03-02", ["raw/activity_events", "raw/order_lines"]),
        ("2025-03-07", None, None, ["raw/activity_events"]),
    ]
    daily = first.run_requests[0]
    assert daily.job_name == "daily_pipeline"
    assert any(k.to_user_string() == "marts/fct_daily_engagement" for k in daily.asset_selection)

    second = tick(instance, first.cursor)  # nothing changed: nothing requested
    assert not second.run_requests

    put(landing, "activity_events/date=2025-03-01/late.jsonl", mtime=time.time() - 60)  # a late file for an old day
    late = tick(instance, second.cursor)
    assert summary(late) == [("2025-03-01", None, None, ["raw/activity_events"])]
    again = tick(instance, second.cursor)  # the same tick evaluated twice: the same run key
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in late.run_requests]
    assert not tick(instance, late.cursor).run_requests

    put(landing, "activity_events/date=2025-03-07/a.jsonl", '{"event_id": "changed"}\n', mtime=time.time() - 30)
    changed = tick(instance, late.cursor)
    assert summary(changed) == [("2025-03-07", None, None, ["raw/activity_events"])]
    assert changed.run_requests[0].run_key != first.run_requests[1].run_key  # the 2025-03-07 request

    put(landing, "activity_events/date=2025-03-08/fresh.jsonl", mtime=time.time())  # still being written
    assert not tick(instance, changed.cursor).run_requests


def test_days_go_ahead_once_the_dimension_run_has_ended_even_failed(env) -> None:
    """A dimension run that failed does not hold the days back for ever: they run once it has ended."""
    landing, instance = Path(env["ANALYTICS_LANDING_DIR"]), dg.DagsterInstance.ephemeral()
    put(landing, "activity_events/date=2025-03-01/a.jsonl")
    put(landing, "items/items.csv", "item_id\n")
    [dimensions] = tick(instance, None).run_requests

    @dg.asset(name="stand_in_for_the_dimension_run")
    def failing() -> None:
        raise RuntimeError("the dimension files were unreadable")

    run = dg.materialize(
        [failing], instance=instance, tags={"dagster/run_key": dimensions.run_key}, raise_on_error=False
    )
    assert not run.success
    assert summary(tick(instance, None)) == [
        ("2025-03-01", None, None, ["raw/activity_events"]),
        (None, None, None, ["raw/items"]),  # the same run key: Dagster does not run it again
    ]
    assert tick(instance, None).run_requests[1].run_key == dimensions.run_key


def test_first_tick_skips_days_already_materialized(env) -> None:
    landing, instance = Path(env["ANALYTICS_LANDING_DIR"]), dg.DagsterInstance.ephemeral()
    for day in ("2025-03-01", "2025-03-02", "2025-03-03"):
        put(landing, f"activity_events/date={day}/a.jsonl")
    for day in ("2025-03-01", "2025-03-02"):  # a backfill already loaded these
        instance.report_runless_asset_event(dg.AssetMaterialization(["raw", "activity_events"], partition=day))
    assert summary(tick(instance, None)) == [("2025-03-03", None, None, ["raw/activity_events"])]


def test_first_tick_skips_dimension_files_loaded_since_they_were_written(env, monkeypatch: pytest.MonkeyPatch) -> None:
    """After `make demo`'s backfill the dimensions are loaded: the sensor's first tick leaves them,
    but reloads a dimension never loaded, and one whose file changed after its last load."""
    landing, instance = Path(env["ANALYTICS_LANDING_DIR"]), dg.DagsterInstance.ephemeral()
    put(landing, "users/users.csv", "user_id\n", mtime=OLD)
    put(landing, "organizations/orgs.csv", "org_id\n", mtime=OLD)
    put(landing, "items/items.csv", "item_id\n", mtime=OLD)
    for name in ("users", "organizations", "items"):  # the backfill loaded them (now, after OLD)
        instance.report_runless_asset_event(dg.AssetMaterialization(["raw", name]))
    assert not tick(instance, None).run_requests
    monkeypatch.setattr(sensors, "SETTLE_SECONDS", 0)  # so a file written after the load is settled at once
    put(landing, "items/items.csv", "item_id\n", mtime=time.time())  # changed after its load
    other = dg.DagsterInstance.ephemeral()  # a fresh instance: no dimension has been loaded
    other.report_runless_asset_event(dg.AssetMaterialization(["raw", "users"]))
    assert summary(tick(instance, None)) == [(None, None, None, ["raw/items"])]
    assert summary(tick(other, None)) == [(None, None, None, ["raw/items", "raw/organizations"])]


def test_sensor_stays_cheap_with_many_files(env) -> None:
    landing, instance = Path(env["ANALYTICS_LANDING_DIR"]), dg.DagsterInstance.ephemeral()
    for day in range(1, 29):
        for n in range(150):
            put(landing, f"activity_events/date=2025-02-{day:02d}/part-{n}.jsonl")
    first = tick(instance, None)
    assert summary(first) == [(None, "2025-02-01", "2025-02-28", ["raw/activity_events"])]
    assert int(first.run_requests[0].tags["analytics/files"]) == 28 * 150
    assert len(first.cursor) < 10_000  # the cursor is a high-water mark, not a list of every file
    assert not tick(instance, first.cursor).run_requests


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@dg.op
def flaky(context) -> None:
    if context.run.tags.get("fail") == "yes":
        raise RuntimeError("the warehouse said no")


@dg.job
def flaky_job() -> None:
    flaky()


def test_failed_run_raises_an_alert_and_a_later_success_clears_it(env, monkeypatch: pytest.MonkeyPatch) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("ANALYTICS_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    monkeypatch.setenv("ANALYTICS_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ANALYTICS_ALERT_SMTP_PORT", "1")  # nothing listens: delivery fails, the alert stays
    monkeypatch.setenv("ANALYTICS_ALERT_EMAIL_TO", "ops@example.org")
    alerts = Path(env["ANALYTICS_OUTPUT_DIR"]) / "alerts"
    instance = dg.DagsterInstance.ephemeral()
    try:
        failed = flaky_job.execute_in_process(instance=instance, tags={"fail": "yes"}, raise_on_error=False)
        assert not failed.success
        run_failure_alert(
            dg.build_run_status_sensor_context(
                sensor_name="run_failure_alert",
                dagster_instance=instance,
                dagster_run=failed.dagster_run,
                dagster_event=failed.get_run_failure_event(),
                resources=pipeline_resources(),
            ).for_run_failure()
        )

        alert = json.loads((alerts / "open" / "flaky_job.json").read_text())
        assert alert["state"] == "open" and alert["run_id"] == failed.run_id
        assert "smtp 127.0.0.1:1" in alert["delivery_errors"][0]
        assert _Hook.received[-1]["job_name"] == "flaky_job" and _Hook.received[-1]["state"] == "open"

        succeeded = flaky_job.execute_in_process(instance=instance)
        run_success_clears_alert(
            dg.build_run_status_sensor_context(
                sensor_name="run_success_clears_alert",
                dagster_instance=instance,
                dagster_run=succeeded.dagster_run,
                dagster_event=succeeded.get_run_success_event(),
                resources=pipeline_resources(),
            )
        )

        assert not (alerts / "open" / "flaky_job.json").exists()
        [resolved] = list((alerts / "resolved").glob("flaky_job-*.json"))
        assert json.loads(resolved.read_text())["resolved_by_run_id"] == succeeded.run_id
        assert _Hook.received[-1]["state"] == "resolved"
    finally:
        server.shutdown()


def _materialize_users(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    from analytics_pipeline.defs.ingestion.assets import ingestion_assets

    users = next(a for a in ingestion_assets if a.key == dg.AssetKey(["raw", "users"]))
    return dg.materialize([users], resources=pipeline_resources(), instance=instance, raise_on_error=False)


def _events(result: dg.ExecuteInProcessResult, kind: str) -> int:
    return sum(1 for event in result.all_events if event.event_type_value == kind)


def test_transient_warehouse_errors_are_retried_with_backoff(env, monkeypatch: pytest.MonkeyPatch) -> None:
    import analytics_pipeline.defs.ingestion.assets as ingestion

    real_load, calls = ingestion.load_partition, []

    def flaky_load(*args, **kwargs):
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise TransientWarehouseError("The DuckDB file is in use by another process")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(ingestion, "load_partition", flaky_load)
    result = _materialize_users(dg.DagsterInstance.ephemeral())

    assert result.success
    assert len(calls) == 3 and _events(result, "STEP_UP_FOR_RETRY") == 2
    first_wait, second_wait = calls[1] - calls[0], calls[2] - calls[1]
    # exponential backoff with jitter: 2 s ± 2 s, then 6 s ± 2 s
    assert first_wait <= 8 and 3.9 <= second_wait <= 20


def test_errors_a_retry_cannot_fix_fail_at_once(env, monkeypatch: pytest.MonkeyPatch) -> None:
    import analytics_pipeline.defs.ingestion.assets as ingestion

    def broken_load(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(ingestion, "load_partition", broken_load)
    result = _materialize_users(dg.DagsterInstance.ephemeral())

    assert not result.success and _events(result, "STEP_UP_FOR_RETRY") == 0
    failure = result.failure_data_for_node("raw__users")
    assert "Loading users snapshot failed: KeyError: 'a bug'" in failure.user_failure_data.description


class _DomainError(Exception):
    """Stands for a domain's own error whose message says what to do (ReportDataError, ...)."""


@pytest.mark.parametrize(
    ("raised", "description"),
    [
        (TransientWarehouseError("database is locked"), None),
        (dg.Failure(description="said by the step", allow_retries=True), None),
        (WarehouseError("no such table marts.x"), "no such table marts.x"),
        (
            _DomainError("week 2025-W10 has no data: run the daily pipeline first"),
            "week 2025-W10 has no data: run the daily pipeline first",
        ),
        (ZeroDivisionError("division by zero"), "Writing x failed: ZeroDivisionError: division by zero"),
    ],
)
def test_failures_are_final_leaves_only_transient_errors_to_the_retry_policy(
    raised: Exception, description: str | None
) -> None:
    with pytest.raises(Exception) as caught, failures_are_final("Writing x", _DomainError):
        raise raised
    error = caught.value
    if description is None:  # passes through untouched: the retry policy decides on exactly this error
        assert error is raised
        return
    assert isinstance(error, dg.Failure) and error.allow_retries is False and error.__cause__ is raised
    assert error.description == description


def test_retry_transient_waits_out_a_held_lock_and_raises_anything_else_at_once(monkeypatch) -> None:
    from analytics_pipeline.resources import policies
    from analytics_pipeline.resources.warehouse import TransientWarehouseError, WarehouseError

    slept: list[float] = []
    monkeypatch.setattr(policies.time, "sleep", slept.append)
    outcomes = [TransientWarehouseError("locked"), TransientWarehouseError("locked"), None]

    def held_twice() -> None:
        outcome = outcomes.pop(0)
        if outcome:
            raise outcome

    policies.retry_transient(held_twice)
    assert (slept, outcomes) == ([2, 6], [])

    def always_locked() -> None:
        raise TransientWarehouseError("locked")

    slept.clear()
    with pytest.raises(TransientWarehouseError):
        policies.retry_transient(always_locked)
    assert slept == [2, 6, 14]

    def broken() -> None:
        raise WarehouseError("bad path")

    slept.clear()
    with pytest.raises(WarehouseError, match="bad path"):
        policies.retry_transient(broken)
    assert slept == []
