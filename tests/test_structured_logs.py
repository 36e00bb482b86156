"""Every log line of the pipeline's own code carries run id, asset and partition: in a real run under
Dagster's multiprocess executor (the step runs in a process of its own and its output is captured),
and outside a run where the caller names the run (a sensor's alert)."""

import logging
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from conftest import pipeline_resources
from dagster import build_reconstructable_job
from ops_support import seed_dagster_home

from analytics_pipeline.defs.operations.alerts import raise_alert
from analytics_pipeline.instance import get_instance
from analytics_pipeline.lib.log_context import get_logger
from analytics_pipeline.resources.alerting import AlertingResource
from analytics_pipeline.settings import get_settings

DAY = date(2025, 1, 2)


def ingestion_job() -> dg.JobDefinition:
    """The real activity-events asset in a job of its own (rebuilt by name in the step process)."""
    from analytics_pipeline.defs.ingestion.assets import ingestion_assets

    events = dg.AssetKey(["raw", "activity_events"])
    job = dg.define_asset_job("ingest_activity_events", selection=[events])
    defs = dg.Definitions(assets=ingestion_assets, jobs=[job], resources=pipeline_resources())
    return defs.resolve_job_def("ingest_activity_events")


@pytest.fixture
def warehouse_engine() -> str:
    """The log lines do not depend on the engine: one is enough."""
    return "duckdb"


def test_log_lines_of_a_multiprocess_step_carry_run_asset_and_partition(env: dict[str, str], landing) -> None:
    folder = landing.folder("activity_events", DAY)
    landing.jsonl(
        "activity_events",
        DAY,
        "good.jsonl",
        [
            {
                "event_id": "e1",
                "occurred_at": "2025-01-02T10:00:00Z",
                "user_id": "u1",
                "org_id": "o1",
                "activity_type": "login",
            },
        ],
    )
    (folder / "broken.jsonl.gz").write_bytes(b"not gzip at all")
    seed_dagster_home(Path(env["DAGSTER_HOME"]))
    instance = get_instance()

    # the step process imports this module by name from the tests folder to rebuild the job
    job = build_reconstructable_job(
        __name__, ingestion_job.__name__, reconstructor_working_directory=str(Path(__file__).parent)
    )
    with dg.execute_job(job, instance=instance, tags={"dagster/partition": DAY.isoformat()}) as result:
        assert result.success
        run_id = result.run_id
        engine_events = [e.message or "" for e in result.all_events if e.event_type_value == "ENGINE_EVENT"]
    assert any("multiprocess executor" in message.lower() for message in engine_events), engine_events

    expected = f"[run={run_id} asset=raw/activity_events partition={DAY.isoformat()}] rejected the whole file"
    # in the run's event log (the UI's log viewer), tagged by Dagster with the step as well
    [entry] = [e for e in instance.all_logs(run_id) if "rejected the whole file" in e.user_message]
    assert expected in entry.user_message and entry.step_key == "raw__activity_events"
    # and in the step process's captured stderr
    captured = "".join(p.read_text() for p in Path(env["DAGSTER_HOME"]).rglob("*.err"))
    assert expected in captured and "broken.jsonl.gz" in captured


def test_outside_a_run_the_caller_names_the_run(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="dagster"):
        raise_alert(
            AlertingResource.from_settings(get_settings()),
            "daily_pipeline",
            "abc123",
            "boom",
            {"dagster/partition": "2025-01-05"},
        )
        get_logger("analytics_pipeline.cli").info("plain %s", "line")
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("[run=abc123 asset=- partition=2025-01-05] ALERT {") for m in messages), messages
    assert "[run=- asset=- partition=-] plain line" in messages
    record = next(r for r in caplog.records if "ALERT" in r.getMessage())
    assert (record.run_id, record.asset, record.partition) == ("abc123", "-", "2025-01-05")


@dg.asset(partitions_def=dg.DailyPartitionsDefinition("2025-01-01"), backfill_policy=dg.BackfillPolicy.single_run())
def ranged() -> None:
    get_logger("analytics_pipeline.test").info("inside")


def test_a_partition_range_and_an_in_process_run(env: dict[str, str]) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [ranged],
        instance=instance,
        tags={"dagster/asset_partition_range_start": "2025-01-03", "dagster/asset_partition_range_end": "2025-01-05"},
    )
    [entry] = [e for e in instance.all_logs(result.run_id) if "inside" in e.user_message]
    assert f"[run={result.run_id} asset=ranged partition=2025-01-03..2025-01-05] inside" in entry.user_message


def test_a_backfilled_partition_has_the_context_in_its_run_event_log(env: dict[str, str], landing) -> None:
    """What the operator sees in the UI: the pipeline's log events of a real run (the CLI's backfill of
    one day, ingestion and a dbt model) name the run, the asset and the day; dbt's echoed console
    lines carry no colour codes."""
    import os
    import subprocess
    import sys

    from analytics_pipeline.settings import PROJECT_ROOT

    day = date(2025, 1, 3)
    landing.jsonl(
        "activity_events",
        day,
        "events.jsonl",
        [
            {
                "event_id": "e1",
                "occurred_at": "2025-01-03T10:00:00Z",
                "user_id": "u1",
                "org_id": "o1",
                "activity_type": "login",
            },
            {
                "event_id": "e2",
                "occurred_at": "2025-01-03T11:00:00Z",
                "user_id": "u2",
                "org_id": "o1",
                "activity_type": "search",
            },
        ],
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "analytics_pipeline.cli",
            "backfill",
            "--start",
            day.isoformat(),
            "--end",
            day.isoformat(),
            "--select",
            "key:raw/activity_events or key:staging/stg_product__activity_events",
        ],
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    instance = get_instance()
    [run] = instance.get_run_records()
    run_id = run.dagster_run.run_id
    messages = [entry.user_message for entry in instance.all_logs(run_id)]
    assert (
        f"[run={run_id} asset=raw/activity_events partition=2025-01-03] activity_events 2025-01-03: 2 lines, 2 loaded"
        in "\n".join(messages)
    )
    assert any(
        m.startswith(f"[run={run_id} asset=") and "partition=2025-01-03] dbt window 2025-01-03 .. 2025-01-03" in m
        for m in messages
    ), messages
    # dbt's per-node lines, echoed into the step's captured output, are plain text
    captured = "".join(p.read_text() for p in Path(env["DAGSTER_HOME"]).rglob("*.out"))
    assert "stg_product__activity_events" in captured and "\x1b[" not in captured
