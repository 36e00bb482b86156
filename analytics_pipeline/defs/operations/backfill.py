"""Partition backfills from the command line: a Dagster backfill, like one launched from the UI.

What ``backfill_analytics --days 7`` used to do, the Dagster way. The command records a backfill in
the instance (the UI's Backfills tab lists it, with its runs) and creates its runs: the dimension
snapshots first, then the daily-partitioned assets for the whole range as ONE run of the named job
that holds them (``daily_pipeline`` for the default selection; the assets' backfill policy is a single
run), then the unpartitioned models built from days. Runs of a named job are what the daily schedule
launches too: the run-failure alert, ``ops.pipeline_task_health`` and re-execution from the UI treat
them alike.

Who executes the runs: with a ``dagster-daemon`` running (its run queue heartbeats), the runs are
queued and the daemon launches them, as it does for the UI's backfills; without one, this process
executes them itself. The backfill is recorded with every partition already taken, so a daemon that
starts meanwhile never launches its runs a second time (``analytics_pipeline/self_driven_backfill.py``).
"""

from __future__ import annotations

import functools
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from analytics_pipeline.defs.operations.dead_runs import release_dead_runs
from analytics_pipeline.instance import get_instance
from analytics_pipeline.lib.ingestion.datasets import RAW_TABLES
from analytics_pipeline.lib.ingestion.landing_zone import LandingZone
from analytics_pipeline.lib.ingestion.quality import reject_rate_fails
from analytics_pipeline.partitions import daily_partitions, partition_dates
from analytics_pipeline.resources.policies import retry_transient
from analytics_pipeline.resources.warehouse import Warehouse, WarehouseError
from analytics_pipeline.self_driven_backfill import (
    IMPLICIT_ASSET_JOB,
    Location,
    code_location,
    daemon_launches_queued_runs,
    new_backfill_id,
)
from analytics_pipeline.settings import get_settings

BACKFILL_TAG = "dagster/backfill"  # Dagster's: the UI groups a backfill's runs by it
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
ENGAGEMENT_MART = "marts/fct_daily_engagement"
# The run's full log is in the instance (and the UI); the terminal gets warnings and the summary.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# how often the command looks at a run the daemon executes
POLL_SECONDS = 1.0
_EVENTS = {
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.RUN_FAILURE,
}


class BackfillError(ValueError):
    """The requested backfill cannot start; the message says what to change."""


@dataclass
class BackfillOutcome:
    backfill_id: str
    start: date
    end: date
    run_ids: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    # days that loaded but need a look (a dataset without files, a reject rate over the threshold)
    warned_days: dict[date, list[str]] = field(default_factory=dict)
    # asset checks whose evaluation in these runs failed: "asset:check (SEVERITY): what failed"
    failed_checks: list[str] = field(default_factory=list)
    # the runs were queued for a running daemon (else executed by this process)
    by_daemon: bool = False
    interrupted: bool = False

    @property
    def success(self) -> bool:
        return not self.failed_steps


def resolve_window(
    days: int | None, start: date | None, end: date | None, today: date | None = None
) -> tuple[date, date]:
    """The inclusive day range to backfill: the last ``days`` complete UTC days, or start..end."""
    settings = get_settings()
    today = today or datetime.now(UTC).date()
    last_complete = today - timedelta(days=1)
    if days is not None:
        if start or end:
            raise BackfillError("Give either --days or --start/--end, not both.")
        if days < 1:
            raise BackfillError("--days must be at least 1.")
        start, end = last_complete - timedelta(days=days - 1), last_complete
    elif start is None or end is None:
        raise BackfillError("Give --days N, or both --start and --end (YYYY-MM-DD).")
    if end < start:
        raise BackfillError(f"--end {end} is before --start {start}.")
    if start < settings.start_date:
        raise BackfillError(
            f"{start} is before the first partition {settings.start_date}; "
            "pick a later --start or set ANALYTICS_START_DATE."
        )
    if end > last_complete:
        raise BackfillError(f"{end} is not a complete UTC day yet; the last complete day is {last_complete}.")
    return start, end


