"""Where steps execute: the executor setting, the queue of every step, the worker command's refusals.

The steps really running on Celery workers of their queues is tests/test_production_topology.py's
(a RabbitMQ broker, two workers, the production processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest
from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG

from analytics_pipeline import cli
from analytics_pipeline.executors import QUEUE_TAG, QUEUES, on_queue, run_executor
from analytics_pipeline.settings import DEFAULT_CELERY_BROKER, PROJECT_ROOT, Settings, SettingsError, get_settings


def test_queue_tag_is_dagster_celerys() -> None:
    assert QUEUE_TAG == DAGSTER_CELERY_QUEUE_TAG


# the code location as a process with ANALYTICS_EXECUTOR=celery loads it (not this process's cached one)
_PROBE = """
import json
from analytics_pipeline.definitions import defs
jobs = defs.get_repository_def().get_all_jobs()
print(json.dumps({"executors": sorted({job.executor_def.name for job in jobs}),
                  "queues": {op.name: op.tags.get("dagster-celery/queue")
                             for job in jobs for op in job.graph.iterate_op_defs()}}))
"""


def test_every_step_of_every_job_has_a_queue() -> None:
    env = {**os.environ, "ANALYTICS_EXECUTOR": "celery"}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["executors"] == ["celery"]
    queues = loaded["queues"]
    assert set(queues.values()) == set(QUEUES), queues
    assert queues["daily_dbt_models"] == queues["raw__activity_events"] == "warehouse"
    # the forecasting graphs' every op: planner, one step per range of items, writer
    assert {
        queues[op]
        for op in (
            "plan_model_evaluations",
            "evaluate_items",
            "write_model_evaluations",
            "plan_demand_forecasts",
            "forecast_items",
            "write_demand_forecasts",
        )
    } == {"forecasting"}
    assert queues["reporting__weekly_reports"] == queues["write_custom_report"] == "reports"


def test_in_process_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANALYTICS_EXECUTOR", raising=False)
    assert run_executor(get_settings()) is dg.in_process_executor
    monkeypatch.setenv("ANALYTICS_EXECUTOR", "celery")
    assert run_executor(get_settings()).name == "celery"


def test_executor_settings() -> None:
    default = Settings.from_env({})
    assert (default.executor, default.celery_broker, default.celery_backend) == (
        "in_process",
        DEFAULT_CELERY_BROKER,
        "rpc://",
    )
    redis = Settings.from_env({"ANALYTICS_EXECUTOR": "celery", "ANALYTICS_CELERY_BROKER": "redis://127.0.0.1:6379/3"})
    assert redis.celery_backend == "redis://127.0.0.1:6379/3"  # Redis keeps the results itself
    with pytest.raises(SettingsError, match="ANALYTICS_EXECUTOR='k8s'"):
        Settings.from_env({"ANALYTICS_EXECUTOR": "k8s"})
    with pytest.raises(SettingsError, match="ANALYTICS_CELERY_BROKER"):
        Settings.from_env({"ANALYTICS_EXECUTOR": "celery", "ANALYTICS_CELERY_BROKER": "sqs://queue"})


def test_unknown_queue_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown queue"):
        on_queue("kpi")


def test_worker_refuses_an_unknown_queue(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["worker", "--queue", "warehouse", "--queue", "kpi"]) == 2
    assert "unknown queue kpi; the queues are warehouse, forecasting, reports" in capsys.readouterr().err


def test_broker_password_is_not_printed() -> None:
    assert cli._redacted("pyamqp://guest:secret@mq:5672//") == "pyamqp://guest:***@mq:5672//"
    assert cli._redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
