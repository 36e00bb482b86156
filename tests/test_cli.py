"""The ``analytics-pipeline`` command line, driven in subprocesses as an operator would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import PROJECT_ROOT, get_settings

CLI = [sys.executable, "-m", "analytics_pipeline.cli"]
START, END = date(2025, 3, 3), date(2025, 3, 5)


def cli(*args: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT
    )


def generate_small(env: dict[str, str]) -> None:
    result = cli(
        "generate",
        "--start",
        START.isoformat(),
        "--end",
        END.isoformat(),
        "--events-per-day",
        "800",
        "--users",
        "150",
        "--orgs",
        "4",
        "--items",
        "12",
        "--bad-rate",
        "0.01",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "activity_events" in result.stdout


@pytest.mark.e2e
def test_generate_then_backfill_records_runs_and_fills_the_marts(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if env["ANALYTICS_WAREHOUSE"] == "postgres":
        # production-style instance as well: Dagster's run storage in PostgreSQL (dagster-postgres)
        shutil.copy(PROJECT_ROOT / "deploy" / "dagster.production.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
        env = {
            **env,
            "DAGSTER_POSTGRES_URL": f"postgresql+psycopg2://{env['ANALYTICS_PG_USER']}@{env['ANALYTICS_PG_HOST']}:{env['ANALYTICS_PG_PORT']}"
            f"/{env['ANALYTICS_PG_DATABASE']}",
        }
        monkeypatch.setenv("DAGSTER_POSTGRES_URL", env["DAGSTER_POSTGRES_URL"])
    generate_small(env)

    result = cli("backfill", "--start", START.isoformat(), "--end", END.isoformat(), env=env)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for day in ("2025-03-03", "2025-03-04", "2025-03-05"):
        [line] = [
            line for line in result.stdout.splitlines() if line.strip().startswith((f"{day}  ok", f"{day}  warn"))
        ]
        # a day whose bad records are beyond chance (--bad-rate 0.01 on a few dozen lines) is a warning
        assert line.strip().startswith((f"{day}  ok  activity_events", f"{day}  warn  activity_events")), line
        assert "active users" in line, line
    assert "succeeded: 3 days" in result.stdout
    # dbt's own console lines stay in the runs' captured logs (the UI's stdout view), off the terminal
    assert not [line for line in result.stdout.splitlines() if "PASS=" in line or "Completed successfully" in line]
    captured = [path.read_text() for path in Path(env["DAGSTER_HOME"]).glob("storage/*/compute_logs/*.out")]
    assert any("PASS=" in text for text in captured)

    warehouse = Warehouse(get_settings())
    per_day = warehouse.query(
        "select activity_date, sum(events) as events from marts.fct_daily_engagement group by activity_date order by 1"
    ).to_pylist()
    raw_per_day = warehouse.query(
        "select _partition_date as d, count(*) as n from raw.activity_events group by 1 order by 1"
    ).to_pylist()
    assert [r["activity_date"] for r in per_day] == [START, date(2025, 3, 4), END]
    assert [r["events"] for r in per_day] == [r["n"] for r in raw_per_day]
    assert warehouse.scalar("select count(*) from raw.rejected_records") > 0
    assert warehouse.scalar("select count(*) from marts.fct_retention_cohorts") > 0

    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    runs = instance.get_runs()
    assert len(runs) == 3  # dimensions, the daily range as one run, retention cohorts
    assert all(run.is_success for run in runs)
    daily_run = next(r for r in runs if r.tags.get("dagster/asset_partition_range_start"))
    assert (
        daily_run.tags["dagster/asset_partition_range_start"],
        daily_run.tags["dagster/asset_partition_range_end"],
    ) == ("2025-03-03", "2025-03-05")
    if env["ANALYTICS_WAREHOUSE"] == "postgres":
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"

    # a selection without ingestion or the engagement mart: its day says what it built, nothing else
    summary = cli(
        "backfill",
        "--start",
        "2025-03-04",
        "--end",
        "2025-03-04",
        "--select",
        "key:marts/fct_activity_summary",
        env=env,
    )
    assert summary.returncode == 0, summary.stdout[-3000:] + summary.stderr[-3000:]
    [line] = [line for line in summary.stdout.splitlines() if line.strip().startswith("2025-03-04")]
    assert line.strip() == "2025-03-04  ok  built marts/fct_activity_summary", line


def _write_day(landing: Path, day: date, stock: list[str] | None) -> None:
    """One event and one order line; ``stock`` lines of an inventory snapshot (none: no file)."""
    folder = landing / "activity_events" / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "events.jsonl").write_text(
        f'{{"event_id": "e{day}", "occurred_at": "{day}T10:00:00Z", "user_id": "u1", "org_id": "A", '
        f'"activity_type": "login"}}\n'
    )
    folder = landing / "order_lines" / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orders.csv").write_text(
        "order_id,line_no,ordered_at,org_id,item_id,quantity,unit_price,unit_cost,status\n"
        f"o{day},1,{day}T10:00:00Z,A,I1,1,2.00,1.00,completed\n"
    )
    folder = landing / "inventory_snapshots" / f"date={day}"
    if stock is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "stock.csv").write_text("snapshot_date,item_id,on_hand\n" + "".join(f"{row}\n" for row in stock))


def _stock(day: date, good: int, bad: int = 0) -> list[str]:
    return [f"{day},I{n},5" for n in range(good)] + [f"{day},B{n},-1" for n in range(bad)]


def _day_line(stdout: str, day: date) -> str:
    return next(line.strip() for line in stdout.splitlines() if line.strip().startswith(str(day)))


def test_backfill_marks_missing_files_and_bad_days_and_a_bad_day_keeps_failing(env: dict[str, str]) -> None:
    """Day 1 clean; day 2 has no inventory snapshot file; day 3's snapshot has 2 bad lines of 7
    (28.6%; 2 or more rejects of 7 at a 1% rate has probability 0.0020, beyond chance)."""
    from analytics_pipeline.defs.operations.health import check_asset_checks
    from analytics_pipeline.instance import get_instance

    landing = Path(env["ANALYTICS_LANDING_DIR"])
    day1, day2, day3, day4 = (date(2025, 3, d) for d in (3, 4, 5, 6))
    _write_day(landing, day1, _stock(day1, 7))
    _write_day(landing, day2, None)
    _write_day(landing, day3, _stock(day3, 5, bad=2))
    _write_day(landing, day4, _stock(day4, 7))

    first = cli("backfill", "--start", str(day1), "--end", str(day3), "--select", "group:ingestion", env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert _day_line(first.stdout, day1).startswith(f"{day1}  ok  ")
    assert _day_line(first.stdout, day2).startswith(f"{day2}  warn  ")
    assert "inventory_snapshots 0 loaded/0 rejected/0 dup (no files)" in _day_line(first.stdout, day2)
    assert _day_line(first.stdout, day3).startswith(f"{day3}  warn  ")
    assert "inventory_snapshots 5 loaded/2 rejected/0 dup (reject rate 28.6% over 1.0%)" in _day_line(
        first.stdout, day3
    )
    assert "succeeded: 3 days, 2 with warnings" in first.stdout
    assert f"warn {day2}: inventory_snapshots: no landing files" in first.stdout
    assert f"check failed: raw/inventory_snapshots:reject_rate_below_threshold (ERROR): {day3}" in first.stdout
    assert f"check failed: raw/inventory_snapshots:landing_files_present (WARN): {day2}" in first.stdout

    # A later backfill of a clean day: that day is ok, and the check still fails for day 3.
    later = cli("backfill", "--start", str(day4), "--end", str(day4), "--select", "group:ingestion", env=env)
    assert later.returncode == 0, later.stdout[-3000:] + later.stderr[-3000:]
    assert _day_line(later.stdout, day4).startswith(f"{day4}  ok  ")
    assert f"check failed: raw/inventory_snapshots:reject_rate_below_threshold (ERROR): {day3}" in later.stdout
    instance = get_instance()
    checks = check_asset_checks(instance, datetime.now(UTC))
    assert checks.status == "degraded" and "raw/inventory_snapshots:reject_rate_below_threshold" in checks.reason

    # Day 3 reloaded clean: the check passes, and health no longer names it.
    _write_day(landing, day3, _stock(day3, 7))
    fixed = cli("backfill", "--start", str(day3), "--end", str(day3), "--select", "group:ingestion", env=env)
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-3000:]
    assert _day_line(fixed.stdout, day3).startswith(f"{day3}  ok  ")
    assert "reject_rate_below_threshold" not in fixed.stdout
    assert (
        "raw/inventory_snapshots:reject_rate_below_threshold"
        not in check_asset_checks(instance, datetime.now(UTC)).reason
    )
    instance.dispose()


@pytest.mark.e2e
@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_backfill_exits_non_zero_when_a_partition_fails(env: dict[str, str]) -> None:
    generate_small(env)
    # a raw table someone created by hand with the wrong columns: loading users cannot succeed
    connection = duckdb.connect(env["ANALYTICS_DUCKDB_PATH"])
    connection.execute("create schema raw; create table raw.users (user_id varchar)")
    connection.close()

    result = cli("backfill", "--start", START.isoformat(), "--end", END.isoformat(), env=env)

    assert result.returncode == 1
    assert "FAILED" in result.stderr and "raw__users" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backfill", "--days", "0"], "--days must be at least 1"),
        (["backfill", "--start", "2025-01-05", "--end", "2025-01-01"], "is before --start"),
        (["backfill", "--start", "2024-12-01", "--end", "2024-12-02"], "before the first partition 2025-01-01"),
        (["backfill", "--days", "3", "--start", "2025-01-01"], "either --days or --start/--end"),
        (["generate", "--start", "2025-01-05", "--end", "2025-01-01"], "end"),
    ],
)
@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_bad_arguments_get_one_clear_sentence(env: dict[str, str], args: list[str], message: str) -> None:
    result = cli(*args, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_missing_landing_zone_and_unreachable_postgres_name_the_setting(env: dict[str, str], tmp_path: Path) -> None:
    missing = cli("backfill", "--days", "1", env={**env, "ANALYTICS_LANDING_DIR": str(tmp_path / "nowhere")})
    assert missing.returncode == 2 and "ANALYTICS_LANDING_DIR" in missing.stderr

    down = cli("backfill", "--days", "1", env={**env, "ANALYTICS_WAREHOUSE": "postgres", "ANALYTICS_PG_PORT": "1"})
    assert down.returncode == 2
    assert "ANALYTICS_PG_PORT" in down.stderr and "Traceback" not in down.stderr


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_generate_says_how_to_start_the_partitions_at_the_datas_first_day(env: dict[str, str]) -> None:
    result = cli(
        "generate",
        "--start",
        "2025-03-03",
        "--end",
        "2025-03-04",
        "--events-per-day",
        "50",
        "--users",
        "20",
        "--orgs",
        "2",
        "--items",
        "5",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "daily partitions start at ANALYTICS_START_DATE=2025-01-01" in result.stdout
    assert "put ANALYTICS_START_DATE=2025-03-03 in" in result.stdout and "--write-start-date" in result.stdout


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_write_start_date_sets_the_first_day_in_env_and_keeps_the_users_settings(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``make demo``'s generate: the project's .env gets the data's first day (an earlier day already
    in the landing zone counts), the other lines stay, and every reader of .env sees it."""
    from dotenv import dotenv_values

    import analytics_pipeline.settings as settings_module
    from analytics_pipeline.cli import main

    env_file = tmp_path / "project.env"
    env_file.write_text(
        '# mine\nANALYTICS_MAX_REJECT_RATE=0.05\nANALYTICS_START_DATE=2024-06-01\nANALYTICS_PG_DATABASE="my db"\n'
    )
    monkeypatch.setattr(settings_module, "ENV_FILE", env_file)
    landing = Path(env["ANALYTICS_LANDING_DIR"])
    (landing / "order_lines" / "date=2025-02-27").mkdir(parents=True)  # a day landed earlier
    (landing / "order_lines" / "date=not-a-day").mkdir()
    assert (
        main(
            [
                "generate",
                "--start",
                "2025-03-03",
                "--end",
                "2025-03-04",
                "--events-per-day",
                "50",
                "--users",
                "20",
                "--orgs",
                "2",
                "--items",
                "5",
                "--write-start-date",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"ANALYTICS_START_DATE=2025-02-27 written to {env_file}" in out
    # the test's own ANALYTICS_START_DATE is in the environment, which wins over .env: said so
    assert "ANALYTICS_START_DATE=2025-01-01 is set in the environment" in out
    assert env_file.read_text().splitlines() == [
        "# mine",
        "ANALYTICS_MAX_REJECT_RATE=0.05",
        "ANALYTICS_START_DATE=2025-02-27",
        'ANALYTICS_PG_DATABASE="my db"',
    ]
    written = settings_module.Settings.from_env(dict(dotenv_values(env_file)))
    assert written.start_date == date(2025, 2, 27) and written.max_reject_rate == 0.05
    assert written.pg_database == "my db"


@pytest.mark.e2e
@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_parallel_backfills_queue_on_the_warehouse_pool_instead_of_failing(env: dict[str, str]) -> None:
    """Two operators backfill different days at once on one DuckDB file (one writer process at a time):
    the instance's `warehouse` pool (dagster.yaml) makes the steps wait for each other, and the retry
    policy absorbs the rare collision with a command's own brief reads outside any step."""
    shutil.copy(PROJECT_ROOT / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    generate_small(env)
    processes = [
        subprocess.Popen(
            [*CLI, "backfill", "--start", day, "--end", day],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
        )
        for day in ("2025-03-03", "2025-03-05")
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stdout[-2000:] + stderr[-2000:]
    warehouse = Warehouse(get_settings())
    days = warehouse.query("select distinct activity_date from marts.fct_daily_engagement order by 1").to_pylist()
    assert [r["activity_date"] for r in days] == [START, END]
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    # the steps of both commands took their turn on the instance's one-slot `warehouse` pool
    assert instance.event_log_storage.get_concurrency_info("warehouse").slot_count == 1
    assert all(run.is_success for run in instance.get_runs())


def _wait_for_a_claimed_slot(home: str, process: subprocess.Popen[str]) -> dg.DagsterInstance:
    instance = dg.DagsterInstance.from_config(home)
    deadline = time.monotonic() + 300
    while not instance.event_log_storage.get_concurrency_info("warehouse").active_run_ids:
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the backfill never took a warehouse pool slot"
        time.sleep(0.1)
    return instance


def test_a_backfill_killed_mid_run_leaves_nothing_for_the_next_one_to_wait_for(env: dict[str, str]) -> None:
    """kill -9 (or a closed terminal, the OOM killer) ends a backfill inside a step: its run stays
    STARTED holding its warehouse pool slot, which no one would give back. The next backfill finds
    the run's process gone, marks the run failed, frees the slot, says so, and does its work."""
    shutil.copy(PROJECT_ROOT / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    generate_small(env)
    killed = subprocess.Popen(
        [*CLI, "backfill", "--start", START.isoformat(), "--end", END.isoformat()],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        start_new_session=True,
    )
    try:
        instance = _wait_for_a_claimed_slot(env["DAGSTER_HOME"], killed)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)  # the command and any dbt process it started
        killed.wait(timeout=30)
    [stale] = instance.event_log_storage.get_concurrency_info("warehouse").active_run_ids
    assert instance.get_run_by_id(stale).status == dg.DagsterRunStatus.STARTED

    result = cli("backfill", "--start", START.isoformat(), "--end", END.isoformat(), env=env, timeout=300)

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"run {stale} " in result.stderr and "had stopped without finishing" in result.stderr
    assert instance.get_run_by_id(stale).status == dg.DagsterRunStatus.FAILURE
    assert "succeeded: 3 days" in result.stdout


def test_an_interrupted_backfill_stops_there_and_exits_non_zero(env: dict[str, str]) -> None:
    """Ctrl-C while a step waits for the warehouse pool (here held by another process for good): the
    run ends at once, the backfill starts none of its later runs and says it was interrupted."""
    shutil.copy(PROJECT_ROOT / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    generate_small(env)
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    instance.event_log_storage.set_concurrency_slots("warehouse", 1)
    assert instance.event_log_storage.claim_concurrency_slot("warehouse", "another-run", "its-step").is_claimed
    backfill = subprocess.Popen(
        [*CLI, "backfill", "--start", START.isoformat(), "--end", END.isoformat()],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        deadline = time.monotonic() + 300
        while not instance.event_log_storage.get_concurrency_info("warehouse").pending_run_ids:
            assert backfill.poll() is None and time.monotonic() < deadline, "the backfill never waited for the pool"
            time.sleep(0.1)
        backfill.send_signal(signal.SIGINT)
        stdout, stderr = backfill.communicate(timeout=60)
    finally:
        backfill.kill()
    assert backfill.returncode == 1, stdout[-2000:] + stderr[-2000:]
    assert "FAILED" in stderr and "interrupted" in stderr
    [run] = instance.get_runs()  # the first of the backfill's runs; none after it
    assert run.status == dg.DagsterRunStatus.FAILURE


# dagster-dbt 1.13's message for a failed dbt process, with the error dbt logs when PostgreSQL is down
DBT_CONNECTION_REFUSED = """The dbt CLI process with command

`dbt build`

failed with exit code `2`. Check the stdout in the Dagster compute logs for the full information about the error.

Errors parsed from dbt logs:

Encountered an error:
Database Error
  connection to server at "127.0.0.1", port 5499 failed: Connection refused
  \tIs the server running on that host and accepting TCP/IP connections?
  """


def test_a_failed_dbt_step_is_summarised_by_its_cause() -> None:
    from analytics_pipeline.defs.operations.backfill import failure_summary

    assert failure_summary(DBT_CONNECTION_REFUSED) == (
        'dbt build failed (exit code 2): Database Error: connection to server at "127.0.0.1", port 5499 failed: '
        "Connection refused: Is the server running on that host and accepting TCP/IP connections?"
    )
    two_models = DBT_CONNECTION_REFUSED.split("Errors parsed")[0] + (
        "Errors parsed from dbt logs:\n\nRuntime Error in model fct_a (models/a.sql)\n  IO Error: disk full\n\n"
        "Runtime Error in model fct_b (models/b.sql)\n  IO Error: disk full\n\n"
        "Runtime Error in model fct_a (models/a.sql)\n  IO Error: disk full"  # dbt repeats errors in its summary
    )
    assert failure_summary(two_models) == (
        "dbt build failed (exit code 2): Runtime Error in model fct_a (models/a.sql): "
        "IO Error: disk full; Runtime Error in model fct_b (models/b.sql): IO Error: disk full"
    )
    no_errors = DBT_CONNECTION_REFUSED.split("Errors parsed")[0]
    assert failure_summary(no_errors) == "dbt build failed (exit code 2); see the step's output in the run's logs"
    assert len(failure_summary(DBT_CONNECTION_REFUSED.replace("5499", "5499" + " x" * 500))) == 400
    assert failure_summary("raw.users has the wrong columns\nmore detail") == "raw.users has the wrong columns"
