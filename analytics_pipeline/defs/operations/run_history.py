"""The Dagster instance's run history, read for the health command, task health and metrics.

Run records say what each run was and how it ended; a run's step and asset events say what it did
to each asset (planned, materialized, or lost to a failed step) and why a step failed. Every call
reads the instance afresh; nothing is cached.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg
from dagster import DagsterEventType as Event

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
_ERROR_EVENTS = {Event.STEP_FAILURE, Event.RUN_FAILURE}
_ASSET_EVENTS = {
    Event.ASSET_MATERIALIZATION_PLANNED,
    Event.ASSET_MATERIALIZATION,
    Event.STEP_START,
    Event.STEP_SUCCESS,
    Event.STEP_FAILURE,
    Event.RUN_FAILURE,
}
MAX_ERROR_CHARS = 500


@dataclass
class AssetAttempt:
    """What one run did to one asset it planned: materialized it, or failed in the asset's step."""

    asset: str  # asset key, e.g. raw/activity_events
    succeeded: bool
    at: datetime  # when the materialization was recorded, or when the step failed
    seconds: float | None = None  # duration of the step that built it (shared by a multi-asset step)
    error: str | None = None


@dataclass
class RunFacts:
    run_id: str
    job_name: str
    status: dg.DagsterRunStatus
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None = None  # the first failed step's error, else the run's own failure
    assets: list[AssetAttempt] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


def _utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:MAX_ERROR_CHARS]


def error_message(error: SerializableErrorInfo | None, failure: object = None) -> str:
    """The sentence that explains a failure: a ``dg.Failure``'s description, else the innermost
    cause (the user's exception rather than Dagster's wrapper), on one line and cut short."""
    description = getattr(failure, "description", None)
    if description:
        return _one_line(str(description))
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return "failed"
    message = error.message.strip()
    if message.startswith("dagster."):  # "dagster._core...Failure: why" -> "why"
        message = message.split(": ", 1)[-1]
    return _one_line(message)


def _event_error(event: dg.DagsterEvent) -> str:
    data = event.event_specific_data
    return error_message(getattr(data, "error", None), getattr(data, "user_failure_data", None))


def _records(instance: dg.DagsterInstance, run_id: str, types: set[Event]) -> list[dg.EventLogEntry]:
    return [record.event_log_entry for record in instance.get_records_for_run(run_id, of_type=types).records]


def _node(step_key: str | None) -> str | None:
    """The top-level node of a step: ``a.b[key]`` -> ``a``."""
    return step_key.split(".", 1)[0].split("[", 1)[0] if step_key else None


def _attach_events(instance: dg.DagsterInstance, run: RunFacts, with_assets: bool) -> None:
    entries = _records(instance, run.run_id, _ASSET_EVENTS if with_assets else _ERROR_EVENTS)
    # Steps are counted per node: a graph-backed asset's steps (``forecast__demand_forecasts.plan_…``,
    # ``….forecast_items[20250630_0]``, ``….write_…``) are one asset's work.
    node_started: dict[str, float] = {}
    node_ended: dict[str, float] = {}
    node_errors: dict[str, tuple[str, str, float]] = {}
    planned: dict[str, str | None] = {}
    materialized: dict[str, tuple[str | None, float]] = {}
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        kind, step = event.event_type, event.step_key
        node = _node(step)
        if kind == Event.STEP_START and node:
            node_started.setdefault(node, entry.timestamp)
        elif kind == Event.STEP_SUCCESS and node:
            node_ended[node] = entry.timestamp
        elif kind == Event.STEP_FAILURE and node:
            node_ended[node] = entry.timestamp
            node_errors.setdefault(node, (step, _event_error(event), entry.timestamp))
        elif kind == Event.RUN_FAILURE and not node_errors:  # e.g. the run worker died, a resource failed
            has_error = getattr(event.event_specific_data, "error", None) is not None
            run.error = _event_error(event) if has_error else _one_line(event.message or "run failed")
        elif kind == Event.ASSET_MATERIALIZATION_PLANNED:
            planned.setdefault(event.asset_key.to_user_string(), node)
        elif kind == Event.ASSET_MATERIALIZATION:
            materialized[event.asset_key.to_user_string()] = (node, entry.timestamp)
    if node_errors:
        step, message, _ = min(node_errors.values(), key=lambda error: error[2])
        run.error = f"{step}: {message}"

    def node_seconds(node: str | None) -> float | None:
        if node in node_started and node in node_ended:
            return node_ended[node] - node_started[node]
        return None

    for asset in sorted(planned.keys() | materialized.keys()):
        if asset in materialized:
            node, at = materialized[asset]
            run.assets.append(AssetAttempt(asset, True, _utc(at), node_seconds(node)))
        elif planned[asset] in node_errors:
            _, message, at = node_errors[planned[asset]]
            run.assets.append(AssetAttempt(asset, False, _utc(at), error=message))
        # else: skipped (an upstream step failed, the run was canceled or is still going)


