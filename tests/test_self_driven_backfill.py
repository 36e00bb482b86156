"""Tripwires for ``analytics_pipeline/self_driven_backfill.py``, the Dagster internals behind the CLI's
backfills: Dagster's own backfill daemon, run over such a backfill, launches none of its runs and
only follows them; the code location the runs name is the one the UI and the daemon load. A Dagster
release that changes backfills, run creation or daemon heartbeats fails here first."""

from __future__ import annotations

import logging
import time
import tomllib

import dagster as dg
import pytest
import yaml
from dagster._core.execution.backfill import BulkActionStatus
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.types import DaemonHeartbeat

from analytics_pipeline.instance import get_instance
from analytics_pipeline.jobs import DAILY_DBT_KEYS
from analytics_pipeline.self_driven_backfill import (
    CODE_LOCATION,
    QUEUED_RUN_DAEMON,
    backfill_runs,
    code_location,
    daemon_launches_queued_runs,
    new_backfill_id,
)
from analytics_pipeline.settings import PROJECT_ROOT

DAYS = ["2025-03-03", "2025-03-04"]
RANGE = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]}
DIMENSIONS = [dg.AssetKey(["raw", name]) for name in ("items", "organizations", "users")]
RETENTION = dg.AssetKey(["marts", "fct_retention_cohorts"])


def test_the_code_location_is_the_one_the_ui_and_the_daemon_load() -> None:
    """Re-execution from the UI, the run-failure sensor and the daemon find a run's job by its code
    location's name: every workspace and the dg configuration must use the name the CLI's runs carry."""
    workspaces = [PROJECT_ROOT / "workspace.yaml", PROJECT_ROOT / "deploy" / "workspace.grpc.yaml"]
    for workspace in workspaces:
        [entry] = yaml.safe_load(workspace.read_text())["load_from"]
        assert next(iter(entry.values()))["location_name"] == CODE_LOCATION, workspace
    tool = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]
    assert tool["dagster"]["code_location_name"] == CODE_LOCATION


def _iterate_the_daemon(location) -> None:
    """One tick of Dagster's backfill daemon over every backfill in progress."""
    list(execute_backfill_iteration(location.process_context, logging.getLogger("backfill-daemon")))


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_dagsters_backfill_daemon_launches_nothing_and_ends_the_backfill_with_its_runs(env: dict[str, str]) -> None:
    instance = get_instance()
    with code_location(instance) as location:
        # a job backfill of daily_pipeline, as the CLI records it: its run exists, not started yet
        job_backfill = new_backfill_id()
        run = location.create_run(
            "daily_pipeline", None, {"dagster/backfill": job_backfill, **RANGE}, {}, in_this_process=True
        )
        assert run.job_name == "daily_pipeline" and run.remote_job_origin.location_name == CODE_LOCATION
        assert (
            run.tags["dagster/max_retries"] == "0"
            and run.tags["dagster/partition_set"] == "daily_pipeline_partition_set"
        )
        location.record_job_backfill(job_backfill, "daily_pipeline", DAYS, None, {}, "a title", "a description")
        # an asset backfill (a selection no named job holds): retention cohorts and two days of dbt models
        asset_backfill = new_backfill_id()
        location.create_run("__ASSET_JOB", [RETENTION], {"dagster/backfill": asset_backfill}, {}, in_this_process=False)
        location.record_asset_backfill(
            asset_backfill, DAILY_DBT_KEYS[:2], DAYS, [RETENTION, *DIMENSIONS], {}, "a title", "a description"
        )
        listed = {backfill.backfill_id: backfill for backfill in instance.get_backfills()}
        assert not listed[job_backfill].is_asset_backfill and listed[job_backfill].partition_names == DAYS
        assert listed[asset_backfill].is_asset_backfill

        _iterate_the_daemon(location)

        # nothing launched: each backfill still has just the run its command created, and waits for it
        assert [r.run_id for r in backfill_runs(instance, job_backfill)] == [run.run_id]
        assert len(backfill_runs(instance, asset_backfill)) == 1
        assert len(instance.get_runs()) == 2
        assert instance.get_backfill(job_backfill).status == BulkActionStatus.REQUESTED
        assert instance.get_backfill(asset_backfill).status == BulkActionStatus.REQUESTED

        # once the job backfill's run has ended, the daemon ends the backfill, still launching nothing
        instance.report_run_failed(instance.get_run_by_id(run.run_id), "ended for the test")
        _iterate_the_daemon(location)
        assert instance.get_backfill(job_backfill).status == BulkActionStatus.COMPLETED_FAILED
        assert len(instance.get_runs()) == 2

        # the command's own ending of an asset backfill records what its runs materialized
        location.finish_backfill(asset_backfill, "failed", [(RETENTION, None)])
        ended = instance.get_backfill(asset_backfill)
        data = ended.get_asset_backfill_data(location.repository.asset_graph)
        assert ended.status == BulkActionStatus.COMPLETED_FAILED and ended.backfill_end_timestamp
        assert data.materialized_subset.non_partitioned_asset_keys == {RETENTION}
        assert set(DIMENSIONS) <= data.failed_and_downstream_subset.non_partitioned_asset_keys


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_runs_are_handed_to_the_daemon_only_while_its_run_queue_heartbeats(env: dict[str, str]) -> None:
    instance = get_instance()
    assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)  # the project's dagster.yaml
    assert QUEUED_RUN_DAEMON in instance.get_required_daemon_types()
    assert not daemon_launches_queued_runs(instance)  # never ran
    now = time.time()
    instance.add_daemon_heartbeat(DaemonHeartbeat(now - 5, QUEUED_RUN_DAEMON, "test", None))
    assert daemon_launches_queued_runs(instance, now)
    assert not daemon_launches_queued_runs(instance, now + 300)  # stopped five minutes ago


def test_new_backfill_ids_look_like_the_uis() -> None:
    ids = {new_backfill_id() for _ in range(20)}
    assert len(ids) == 20 and all(len(i) == 8 and i.isalpha() and i.islower() for i in ids)
