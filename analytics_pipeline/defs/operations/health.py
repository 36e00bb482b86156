"""``analytics-pipeline health``: what the old ``/health/`` endpoint answered, measured afresh at
every call (new connections, new reads; nothing cached between calls, so a warehouse that went away
shows as down at once and as ok as soon as it is back).

Six checks, each ``ok``, ``degraded`` or ``down`` with one sentence of reason:

- ``warehouse``: a ``select 1`` round trip on a new connection (3 s connect timeout).
- ``instance``: the Dagster instance of ``DAGSTER_HOME`` opens and its run storage answers.
- ``daemon``: every daemon the instance needs has sent a heartbeat without errors, by Dagster's
  own rule (the one the UI shows: a heartbeat within its tolerance of about 30 minutes).
- ``freshness``: each key mart was materialized within its freshness policy (warn 24 h, fail 26 h)
  and holds at least one row (a mart materialized every day from a dataset that never landed is
  fresh, and empty).
- ``runs``: no job whose latest run in the last 24 hours failed (a failure fixed by a later
  success of the same job is reported but is ok, as the alert is cleared then), and no run still
  marked in progress whose process is gone (embedded instance; it holds its warehouse pool slot
  until the daemon's ``dead_run_monitor`` or the next ``analytics-pipeline backfill`` ends it).
- ``checks``: no asset check whose latest evaluation failed with ERROR severity (WARN-severity
  failures, e.g. a KPI in its warn band, are listed but ok).

``down`` means the pipeline can neither run nor be read: the warehouse or the instance storage is
unreachable. Everything else that needs an operator is ``degraded``: without the daemon, schedules,
sensors and UI backfills stall, but ``analytics-pipeline backfill`` still runs and every table can
be read; stale marts, failing jobs and failed checks are data problems, not an outage. The overall
status is the worst one; the exit code is 0 / 1 / 2.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from analytics_pipeline.defs.operations.dead_runs import find_dead_runs
from analytics_pipeline.defs.operations.freshness import KEY_MART_FRESHNESS, KEY_MARTS
from analytics_pipeline.defs.operations.run_history import latest_check_states, run_error
from analytics_pipeline.resources.warehouse import TransientWarehouseError, Warehouse, WarehouseError
from analytics_pipeline.settings import Settings, get_settings

OK, DEGRADED, DOWN = "ok", "degraded", "down"
STATUSES = (OK, DEGRADED, DOWN)
RUN_FAILURE_WINDOW = timedelta(hours=24)
CHECK_DISCOVERY_WINDOW = timedelta(days=7)
WAREHOUSE_CONNECT_TIMEOUT = 3


@dataclass
class CheckResult:
    name: str
    status: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class HealthReport:
    checked_at: datetime
    checks: list[CheckResult]

    @property
    def status(self) -> str:
        return max((c.status for c in self.checks), key=STATUSES.index, default=OK)

    @property
    def exit_code(self) -> int:
        return STATUSES.index(self.status)

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checked_at": self.checked_at.isoformat(),
            "checks": {
                c.name: {"status": c.status, "reason": c.reason, "seconds": round(c.seconds, 3), "details": c.details}
                for c in self.checks
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def to_text(self) -> str:
        lines = [f"{c.name:<10} {c.status:<9} {c.reason}" for c in self.checks]
        return "\n".join([*lines, f"{'overall':<10} {self.status}"])


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


# -- the checks -------------------------------------------------------------------------------


def check_warehouse(settings: Settings) -> CheckResult:
    warehouse = Warehouse(settings)
    details = {"engine": settings.warehouse, "target": warehouse.describe()}
    started = time.perf_counter()
    try:
        warehouse.ping(connect_timeout=WAREHOUSE_CONNECT_TIMEOUT)
    except TransientWarehouseError as error:
        if settings.warehouse == "duckdb":  # its only transient error: the file is locked
            # DuckDB takes one writer process: the file is there and a run is writing to it.
            return CheckResult("warehouse", OK, f"{warehouse.describe()} is busy: a run is writing to it", details)
        return CheckResult("warehouse", DOWN, str(error), details)
    except WarehouseError as error:
        return CheckResult("warehouse", DOWN, str(error), details)
    millis = (time.perf_counter() - started) * 1000
    return CheckResult("warehouse", OK, f"{warehouse.describe()} answered in {millis:.0f} ms", details)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_instance(instance: dg.DagsterInstance) -> CheckResult:
    try:
        instance.get_run_records(limit=1)
    except Exception as error:
        return CheckResult(
            "instance",
            DOWN,
            f"The Dagster instance storage of {instance.root_directory} does not "
            f"answer ({_first_line(error)}); check DAGSTER_HOME's dagster.yaml and "
            "(production) DAGSTER_POSTGRES_URL",
        )
    details = {
        "dagster_home": instance.root_directory,
        "run_storage": type(instance.run_storage).__name__,
        "event_log_storage": type(instance.event_log_storage).__name__,
    }
    return CheckResult(
        "instance", OK, f"Dagster instance at {instance.root_directory} answers ({details['run_storage']})", details
    )


def check_daemon(instance: dg.DagsterInstance) -> CheckResult:
    statuses = instance.get_daemon_statuses()
    daemons: dict[str, dict[str, Any]] = {}
    missing, erroring = [], []
    for daemon_type, status in sorted(statuses.items()):
        heartbeat = status.last_heartbeat
        errors = [e.message.strip().splitlines()[0] for e in (heartbeat.errors or [])] if heartbeat else []
        daemons[daemon_type] = {
            "healthy": status.healthy,
            "last_heartbeat": datetime.fromtimestamp(heartbeat.timestamp, UTC).isoformat() if heartbeat else None,
            "errors": errors,
        }
        if status.required and not status.healthy:
            missing.append(daemon_type)
        elif errors:
            erroring.append(f"{daemon_type}: {errors[0]}")
    details = {"daemons": daemons}
    if not statuses:
        return CheckResult("daemon", OK, "this instance needs no daemon", details)
    if missing:
        return CheckResult(
            "daemon",
            DEGRADED,
            f"no recent heartbeat from {', '.join(missing)}: schedules, sensors, queued runs and UI backfills "
            "are not running; start the daemon with `analytics-pipeline ui` or `dagster-daemon run`",
            details,
        )
    if erroring:
        return CheckResult("daemon", DEGRADED, "daemon errors: " + "; ".join(erroring), details)
    return CheckResult("daemon", OK, f"{len(statuses)} daemons sent heartbeats", details)


def _key_marts_without_rows(settings: Settings) -> tuple[list[dg.AssetKey], str | None]:
    """(the key marts whose table is missing or empty, why they could not be counted)."""
    try:
        # a reader's session: shares the file with other readers and gives up after a few seconds
        # when a run is writing (a writer's session would queue behind the run for minutes)
        with Warehouse(settings).reading(wait_seconds=WAREHOUSE_CONNECT_TIMEOUT) as session:
            present = set(
                session.query("select table_schema || '.' || table_name as name from information_schema.tables")
                .column("name")
                .to_pylist()
            )
            empty = []
            for key in KEY_MARTS:
                table = ".".join(key.path)
                if (
                    table not in present
                    or not session.query(f"select exists (select 1 from {table}) as has_rows").column(0)[0].as_py()
                ):
                    empty.append(key)
    except WarehouseError as error:  # e.g. DuckDB locked by a run: the warehouse check says so
        return [], _first_line(error)
    return empty, None


def check_freshness(instance: dg.DagsterInstance, now: datetime, settings: Settings | None = None) -> CheckResult:
    """Materialized within the warn window, and (with ``settings``: the warehouse is read) not empty."""
    warn = KEY_MART_FRESHNESS.warn_window.to_timedelta()
    fail = KEY_MART_FRESHNESS.fail_window.to_timedelta()
    assets: dict[str, dict[str, Any]] = {}
    problems = []
    latest = {
        record.asset_entry.asset_key: record.asset_entry.last_materialization
        for record in instance.get_asset_records(KEY_MARTS)
    }
    for key in KEY_MARTS:
        name = key.to_user_string()
        event = latest.get(key)
        if event is None:
            assets[name] = {"last_materialization": None, "age_seconds": None, "state": "never"}
            problems.append(f"{name} was never materialized")
            continue
        age = now.timestamp() - event.timestamp
        state = "fail" if age > fail.total_seconds() else "warn" if age > warn.total_seconds() else "ok"
        assets[name] = {
            "last_materialization": datetime.fromtimestamp(event.timestamp, UTC).isoformat(),
            "age_seconds": round(age, 1),
            "state": state,
        }
        if state != "ok":
            limit = fail if state == "fail" else warn
            problems.append(f"{name} last updated {_ago(age)} (over {limit.total_seconds() / 3600:.0f} h)")
    details = {"assets": assets, "warn_after_seconds": warn.total_seconds(), "fail_after_seconds": fail.total_seconds()}
    if settings is not None:
        empty, not_counted = _key_marts_without_rows(settings)
        if not_counted:
            details["rows_not_counted"] = not_counted
        for key in empty:
            name = key.to_user_string()
            assets[name]["has_rows"] = False
            if assets[name]["state"] != "never":
                problems.append(
                    f"{name} has no rows at all (its data never landed: check `analytics-pipeline backfill` "
                    "and the landing zone)"
                )
        for name in assets:
            assets[name].setdefault("has_rows", None if not_counted else True)
    if problems:
        return CheckResult(
            "freshness",
            DEGRADED,
            "; ".join(problems)
            + ": check the daily schedule and the daemon, or run `analytics-pipeline backfill --days 1`",
            details,
        )
    oldest = max(a["age_seconds"] for a in assets.values())
    held = " and hold rows" if settings is not None and "rows_not_counted" not in details else ""
    return CheckResult("freshness", OK, f"{len(assets)} key marts fresh{held} (oldest updated {_ago(oldest)})", details)


def check_runs(instance: dg.DagsterInstance, now: datetime) -> CheckResult:
    since = now - RUN_FAILURE_WINDOW
    failed = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=since))
    still_failing = []
    for job in sorted({record.dagster_run.job_name for record in failed}):
        [latest] = instance.get_run_records(
            dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]), limit=1
        )
        if latest.dagster_run.status == dg.DagsterRunStatus.FAILURE:
            still_failing.append(
                {
                    "job": job,
                    "run_id": latest.dagster_run.run_id,
                    "failed_at": latest.update_timestamp.astimezone(UTC).isoformat(),
                    "error": run_error(instance, latest.dagster_run.run_id),
                }
            )
    dead = find_dead_runs(instance)
    details = {
        "window_hours": RUN_FAILURE_WINDOW.total_seconds() / 3600,
        "failed_runs": len(failed),
        "still_failing": still_failing,
        "dead": [{"job": d.job_name, "run_id": d.run_id, "pid": d.pid, "why": d.why} for d in dead],
    }
    if dead:
        runs = "; ".join(f"{d.job_name} (run {d.run_id[:8]}: {d.why})" for d in dead)
        return CheckResult(
            "runs",
            DEGRADED,
            f"runs still marked in progress whose process is gone: {runs}; they hold "
            "the warehouse pool until the daemon's dead_run_monitor or the next "
            "`analytics-pipeline backfill` ends them",
            details,
        )
    if still_failing:
        jobs = "; ".join(f"{f['job']} (run {f['run_id'][:8]}: {f['error']})" for f in still_failing)
        return CheckResult("runs", DEGRADED, f"latest run failed for {jobs}; open the run in the Dagster UI", details)
    if failed:
        return CheckResult(
            "runs", OK, f"{len(failed)} failed runs in the last 24 h, each job has succeeded since", details
        )
    return CheckResult("runs", OK, "no failed runs in the last 24 h", details)


def check_asset_checks(instance: dg.DagsterInstance, now: datetime) -> CheckResult:
    states = latest_check_states(instance, now - CHECK_DISCOVERY_WINDOW)
    failing = [s for s in states if not s.passed]
    details = {
        "evaluated": len(states),
        "failing": [
            {
                "asset": s.asset,
                "check": s.check,
                "severity": s.severity,
                "partition": s.partition,
                "run_id": s.run_id,
                "evaluated_at": s.evaluated_at.isoformat(),
            }
            for s in failing
        ],
    }
    errors = [s for s in failing if s.severity == "ERROR"]
    warnings = [s for s in failing if s.severity != "ERROR"]
    if errors:
        names = ", ".join(f"{s.asset}:{s.check}" for s in errors[:5]) + (" ..." if len(errors) > 5 else "")
        return CheckResult(
            "checks",
            DEGRADED,
            f"{len(errors)} asset checks failing: {names}; see each asset's Checks tab in the Dagster UI",
            details,
        )
    note = f" ({len(warnings)} failing with WARN severity)" if warnings else ""
    return CheckResult("checks", OK, f"{len(states)} asset checks passing at their latest evaluation{note}", details)


# -- the report -------------------------------------------------------------------------------


def _timed(check: Callable[[], CheckResult], name: str) -> CheckResult:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as error:
        result = CheckResult(name, DOWN if name == "instance" else DEGRADED, f"could not check: {_first_line(error)}")
    result.seconds = time.perf_counter() - started
    return result


def open_instance() -> dg.DagsterInstance:
    from analytics_pipeline.instance import get_instance

    return get_instance()


def evaluate(
    settings: Settings | None = None, instance: dg.DagsterInstance | None = None, now: datetime | None = None
) -> HealthReport:
    """Run every check now. ``instance`` defaults to the one of ``DAGSTER_HOME``, opened for this call."""
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    checks = [_timed(lambda: check_warehouse(settings), "warehouse")]
    warehouse_up = checks[0].status == OK
    opened = None
    if instance is None:
        started = time.perf_counter()
        try:
            instance = opened = open_instance()
        except Exception as error:
            reason = (
                f"Cannot open the Dagster instance in DAGSTER_HOME={settings.dagster_home} ({_first_line(error)}); "
                "check DAGSTER_HOME, its dagster.yaml and (production) DAGSTER_POSTGRES_URL"
            )
            checks.append(CheckResult("instance", DOWN, reason, seconds=time.perf_counter() - started))
    if instance is not None:
        try:
            checks.append(_timed(lambda: check_instance(instance), "instance"))
            if checks[-1].status == OK:
                checks += [
                    _timed(lambda: check_daemon(instance), "daemon"),
                    # rows are counted only on a warehouse that answered (the check above says why not)
                    _timed(lambda: check_freshness(instance, now, settings if warehouse_up else None), "freshness"),
                    _timed(lambda: check_runs(instance, now), "runs"),
                    _timed(lambda: check_asset_checks(instance, now), "checks"),
                ]
        finally:
            if opened is not None:
                opened.dispose()
    if checks[-1].name == "instance" and checks[-1].status == DOWN:
        skipped = "not checked: the Dagster instance storage is unavailable"
        checks += [CheckResult(name, DOWN, skipped) for name in ("daemon", "freshness", "runs", "checks")]
    return HealthReport(checked_at=now, checks=checks)
