"""Smoke tests of the benchmark harness (bench/), so it cannot rot. Figures are never asserted: timing
is measured by ``make bench`` on a quiet machine and kept in bench/RESULTS.md.

The default tests run the harness at its smallest size on DuckDB and PostgreSQL for the sections that
take seconds, and the floor SQL (plain bulk load + marts) on both engines. The sections that drive the
whole pipeline (backfill, daily runs, growth, export, fixed costs) take about ten minutes even at the
smallest size, because every Dagster run and dbt invocation pays its start-up; they run with
``BENCH_SMOKE_ALL=1`` (or ``make bench-quick``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from bench.environment import Site

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?")
ENGINE_COLUMNS = ("DuckDB", "PostgreSQL")


def _run_bench(tmp_path: Path, sections: str, timeout: int, engines: str = "duckdb,postgres") -> str:
    output = tmp_path / "RESULTS.md"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--engines",
            engines,
            "--sections",
            sections,
            "--output",
            str(output),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert not (tmp_path / "work").exists(), "the working folder is removed without --keep"
    json.loads(output.with_suffix(".json").read_text())
    return output.read_text()


def _sections(markdown: str) -> dict[str, list[str]]:
    """Level-2 heading -> the lines under it."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:], [])
        elif current is not None:
            current.append(line)
    return sections


def _assert_numbers(title: str, lines: list[str], one_engine: dict[str, str] | None = None) -> int:
    """Every engine cell of the section's table holds a number, except that rows starting with a
    key of ``one_engine`` hold one only for that engine (and "—" for the others); returns the
    number of rows."""
    table = [line for line in lines if line.startswith("|")]
    assert table, f"section {title!r} has no table"
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    columns = [header.index(name) for name in ENGINE_COLUMNS]
    for row in table[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        only = next((engine for prefix, engine in (one_engine or {}).items() if cells[0].startswith(prefix)), None)
        for column in columns:
            if only and header[column] != only:
                assert cells[column] == "—", f"{title}: {cells[0]!r} is for {only} only, got {cells[column]!r}"
                continue
            assert NUMBER.match(cells[column]), (
                f"{title}: {cells[0]!r} has no number for {header[column]}: {cells[column]!r}"
            )
    return len(table) - 2


def _section(sections: dict[str, list[str]], prefix: str) -> tuple[str, list[str]]:
    matches = [(title, lines) for title, lines in sections.items() if title.startswith(prefix)]
    assert len(matches) == 1, f"expected one section starting {prefix!r}, found {list(sections)}"
    return matches[0]


def _assert_header(markdown: str) -> None:
    for needle in (
        "| CPU |",
        "| RAM |",
        "| Python |",
        "| dagster |",
        "| dbt-core |",
        "| duckdb |",
        "| PostgreSQL server |",
        "load average",
        "UTC",
        "median",
    ):
        assert needle in markdown, f"the header lacks {needle!r}"
    assert not re.search(r"FAILED", markdown), "a part of the benchmark failed"


def test_quick_run_of_the_fast_sections_on_both_engines(tmp_path: Path) -> None:
    markdown = _run_bench(tmp_path, "1,5,6", timeout=300)
    _assert_header(markdown)
    sections = _sections(markdown)
    # loader, floor, the floor's COPY alone (PostgreSQL), floor / loader
    assert (
        _assert_numbers(*_section(sections, "1. Ingestion throughput"), one_engine={"floor, `COPY`": "PostgreSQL"}) == 4
    )
    assert _assert_numbers(*_section(sections, "5. Peak memory")) == 1
    title, lines = _section(sections, "6. Forecasting")
    if not any("forecasting: not available" in line for line in lines):
        _assert_numbers(title, lines)
    assert not any(title.startswith(("2.", "3.", "4.", "7.", "Where")) for title in sections)


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_floor_sql_runs_on_the_current_raw_tables(engine: str, tmp_path: Path) -> None:
    """bench/floor/*.sql against the pipeline's raw DDL and the generator's files, on each engine."""
    from analytics_pipeline.lib.sample_data import generate

    generate(tmp_path / "landing", date(2025, 3, 3), date(2025, 3, 4), events_per_day=1_000, users=300)
    site = Site(engine, f"floor-{engine}", tmp_path / "sites", tmp_path / "landing", "2025-03-03").reset()
    try:
        measured = site.task("floor", "floor", "2025-03-03", "2025-03-04")
    finally:
        site.drop()
    assert measured.result["engagement_rows"] > 0
    assert measured.result["seconds"] >= measured.result["load_seconds"] > 0


def test_quick_run_of_the_year_section(tmp_path: Path) -> None:
    """Section 8 at its smallest size (3 days), on DuckDB: a backfill of the whole history, the floor,
    and the split of the backfill's time read back from its runs' event logs."""
    markdown = _run_bench(tmp_path, "8", timeout=600, engines="duckdb")
    assert not re.search(r"FAILED", markdown), "a part of the benchmark failed"
    title, lines = _section(_sections(markdown), "8. A year of history")
    table = [line for line in lines if line.startswith("|")][2:]
    assert [
        cell.strip() for cell in lines[[line.startswith("|") for line in lines].index(True)].strip("|").split("|")
    ] == ["", "DuckDB", "target"]
    cells = {row.split("|")[1].strip().split(": ", 1)[1]: row.split("|")[2].strip() for row in table}
    assert len(cells) == 13 and all(NUMBER.match(cell) for cell in cells.values()), cells
    seconds = {label: float(cell.split()[0]) for label, cell in cells.items() if cell.endswith(" s")}
    whole = seconds.pop("pipeline: `analytics-pipeline backfill`")
    floor = seconds.pop("floor: bulk load + one SQL script")
    # the parts of the split add up to the whole command (each cell is rounded to 0.01 s)
    assert abs(sum(seconds.values()) - whole) < 0.1, cells
    assert whole > floor > 0
    assert (
        int(cells["event records written"].replace(",", "")) > 3 * 20
    )  # a planned event and a materialization per asset and day


@pytest.mark.skipif(not os.environ.get("BENCH_SMOKE_ALL"), reason="about ten minutes on 2 cores; set BENCH_SMOKE_ALL=1")
def test_quick_run_of_every_section_on_both_engines(tmp_path: Path) -> None:
    markdown = _run_bench(tmp_path, "1,2,3,4,5,6,7,where", timeout=3600)
    _assert_header(markdown)
    sections = _sections(markdown)
    for prefix in ("1. ", "2. ", "3. ", "4. ", "5. ", "7. ", "Where the time goes"):
        assert _assert_numbers(*_section(sections, prefix)) >= 1
    _section(sections, "6. Forecasting")
    titles = list(sections)
    assert titles.index(_section(sections, "1. ")[0]) < titles.index(_section(sections, "7. ")[0])
    assert "Before / after" in markdown


# the marts the floor computes, with the columns that order their rows
_FLOOR_MARTS = {
    "fct_daily_engagement": "activity_date, org_id",
    "fct_engagement_rolling": "activity_date, org_id",
    "fct_activity_summary": "activity_date, org_id, activity_type",
    "fct_hourly_usage": "activity_hour, activity_type",
    "fct_kpi_daily": "kpi_date",
}


def _numbers(rows: list[dict], columns: list[str]) -> list[tuple]:
    """Rows on ``columns``, numbers as floats to 6 places: the floor's types need not be the marts'."""

    def value(v: object) -> object:
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int | float) or type(v).__name__ == "Decimal":
            return round(float(v), 6)
        if hasattr(v, "replace") and hasattr(v, "tzinfo") and getattr(v, "tzinfo", None) is not None:
            return v.replace(tzinfo=None)
        return v

    return [tuple(value(row[c]) for c in columns) for row in rows]


