"""The production topology as separate processes: a user-code gRPC server, dagster-webserver and
dagster-daemon, on a PostgreSQL-backed Dagster instance and a PostgreSQL warehouse. A landing file
dropped into the landing zone is picked up by the daemon's sensor, its run succeeds, and the marts
hold the new day. With ``ANALYTICS_EXECUTOR=celery``, two Celery workers on different queues (the
machine's RabbitMQ as broker) execute the steps of their queues, and the marts equal an in-process
run's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from tests_support import free_port

from analytics_pipeline.lib.sample_data import generate
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import PROJECT_ROOT, get_settings

DAY = date(2025, 4, 2)
BIN = Path(sys.executable).parent


@pytest.fixture
def warehouse_engine() -> str:
    return "postgres"


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (urllib.error.URLError, ConnectionError, KeyError, TypeError, subprocess.TimeoutExpired):
            pass
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


class Topology:
    """The production processes, each in a session of its own, stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, env: dict[str, str], tmp_path: Path, instance_db: str, extra_env: dict[str, str]):
        self.home = Path(env["DAGSTER_HOME"])
        shutil.copy(PROJECT_ROOT / "deploy" / "dagster.production.yaml", self.home / "dagster.yaml")
        self.grpc_port, self.web_port = free_port(), free_port()
        self.tmp_path = tmp_path
        self.workspace = tmp_path / "workspace.yaml"
        self.workspace.write_text(
            f"load_from:\n  - grpc_server: {{host: 127.0.0.1, port: {self.grpc_port}, "
            "location_name: analytics_pipeline}\n"
        )
        self.env = {
            **os.environ,
            **env,
            **extra_env,
            "DAGSTER_POSTGRES_URL": f"postgresql+psycopg2://{env['ANALYTICS_PG_USER']}@{env['ANALYTICS_PG_HOST']}:"
            f"{env['ANALYTICS_PG_PORT']}/{instance_db}",
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: list = []

    def start(self, name: str, command: list[str]) -> None:
        log = open(self.tmp_path / f"{name.replace(' ', '_')}.log", "w")  # noqa: SIM115
        self.logs.append(log)
        self.processes[name] = subprocess.Popen(
            command, env=self.env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def __enter__(self) -> Topology:
        self.start(
            "code server",
            [
                str(BIN / "dagster"),
                "api",
                "grpc",
                "-m",
                "analytics_pipeline.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.grpc_port),
            ],
        )
        _wait(
            lambda: (
                subprocess.run(
                    [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(self.grpc_port)],
                    capture_output=True,
                    env=self.env,
                    timeout=30,
                ).returncode
                == 0
            ),
            120,
            "the code server",
        )
        self.start(
            "webserver",
            [str(BIN / "dagster-webserver"), "-w", str(self.workspace), "-h", "127.0.0.1", "-p", str(self.web_port)],
        )
        self.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)])
        data = _wait(
            lambda: _graphql(self.web_port, "{ assetNodes { assetKey { path } } }")["assetNodes"],
            120,
            "the webserver to load the code location from the gRPC server",
        )
        assert ["marts", "fct_daily_engagement"] in [node["assetKey"]["path"] for node in data]
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in self.processes.values():
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for log in self.logs:
            log.close()

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))


def _land_day(env: dict[str, str]) -> None:
    landing = Path(env["ANALYTICS_LANDING_DIR"])
    generate(landing, DAY, DAY, events_per_day=600, users=120, orgs=3, items=8, bad_rate=0.0)
    old = time.time() - 60  # settled files
    for path in landing.rglob("*"):
        os.utime(path, (old, old))


def _sensor_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    def finished() -> list[dg.DagsterRun]:
        runs = [r for r in instance.get_runs() if r.tags.get("analytics/trigger") == "landing_file_sensor"]
        return runs if len(runs) >= 2 and all(r.is_finished for r in runs) else []

    runs = _wait(finished, 300, "the landing sensor's runs to finish")
    assert all(r.is_success for r in runs), [(r.job_name, r.status) for r in runs]
    assert {r.job_name for r in runs} == {"daily_pipeline", "dimension_refresh"}
    assert next(r for r in runs if r.job_name == "daily_pipeline").tags["dagster/partition"] == DAY.isoformat()
    return runs


