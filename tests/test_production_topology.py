"""The production topology as separate processes: a user-code gRPC server, dagster-webserver and
dagster-daemon, on a PostgreSQL-backed Dagster instance and a PostgreSQL warehouse. A landing file
dropped into the landing zone is picked up by the daemon's sensor, its run succeeds, and the marts
hold the new day."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from analytics_pipeline.defs.ingestion.sample_data import generate
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import PROJECT_ROOT, get_settings
from tests_support import free_port

DAY = date(2025, 4, 2)
BIN = Path(sys.executable).parent


@pytest.fixture
def warehouse_engine() -> str:
    return "postgres"


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


def _wait(predicate, timeout: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (urllib.error.URLError, ConnectionError, KeyError, TypeError):
            pass
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.e2e
def test_sensor_run_through_code_server_webserver_and_daemon(
    env, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    instance_db = request.getfixturevalue("postgres_database")  # a second database: the Dagster instance
    home = Path(env["DAGSTER_HOME"])
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.production.yaml", home / "dagster.yaml")
    grpc_port, web_port = free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - grpc_server: {{host: 127.0.0.1, port: {grpc_port}, location_name: analytics_pipeline}}\n")
    process_env = {
        **os.environ, **env,
        "DAGSTER_POSTGRES_URL": f"postgresql+psycopg2://{env['ANALYTICS_PG_USER']}@{env['ANALYTICS_PG_HOST']}:"
                                f"{env['ANALYTICS_PG_PORT']}/{instance_db}",
    }  # fmt: skip
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", process_env["DAGSTER_POSTGRES_URL"])
    commands = {
        "code server": [str(BIN / "dagster"), "api", "grpc", "-m", "analytics_pipeline.definitions",
                        "-h", "127.0.0.1", "-p", str(grpc_port)],
        "webserver": [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(web_port)],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
    }  # fmt: skip
    processes: dict[str, subprocess.Popen] = {}
    logs = {name: open(tmp_path / f"{name.replace(' ', '_')}.log", "w") for name in commands}  # noqa: SIM115
    try:
        processes["code server"] = subprocess.Popen(commands["code server"], env=process_env, cwd=PROJECT_ROOT,
                                                    stdout=logs["code server"], stderr=subprocess.STDOUT,
                                                    start_new_session=True)  # fmt: skip
        _wait(lambda: subprocess.run([str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(grpc_port)],
                                     capture_output=True, env=process_env).returncode == 0, 120, "the code server")  # fmt: skip
        for name in ("webserver", "daemon"):
            processes[name] = subprocess.Popen(commands[name], env=process_env, cwd=PROJECT_ROOT, stdout=logs[name],
                                               stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

        data = _wait(lambda: _graphql(web_port, "{ assetNodes { assetKey { path } } }")["assetNodes"], 120,
                     "the webserver to load the code location from the gRPC server")  # fmt: skip
        assert ["marts", "fct_daily_engagement"] in [node["assetKey"]["path"] for node in data]

        generate(Path(env["ANALYTICS_LANDING_DIR"]), DAY, DAY, events_per_day=600, users=120, orgs=3, items=8,
                 bad_rate=0.0)  # fmt: skip
        landing = Path(env["ANALYTICS_LANDING_DIR"])
        old = time.time() - 60  # settled files
        for path in landing.rglob("*"):
            os.utime(path, (old, old))

        instance = dg.DagsterInstance.from_config(str(home))

        def sensor_runs_finished() -> list[dg.DagsterRun]:
            runs = [r for r in instance.get_runs() if r.tags.get("analytics/trigger") == "landing_file_sensor"]
            return runs if len(runs) >= 2 and all(r.is_finished for r in runs) else []

        runs = _wait(sensor_runs_finished, 300, "the landing sensor's runs to finish")
        assert all(r.is_success for r in runs), [(r.job_name, r.status) for r in runs]
        assert {r.job_name for r in runs} == {"daily_pipeline", "dimension_refresh"}
        assert next(r for r in runs if r.job_name == "daily_pipeline").tags["dagster/partition"] == DAY.isoformat()

        warehouse = Warehouse(get_settings())
        loaded = warehouse.scalar("select count(*) from raw.activity_events where _partition_date = ?", (DAY,))
        assert loaded > 0
        assert warehouse.scalar("select sum(events) from marts.fct_daily_engagement where activity_date = ?", (DAY,)) == loaded
    finally:
        for process in processes.values():
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for log in logs.values():
            log.close()
