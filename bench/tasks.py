"""Work measured inside a child process: ``python -m bench.tasks TASK ARGS``.

Each task reads the warehouse settings from the environment the harness gives it (see
bench/environment.py), times its own work with ``perf_counter`` (so Python start-up is not part of
the figure) and writes what it measured as JSON to ``$BENCH_RESULT_FILE``.

    ingest DAY                 the pipeline's loader (read + validate + write) on one day of events
    plain-load START END       the plain bulk load of every dataset (bench/floor/load_<engine>.sql)
    bulk-events DAY            the same, for one day of events only (the ingestion floor)
    floor START END            plain bulk load, then bench/floor/marts.sql: the backfill floor
    export START END REPEAT    analytics_pipeline's export() of every allow-listed mart
    adapter-init               what dagster-dbt's stock DbtCliResource spends building its adapter
    prepare-dbt                dbt's saved parse for this warehouse (what `make install` does)
    forecasting ITEMS DAYS REPEAT   analytics_pipeline.lib.forecasting.bench.run(), if it exists
    split                      where a backfill's time went, from the event log of the instance's runs
    ui-backfill START END      a backfill of daily_pipeline launched as the UI's job page does, run by
                               the daemon of `analytics-pipeline ui`: launch to completion
    seed-demand ITEMS DAYS     marts.fct_item_daily_demand (the forecasting input) from generated orders
    celery-steps               the latest run's steps by the Celery worker that executed them
"""

from __future__ import annotations

import gzip
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

FLOOR = Path(__file__).resolve().parent / "floor"
EVENTS = "activity_events"
DAILY = ("activity_events", "order_lines", "inventory_snapshots")
DIMENSIONS = ("organizations", "users", "items")


def _result(**values: Any) -> None:
    values["peak_rss_bytes"] = _peak_rss_bytes()
    Path(os.environ["BENCH_RESULT_FILE"]).write_text(json.dumps(values, default=str))


