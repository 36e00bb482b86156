"""The code location loads, through the dagster CLI as the webserver and daemon load it, and has the
shape SPEC §6 asks for."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from analytics_pipeline.settings import PROJECT_ROOT


def test_dagster_cli_validates_the_workspace() -> None:
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_dg_lists_and_checks_the_project_definitions(tmp_path: Path) -> None:
    """``dg`` (Dagster's recommended CLI) finds the project from pyproject.toml's [tool.dg]."""
    dg_cli = Path(sys.executable).parent / "dg"
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    listed = subprocess.run(
        [str(dg_cli), "list", "defs", "--json"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, env=env
    )
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    defs = json.loads(listed.stdout)
    assets = {asset["asset_key"]: asset["group_name"] for asset in defs["assets"]}
    assert assets["raw/activity_events"] == "ingestion"
    assert assets["marts/fct_daily_engagement"] == "engagement"
    assert assets["forecast/demand_forecasts"] == "forecasting"
    assert {"daily_pipeline", "weekly_report"} <= {job["name"] for job in defs["jobs"]}
    assert "landing_file_sensor" in {sensor["name"] for sensor in defs["sensors"]}
    checked = subprocess.run(
        [str(dg_cli), "check", "defs"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, env=env
    )
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr


def test_a_hand_run_of_dbt_reuses_the_parse_make_install_prepared(tmp_path: Path) -> None:
    """README: `cd dbt_project && dbt build --profiles-dir .` after `make install` starts from the saved
    parse instead of parsing the whole project again (the pipeline's own parse is kept elsewhere)."""
    from analytics_pipeline.resources.dbt import dbt_executable, prepare_hand_parse
    from analytics_pipeline.settings import DBT_PROJECT_DIR

    project = tmp_path / "dbt_project"
    shutil.copytree(
        DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml")
    )
    # the operator's shell: none of the project's settings exported (they live in .env, if anywhere)
    shell = {name: value for name, value in os.environ.items() if not name.startswith(("ANALYTICS_", "DBT_"))}
    prepare_hand_parse(project, shell)
    assert (project / "target" / "partial_parse.msgpack").exists()
    hand = subprocess.run(
        [dbt_executable(), "--debug", "ls", "--profiles-dir", ".", "--resource-type", "model"],
        cwd=project,
        env=shell,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert hand.returncode == 0, hand.stdout[-3000:] + hand.stderr[-2000:]
    assert "Unable to do partial parsing" not in hand.stdout, hand.stdout[-3000:]
    assert "Partial parsing enabled" in hand.stdout, hand.stdout[-3000:]
    assert "analytics_pipeline.marts.engagement.fct_daily_engagement" in hand.stdout


def test_groups_partitions_and_checks() -> None:
    from analytics_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    by_key = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
    groups = {name: node.group_name for name, node in by_key.items() if node.is_materializable}
    assert set(groups.values()) == {"ingestion", "engagement", "commerce", "forecasting", "reporting", "operations"}
    assert groups["marts/fct_daily_engagement"] == groups["marts/fct_engagement_rolling"] == "engagement"
    assert groups["marts/fct_forecast_accuracy"] == groups["forecast/demand_forecasts"] == "forecasting"
    for name in (
        "raw/activity_events",
        "raw/order_lines",
        "raw/inventory_snapshots",
        "marts/fct_daily_engagement",
        "marts/fct_engagement_rolling",
        "marts/fct_activity_summary",
        "marts/fct_hourly_usage",
    ):
        node = by_key[name]
        assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition), name
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), name
    for name in ("raw/users", "raw/organizations", "raw/items", "marts/fct_retention_cohorts"):
        assert by_key[name].partitions_def is None, name
    # every dbt test is an asset check, and each raw dataset has its reject-rate check
    check_keys = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert (
        "marts/fct_daily_engagement",
        "unique_combination_of_columns_fct_daily_engagement_activity_date__org_id",
    ) in check_keys
    assert ("marts/fct_activity_summary", "assert_activity_summary_matches_daily_engagement") in check_keys
    assert all(("raw/" + d, "reject_rate_below_threshold") in check_keys for d in ("activity_events", "users"))


def test_a_backfill_of_the_forecasting_group_is_one_run_over_its_as_of_dates() -> None:
    """Every partitioned asset of group:forecasting backfills its range in one run, so a job of the
    group has a single-run policy (with one asset left at Dagster's default, the job fell back to a
    run per as-of date, with a warning naming the varying policies)."""
    import warnings

    from analytics_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fallback is announced as a UserWarning
        job = dg.define_asset_job("forecasting_backfill", selection=dg.AssetSelection.groups("forecasting"))
        resolved = job.resolve(asset_graph=graph)
    assert resolved.backfill_policy == dg.BackfillPolicy.single_run()


def test_a_backfill_of_old_days_plans_only_those_days() -> None:
    """History-dependent models (first activity ever, 30-day windows, periods) recompute in SQL the
    later days a window changes, so Dagster plans exactly the window's days for every daily asset: a
    late file for an old day, or a backfill of an old range, is not a bookkeeping entry for every
    later day (the launch preview of a 3-day backfill showed the mart's days up to today)."""
    from analytics_pipeline.definitions import defs
    from analytics_pipeline.jobs import DAILY_ASSETS

    graph = defs.resolve_asset_graph()
    daily = DAILY_ASSETS.resolve(graph)
    window = ["2025-03-01", "2025-03-02", "2025-03-03"]
    checked = 0
    for key in daily:
        node = graph.get(key)
        for parent in node.parent_keys & daily:
            mapping = graph.get_partition_mapping(key, parent)
            parent_days = graph.get(parent).partitions_def
            downstream = mapping.get_downstream_partitions_for_partitions(
                parent_days.subset_with_partition_keys(window), parent_days, node.partitions_def
            )
            assert sorted(downstream.get_partition_keys()) == window, (key, parent)
            checked += 1
    assert checked >= 15  # every dependency between two daily assets (raw -> staging -> ... -> marts)


def test_key_marts_carry_a_freshness_policy() -> None:
    from analytics_pipeline.definitions import defs
    from analytics_pipeline.defs.operations.freshness import KEY_MARTS

    graph = defs.resolve_asset_graph()
    for key in KEY_MARTS:
        policy = graph.get(key).freshness_policy
        assert type(policy).__name__ == "TimeWindowFreshnessPolicy", key
        assert policy.fail_window.to_timedelta().total_seconds() == 26 * 3600
    assert graph.get(dg.AssetKey(["marts", "fct_activity_summary"])).freshness_policy is None


def test_every_job_runs_its_steps_in_the_run_process() -> None:
    """Steps take turns on the warehouse pool, so a process per step would only load the code location
    again for each (dimension_refresh: about 20 s instead of 6, bench/before_after.md)."""
    from analytics_pipeline.definitions import defs

    jobs = defs.resolve_all_job_defs()
    assert {"daily_pipeline", "dimension_refresh", "weekly_report", "demand_forecast", "__ASSET_JOB"} <= {
        job.name for job in jobs
    }
    assert {job.name: job.executor_def.name for job in jobs} == {job.name: "in_process" for job in jobs}


def test_loading_the_code_location_leaves_the_heavy_libraries_unimported() -> None:
    """Every Dagster process (webserver, daemon, each run) loads the code location; only the steps
    that forecast or build reports need these (together seconds of imports, bench/before_after.md)."""
    heavy = ("pandas", "statsforecast", "statsmodels", "matplotlib", "openpyxl")
    probe = f"import sys, analytics_pipeline.definitions; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


_BLOCKED_RUN = """
import sys
import dagster as dg
from dagster._utils.interrupts import capture_interrupts
from analytics_pipeline.resources.policies import WAREHOUSE_POOL

@dg.asset(pool=WAREHOUSE_POOL)
def writer() -> None:
    pass

# as a run worker runs it: a SIGINT (how Dagster terminates a run) is captured, not raised at once
with capture_interrupts():
    result = dg.materialize([writer], instance=dg.DagsterInstance.from_config(sys.argv[1]), raise_on_error=False)
print(result.dagster_run.run_id)
sys.exit(0 if result.success else 3)
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _run_blocked_on_the_warehouse_pool(home: Path) -> Iterator[tuple[dg.DagsterInstance, subprocess.Popen[str]]]:
    """A run in a process of its own, as a run worker is, whose only step waits for the single slot of
    the warehouse pool, which "another-run" holds; yielded once the run has logged that it waits."""
    import time

    from analytics_pipeline.resources.policies import WAREHOUSE_POOL

    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    instance = dg.DagsterInstance.from_config(str(home))
    instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
    assert instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, "another-run", "its-step").is_claimed
    run = subprocess.Popen(
        [sys.executable, "-c", _BLOCKED_RUN, str(home)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(
            "blocked by limit for pool" in (entry.user_message or "")
            for record in instance.get_run_records()
            for entry in instance.all_logs(record.dagster_run.run_id)
        ):
            assert run.poll() is None and time.monotonic() < deadline, "the run never waited for the slot"
            time.sleep(0.5)
        yield instance, run
    finally:
        run.kill()
        run.wait()


def test_a_run_waiting_for_the_warehouse_pool_sleeps_instead_of_spinning(tmp_path: Path) -> None:
    import time

    with _run_blocked_on_the_warehouse_pool(tmp_path) as (instance, run):
        before = _cpu_seconds(run.pid)
        time.sleep(5)
        blocked_cpu = _cpu_seconds(run.pid) - before
        assert run.poll() is None, "the step ran although the only slot was taken"
        instance.event_log_storage.free_concurrency_slots_for_run("another-run")
        assert run.wait(timeout=120) == 0, run.stderr.read()[-2000:]
    # spinning, the waiting run used a whole core: about 5 s of CPU in these 5 s
    assert blocked_cpu < 1.5, f"{blocked_cpu:.2f} s of CPU while waiting 5 s for a pool slot"


def test_a_run_terminated_while_waiting_for_the_warehouse_pool_stops_waiting(tmp_path: Path) -> None:
    """Terminate as the run launcher does it (the run marked CANCELING, then SIGINT to its process):
    the run is CANCELED within seconds, its step never started, while the slot is still taken."""
    import signal

    from analytics_pipeline.resources.policies import WAREHOUSE_POOL

    with _run_blocked_on_the_warehouse_pool(tmp_path) as (instance, run):
        (record,) = instance.get_run_records()
        instance.report_run_canceling(record.dagster_run)
        run.send_signal(signal.SIGINT)
        try:
            run.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("the terminated run kept waiting for the pool slot") from None
        assert run.returncode == 3, run.stderr.read()[-2000:]  # ended, not successful, and not by the signal
        run_id = run.stdout.read().split()[-1]
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.CANCELED
        started = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
        assert not started
        info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
        assert info.active_run_ids == {"another-run"} and not info.pending_run_ids  # its own claim withdrawn
