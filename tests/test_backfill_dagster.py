"""``analytics-pipeline backfill`` is a Dagster backfill: the instance lists it, its runs are runs of the
named job (``daily_pipeline``), and the UI can re-execute them, with or without a running
``dagster-daemon``. Without one the command executes the runs itself, and a daemon that starts
meanwhile launches none of them again; with one, the daemon launches them."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus
from dagster._daemon.types import DaemonHeartbeat
from test_cli import CLI, END, START, cli, generate_small

from analytics_pipeline.self_driven_backfill import DAEMON_HEARTBEAT_WINDOW_SECONDS
from analytics_pipeline.settings import PROJECT_ROOT

BIN = Path(sys.executable).parent
WORKSPACE = PROJECT_ROOT / "workspace.yaml"
DAYS = ["2025-03-03", "2025-03-04", "2025-03-05"]
DEADLINE = 600  # a generous bound on waiting for a process; nothing here is timed


def _wait(predicate, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + DEADLINE
    while not (value := predicate()):
        assert process is None or process.poll() is None, f"{what}: the process ended ({process.returncode})"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return value


def _backfill_runs(instance: dg.DagsterInstance, backfill_id: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id})))


def _backfill_id(stdout: str) -> str:
    return re.search(r"^backfill (\w+): ", stdout, re.MULTILINE).group(1)


def _reexecute_from_the_ui(env: dict[str, str], runs: list[dg.DagsterRun]) -> dict[str, str]:
    """The UI's "Re-execute all" of each run: its GraphQL mutation, run by Dagster's ``dagster-graphql``
    against the workspace the webserver loads. Returns parent run id -> new run id."""
    mutations = " ".join(
        f'r{n}: launchRunReexecution(reexecutionParams: {{parentRunId: "{run.run_id}", strategy: ALL_STEPS}}) '
        "{ __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } "
        "... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } }"
        for n, run in enumerate(runs)
    )
    result = subprocess.run(
        [str(BIN / "dagster-graphql"), "-w", str(WORKSPACE), "-t", f"mutation {{ {mutations} }}"],
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    data = json.JSONDecoder().raw_decode(result.stdout, result.stdout.index('{"data"'))[0]["data"]  # log lines follow
    launched = {}
    for n, run in enumerate(runs):
        answer = data[f"r{n}"]
        assert answer["__typename"] == "LaunchRunSuccess", (run.job_name, answer)
        launched[run.run_id] = answer["run"]["runId"]
    return launched


def _stop_the_landing_sensor(env: dict[str, str]) -> None:
    """The daemon's landing sensor would load the same landing files as the backfills under test."""
    result = subprocess.run(
        [str(BIN / "dagster"), "sensor", "stop", "landing_file_sensor", "-w", str(WORKSPACE)],
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_a_cli_backfill_is_a_dagster_backfill_with_and_without_a_running_daemon(
    env: dict[str, str], tmp_path: Path
) -> None:
    home = Path(env["DAGSTER_HOME"])
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")  # runs queue for a daemon (QueuedRunCoordinator)
    generate_small(env)
    _stop_the_landing_sensor(env)
    instance = dg.DagsterInstance.from_config(str(home))
    # another command's step holds the warehouse pool: the backfill's first run waits there until released
    instance.event_log_storage.set_concurrency_slots("warehouse", 1)
    assert instance.event_log_storage.claim_concurrency_slot("warehouse", "another-run", "its-step").is_claimed
    process_env = {**os.environ, **env}
    daemon_log = tmp_path / "daemon.log"
    daemon = None
    backfill = subprocess.Popen(
        [*CLI, "backfill", "--start", START.isoformat(), "--end", END.isoformat()],
        env=process_env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # 1. No daemon: the command executes its runs. A daemon that starts meanwhile sees the backfill
        # in progress and launches none of its runs.
        _wait(
            lambda: instance.event_log_storage.get_concurrency_info("warehouse").pending_run_ids,
            "the backfill's first run to wait for the pool",
            backfill,
        )
        [backfill_id] = [b.backfill_id for b in instance.get_backfills()]
        with daemon_log.open("w") as log:
            daemon = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
                env=process_env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait(
            lambda: f"Backfill {backfill_id} has unfinished runs" in daemon_log.read_text(),
            "the daemon to look at the backfill in progress",
            daemon,
        )
        instance.event_log_storage.free_concurrency_slots_for_run("another-run")
        stdout, stderr = backfill.communicate(timeout=DEADLINE)
        assert backfill.returncode == 0, stdout[-3000:] + stderr[-3000:]
        assert "its runs execute in this process (no dagster-daemon is running)" in stdout
        assert f"backfill {backfill_id} succeeded: 3 days" in stdout
        for day in DAYS:
            assert re.search(rf"^  {day}  (ok|warn)  activity_events .*active users", stdout, re.MULTILINE), stdout

        recorded = instance.get_backfill(backfill_id)
        assert recorded.status == BulkActionStatus.COMPLETED_SUCCESS  # listed as the UI's Backfills tab lists it
        assert (recorded.partition_set_name, list(recorded.partition_names)) == ("daily_pipeline_partition_set", DAYS)
        runs = _backfill_runs(instance, backfill_id)
        assert sorted(run.job_name for run in runs) == ["__ASSET_JOB", "daily_pipeline", "dimension_refresh"]
        assert all(run.is_success for run in runs)
        assert not any(".dagster/grpc_info" in run.tags for run in runs)  # none was launched by the daemon
        [daily] = [run for run in runs if run.job_name == "daily_pipeline"]
        assert (daily.tags["dagster/asset_partition_range_start"], daily.tags["dagster/asset_partition_range_end"]) == (
            DAYS[0],
            DAYS[-1],
        )  # one run over the range
        # the run-failure sensor and re-execution find a run by its code location and repository
        assert {
            (r.remote_job_origin.location_name, r.remote_job_origin.repository_origin.repository_name) for r in runs
        } == {("analytics_pipeline", "__repository__")}

        # 2. Re-executed from the UI, the runs are launched by the daemon and succeed again.
        launched = _reexecute_from_the_ui(env, runs)

        def reexecutions_finished() -> list[dg.DagsterRun] | None:
            again = [instance.get_run_by_id(run_id) for run_id in launched.values()]
            return again if all(run.is_finished for run in again) else None

        again = _wait(reexecutions_finished, "the re-executed runs to finish", daemon)
        assert all(run.is_success for run in again), [(run.job_name, run.status) for run in again]
        assert {run.parent_run_id: run.job_name for run in again} == {run.run_id: run.job_name for run in runs}

        # 3. With the daemon running, the command queues its runs and the daemon launches them.
        result = cli(
            "backfill", "--start", END.isoformat(), "--end", END.isoformat(), "--select", "group:ingestion", env=env
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "its runs are queued for the running dagster-daemon" in result.stdout
        assert re.search(rf"^  {DAYS[-1]}  (ok|warn)  activity_events", result.stdout, re.MULTILINE), result.stdout
        queued = _backfill_id(result.stdout)
        assert instance.get_backfill(queued).status == BulkActionStatus.COMPLETED_SUCCESS
        runs = _backfill_runs(instance, queued)
        assert sorted(run.job_name for run in runs) == ["daily_pipeline", "dimension_refresh"]
        assert all(run.is_success and ".dagster/grpc_info" in run.tags for run in runs)  # the daemon launched them
    finally:
        backfill.kill()
        if daemon is not None:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_a_run_queued_for_a_daemon_that_stopped_is_taken_back(env: dict[str, str]) -> None:
    """The daemon heartbeats when the command starts, then stops: the run it queued would wait
    forever. Once the daemon's heartbeat is stale the command cancels it in the queue and executes
    the step itself."""
    home = Path(env["DAGSTER_HOME"])
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    generate_small(env)
    instance = dg.DagsterInstance.from_config(str(home))
    queued = threading.Event()

    def a_daemon_until_a_run_is_queued() -> None:  # its run queue's heartbeats, nothing else
        while not queued.is_set():
            # dated so that each is stale 10 s after it is written, not 90 s: the test does not wait
            # out the whole window
            at = time.time() - (DAEMON_HEARTBEAT_WINDOW_SECONDS - 10)
            instance.add_daemon_heartbeat(DaemonHeartbeat(at, "QUEUED_RUN_COORDINATOR", "test", None))
            queued.wait(1)

    heartbeats = threading.Thread(target=a_daemon_until_a_run_is_queued, daemon=True)
    heartbeats.start()
    backfill = subprocess.Popen(
        [*CLI, "backfill", "--start", END.isoformat(), "--end", END.isoformat(), "--select", "key:raw/organizations"],
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait(lambda: instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED])), "a queued run", backfill)
        queued.set()
        stdout, stderr = backfill.communicate(timeout=DEADLINE)
    finally:
        queued.set()
        backfill.kill()
    assert backfill.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "its runs are queued for the running dagster-daemon" in stdout
    assert "was still queued and dagster-daemon has stopped: canceled it in the queue" in stderr
    backfill_id = _backfill_id(stdout)
    assert instance.get_backfill(backfill_id).status == BulkActionStatus.COMPLETED_SUCCESS
    runs = _backfill_runs(instance, backfill_id)
    assert sorted((run.job_name, run.status.value) for run in runs) == [
        ("dimension_refresh", "CANCELED"),
        ("dimension_refresh", "SUCCESS"),
    ]