def _peak_rss_bytes() -> int | None:
    """This process's peak resident memory since it started (its address space's high-water mark)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def _days(start: str, end: str) -> list[date]:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _settings():
    from analytics_pipeline.settings import get_settings

    return get_settings()


def _ready_warehouse() -> None:
    from analytics_pipeline.lib.ingestion.datasets import RAW_TABLES
    from analytics_pipeline.resources.warehouse import Warehouse

    Warehouse(_settings()).ensure_ready(RAW_TABLES)


def _landing_files(dataset: str, days: list[date] | None) -> list[Path]:
    root = _settings().landing_dir / dataset
    folders = [root / f"date={day.isoformat()}" for day in days] if days is not None else [root]
    return sorted(
        p
        for folder in folders
        if folder.is_dir()
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith((".", "_", "~"))
    )


def _statements(script: str) -> list[str]:
    """The statements of a script (no statement in bench/floor contains ';' at a line end)."""
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.replace(";\n", ";\x00").split("\x00") if s.strip().rstrip(";").strip()]


# -- connections ----------------------------------------------------------------------------------


@contextmanager
def _connection() -> Iterator[Any]:
    """A raw connection to the warehouse (committed on success), DuckDB or psycopg2."""
    settings = _settings()
    if settings.warehouse == "duckdb":
        import duckdb

        connection = duckdb.connect(str(settings.duckdb_path))
        connection.execute("set TimeZone = 'UTC'")
        try:
            yield connection
        finally:
            connection.close()
        return
    import psycopg2

    connection = psycopg2.connect(
        host=settings.pg_host,
        port=settings.pg_port,
        user=settings.pg_user,
        password=settings.pg_password or None,
        dbname=settings.pg_database,
        options="-c timezone=UTC",
    )
    try:
        yield connection
        connection.commit()
    finally:
        connection.close()


def _execute(connection: Any, statements: list[str]) -> None:
    if hasattr(connection, "cursor") and not hasattr(connection, "register"):  # psycopg2
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    else:
        for statement in statements:
            connection.execute(statement)


# -- plain bulk load ------------------------------------------------------------------------------


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _plain_load_duckdb(connection: Any, days: list[date], datasets: tuple[str, ...]) -> None:
    script = (FLOOR / "load_duckdb.sql").read_text()
    for dataset in DAILY + DIMENSIONS:
        script = script.replace(
            "{" + f"{dataset}_files" + "}", _sql_list(_landing_files(dataset, days if dataset in DAILY else None))
        )
    wanted = tuple(f"insert into raw.{d} " for d in datasets)
    _execute(connection, [s for s in _statements(script) if s.startswith(wanted)])


def _copy(cursor: Any, table: str, path: Path, relative: str, sql_format: str) -> None:
    cursor.execute(f"alter table {table} alter column _source_file set default %s", (relative,))
    opener: Callable[[Path], Any] = (
        (lambda p: gzip.open(p, "rb")) if path.name.endswith(".gz") else (lambda p: p.open("rb"))  # noqa: SIM115
    )
    with opener(path) as stream:
        cursor.copy_expert(f"copy {table} {sql_format}", stream)


_LINES = "(line) from stdin with (format csv, delimiter e'\\x01', quote e'\\x02')"
_CSV = "from stdin with (format csv, header true)"
_COPY_FORMATS = {
    "activity_events": ("_event_lines", _LINES),
    "order_lines": (
        "_order_rows",
        "(order_id, line_no, ordered_at, org_id, user_id, item_id, quantity, "
        "unit_price, unit_cost, currency, status) " + _CSV,
    ),
    "inventory_snapshots": ("_inventory_rows", "(snapshot_date, item_id, on_hand, on_order, reorder_point) " + _CSV),
    "organizations": ("_organization_lines", _LINES),
    "users": ("_user_rows", "(user_id, org_id, role, created_at, updated_at) " + _CSV),
    "items": ("_item_rows", "(item_id, name, category, unit_cost, list_price, active, updated_at) " + _CSV),
}


_COPY_SECONDS: list[float] = []  # PostgreSQL: the COPY part of the last plain load


def _plain_load_postgres(connection: Any, days: list[date], datasets: tuple[str, ...]) -> None:
    staging, typed = (FLOOR / "load_postgres.sql").read_text().split("-- @copy", 1)
    landing = _settings().landing_dir
    with connection.cursor() as cursor:
        for statement in _statements(staging):
            cursor.execute(statement)
        started = time.perf_counter()
        for dataset in datasets:
            table, sql_format = _COPY_FORMATS[dataset]
            for path in _landing_files(dataset, days if dataset in DAILY else None):
                relative = path.relative_to(landing).as_posix()
                _copy(cursor, table, _parquet_as_csv(path) if path.suffix == ".parquet" else path, relative, sql_format)
        _COPY_SECONDS[:] = [time.perf_counter() - started]
        wanted = tuple(f"insert into raw.{d} " for d in datasets)
        for statement in _statements(typed.split("\n", 1)[1]):
            if statement.startswith(wanted):
                cursor.execute(statement)


def _parquet_as_csv(path: Path) -> Path:
    """PostgreSQL's COPY reads text; a Parquet dimension (a few rows) goes through CSV."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    target = Path(os.environ["BENCH_RESULT_FILE"]).with_suffix(f".{path.stem}.csv")
    pacsv.write_csv(pq.read_table(path), target)
    return target


def _plain_load(days: list[date], datasets: tuple[str, ...]) -> float:
    _ready_warehouse()
    with _connection() as connection:
        started = time.perf_counter()
        if _settings().warehouse == "duckdb":
            _plain_load_duckdb(connection, days, datasets)
        else:
            _plain_load_postgres(connection, days, datasets)
        seconds = time.perf_counter() - started
    return seconds


# -- tasks ----------------------------------------------------------------------------------------


def ingest(day: str) -> None:
    from analytics_pipeline.lib.ingestion.datasets import ACTIVITY_EVENTS
    from analytics_pipeline.lib.ingestion.loader import load_partition
    from analytics_pipeline.resources.warehouse import Warehouse

    _ready_warehouse()
    warehouse = Warehouse(_settings())
    started = time.perf_counter()
    report = load_partition(warehouse, _settings().landing_dir, ACTIVITY_EVENTS, date.fromisoformat(day))
    seconds = time.perf_counter() - started
    _result(
        seconds=seconds,
        lines_read=report.lines_read,
        rows_loaded=report.rows_loaded,
        rows_rejected=report.rows_rejected,
        duplicates_dropped=report.duplicates_dropped,
    )


