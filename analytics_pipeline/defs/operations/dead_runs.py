"""Runs whose process is gone: marked failed (or canceled) and their warehouse pool slots freed.

A run's steps claim slots of the ``warehouse`` pool and free them when they end. A run whose process
dies without a word (``kill -9``, the OOM killer, a closed terminal's SIGHUP, a reboot) frees nothing
and stays STARTED: on the embedded instance the default run launcher cannot ask a run worker how it
is, so Dagster's run monitoring only fails such a run after ``max_runtime_seconds`` (2 h), and it
never frees the slots of a run that ended that way. Until then every later warehouse step, of every
run, waits for a slot that no one will give back, with nothing on screen but "blocked by limit for
pool warehouse".

Each run records the process that executes its steps (the in-process executor's engine event
"Executing steps in process (pid: N)"). When that process no longer exists, or the pid now belongs
to a process started after the run, the run is over: it is marked failed (canceled, if it was being
terminated), which raises the usual run-failure alert, and its slots are freed. Process ids mean
something only on the machine that ran the run, so this applies to the embedded instance (SQLite
run storage: every run on this machine); the production instance relies on its run launcher's
health checks and on ``run_monitoring.free_slots_after_run_end_seconds`` in its ``dagster.yaml``.

A dbt process the dead run had started lives on without it (an orphan, still writing and, on
DuckDB, holding the warehouse file); it is stopped too, found by the run's per-invocation target
folder in its ``DBT_TARGET_PATH`` (``<op>-<first 7 of the run id>-<id>``, named by
``resources/dbt.py``'s ``run_target_path`` for every invocation), with SIGINT first (dbt then cancels
its open queries), SIGKILL if it has not exited 10 s later.

Called before every ``analytics-pipeline backfill`` and every minute by the ``dead_run_monitor``
sensor in the daemon.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from dataclasses import dataclass, field, replace
from pathlib import Path

import dagster as dg
import psutil

from analytics_pipeline.resources.dbt import run_id_prefix_of
from analytics_pipeline.runs_on_this_machine import on_this_machine

log = logging.getLogger(__name__)

# the message of the in-process executor's engine event, whose metadata holds the pid
IN_PROCESS_EVENT = "Executing steps in process"
# a process started up to this long after the run's start cannot be the run's (clock granularity)
_START_SLACK_SECONDS = 1.0
# how long a dead run's dbt process gets to stop on SIGINT before it is killed
_DBT_STOP_SECONDS = 10.0


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    job_name: str
    status: dg.DagsterRunStatus
    pid: int
    why: str
    stopped_dbt: list[int] = field(default_factory=list)  # pids of its dbt processes that were stopped

    @property
    def dbt_pids(self) -> str:
        return ", ".join(map(str, self.stopped_dbt))


def _steps_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process executing the run's steps: the in-process executor (every job's) names it when
    it starts them."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, ascending=False).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None or not (event.message or "").startswith(IN_PROCESS_EVENT):
            continue
        pid = event.event_specific_data.metadata.get("pid")
        if pid is not None and str(pid.value).isdigit():
            return int(pid.value)
    return None


def _gone(pid: int, run_started: float) -> str | None:
    """Why the process ``pid`` of a run started at ``run_started`` is no longer that run's, or None."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return f"its process (pid {pid}) has exited"
        if process.create_time() > run_started + _START_SLACK_SECONDS:
            return f"its process (pid {pid}) has exited; the pid now belongs to a later process"
    except psutil.NoSuchProcess:
        return f"its process (pid {pid}) has exited"
    except psutil.AccessDenied:
        return None  # it exists; another user's process cannot be judged
    return None


def _leftover_dbt(run_id: str) -> list[psutil.Process]:
    """dbt processes started by the run: their ``DBT_TARGET_PATH`` is one of the run's target folders."""
    found = []
    for process in psutil.process_iter():
        try:
            target = process.environ().get("DBT_TARGET_PATH")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if target and run_id_prefix_of(Path(target)) == run_id[:7]:
            found.append(process)
    return found


def _stop(processes: list[psutil.Process]) -> list[int]:
    """SIGINT, then SIGKILL what is left after a grace period; the pids that were running."""
    stopped = []
    for process in processes:
        try:
            process.send_signal(signal.SIGINT)
            stopped.append(process.pid)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(processes, timeout=_DBT_STOP_SECONDS)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    return stopped


def find_dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    """Runs the instance thinks are in progress whose steps' process is gone (embedded instance only)."""
    if not on_this_machine(instance):
        return []
    dead = []
    in_progress = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
    for record in instance.get_run_records(dg.RunsFilter(statuses=in_progress)):
        run = record.dagster_run
        pid = _steps_pid(instance, run.run_id)
        if pid is None or record.start_time is None:
            continue  # not executing steps yet: run monitoring's start timeout covers a run stuck there
        why = _gone(pid, record.start_time)
        if why:
            dead.append(DeadRun(run.run_id, run.job_name, run.status, pid, why))
    return dead


def release_dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    """Mark each dead run failed (canceled if it was being terminated), free its pool slots and stop
    the dbt processes it left behind; the runs so ended."""
    ended = []
    for dead in find_dead_runs(instance):
        run = instance.get_run_by_id(dead.run_id)
        if run is None or run.status != dead.status:
            continue  # it ended meanwhile
        dead = replace(dead, stopped_dbt=_stop(_leftover_dbt(run.run_id)))  # before its slot is given away
        stopped = f"; the dbt process it left running was stopped (pid {dead.dbt_pids})" if dead.stopped_dbt else ""
        message = (
            f"This run stopped without finishing: {dead.why} (killed, out of memory, or the machine "
            f"restarted). Marked as ended by analytics-pipeline{stopped}; its warehouse pool slots are freed."
        )
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message)
        else:
            instance.report_run_failed(run, message)
        freed = instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        ended.append(dead)
        log.warning(
            "run %s (%s) %s; freed %s pool slots; stopped its dbt processes %s",
            run.run_id,
            run.job_name,
            dead.why,
            freed or 0,
            dead.stopped_dbt or "(none)",
            extra={"run_id": run.run_id},
        )
    return ended


@dg.sensor(
    name="dead_run_monitor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs whose process died without a word are marked failed and their warehouse pool slots "
    "freed, so later runs do not wait for them forever (embedded instance; see dead_runs.py).",
)
def dead_run_monitor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    released = release_dead_runs(context.instance)
    if released:
        return dg.SkipReason("ended " + "; ".join(f"run {d.run_id[:8]} ({d.job_name}): {d.why}" for d in released))
    if not on_this_machine(context.instance):
        return dg.SkipReason("not the embedded instance: the run launcher's health checks cover dead runs")
    return dg.SkipReason("every run in progress has its process")
