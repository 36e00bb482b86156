"""A run whose process is killed without a word (``kill -9``) stops holding the warehouse pool: it is
found, marked failed and its slot freed, by the daemon's sensor and before a CLI backfill; a run
whose process lives is left alone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import psutil
import pytest
from dagster._core.events import EngineEventData

from analytics_pipeline.defs.operations.dead_runs import dead_run_monitor, find_dead_runs, release_dead_runs
from analytics_pipeline.defs.operations.health import check_runs
from analytics_pipeline.resources.policies import WAREHOUSE_POOL
from analytics_pipeline.settings import PROJECT_ROOT

_RUN = """
import os, subprocess, sys, time
from pathlib import Path
import dagster as dg
from analytics_pipeline.resources.policies import WAREHOUSE_POOL

@dg.asset(pool=WAREHOUSE_POOL)
def writer(context) -> None:
    if len(sys.argv) > 4:  # a stand-in for the dbt process dagster-dbt starts, in the target folder it names
        from analytics_pipeline.resources.dbt import run_target_path
        target = str(run_target_path(context))
        child = subprocess.Popen(["sleep", "600"], env={**os.environ, "DBT_TARGET_PATH": target})
        Path(sys.argv[2] + ".child").write_text(str(child.pid))
    Path(sys.argv[2]).write_text("writing")
    time.sleep(float(sys.argv[3]))

result = dg.materialize([writer], instance=dg.DagsterInstance.from_config(sys.argv[1]))
sys.exit(0 if result.success else 1)
"""


def _start_run(home: Path, marker: Path, seconds: float, *with_dbt: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _RUN, str(home), str(marker), str(seconds), *with_dbt],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(marker: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None, process.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "the run never started its step"
        time.sleep(0.2)


@pytest.fixture
def instance(tmp_path: Path) -> dg.DagsterInstance:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())  # the warehouse pool's limit: 1
    return dg.DagsterInstance.from_config(str(home))


def test_a_killed_run_is_failed_and_its_pool_slot_freed(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    home = Path(instance.root_directory)
    run = _start_run(home, tmp_path / "first", 600)
    try:
        _wait_for(tmp_path / "first", run)
        [record] = instance.get_run_records()
        run_id = record.dagster_run.run_id
        assert find_dead_runs(instance) == []  # alive: left alone
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        run.kill()
    # what a kill -9 leaves: a run still STARTED holding the only slot of the pool
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).active_run_ids == {run_id}

    [dead] = find_dead_runs(instance)
    assert (dead.run_id, dead.pid) == (run_id, run.pid) and "has exited" in dead.why
    runs = check_runs(instance, datetime.now(UTC))  # `analytics-pipeline health` says so meanwhile
    assert runs.status == "degraded" and run_id[:8] in runs.reason and f"pid {run.pid}" in runs.reason
    result = dead_run_monitor(dg.build_sensor_context(instance=instance))  # as the daemon evaluates it
    assert run_id[:8] in result.skip_message

    failed = instance.get_run_by_id(run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    [failure] = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    assert f"pid {run.pid}" in failure.event_log_entry.dagster_event.message
    assert not instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).active_run_ids
    assert release_dead_runs(instance) == []  # done once
    assert "process is gone" not in check_runs(instance, datetime.now(UTC)).reason

    # the next writer gets the slot at once instead of waiting forever
    following = _start_run(home, tmp_path / "second", 0)
    try:
        assert following.wait(timeout=120) == 0, following.stderr.read()[-2000:]
    finally:
        following.kill()


def test_a_run_whose_pid_now_belongs_to_a_later_process_is_dead(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    run = _start_run(Path(instance.root_directory), tmp_path / "first", 600)
    try:
        _wait_for(tmp_path / "first", run)
        [record] = instance.get_run_records()
        run.kill()
        run.wait(timeout=30)
        # a process started after the run, named by the run's latest executor event: as if its pid were
        # reused (started more than the second of slack that the kernel's whole-second boot time needs)
        time.sleep(max(0.0, record.start_time + 2.5 - time.time()))
        later = subprocess.Popen(["sleep", "60"])
        try:
            instance.report_engine_event(
                f"Executing steps in process (pid: {later.pid})",
                record.dagster_run,
                EngineEventData.in_process(later.pid, ["writer"]),
            )
            [dead] = find_dead_runs(instance)
            assert dead.pid == later.pid and "later process" in dead.why
        finally:
            later.kill()
            later.wait()
    finally:
        run.kill()


def test_the_dbt_process_a_dead_run_left_running_is_stopped(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """kill -9 of a run's process leaves the dbt process it started running on its own (writing, and on
    DuckDB holding the file); ending the run stops it, before the run's slot is given to another."""
    run = _start_run(Path(instance.root_directory), tmp_path / "first", 600, "with-dbt")
    try:
        _wait_for(tmp_path / "first", run)
        orphan = psutil.Process(int((tmp_path / "first.child").read_text()))
        unrelated = subprocess.Popen(
            ["sleep", "600"],  # another run's dbt: left alone
            env={**os.environ, "DBT_TARGET_PATH": str(tmp_path / "target" / "writer-0000000-abcdef1")},
        )
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        assert orphan.is_running()  # outlives the run's process

        [dead] = release_dead_runs(instance)

        assert dead.stopped_dbt == [orphan.pid]
        assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE
        assert unrelated.poll() is None
        [failure] = instance.get_records_for_run(dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        assert (
            f"the dbt process it left running was stopped (pid {orphan.pid})"
            in failure.event_log_entry.dagster_event.message
        )
    finally:
        run.kill()
        for pid_file in tmp_path.glob("*.child"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
        if "unrelated" in locals():
            unrelated.kill()
            unrelated.wait()
