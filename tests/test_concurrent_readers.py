"""Readers of the warehouse (``export``, ``health``, metrics, a BI tool) never make a run fail.

A DuckDB file takes one read-write process or many read-only ones, never a mix, and does not wait:
an ``export`` run every few seconds used to fail a backfill's steps with "Could not set lock".
Readers and writers of this pipeline now take turns (``resources/warehouse_lock.py``); a program
outside it is waited out. All driven with real processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from test_cli import CLI, END, START, cli, generate_small
from tests_support import readline_within

from analytics_pipeline.resources import warehouse_lock
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import PROJECT_ROOT


def _one_sentence_refusal(result: subprocess.CompletedProcess[str]) -> bool:
    """Exit 2 with one ``error:`` sentence (after any progress lines) and no traceback."""
    lines = result.stderr.strip().splitlines()
    progress = [line for line in lines if line.startswith("waiting for the warehouse")]
    errors = [line for line in lines if line.startswith("error: ")]
    return (
        result.returncode == 2
        and len(errors) == 1
        and len(progress) + 1 == len(lines)
        and "Traceback" not in result.stderr
    )


@pytest.mark.e2e
@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)  # PostgreSQL has no file lock to meet
def test_exports_and_health_in_a_loop_never_fail_a_running_backfill(env: dict[str, str], warehouse: Warehouse) -> None:
    """Readers in other processes (``export``, ``health``) in a loop, and one reader in this process
    that holds the warehouse open almost all the time (half a second per read, the next at once):
    without the writers' turn, the dbt step and the steps after it would meet an open file."""
    generate_small(env)
    backfill = subprocess.Popen(
        [*CLI, "backfill", "--start", START.isoformat(), "--end", END.isoformat()],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    readers: list[tuple[str, subprocess.CompletedProcess[str]]] = []
    # a reader that waits at most 20 s: some wait out a step, some give up (dbt may hold the file longer)
    reader_env = {**env, "ANALYTICS_READ_WAIT_SECONDS": "20"}

    def read_in_a_loop() -> None:
        while backfill.poll() is None:
            readers.append(
                (
                    "export",
                    cli(
                        "export",
                        "fct_daily_engagement",
                        "--start",
                        START.isoformat(),
                        "--end",
                        END.isoformat(),
                        env=reader_env,
                        timeout=300,
                    ),
                )
            )
            readers.append(("health", cli("health", "--json", env=reader_env, timeout=300)))

    held_reads: list[int] = []

    def hold_the_warehouse_open() -> None:
        while backfill.poll() is None:
            with warehouse.reading(wait_seconds=900) as session:
                held_reads.append(
                    session.query("select count(*) as n from information_schema.tables").column("n")[0].as_py()
                )
                time.sleep(0.5)

    loops = [threading.Thread(target=read_in_a_loop), threading.Thread(target=hold_the_warehouse_open)]
    for loop in loops:
        loop.start()
    try:
        stdout, stderr = backfill.communicate(timeout=900)
    finally:
        backfill.kill()
        for loop in loops:
            loop.join(timeout=600)

    assert backfill.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "succeeded: 3 days" in stdout
    assert [name for name, _ in readers[:2]] == ["export", "health"]  # readers ran while the backfill did
    assert len(held_reads) > 1 and all(count > 0 for count in held_reads)
    for name, result in readers:
        if name == "export":
            assert result.returncode == 0 or _one_sentence_refusal(result), result.stderr[-2000:]
        else:  # health's exit code is its status; the warehouse is never down because a run writes to it
            assert "Traceback" not in result.stderr, result.stderr[-2000:]
            assert json.loads(result.stdout)["checks"]["warehouse"]["status"] == "ok", result.stdout
    after = cli("export", "fct_daily_engagement", "--start", START.isoformat(), "--end", END.isoformat(), env=env)
    assert after.returncode == 0 and "exported" in after.stdout, after.stderr


def _writer(env: dict[str, str]) -> subprocess.Popen[str]:
    """Another process writing to the warehouse, as a step does."""
    code = (
        "from analytics_pipeline.resources.warehouse import Warehouse; from analytics_pipeline.settings import "
        "get_settings; Warehouse(get_settings()).execute('create table main.written as select 42 as answer')"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )


def _wait_for(condition, process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, f"{what}: the process ended early: {process.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_a_writer_waits_for_a_reader_and_a_reader_for_a_writer(env: dict[str, str], warehouse: Warehouse) -> None:
    path = Path(env["ANALYTICS_DUCKDB_PATH"])
    gate = warehouse_lock.lock_path(path).with_name(path.name + ".lock.gate")

    # a reader holds the file (read-only DuckDB connection open): a writer process queues behind it
    with warehouse.reading() as session:
        writer = _writer(env)
        _wait_for(lambda: f"pid {writer.pid} " in gate.read_text(), writer, "the writer queue at the gate")
        assert session.query("select 1 as one").to_pylist() == [{"one": 1}]  # the reader carries on undisturbed
    _, stderr = writer.communicate(timeout=120)
    assert writer.returncode == 0, stderr
    assert warehouse.scalar("select answer from main.written") == 42

    # a writer holds the file: a reader waits, says what for, and gives up in one sentence naming it
    with warehouse_lock.hold(path, exclusive=True, wait_seconds=5, what="a test step writing"):
        refused = cli(
            "export",
            "fct_daily_engagement",
            "--start",
            "2025-01-01",
            "--end",
            "2025-01-02",
            env={**env, "ANALYTICS_READ_WAIT_SECONDS": "2"},
        )
        health = cli("health", "--json", env=env)
    assert _one_sentence_refusal(refused), refused.stderr
    assert f"is being written by pid {os.getpid()} (a test step writing)" in refused.stderr
    assert "ANALYTICS_READ_WAIT_SECONDS" in refused.stderr
    assert "waiting for the warehouse: pid" in refused.stderr  # the progress line on stderr
    warehouse_check = json.loads(health.stdout)["checks"]["warehouse"]
    assert warehouse_check["status"] == "ok" and "busy" in warehouse_check["reason"]
    # the freshness check reads the marts as a reader too: it says it could not count their rows
    # instead of queueing behind the writer with the writers
    freshness = json.loads(health.stdout)["checks"]["freshness"]
    assert "being written by pid" in freshness["details"]["rows_not_counted"], freshness


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_a_writer_waits_out_a_program_outside_the_pipeline_that_holds_the_file(
    env: dict[str, str], warehouse: Warehouse
) -> None:
    """A BI tool has the DuckDB file open read-only and takes none of the pipeline's locks."""
    bi_tool = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], "
            "read_only=True); print('open', flush=True); time.sleep(600)",
            env["ANALYTICS_DUCKDB_PATH"],
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert readline_within(bi_tool.stdout, 120, "the BI tool").strip() == "open"
        writer = _writer(env)
        line = readline_within(writer.stderr, 120, "the writer")  # the writer says whom it waits for, then keeps trying
        assert "waiting for the DuckDB file" in line and f"(pid {bi_tool.pid})" in line, line
    finally:
        bi_tool.kill()
        bi_tool.wait()
    _, stderr = writer.communicate(timeout=120)
    assert writer.returncode == 0, stderr
    assert warehouse.scalar("select answer from main.written") == 42
    with duckdb.connect(env["ANALYTICS_DUCKDB_PATH"], read_only=True) as connection:
        assert connection.execute("select count(*) from main.written").fetchone() == (1,)