def runs_since(
    instance: dg.DagsterInstance,
    since: datetime,
    with_assets: bool = False,
    exclude: Iterable[str] = (),
) -> list[RunFacts]:
    """Runs created since ``since``, oldest first. Failed runs carry their error; with
    ``with_assets`` every run also carries what it did to each asset."""
    excluded = set(exclude)
    records = instance.get_run_records(dg.RunsFilter(created_after=since), order_by="create_timestamp", ascending=True)
    runs = []
    for record in records:
        run = record.dagster_run
        if run.run_id in excluded:
            continue
        facts = RunFacts(
            run_id=run.run_id,
            job_name=run.job_name,
            status=run.status,
            created_at=record.create_timestamp.astimezone(UTC),
            started_at=_utc(record.start_time),
            ended_at=_utc(record.end_time),
        )
        if with_assets or run.status == dg.DagsterRunStatus.FAILURE:
            _attach_events(instance, facts, with_assets)
        runs.append(facts)
    return runs


def run_error(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """Why a run failed, in one sentence (None when it did not)."""
    facts = RunFacts(run_id, "", dg.DagsterRunStatus.FAILURE, datetime.now(UTC), None, None)
    _attach_events(instance, facts, with_assets=False)
    return facts.error


@dataclass
class CheckState:
    asset: str
    check: str
    passed: bool
    severity: str  # ERROR or WARN
    evaluated_at: datetime
    run_id: str
    partition: str | None = None
    description: str | None = None


def latest_check_states(instance: dg.DagsterInstance, since: datetime) -> list[CheckState]:
    """The latest evaluation of every asset check evaluated by a run updated since ``since``.

    Checks are found through the runs that evaluated them (so no code location needs loading);
    their latest state comes from the instance's check summary, whichever run recorded it.
    """
    records = instance.get_run_records(dg.RunsFilter(updated_after=since))
    keys: set[dg.AssetCheckKey] = set()
    for record in records:
        for entry in _records(instance, record.dagster_run.run_id, {Event.ASSET_CHECK_EVALUATION}):
            evaluation = entry.dagster_event.event_specific_data
            keys.add(dg.AssetCheckKey(evaluation.asset_key, evaluation.check_name))
    summaries = instance.event_log_storage.get_asset_check_summary_records(sorted(keys, key=str)) if keys else {}
    states = []
    for key, summary in summaries.items():
        record = summary.last_completed_check_execution_record
        evaluation = record.evaluation if record else None
        if evaluation is None:
            continue
        states.append(
            CheckState(
                asset=key.asset_key.to_user_string(),
                check=key.name,
                passed=evaluation.passed,
                severity=evaluation.severity.value,
                evaluated_at=_utc(record.create_timestamp),
                run_id=record.run_id,
                partition=record.partition,
                description=evaluation.description,
            )
        )
    return sorted(states, key=lambda s: (s.asset, s.check))