def bulk_events(day: str) -> None:
    seconds = _plain_load(_days(day, day), (EVENTS,))
    with _connection() as connection:
        rows = _scalar(connection, "select count(*) from raw.activity_events")
    _result(seconds=seconds, rows=rows, copy_seconds=_COPY_SECONDS[0] if _COPY_SECONDS else None)


def plain_load(start: str, end: str) -> None:
    _result(seconds=_plain_load(_days(start, end), DAILY + DIMENSIONS))


def floor(start: str, end: str) -> None:
    load_seconds = _plain_load(_days(start, end), DAILY + DIMENSIONS)
    with _connection() as connection:
        started = time.perf_counter()
        _execute(connection, _statements((FLOOR / "marts.sql").read_text()))
        marts_seconds = time.perf_counter() - started
        rows = _scalar(connection, "select count(*) from floor.fct_daily_engagement")
    _result(
        seconds=load_seconds + marts_seconds,
        load_seconds=load_seconds,
        marts_seconds=marts_seconds,
        engagement_rows=rows,
    )


def _scalar(connection: Any, sql: str) -> Any:
    if hasattr(connection, "register"):  # DuckDB
        return connection.execute(sql).fetchone()[0]
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def export(start: str, end: str, repeat: str) -> None:
    from analytics_pipeline.defs.reporting.exports import EXPORTABLE
    from analytics_pipeline.defs.reporting.exports import export as export_mart
    from analytics_pipeline.resources.warehouse import Warehouse

    warehouse, first, last = Warehouse(_settings()), date.fromisoformat(start), date.fromisoformat(end)
    output = _settings().output_dir / "bench-exports"
    seconds: dict[str, list[float]] = {}
    rows: dict[str, int] = {}
    for name, mart in EXPORTABLE.items():
        for _ in range(int(repeat)):
            began = time.perf_counter()
            rows[name] = export_mart(warehouse, mart.table, first, last, "csv", output / f"{name}.csv")
            seconds.setdefault(name, []).append(time.perf_counter() - began)
    _result(seconds=seconds, rows=rows)


def adapter_init() -> None:
    from dagster_dbt import DbtCliResource

    from analytics_pipeline.resources.dbt import dbt_env, dbt_executable, dbt_project

    os.environ.update(dbt_env(_settings()))  # this benchmark process only: the adapter reads profiles.yml
    stock = DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
    os.chdir(dbt_project.project_dir)
    started = time.perf_counter()
    stock._initialize_dbt_core_adapter(["build"])
    _result(seconds=time.perf_counter() - started)


def prepare_dbt() -> None:
    """dbt's saved parse for this warehouse, where the pipeline's dbt resource looks for it."""
    from analytics_pipeline.resources.dbt import save_parse

    save_parse(_settings())


def forecasting(items: str, days: str, repeat: str) -> None:
    try:
        module = importlib.import_module("analytics_pipeline.lib.forecasting.bench")
    except ModuleNotFoundError as error:
        if error.name not in {"analytics_pipeline.lib.forecasting.bench", "analytics_pipeline.lib.forecasting"}:
            raise
        _result(available=False)
        return
    figures = module.run(items=int(items), days=int(days), repeat=int(repeat))
    _result(available=True, figures=figures)


# the steps of the days' run, by kind (the ingestion assets' ops are raw__<dataset>)
_DBT_STEPS = ("daily_dbt_models",)


