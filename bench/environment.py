"""Throw-away places to measure in, and child processes measured from the outside.

A :class:`Site` is one warehouse (a DuckDB file, or a PostgreSQL database of its own on the server
the settings name), one Dagster instance directory and one dbt target folder, all under the
benchmark's temporary root. Resetting a site empties it but keeps its names, so dbt's saved parse
(kept per warehouse connection) stays valid across repeats, as it does for a real deployment that
runs every day against the same warehouse.

Everything a measured command does runs in a child process with the site's environment; the
parent times it. A child's peak memory is the high-water mark of its own address space, which a
``bench.tasks`` child reports (``VmHWM``). ``wait4``'s ``ru_maxrss`` is only the fallback: Linux
carries the pages the child had at the fork (the whole benchmark process) across ``exec`` into it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
VENV_BIN = Path(sys.executable).parent
PG_SERVER = {
    "host": os.environ.get("ANALYTICS_PG_HOST", "127.0.0.1"),
    "port": os.environ.get("ANALYTICS_PG_PORT", "5432"),
    "user": os.environ.get("ANALYTICS_PG_USER", "postgres"),
    "password": os.environ.get("ANALYTICS_PG_PASSWORD", ""),
}
# Every PostgreSQL database this benchmark process creates starts with this.
DATABASE_PREFIX = f"bench_{os.getpid()}_"
# Settings of the surrounding shell that must not leak into a measured child.
_SCRUBBED = ("ANALYTICS_", "DAGSTER_HOME", "DBT_", "DAGSTER_IS_DEV_CLI")


class ChildFailed(RuntimeError):
    """A measured command exited non-zero; the message names its log."""


@dataclass
class Measured:
    seconds: float
    max_rss_bytes: int
    result: dict[str, Any]  # what the child wrote to its result file, if anything


@dataclass
class Site:
    """One warehouse + Dagster instance + dbt target folder, reset between repeats."""

    engine: str
    name: str
    root: Path
    landing: Path
    start_date: str
    pg_database: str = ""
    _created: bool = field(default=False, repr=False)

    @property
    def folder(self) -> Path:
        return self.root / self.name

    @property
    def duckdb_path(self) -> Path:
        return self.folder / "warehouse.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.folder / "dagster_home"

    @property
    def dbt_target(self) -> Path:
        return self.folder / "dbt_target"

    @property
    def output_dir(self) -> Path:
        return self.folder / "output"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
        return {
            **base,
            "ANALYTICS_WAREHOUSE": self.engine,
            "ANALYTICS_DUCKDB_PATH": str(self.duckdb_path),
            "ANALYTICS_PG_HOST": PG_SERVER["host"],
            "ANALYTICS_PG_PORT": str(PG_SERVER["port"]),
            "ANALYTICS_PG_USER": PG_SERVER["user"],
            "ANALYTICS_PG_PASSWORD": PG_SERVER["password"],
            "ANALYTICS_PG_DATABASE": self.pg_database or "analytics",
            "ANALYTICS_LANDING_DIR": str(self.landing),
            "ANALYTICS_OUTPUT_DIR": str(self.output_dir),
            "ANALYTICS_START_DATE": self.start_date,
            "DAGSTER_HOME": str(self.dagster_home),
            "DBT_TARGET_PATH": str(self.dbt_target),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "PYTHONWARNINGS": "ignore",
        }

    def reset(self) -> Site:
        """An empty warehouse and Dagster instance under the same names (dbt's saved parse survives)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        for path in (self.duckdb_path, self.duckdb_path.with_suffix(".duckdb.wal")):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.dagster_home, ignore_errors=True)
        shutil.rmtree(self.output_dir, ignore_errors=True)
        self.dagster_home.mkdir(parents=True)
        shutil.copy(PROJECT_ROOT / "dagster.yaml", self.dagster_home / "dagster.yaml")
        self.dbt_target.mkdir(parents=True, exist_ok=True)
        if self.engine == "postgres":
            if not self.pg_database:
                self.pg_database = f"{DATABASE_PREFIX}{self.name}".replace("-", "_")[:60]
            drop_database(self.pg_database)
            _maintenance(f'create database "{self.pg_database}"')
            # the server writes out what earlier parts left in its buffers now, not during this part
            _maintenance("checkpoint")
            self._created = True
        return self

    def drop(self, keep_files: bool = False) -> None:
        """Drop the PostgreSQL database; remove the folder too unless ``keep_files`` (for inspection)."""
        if self.engine == "postgres" and self._created:
            drop_database(self.pg_database)
            self._created = False
        if not keep_files:
            shutil.rmtree(self.folder, ignore_errors=True)

    def run(
        self, label: str, command: list[str], *, cwd: Path = PROJECT_ROOT, extra_env: dict[str, str] | None = None
    ) -> Measured:
        """Run ``command`` with the site's environment; fail loudly (with the log) if it fails."""
        return run_child(label, command, {**self.env(), **(extra_env or {})}, cwd, self.logs)

    def task(self, label: str, task: str, *args: str) -> Measured:
        """Run ``python -m bench.tasks TASK ARGS`` (work timed inside the child, see bench/tasks.py)."""
        return self.run(label, [sys.executable, "-m", "bench.tasks", task, *args])


def run_child(label: str, command: list[str], env: dict[str, str], cwd: Path, logs: Path) -> Measured:
    logs.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in label)[:80]
    log, result_file = logs / f"{slug}.log", logs / f"{slug}.result.json"
    result_file.unlink(missing_ok=True)
    env = {**env, "BENCH_RESULT_FILE": str(result_file)}
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    print(f"    {label}: {seconds:.1f}s{'' if process.returncode == 0 else ' FAILED'}", flush=True)
    if process.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise ChildFailed(f"{label} failed (exit {process.returncode}); log {log}:\n  " + "\n  ".join(tail))
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    return Measured(
        seconds=seconds, max_rss_bytes=result.get("peak_rss_bytes") or usage.ru_maxrss * 1024, result=result
    )


