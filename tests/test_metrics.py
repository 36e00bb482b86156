"""``analytics-pipeline metrics``: /metrics scraped over HTTP and parsed with prometheus_client's
parser, on both warehouses, after real runs and a real load with rejected records; a second scrape
sees what changed in between."""

import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from conftest import pipeline_resources
from ops_support import make_healthy, parse_metrics, scrape, seed_dagster_home
from tests_support import free_port, readline_within

from analytics_pipeline.cli import main
from analytics_pipeline.defs.ingestion.assets import ingestion_assets
from analytics_pipeline.defs.operations.metrics import serve
from analytics_pipeline.instance import get_instance
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import PROJECT_ROOT

DAY = date(2025, 1, 2)
EVENTS = dg.AssetKey(["raw", "activity_events"])


@dg.op
def nightly_op(context) -> None:
    if context.run.tags.get("fail") == "yes":
        raise RuntimeError("the warehouse said no")


@dg.job
def nightly() -> None:
    nightly_op()


def _load_a_day_with_rejects(landing, instance: dg.DagsterInstance) -> None:
    good = [
        {
            "event_id": f"e{i}",
            "occurred_at": "2025-01-02T10:00:00Z",
            "user_id": "u1",
            "org_id": "o1",
            "activity_type": "login",
        }
        for i in range(8)
    ]
    bad = ["{not json", json.dumps({"event_id": "x", "occurred_at": "2025-01-02T10:00:00Z"})]  # 2 of 10: over 1%
    landing.jsonl("activity_events", DAY, "events.jsonl", [*good, *bad])
    landing.raw("activity_events", DAY, "broken.jsonl.gz", b"not gzip")
    events = next(a for a in ingestion_assets if a.key == EVENTS)
    dg.materialize([events], instance=instance, partition_key=DAY.isoformat(), resources=pipeline_resources())


def test_metrics_endpoint_measures_afresh_at_every_scrape(
    env: dict[str, str],
    warehouse: Warehouse,
    landing,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_dagster_home(Path(env["DAGSTER_HOME"]))
    instance = get_instance()
    make_healthy(instance)
    _load_a_day_with_rejects(landing, instance)
    assert nightly.execute_in_process(instance=instance).success
    assert not nightly.execute_in_process(instance=instance, tags={"fail": "yes"}, raise_on_error=False).success
    rejected = warehouse.scalar("select count(*) from raw.rejected_records where dataset = 'activity_events'")
    assert rejected == 3  # two bad lines and the unreadable file

    port = free_port()
    server, _ = serve(port)
    try:
        first = scrape(port)
        assert first[("analytics_pipeline_up", (("component", "warehouse"),))] == 1
        assert first[("analytics_pipeline_runs", (("job", "nightly"), ("status", "success")))] == 1
        assert first[("analytics_pipeline_runs", (("job", "nightly"), ("status", "failure")))] == 1
        assert first[("analytics_pipeline_run_success_ratio", (("job", "nightly"),))] == 0.5
        ok_run = next(
            r
            for r in instance.get_run_records(dg.RunsFilter(job_name="nightly", statuses=[dg.DagsterRunStatus.SUCCESS]))
        )
        seconds = ok_run.end_time - ok_run.start_time
        # the exporter reads start and end as datetimes (microseconds): the difference may be 1 µs off
        assert first[("analytics_pipeline_run_duration_avg_seconds", (("job", "nightly"),))] == pytest.approx(
            seconds, abs=2e-6
        )
        assert first[("analytics_pipeline_run_duration_p95_seconds", (("job", "nightly"),))] == pytest.approx(
            seconds, abs=2e-6
        )
        assert first[("analytics_pipeline_rejected_records", (("dataset", "activity_events"),))] == rejected
        assert first[("analytics_pipeline_landing_files_rejected", (("dataset", "activity_events"),))] == 1
        assert first[("analytics_pipeline_landing_lines_read", (("dataset", "activity_events"),))] == 10
        age = first[("analytics_pipeline_key_mart_seconds_since_materialization", (("asset", "raw/activity_events"),))]
        assert 0 <= age < 300
        # the raw day's reject rate (3 of 11) fails its check, with ERROR severity
        failed_check = (
            "analytics_pipeline_asset_check_failed",
            (("asset", "raw/activity_events"), ("check", "reject_rate_below_threshold"), ("severity", "ERROR")),
        )
        assert first[failed_check] == 1
        assert first[("analytics_pipeline_failed_asset_checks", (("severity", "ERROR"),))] == 1
        assert first[("analytics_pipeline_health_status", (("check", "runs"),))] == 1  # nightly's latest run failed

        assert nightly.execute_in_process(instance=instance).success  # between two scrapes
        second = scrape(port)
        assert second[("analytics_pipeline_runs", (("job", "nightly"), ("status", "success")))] == 2
        assert second[("analytics_pipeline_run_success_ratio", (("job", "nightly"),))] == pytest.approx(2 / 3)
        assert second[("analytics_pipeline_health_status", (("check", "runs"),))] == 0
    finally:
        server.shutdown()

    assert main(["metrics"]) == 0  # one scrape printed
    printed = parse_metrics(capsys.readouterr().out)
    assert printed[("analytics_pipeline_runs", (("job", "nightly"), ("status", "success")))] == 2


@pytest.mark.parametrize("parent_ignored_sigterm", [False, True])
def test_metrics_server_stops_on_sigterm_even_if_its_parent_ignored_it(
    tmp_path: Path, parent_ignored_sigterm: bool
) -> None:
    """An ignored signal is inherited across exec: a supervisor that ignores SIGTERM (some do while they
    run children) must still be able to stop the server it started with a plain ``kill``."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ANALYTICS_WAREHOUSE": "duckdb",
        "ANALYTICS_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "ANALYTICS_LANDING_DIR": str(tmp_path),
    }
    ignore = (lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN)) if parent_ignored_sigterm else None
    server = subprocess.Popen(
        [sys.executable, "-m", "analytics_pipeline.cli", "metrics", "--serve", str(free_port())],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=ignore,
    )
    try:
        assert "/metrics" in readline_within(
            server.stdout, 120, "the metrics server"
        )  # serving, its handlers installed
        server.terminate()
        assert server.wait(timeout=30) == 0  # a clean stop, not death by signal
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