def split() -> None:
    """Where the time of the backfill in ``DAGSTER_HOME`` went, read from its runs' event logs.

    * planned events: from the first to the last materialization/check-planned event of a run (Dagster
      writes them all when it creates the run, before its first step);
    * a step's work: from STEP_START to its first ASSET_MATERIALIZATION (the ingestion assets and the
      dbt step report their materializations once their work is done);
    * a step's event records: from that first materialization to the step's end (one materialization
      per asset and day, and the checks);
    * runs without days (dimensions before, cohorts after): their whole time; the rest of each run
      (start, pool claims, end) is "other run overhead". What is outside every run is the command's
      start-up and summary (the caller subtracts the runs' total from the command's wall time).
    """
    import dagster as dg

    planned_types = {"ASSET_MATERIALIZATION_PLANNED", "ASSET_CHECK_EVALUATION_PLANNED"}
    instance = dg.DagsterInstance.get()
    parts = dict.fromkeys(
        (
            "runs",
            "planned",
            "ingestion_work",
            "ingestion_events",
            "dbt_work",
            "dbt_events",
            "runs_without_days",
            "other",
        ),
        0.0,
    )
    events_written = 0
    for record in instance.get_run_records():
        entries = [e for e in instance.all_logs(record.dagster_run.run_id) if e.is_dagster_event]
        stamps = [e.timestamp for e in entries]
        run_seconds = max(stamps) - min(stamps)
        parts["runs"] += run_seconds
        events_written += len(entries)
        if "dagster/asset_partition_range_start" not in record.dagster_run.tags:
            parts["runs_without_days"] += run_seconds
            continue
        planned = [e.timestamp for e in entries if e.dagster_event.event_type_value in planned_types]
        accounted = max(planned) - min(planned) if planned else 0.0
        parts["planned"] += accounted
        steps: dict[str, dict[str, float]] = {}
        for entry in entries:
            kind, step = entry.dagster_event.event_type_value, entry.dagster_event.step_key
            if not step:
                continue
            marks = steps.setdefault(step, {})
            if kind == "STEP_START":
                marks["start"] = entry.timestamp
            elif kind == "ASSET_MATERIALIZATION":
                marks.setdefault("done", entry.timestamp)
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                marks["end"] = entry.timestamp
        for step, marks in steps.items():
            if "start" not in marks or "end" not in marks:
                continue
            done = marks.get("done", marks["end"])
            kind = "dbt" if step in _DBT_STEPS else "ingestion" if step.startswith("raw__") else None
            if kind is None:
                continue
            parts[f"{kind}_work"] += done - marks["start"]
            parts[f"{kind}_events"] += marks["end"] - done
            accounted += marks["end"] - marks["start"]
        parts["other"] += run_seconds - accounted
    _result(**{k: round(v, 3) for k, v in parts.items()}, events=events_written)


_LAUNCH = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
_BACKFILL = """query($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status runs(limit: 10000) { status } } }
}"""
_JOB_ASSETS = """{ assetNodes(pipeline: {pipelineName: "daily_pipeline", repositoryName: "__repository__",
  repositoryLocationName: "analytics_pipeline"}) { assetKey { path } } }"""