def _maintenance(sql: str) -> None:
    connection = psycopg2.connect(
        dbname="postgres",
        host=PG_SERVER["host"],
        port=PG_SERVER["port"],
        user=PG_SERVER["user"],
        password=PG_SERVER["password"] or None,
        connect_timeout=5,
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


def drop_database(name: str) -> None:
    _maintenance(f'drop database if exists "{name}" with (force)')


def create_database(name: str) -> None:
    _maintenance(f'create database "{name}"')


class CeleryWorkers:
    """``count`` workers of the forecasting queue (``analytics-pipeline worker``) with the site's
    environment, each pinned to a core of its own with ``taskset`` when ``pin``; stopped on exit
    (SIGTERM to each worker's process group, SIGKILL after 30 s)."""

    def __init__(self, site: Site, count: int, env: dict[str, str], pin: bool) -> None:
        self.site, self.count, self.env, self.pin = site, count, env, pin
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> CeleryWorkers:
        cores = os.cpu_count() or 1
        for index in range(self.count):
            name = f"bench-forecasting-{index}"
            log = self.site.logs / f"{self.site.name}-{name}.log"
            command = [
                str(VENV_BIN / "analytics-pipeline"),
                "worker",
                "--queue",
                "forecasting",
                "--concurrency",
                "1",
                "--name",
                name,
            ]
            if self.pin:
                command = ["taskset", "-c", str(index % cores), *command]
            with log.open("ab") as out:
                self.processes.append(
                    subprocess.Popen(
                        command,
                        env={**self.site.env(), **self.env},
                        cwd=PROJECT_ROOT,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            deadline = time.monotonic() + 120
            while " ready." not in log.read_text(errors="replace"):
                if self.processes[-1].poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise ChildFailed(f"worker {name} did not start; log {log}")
                time.sleep(0.5)
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def drop_databases() -> None:
    """Drop every database this benchmark process created (after a failure too)."""
    try:
        connection = psycopg2.connect(
            dbname="postgres",
            host=PG_SERVER["host"],
            port=PG_SERVER["port"],
            user=PG_SERVER["user"],
            password=PG_SERVER["password"] or None,
            connect_timeout=5,
        )
    except psycopg2.Error:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("select datname from pg_database where starts_with(datname, %s)", (DATABASE_PREFIX,))
            names = [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()
    for name in names:
        drop_database(name)


def postgres_available() -> str | None:
    """None when the PostgreSQL server answers, else why not (one sentence)."""
    try:
        _maintenance("select 1")
    except psycopg2.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "no answer"
        return f"PostgreSQL at {PG_SERVER['host']}:{PG_SERVER['port']} is not usable ({reason})"
    return None