def _definitions() -> dg.Definitions:
    """The code location with the current settings (a CLI process's)."""
    from analytics_pipeline.definitions import build_definitions  # imported late: loading dbt assets takes a moment

    return build_definitions(get_settings())


def _is_daily(graph, key: dg.AssetKey) -> bool:
    # weekly assets (reports) have partitions of their own and are not part of a daily backfill
    return graph.get(key).partitions_def == daily_partitions


def plan(select: str | None) -> tuple[list[dg.AssetKey], list[dg.AssetKey], list[dg.AssetKey]]:
    """(unpartitioned assets to refresh first, daily assets for the range, unpartitioned after).

    Without ``select``: the whole pipeline for the range: the unpartitioned assets that do not
    depend on days (dimension snapshots and their views) first, every daily-partitioned asset, then
    the unpartitioned models built from days (e.g. retention cohorts).
    With ``select`` (Dagster selection syntax): those assets; unpartitioned parents are built first
    only when they have never been materialized.
    """
    defs = _definitions()
    graph = defs.resolve_asset_graph()
    materializable = {key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    if select:
        try:
            selected = dg.AssetSelection.from_string(select).resolve(graph)
        except Exception as error:  # Dagster raises several types for a bad selection string
            raise BackfillError(f"--select {select!r} is not a valid asset selection: {error}") from None
        if not selected:
            raise BackfillError(f"--select {select!r} matches no asset.")
    else:
        from analytics_pipeline.jobs import DAILY_ASSETS

        # The daily pipeline. Forecast vintages are daily-partitioned too (by as-of date), but a
        # backfill of days does not make a vintage of each: select group:forecasting for that.
        selected = DAILY_ASSETS.resolve(graph)
    daily = sorted(key for key in selected if _is_daily(graph, key))
    unpartitioned = {key for key in materializable if graph.get(key).partitions_def is None}
    if select:
        parents = dg.AssetSelection.assets(*daily).upstream().resolve(graph) if daily else set()
        instance = get_instance()
        before = {key for key in parents & unpartitioned if instance.get_latest_materialization_event(key) is None}
        after = selected & unpartitioned
    else:
        downstream_of_daily = dg.AssetSelection.assets(*daily).downstream().resolve(graph) if daily else set()
        # what the days read (dimension snapshots), not unrelated assets such as ops/pipeline_task_health
        upstream_of_daily = dg.AssetSelection.assets(*daily).upstream().resolve(graph) if daily else set()
        before = (unpartitioned - downstream_of_daily) & upstream_of_daily
        # only what is built from these days alone (not, say, marts over forecast vintages)
        after = {
            key
            for key in unpartitioned & downstream_of_daily
            if all(
                parent in daily or graph.get(parent).partitions_def is None
                for parent in dg.AssetSelection.assets(key).upstream().resolve(graph)
            )
        }
    return sorted(before), daily, sorted(after)


@contextmanager
def _steps_print_to_their_logs_only() -> Iterator[None]:
    """Keep what steps print (dbt's own console lines, ~1 per model and test) off the terminal.

    File descriptor 1 points at /dev/null while the run executes; Dagster's compute-log capture,
    which starts inside the run, still copies each step's output into the run's logs (the UI's
    stdout/stderr view). Without a real file descriptor (stdout replaced, as under pytest) nothing
    is redirected.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


@dataclass
class Step:
    """One run of the backfill: its assets, the job it is a run of, and its tags."""

    keys: list[dg.AssetKey]
    job: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class RunReport:
    """What a finished run did, read back from its events in the instance."""

    run: dg.DagsterRun
    events: list[dg.DagsterEvent]

    @property
    def success(self) -> bool:
        return self.run.status == dg.DagsterRunStatus.SUCCESS

    def materialized(self) -> list[tuple[dg.AssetKey, str | None]]:
        return [
            (event.asset_key, event.partition)
            for event in self.events
            if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        ]


@functools.cache
def named_jobs() -> dict[str, tuple[set[dg.AssetKey], bool]]:
    """The code location's asset jobs: name -> (their assets, daily-partitioned or not)."""
    defs = _definitions()
    graph = defs.resolve_asset_graph()
    jobs = {}
    for job in defs.jobs or []:
        selection = getattr(job, "selection", None)  # a job of define_asset_job
        if isinstance(selection, dg.AssetSelection):
            jobs[job.name] = (
                set(selection.resolve(graph)),
                defs.resolve_job_def(job.name).partitions_def == daily_partitions,
            )
    return jobs


def job_for(keys: Sequence[dg.AssetKey], daily: bool) -> str:
    """The job a backfill's run of these assets belongs to: for daily assets ``daily_pipeline`` when it
    holds them (what schedules and the UI's backfills run), else the smallest named job of the same
    partitioning that holds them all, else Dagster's implicit asset job (the UI's "Materialize")."""
    from analytics_pipeline.jobs import daily_pipeline_job

    candidates = sorted(
        (len(assets), name)
        for name, (assets, is_daily) in named_jobs().items()
        if is_daily == daily and set(keys) <= assets
    )
    names = [name for _, name in candidates]
    if daily and daily_pipeline_job.name in names:
        return daily_pipeline_job.name
    return names[0] if names else IMPLICIT_ASSET_JOB


def _whole_job(step: Step) -> bool:
    return step.job in named_jobs() and set(step.keys) == named_jobs()[step.job][0]


def _run(location: Location, step: Step, outcome: BackfillOutcome, run: dg.DagsterRun | None = None) -> RunReport:
    """Execute (or have the daemon execute) one run of the backfill; its failures go to the outcome."""
    instance = location.instance
    run = run or _create(location, step, outcome)
    events = None  # of a run executed here; else read back from the instance
    try:
        if outcome.by_daemon:
            location.submit(run)
            if not _launched_by_the_daemon(instance, run):
                location.cancel_run(run.run_id)
                print(
                    f"run {run.run_id} was still queued and dagster-daemon has stopped: canceled it in the queue; "
                    "this command executes the rest of the backfill itself",
                    file=sys.stderr,
                    flush=True,
                )
                outcome.by_daemon = False
                return _run(location, step, outcome)
        else:
            with _steps_print_to_their_logs_only():
                events = [event for event in location.execute_here(run) if event.event_type in _EVENTS]
    except KeyboardInterrupt:
        # in this process, Dagster ends an interrupted run itself (failed); a queued or launched run is
        # canceled, and the daemon terminates what remains of the backfill, as the UI's "Cancel" does
        outcome.interrupted = True
        if outcome.by_daemon:
            location.cancel_backfill(outcome.backfill_id)
            location.cancel_run(run.run_id)
        elif not (current := instance.get_run_by_id(run.run_id)).is_finished:
            instance.report_run_canceled(current, "The backfill was interrupted before this run ended.")
    run = instance.get_run_by_id(run.run_id)
    if events is None:  # a year's daily run has ~16,000 of these events: read back only when needed
        events = [
            record.event_log_entry.dagster_event
            for record in instance.get_records_for_run(run.run_id, of_type=_EVENTS).records
        ]
    report = RunReport(run, events)
    outcome.failed_checks += _failed_checks(report)
    failures = len(outcome.failed_steps)
    for event in report.events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None and "Failure" not in error.cls_name:
                error = error.cause
            message = error.message.strip().split(": ", 1)[-1] if error else "failed"
            outcome.failed_steps.append(f"{event.step_key}: {failure_summary(message)}")
    if not report.success and len(outcome.failed_steps) == failures:
        # the run failed outside any step: interrupted (Ctrl-C, SIGTERM), or its resources did not start
        outcome.failed_steps.append(f"run {run.run_id}: {_run_failure(report, outcome)}")
    return report


def _launched_by_the_daemon(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Wait until the run has ended: True. False if it is still queued and the daemon has stopped
    (no heartbeat from its run queue within the window): nobody will launch it."""
    while not (run := instance.get_run_by_id(run.run_id)).is_finished:
        if run.status == dg.DagsterRunStatus.QUEUED and not daemon_launches_queued_runs(instance):
            return False
        time.sleep(POLL_SECONDS)
    return True


def _create(location: Location, step: Step, outcome: BackfillOutcome) -> dg.DagsterRun:
    run = location.create_run(
        step.job,
        None if _whole_job(step) else step.keys,
        {BACKFILL_TAG: outcome.backfill_id, **step.tags},
        QUIET_CONSOLE,
        in_this_process=not outcome.by_daemon,
    )
    outcome.run_ids.append(run.run_id)
    return run


# dagster-dbt's message for a failed dbt process: a first line that says nothing, then dbt's own errors
_DBT_ERRORS_HEADING = "Errors parsed from dbt logs:"
_DBT_FAILED = re.compile(
    r"The dbt CLI process with command\s+`(?P<command>[^`]*)`\s+failed with exit code `(?P<code>-?\d+)`"
)
SUMMARY_LINE_CHARS = 400


def failure_summary(message: str) -> str:
    """One readable line on why a step failed, for the backfill's summary.

    Most failures say it in their first line. A failed dbt process does not (dagster-dbt's first line
    is "The dbt CLI process with command"); its cause is in the dbt errors that follow, e.g.
    "dbt build failed (exit code 2): Database Error: connection to server at "127.0.0.1", port 5432
    failed: Connection refused ...", each error's lines joined, repeats dropped, trimmed to
    :data:`SUMMARY_LINE_CHARS`."""
    text = message.strip()
    failed = _DBT_FAILED.search(text)
    if failed is None:
        return _trimmed(text.splitlines()[0] if text else "failed")
    errors = text.split(_DBT_ERRORS_HEADING, 1)[1] if _DBT_ERRORS_HEADING in text else ""
    causes = [
        ": ".join(" ".join(line.split()).rstrip(":") for line in block.splitlines() if line.strip())
        for block in errors.split("\n\n")
    ]
    causes = [cause.removeprefix("Encountered an error: ") for cause in dict.fromkeys(c for c in causes if c)]
    what = f"{failed['command']} failed (exit code {failed['code']})"
    return _trimmed(f"{what}: {'; '.join(causes)}" if causes else f"{what}; see the step's output in the run's logs")


def _trimmed(line: str) -> str:
    return line if len(line) <= SUMMARY_LINE_CHARS else line[: SUMMARY_LINE_CHARS - 1] + "…"


def _run_failure(report: RunReport, outcome: BackfillOutcome) -> str:
    """One line on why a run failed although none of its steps did."""
    failure = next((event for event in report.events if event.is_run_failure), None)
    error = failure.event_specific_data.error if failure and failure.event_specific_data else None
    interrupted = error is not None and error.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt")
    if interrupted or outcome.interrupted:
        outcome.interrupted = True
        return "interrupted (Ctrl-C or a termination signal); the backfill stopped here"
    message = failure.message if failure and failure.message else f"ended {report.run.status.value}"
    return message.strip().splitlines()[0]


def _failed_checks(report: RunReport) -> list[str]:
    """One line per failed asset check of the run, with the days or status its metadata names."""
    lines = []
    for event in report.events:
        if event.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            continue
        evaluation = event.event_specific_data
        if evaluation.passed:
            continue
        meta = {k: v.value for k, v in evaluation.metadata.items()}
        what = next(
            (str(meta[k]) for k in ("partitions_over_threshold", "missing_days", "reason", "status") if k in meta), ""
        )
        lines.append(
            f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name} "
            f"({evaluation.severity.value}){': ' + what if what else ''}"
        )
    return lines


def _day_lines(
    report: RunReport, warehouse: Warehouse, start: date, end: date, outcome: BackfillOutcome
) -> dict[date, str]:
    """One line per processed day, about what the run built: what was loaded, the day's engagement
    when the engagement mart was built, otherwise the assets materialized for the day.

    A dataset without landing files on a day others have files for, and a reject rate over the
    threshold, are named on the line and the day is recorded in ``outcome.warned_days``.
    """
    settings = get_settings()
    loaded: dict[date, dict[str, dict]] = {}
    built: dict[date, list[str]] = {}
    for event in report.events:
        if event.event_type_value != "ASSET_MATERIALIZATION":
            continue
        materialization = event.event_specific_data.materialization
        if not materialization.partition:
            continue
        day = date.fromisoformat(materialization.partition)
        built.setdefault(day, []).append(materialization.asset_key.to_user_string())
        if "rows_loaded" in materialization.metadata:  # an ingestion asset: the day's own accounting
            meta = {k: v.value for k, v in materialization.metadata.items()}
            loaded.setdefault(day, {})[materialization.asset_key.path[-1]] = meta
    parts: dict[date, list[str]] = {}
    for day, datasets in loaded.items():
        others_have_files = sum(1 for meta in datasets.values() if meta.get("files", 0)) > 0
        for name, meta in datasets.items():
            text = (
                f"{name} {meta.get('rows_loaded', 0)} loaded"
                f"/{meta.get('rows_rejected', 0)} rejected/{meta.get('duplicates_dropped', 0)} dup"
            )
            unreadable = meta.get("files_rejected", 0)
            rejected, lines = meta.get("rows_rejected", 0) + unreadable, meta.get("lines_read", 0) + unreadable
            if meta.get("files", 0) == 0 and others_have_files:
                text += " (no files)"
                outcome.warned_days.setdefault(day, []).append(f"{name}: no landing files")
            elif reject_rate_fails(rejected, lines, settings):
                text += f" (reject rate {rejected / lines:.1%} over {settings.max_reject_rate:.1%})"
                outcome.warned_days.setdefault(day, []).append(
                    f"{name}: reject rate {rejected / lines:.1%} over {settings.max_reject_rate:.1%}"
                )
            parts.setdefault(day, []).append(text)
    engagement: dict[date, str] = {}
    engagement_built = any(ENGAGEMENT_MART in keys for keys in built.values())
    try:
        if engagement_built and warehouse.table_exists("marts.fct_daily_engagement"):
            rows = warehouse.query(
                "select activity_date, sum(active_users) as active, sum(new_users) as new, sum(events) as events "
                "from marts.fct_daily_engagement where activity_date between ? and ? group by activity_date",
                (start, end),
            ).to_pylist()
            engagement = {
                r["activity_date"]: f"active users {r['active']}, new {r['new']}, events {r['events']}" for r in rows
            }
    except WarehouseError:
        pass  # the summary is a courtesy; the run's own status decides the exit code
    lines = {}
    for day in partition_dates(start, end):
        day_parts = parts.get(day, []) + ([engagement[day]] if day in engagement else [])
        if not day_parts and built.get(day):  # e.g. forecast vintages: say what was built
            day_parts = ["built " + ", ".join(sorted(set(built[day])))]
        lines[day] = "; ".join(day_parts)
    return lines


def _preflight() -> None:
    """Fail in one sentence before any run starts when the landing zone or warehouse is missing."""
    settings = get_settings()
    landing = LandingZone.at(settings.landing_dir)
    if not landing.exists():
        raise BackfillError(
            f"The landing directory {landing.url} does not exist; set ANALYTICS_LANDING_DIR "
            "or create sample data with `analytics-pipeline generate`."
        )
    # a run killed earlier would hold its warehouse pool slot forever, and this backfill would wait for it;
    # a dbt process it left running would hold the DuckDB file
    for dead in release_dead_runs(get_instance()):
        dbt = f", the dbt process it left running stopped (pid {dead.dbt_pids})" if dead.stopped_dbt else ""
        print(
            f"run {dead.run_id} ({dead.job_name}) had stopped without finishing ({dead.why}): marked "
            f"as ended, its warehouse pool slot freed{dbt}",
            file=sys.stderr,
        )
    # another backfill's step may hold the DuckDB file for a moment: wait as a step would
    retry_transient(lambda: Warehouse(settings).ensure_ready(RAW_TABLES))


def run_backfill(
    start: date, end: date, select: str | None = None, echo: Callable[[str], None] = print
) -> BackfillOutcome:
    """Backfill the selection for every day from ``start`` to ``end`` as a Dagster backfill; report as
    it goes."""
    _preflight()
    before, daily, after = plan(select)
    if not (before or daily or after):
        raise BackfillError("Nothing to run: the selection has no materializable assets.")
    days = [day.isoformat() for day in partition_dates(start, end)]
    steps = {
        "before": Step(before, job_for(before, daily=False)) if before else None,
        "daily": Step(daily, job_for(daily, daily=True), {RANGE_START: days[0], RANGE_END: days[-1]})
        if daily
        else None,
        "after": Step(after, job_for(after, daily=False)) if after else None,
    }
    instance = get_instance()
    outcome = BackfillOutcome(
        backfill_id=new_backfill_id(), start=start, end=end, by_daemon=daemon_launches_queued_runs(instance)
    )
    echo(f"backfill {outcome.backfill_id}: {start} .. {end} ({len(days)} days, {len(daily)} daily assets)")
    echo(
        "  its runs are queued for the running dagster-daemon"
        if outcome.by_daemon
        else "  its runs execute in this process (no dagster-daemon is running)"
    )
    materialized: list[tuple[dg.AssetKey, str | None]] = []
    with code_location(instance) as location:
        todo = [(kind, step) for kind, step in steps.items() if step]
        # the first run exists before the backfill does: a daemon never finds it with nothing to wait for
        first = _create(location, todo[0][1], outcome)
        _record(location, outcome, steps, days, select)
        broke_off = True  # by an error of this command's own, not of a run
        try:
            for kind, step in todo:
                if kind != "daily":
                    where = "upstream" if kind == "before" else "downstream"
                    echo(
                        f"refreshing {len(step.keys)} unpartitioned {where} assets: "
                        + ", ".join(k.to_user_string() for k in step.keys)
                    )
                report = _run(location, step, outcome, first if kind == todo[0][0] else None)
                materialized += report.materialized()
                if kind == "daily":
                    for day, line in _day_lines(report, Warehouse(get_settings()), start, end, outcome).items():
                        status = "FAILED" if not report.success else "warn" if day in outcome.warned_days else "ok"
                        echo(f"  {day}  {status}  {line}")
                if not outcome.success:
                    break
            broke_off = False
        finally:
            if not (outcome.by_daemon and outcome.interrupted):  # canceling: the daemon ends it with its runs
                status = (
                    "canceled"
                    if outcome.interrupted
                    else "succeeded"
                    if outcome.success and not broke_off
                    else "failed"
                )
                location.finish_backfill(outcome.backfill_id, status, materialized)
    return outcome


def _record(
    location: Location, outcome: BackfillOutcome, steps: dict[str, Step | None], days: list[str], select: str | None
) -> None:
    """Record the backfill in the instance: a backfill of the daily job's partitions, as the UI
    launches from that job's page; or, when no named job holds the daily assets (or there are none),
    a backfill of the selected assets, as the UI launches for a selection."""
    title = f"analytics-pipeline backfill {days[0]} .. {days[-1]}"
    description = f"analytics-pipeline backfill --start {days[0]} --end {days[-1]}" + (
        f" --select '{select}'" if select else ""
    )
    daily = steps["daily"]
    if daily and location.partition_set_name(daily.job):
        location.record_job_backfill(
            outcome.backfill_id, daily.job, days, None if _whole_job(daily) else daily.keys, {}, title, description
        )
        return
    unpartitioned = [key for kind in ("before", "after") if (step := steps[kind]) for key in step.keys]
    location.record_asset_backfill(
        outcome.backfill_id, daily.keys if daily else [], days, unpartitioned, {}, title, description
    )
