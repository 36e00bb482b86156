"""ops.pipeline_task_health from a run history made by real runs (successes, failures, a run never started)
on the test's Dagster instance, checked against numbers worked out by hand, on both warehouses."""

import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from conftest import pipeline_resources

from analytics_pipeline.defs.operations.task_health import (
    compute_task_health,
    percentile,
    pipeline_task_health,
    task_health_job,
    task_health_schedule,
)
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import get_settings


@dg.op
def work(context: dg.OpExecutionContext) -> None:
    time.sleep(float(context.run.tags.get("sleep", "0")))
    if context.run.tags.get("fail") == "yes":
        raise RuntimeError("the warehouse said no")


@dg.job
def nightly() -> None:
    work()


@dg.asset
def landing() -> None:
    time.sleep(0.05)


@dg.asset(deps=[landing])
def mart(context: dg.AssetExecutionContext) -> None:
    time.sleep(0.05)
    if context.run.tags.get("fail") == "yes":
        raise dg.Failure(description="mart broke: fix ANALYTICS_SOMETHING")


def job(name: str) -> dg.JobDefinition:
    """A job of a small code location with the project's resources for this test's settings."""
    defs = dg.Definitions(
        assets=[landing, mart, pipeline_task_health],
        jobs=[nightly, dg.define_asset_job("marts_job", selection=[landing, mart]), task_health_job],
        resources=pipeline_resources(),
    )
    return defs.resolve_job_def(name)


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 0.95) is None
    assert percentile([4.0], 0.95) == 4.0
    # ranks 0..3, position 0.95 * 3 = 2.85: 3 + 0.85 * (10 - 3)
    assert percentile([10.0, 1.0, 3.0, 2.0], 0.95) == pytest.approx(3 + 0.85 * 7)


def _history(instance: dg.DagsterInstance) -> dict[str, list[dg.ExecuteInProcessResult]]:
    """nightly: ok, ok, FAILED, ok, + one never started; marts_job: ok, FAILED (mart), ok."""
    nightly_job, marts_job = job("nightly"), job("marts_job")
    runs: dict[str, list[dg.ExecuteInProcessResult]] = {"nightly": [], "marts_job": []}
    for tags in ({"sleep": "0.05"}, {"sleep": "0.2"}, {"fail": "yes"}, {"sleep": "0.1"}):
        runs["nightly"].append(nightly_job.execute_in_process(instance=instance, tags=tags, raise_on_error=False))
    instance.create_run_for_job(nightly_job)  # created, never started
    for tags in ({}, {"fail": "yes"}, {}):
        runs["marts_job"].append(marts_job.execute_in_process(instance=instance, tags=tags, raise_on_error=False))
    return runs