def test_the_floor_computes_the_marts_numbers(env: dict[str, str], warehouse_engine: str, tmp_path: Path) -> None:
    """bench/floor/marts.sql, the benchmarks' yardstick, is the same computation as the dbt marts: on
    clean files (no bad records, so its plain bulk load and the pipeline's validated load hold the same
    rows) every column the floor and a mart share holds the same values, row for row."""
    import dataclasses

    import dagster as dg
    from conftest import run_pipeline, run_unpartitioned

    from analytics_pipeline.lib.sample_data import generate
    from analytics_pipeline.resources.warehouse import Warehouse
    from analytics_pipeline.settings import get_settings

    start, end = date(2025, 3, 3), date(2025, 3, 6)
    landing = Path(env["ANALYTICS_LANDING_DIR"])
    generate(landing, start, end, events_per_day=1_500, users=300, orgs=4, items=10, bad_rate=0.0)
    dimensions = dg.AssetSelection.assets(*(["raw", name] for name in ("organizations", "users", "items")))
    assert run_unpartitioned(dimensions).success
    assert run_pipeline(start, end).success
    marts = Warehouse(get_settings())

    site = Site(warehouse_engine, f"floor-vs-marts-{warehouse_engine}", tmp_path / "sites", landing, start.isoformat())
    site.reset()
    try:
        site.task("floor", "floor", start.isoformat(), end.isoformat())
        floor = Warehouse(
            dataclasses.replace(
                get_settings(), duckdb_path=site.duckdb_path, pg_database=site.pg_database or get_settings().pg_database
            )
        )
        for table, order in _FLOOR_MARTS.items():
            floor_rows = floor.query(f"select * from floor.{table} order by {order}").to_pylist()
            mart_rows = marts.query(f"select * from marts.{table} order by {order}").to_pylist()
            assert floor_rows and mart_rows, table
            shared = [c for c in floor_rows[0] if c in mart_rows[0]]
            assert len(shared) >= 3, (table, shared)
            assert _numbers(floor_rows, shared) == _numbers(mart_rows, shared), table
    finally:
        site.drop()
