"""Retention deletes exactly what is past its period, and the history derived from old days survives
(also a plain `dbt build` afterwards, which must not wipe the days whose raw events aged out)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

from conftest import Landing, event, pipeline_resources, run_pipeline, table_rows

from analytics_pipeline.defs.operations.retention import apply_retention
from analytics_pipeline.resources.dbt import dbt_env
from analytics_pipeline.settings import DBT_PROJECT_DIR, get_settings

OLD, RECENT = date(2025, 1, 2), date(2025, 3, 30)
TODAY = date(2025, 4, 10)  # activity kept for 90 days: everything before 2025-01-10 goes


def test_retention_deletes_only_what_is_past_its_period(env, warehouse, landing: Landing) -> None:
    landing.jsonl(
        "activity_events",
        OLD,
        "a.jsonl",
        [
            event("e1", "2025-01-02T09:00:00Z", "u1", "A", "login", "s1"),
            event("e2", "2025-01-02T09:05:00Z", "u2", "A", "login", "s2"),
        ],
    )
    landing.jsonl(
        "activity_events",
        RECENT,
        "a.jsonl",
        [event("e3", "2025-03-30T09:00:00Z", "u1", "A", "login", "s3"), "not json"],
    )
    assert run_pipeline(OLD).success and run_pipeline(RECENT).success
    engagement_before = table_rows(warehouse, "marts.fct_daily_engagement", "activity_date, org_id")

    warehouse.execute("create table ops.sample_metrics (recorded_at timestamp, value bigint)")
    warehouse.execute(
        "insert into ops.sample_metrics values (?, 1), (?, 2)", (datetime(2025, 3, 1), datetime(2025, 4, 9))
    )
    output = Path(env["ANALYTICS_OUTPUT_DIR"])
    for week in ("2024-09-30", "2025-04-07"):
        (output / "reports" / week).mkdir(parents=True)
        (output / "reports" / week / "platform.csv").write_text("x\n")
    (output / "reports" / "custom").mkdir()  # not a week folder: left alone
    (output / "alerts" / "resolved").mkdir(parents=True)
    old_alert = output / "alerts" / "resolved" / "daily_pipeline-old.json"
    old_alert.write_text("{}")
    long_ago = time.mktime((2025, 2, 1, 0, 0, 0, 0, 0, -1))
    os.utime(old_alert, (long_ago, long_ago))

    resources = pipeline_resources()
    report = apply_retention(warehouse, resources["retention"], resources["alerting"], resources["reports"], TODAY)

    assert report.rows_deleted == {
        "raw.activity_events": 2,
        "raw.rejected_records": 0,
        "raw.ingested_files": 1,
        "ops.sample_metrics": 1,
    }
    assert [r["event_id"] for r in table_rows(warehouse, "raw.activity_events", "event_id")] == ["e3"]
    assert len(table_rows(warehouse, "raw.rejected_records", "line_no")) == 1  # the recent day's bad line
    assert sorted(report.files_deleted) == ["alerts/resolved/daily_pipeline-old.json", "reports/2024-09-30/"]
    assert (output / "reports" / "2025-04-07").is_dir() and (output / "reports" / "custom").is_dir()
    # derived history is kept: u1 was first seen on the old day, so is returning on the recent day
    assert table_rows(warehouse, "marts.fct_daily_engagement", "activity_date, org_id") == engagement_before
    assert [(r["activity_date"], r["new_users"], r["sessions"]) for r in engagement_before] == [
        (OLD, 2, 2),
        (RECENT, 0, 1),
    ]

    # a plain `dbt build` (no window) after retention rebuilds what raw still has and keeps the rest
    dbt = Path(sys.executable).parent / "dbt"
    result = subprocess.run(
        [str(dbt), "build", "--profiles-dir", ".", "--quiet"],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **dbt_env(get_settings())},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert table_rows(warehouse, "marts.fct_daily_engagement", "activity_date, org_id") == engagement_before
    assert len(table_rows(warehouse, "intermediate.int_user_activity_daily", "activity_date, user_id")) == 3


def test_run_step_outputs_past_the_ops_period_are_deleted(env, warehouse) -> None:
    """Step outputs Dagster keeps per run ($DAGSTER_HOME/storage/<run id>/, e.g. the forecasting range
    steps' results) go after the ops period; a younger run's, and anything not named by a run id, stay."""
    settings = get_settings()
    storage = settings.dagster_home / "storage"
    old_run, new_run = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
    for name in (old_run, new_run, "not-a-run"):
        (storage / name / "step").mkdir(parents=True)
        (storage / name / "step" / "result").write_bytes(b"x")
    long_ago = time.time() - (settings.retention_ops_days + 2) * 86_400
    for name in (old_run, "not-a-run"):
        os.utime(storage / name, (long_ago, long_ago))
    resources = pipeline_resources()
    report = apply_retention(
        warehouse, resources["retention"], resources["alerting"], resources["reports"], date.today()
    )
    assert f"$DAGSTER_HOME/storage/{old_run}/" in report.files_deleted
    assert sorted(p.name for p in storage.iterdir()) == sorted([new_run, "not-a-run"])