def _seconds(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> float:
    record = instance.get_run_record_by_id(result.run_id)
    return record.end_time - record.start_time


def _table(warehouse: Warehouse) -> dict[tuple[str, str], dict]:
    rows = warehouse.query("select * from ops.pipeline_task_health").to_pylist()
    return {(row["kind"], row["name"]): row for row in rows}


def test_task_health_from_real_runs(env: dict[str, str]) -> None:
    instance = dg.DagsterInstance.ephemeral()
    runs = _history(instance)
    assert [r.success for r in runs["nightly"]] == [True, True, False, True]
    assert [r.success for r in runs["marts_job"]] == [True, False, True]

    refresh = job("task_health_refresh").execute_in_process(instance=instance)
    assert refresh.success
    warehouse = Warehouse(get_settings())
    table = _table(warehouse)

    # the refreshing run itself is left out: it has not finished when it takes the snapshot
    assert set(table) == {("job", "nightly"), ("job", "marts_job"), ("asset", "landing"), ("asset", "mart")}

    nightly_row = table[("job", "nightly")]
    ok = sorted(_seconds(instance, r) for r in runs["nightly"] if r.success)
    assert (nightly_row["runs"], nightly_row["successes"], nightly_row["failures"]) == (5, 3, 1)  # + the unstarted run
    assert nightly_row["success_rate"] == pytest.approx(3 / 4)
    # the run records' float timestamps here, microsecond timestamps in the asset: equal to a few µs
    micro = 1e-5
    assert nightly_row["avg_duration_seconds"] == pytest.approx((ok[0] + ok[1] + ok[2]) / 3, abs=micro)
    # three durations: position 0.95 * 2 = 1.9 -> second + 0.9 * (third - second)
    assert nightly_row["p95_duration_seconds"] == pytest.approx(ok[1] + 0.9 * (ok[2] - ok[1]), abs=micro)
    assert ok[0] >= 0.05 and ok[2] >= 0.2  # the runs slept 50, 100 and 200 ms
    failed = instance.get_run_record_by_id(runs["nightly"][2].run_id)
    failed_at = datetime.fromtimestamp(failed.end_time, UTC).replace(tzinfo=None)
    assert abs(nightly_row["last_failure_at"] - failed_at) < timedelta(milliseconds=1)
    assert nightly_row["last_error"] == "work: RuntimeError: the warehouse said no"
    assert nightly_row["last_failure_run_id"] == runs["nightly"][2].run_id

    marts_row = table[("job", "marts_job")]
    assert (marts_row["runs"], marts_row["successes"], marts_row["failures"]) == (3, 2, 1)
    assert marts_row["success_rate"] == pytest.approx(2 / 3)
    assert marts_row["last_error"] == "mart: mart broke: fix ANALYTICS_SOMETHING"

    landing_row, mart_row = table[("asset", "landing")], table[("asset", "mart")]
    assert (landing_row["runs"], landing_row["successes"], landing_row["failures"]) == (3, 3, 0)
    assert landing_row["success_rate"] == 1.0 and landing_row["last_failure_at"] is None
    assert (mart_row["runs"], mart_row["successes"], mart_row["failures"]) == (3, 2, 1)
    assert mart_row["success_rate"] == pytest.approx(2 / 3)
    assert mart_row["last_error"] == "mart broke: fix ANALYTICS_SOMETHING"
    assert mart_row["last_failure_run_id"] == runs["marts_job"][1].run_id
    # an asset's duration is its step's: at least the 50 ms it sleeps, less than its run
    assert 0.05 <= mart_row["avg_duration_seconds"] <= max(_seconds(instance, r) for r in runs["marts_job"])
    assert len({row["recorded_at"] for row in table.values()}) == 1

    [materialization] = refresh.asset_materializations_for_node("ops__pipeline_task_health")
    meta = materialization.metadata
    assert (meta["jobs"].value, meta["assets"].value, meta["runs"].value, meta["failed_runs"].value) == (2, 2, 8, 2)
    assert meta["run_success_rate"].value == pytest.approx(5 / 7)
    assert "| job | nightly | 5 | 3 | 1 | 0.75 |" in meta["preview"].value

    # a second refresh replaces the snapshot and now sees the first refresh's run
    assert job("task_health_refresh").execute_in_process(instance=instance).success
    again = _table(warehouse)
    assert set(again) == set(table) | {("job", "task_health_refresh"), ("asset", "ops/pipeline_task_health")}
    assert again[("job", "task_health_refresh")]["successes"] == 1
    assert again[("job", "nightly")]["successes"] == 3
    assert len({row["recorded_at"] for row in again.values()}) == 1


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_the_window_and_the_schedule(env: dict[str, str]) -> None:
    instance = dg.DagsterInstance.ephemeral()
    nightly_job = job("nightly")
    nightly_job.execute_in_process(instance=instance, tags={"fail": "yes"}, raise_on_error=False)
    cut = datetime.now(UTC)
    nightly_job.execute_in_process(instance=instance)
    [row] = [r for r in compute_task_health(instance, cut) if r.kind == "job"]
    assert (row.runs, row.successes, row.failures, row.last_error) == (1, 1, 0, None)
    [row] = [r for r in compute_task_health(instance, cut - timedelta(days=1)) if r.kind == "job"]
    assert (row.runs, row.successes, row.failures) == (2, 1, 1)

    result = job("task_health_refresh").execute_in_process(
        instance=instance,
        run_config={"ops": {"ops__pipeline_task_health": {"config": {"window_days": 0}}}},
        raise_on_error=False,
    )
    assert not result.success

    request = task_health_schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
    assert task_health_schedule.job_name == "task_health_refresh"
    assert len(request.run_requests) == 1
    assert task_health_schedule.cron_schedule == "15 * * * *"