@pytest.mark.e2e
def test_sensor_run_through_code_server_webserver_and_daemon(
    env,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topology = Topology(env, tmp_path, request.getfixturevalue("postgres_database"), {})
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", topology.env["DAGSTER_POSTGRES_URL"])
    with topology:
        _land_day(env)
        _sensor_runs(topology.instance())

        warehouse = Warehouse(get_settings())
        loaded = warehouse.scalar("select count(*) from raw.activity_events where _partition_date = ?", (DAY,))
        assert loaded > 0
        assert (
            warehouse.scalar("select sum(events) from marts.fct_daily_engagement where activity_date = ?", (DAY,))
            == loaded
        )


LAUNCH = """mutation($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""


def _step_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """step key -> the Celery worker that executed it, from the run's engine events."""
    workers = {}
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        event = record.event_log_entry.dagster_event
        if event is not None and "in celery worker" in (event.message or ""):
            workers[event.step_key] = event.event_specific_data.metadata["Celery worker"].value
    return workers


def _succeeded_steps(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS).records
    return {record.event_log_entry.dagster_event.step_key for record in records}


@pytest.fixture
def rabbitmq_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of the test's own, as README asks of every deployment: no worker or
    message left on the machine's broker by anything else can take or feed this test's steps. Falls
    back to the default vhost where ``rabbitmqctl`` cannot be used."""
    name = f"analytics-test-{uuid.uuid4().hex[:12]}"
    ctl = shutil.which("rabbitmqctl")

    def rabbitmqctl(*args: str) -> bool:
        return ctl is not None and subprocess.run([ctl, *args], capture_output=True, timeout=60).returncode == 0

    if not (rabbitmqctl("add_vhost", name) and rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")):
        yield "/"  # the default vhost: pyamqp://…:5672//
        return
    try:
        yield name
    finally:
        rabbitmqctl("delete_vhost", name)


@pytest.mark.e2e
def test_steps_run_on_celery_workers_of_their_queues(
    env,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import _maintenance_connection, run_pipeline, run_unpartitioned, table_rows

    try:  # the machine's RabbitMQ (.ci/run starts it when it is down)
        socket.create_connection(("127.0.0.1", 5672), timeout=5).close()
    except OSError as error:
        raise AssertionError(
            f"RabbitMQ is not reachable at 127.0.0.1:5672 ({error}); start it: service rabbitmq-server start"
        ) from None
    vhost = request.getfixturevalue("rabbitmq_vhost")
    celery = {"ANALYTICS_EXECUTOR": "celery", "ANALYTICS_CELERY_BROKER": f"pyamqp://guest:guest@127.0.0.1:5672/{vhost}"}
    topology = Topology(env, tmp_path, request.getfixturevalue("postgres_database"), celery)
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", topology.env["DAGSTER_POSTGRES_URL"])
    cli = str(BIN / "analytics-pipeline")
    with topology:
        topology.start(
            "warehouse worker",
            [cli, "worker", "--queue", "warehouse", "--name", "warehouse-worker", "--concurrency", "1"],
        )
        topology.start(
            "analysis worker",
            [
                cli,
                "worker",
                "--queue",
                "forecasting",
                "--queue",
                "reports",
                "--name",
                "analysis-worker",
                "--concurrency",
                "1",
            ],
        )
        _land_day(env)
        instance = topology.instance()
        runs = _sensor_runs(instance)

        launched = _graphql(
            topology.web_port,
            LAUNCH,
            {
                "params": {
                    "selector": {
                        "repositoryLocationName": "analytics_pipeline",
                        "repositoryName": "__repository__",
                        "pipelineName": "custom_report",
                    },
                    "runConfigData": {
                        "ops": {
                            "write_custom_report": {
                                "config": {"start_date": DAY.isoformat(), "end_date": DAY.isoformat(), "format": "csv"}
                            }
                        }
                    },
                }
            },
        )["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        report_run_id = launched["run"]["runId"]
        report_run = _wait(
            lambda: (r := instance.get_run_by_id(report_run_id)) and r.is_finished and r, 300, "the custom report run"
        )
        assert report_run.is_success, report_run.status

        for run in runs:
            workers = _step_workers(instance, run.run_id)
            assert set(workers) == _succeeded_steps(instance, run.run_id) != set(), (run.job_name, workers)
            assert all(worker.startswith("warehouse-worker@") for worker in workers.values()), (run.job_name, workers)
        workers = _step_workers(instance, report_run_id)
        assert list(workers) == ["write_custom_report"]
        assert workers["write_custom_report"].startswith("analysis-worker@")
        assert list((Path(env["ANALYTICS_OUTPUT_DIR"]) / "reports" / "custom" / report_run_id).glob("*.csv"))

        # model selection fans out over ranges of items, 4 per step: each range a step on the forecasting
        # queue, their results handed to the writer through the shared IO manager storage
        launched = _graphql(
            topology.web_port,
            LAUNCH,
            {
                "params": {
                    "selector": {
                        "repositoryLocationName": "analytics_pipeline",
                        "repositoryName": "__repository__",
                        "pipelineName": "model_selection",
                    },
                    "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY.isoformat()}]},
                    "runConfigData": {
                        "ops": {"forecast__model_evaluations": {"config": {"items_per_step": 4, "n_jobs": 1}}}
                    },
                }
            },
        )["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        selection_run_id = launched["run"]["runId"]
        selection_run = _wait(
            lambda: (r := instance.get_run_by_id(selection_run_id)) and r.is_finished and r,
            300,
            "the model selection run",
        )
        assert selection_run.is_success, selection_run.status
        workers = _step_workers(instance, selection_run_id)
        ranges = sorted(step for step in workers if ".evaluate_items[" in step)
        items = Warehouse(get_settings()).scalar("select count(distinct item_id) from marts.fct_item_daily_demand")
        assert items > 4 and len(ranges) == -(-items // 4), (items, workers)
        assert ranges == [f"forecast__model_evaluations.evaluate_items[{DAY:%Y%m%d}_{i}]" for i in range(len(ranges))]
        assert all(worker.startswith("analysis-worker@") for worker in workers.values()), workers

    # the same day and dimensions, in process, into a warehouse of their own: the same marts
    on_workers = Warehouse(get_settings())
    in_process_db = f"{env['ANALYTICS_PG_DATABASE']}_in_process"
    maintenance = _maintenance_connection()
    with maintenance.cursor() as cursor:
        cursor.execute(f'create database "{in_process_db}"')
    try:
        monkeypatch.setenv("ANALYTICS_PG_DATABASE", in_process_db)
        dimensions = dg.AssetSelection.assets(*(["raw", name] for name in ("organizations", "users", "items")))
        run_unpartitioned(dimensions)
        run_pipeline(DAY)
        in_process = Warehouse(get_settings())
        # the landed day's rows: the daemon also runs the project's schedules (the hourly refresh at :05
        # builds today's partition), whose days the in-process run has no counterpart for
        days = {
            "marts.fct_daily_engagement": "activity_date",
            "marts.fct_kpi_daily": "kpi_date",
            "marts.fct_item_daily_demand": "demand_date",
        }
        for table, day_column in days.items():
            expected = [row for row in table_rows(in_process, table, "1, 2, 3") if row[day_column] == DAY]
            assert expected, table
            assert [row for row in table_rows(on_workers, table, "1, 2, 3") if row[day_column] == DAY] == expected, (
                table
            )
    finally:
        with maintenance.cursor() as cursor:
            cursor.execute(f'drop database if exists "{in_process_db}" with (force)')
        maintenance.close()