def _graphql(port: int, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        body = json.loads(response.read())
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def ui_backfill(start: str, end: str) -> None:
    """Start ``analytics-pipeline ui`` (webserver and daemon), stop the landing sensor (it would load
    the same files on its own), load the dimensions, then launch a backfill of ``daily_pipeline``
    over START..END as the job page's "Launch backfill" does and time it from the launch to the
    backfill's completion. Also reads back that every day of the job's assets is materialized and
    that the engagement mart's days carry their own numbers."""
    import signal
    import socket
    import subprocess

    import dagster as dg

    from analytics_pipeline.settings import PROJECT_ROOT

    bin_dir = Path(sys.executable).parent
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workspace = ["-w", str(PROJECT_ROOT / "workspace.yaml")]
    subprocess.run(
        [str(bin_dir / "dagster"), "sensor", "stop", "landing_file_sensor", *workspace],
        check=True,
        capture_output=True,
        cwd=PROJECT_ROOT,
    )
    subprocess.run(
        [str(bin_dir / "dagster"), "job", "execute", "-m", "analytics_pipeline.definitions", "-j", "dimension_refresh"],
        check=True,
        capture_output=True,
        cwd=PROJECT_ROOT,
    )
    ui = subprocess.Popen(
        [str(bin_dir / "analytics-pipeline"), "ui", "--port", str(port)],
        cwd=PROJECT_ROOT,
        stdout=sys.stdout,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                keys = [node["assetKey"] for node in _graphql(port, _JOB_ASSETS)["assetNodes"]]
                break
            except OSError:
                if time.monotonic() > deadline or ui.poll() is not None:
                    raise
                time.sleep(1)
        days = [day.isoformat() for day in _days(start, end)]
        started = time.perf_counter()
        launched = _graphql(
            port,
            _LAUNCH,
            {
                "params": {
                    "partitionNames": days,
                    "assetSelection": keys,
                    "fromFailure": False,
                    "selector": {
                        "partitionSetName": "daily_pipeline_partition_set",
                        "repositorySelector": {
                            "repositoryLocationName": "analytics_pipeline",
                            "repositoryName": "__repository__",
                        },
                    },
                }
            },
        )["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"the backfill was not launched: {launched}")
        while True:
            backfill = _graphql(port, _BACKFILL, {"id": launched["backfillId"]})["partitionBackfillOrError"]
            if backfill["status"] != "REQUESTED":
                break
            time.sleep(0.5)
        seconds = time.perf_counter() - started
    finally:
        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=60)
    instance = dg.DagsterInstance.get()
    engagement = dg.AssetKey(["marts", "fct_daily_engagement"])
    materialized = {
        tuple(key["path"]): len(instance.get_materialized_partitions(dg.AssetKey(key["path"]))) for key in keys
    }
    latest = instance.fetch_materializations(engagement, limit=len(days)).records
    with_numbers = sum(1 for record in latest if "active_users" in record.asset_materialization.metadata)
    _result(
        seconds=round(seconds, 3),
        status=backfill["status"],
        runs=len(backfill["runs"]),
        run_statuses=sorted({run["status"] for run in backfill["runs"]}),
        assets_with_every_day=sum(1 for count in materialized.values() if count == len(days)),
        incomplete={"/".join(key): count for key, count in materialized.items() if count != len(days)},
        assets=len(keys),
        engagement_days_with_their_numbers=with_numbers,
    )


def seed_demand(items: str, days: str) -> None:
    """The forecasting assets' input, ``marts.fct_item_daily_demand``, from ``generate``'s order lines
    for ITEMS items over DAYS days (what section 6 measures on), written straight to the warehouse."""
    import tempfile

    import pandas as pd
    import pyarrow as pa

    from analytics_pipeline.lib.forecasting.bench import END, generated_demand
    from analytics_pipeline.lib.sample_data import generate
    from analytics_pipeline.resources.warehouse import Warehouse

    count, start = int(items), END - timedelta(days=int(days) - 1)
    with tempfile.TemporaryDirectory(prefix="forecast-demand-") as folder:
        generate(
            Path(folder),
            start,
            END,
            events_per_day=1_000,
            orgs=max(12, count),
            users=count * 20,
            items=count,
            seed=11,
            bad_rate=0.0,
        )
        demand = generated_demand(Path(folder), start, END)
    demand = demand.assign(
        demand_date=pd.to_datetime(demand["demand_date"]).dt.date, units=demand["units"].astype("int64")
    )
    warehouse = Warehouse(_settings())
    with warehouse.transaction() as session:
        session.execute("create schema if not exists marts")
        session.execute("create table marts.fct_item_daily_demand (demand_date date, item_id varchar, units bigint)")
        session.insert_arrow(
            "marts.fct_item_daily_demand",
            pa.Table.from_pandas(demand[["demand_date", "item_id", "units"]], preserve_index=False),
        )
    _result(as_of=END.isoformat(), rows=len(demand), items=int(demand["item_id"].nunique()))


def celery_steps() -> None:
    """The latest run: its status, and how many of its steps each Celery worker executed (from the
    "Executing steps … in celery worker" engine events dagster-celery writes)."""
    from collections import Counter

    import dagster as dg

    instance = dg.DagsterInstance.get()
    run = instance.get_runs(limit=1)[0]
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    workers: Counter[str] = Counter()
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None and "in celery worker" in (event.message or ""):
            workers[event.event_specific_data.metadata["Celery worker"].value.split("@")[0]] += 1
    warehouse = _settings()
    from analytics_pipeline.resources.warehouse import Warehouse

    client = Warehouse(warehouse)
    _result(
        status=run.status.value,
        workers=dict(workers),
        selections=client.query(
            "select item_id, model from forecast.model_evaluations where selected order by item_id"
        ).to_pylist(),
        forecast_rows=client.scalar("select count(*) from forecast.demand_forecasts"),
    )


TASKS: dict[str, Callable[..., None]] = {
    "ingest": ingest,
    "bulk-events": bulk_events,
    "plain-load": plain_load,
    "floor": floor,
    "export": export,
    "adapter-init": adapter_init,
    "prepare-dbt": prepare_dbt,
    "forecasting": forecasting,
    "split": split,
    "ui-backfill": ui_backfill,
    "seed-demand": seed_demand,
    "celery-steps": celery_steps,
}


if __name__ == "__main__":
    TASKS[sys.argv[1]](*sys.argv[2:])
