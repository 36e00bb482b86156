"""`analytics-pipeline export`: exactly the mart's rows for the window, in every format, read back;
unsafe or impossible requests refused with one sentence and without touching the warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from analytics_pipeline.defs.reporting.exports import ExportError, export
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import PROJECT_ROOT, get_settings
from conftest import Landing, run_pipeline
from test_engagement_marts import D1, D2, D3, write_history


def direct(warehouse: Warehouse, where: str, params: tuple) -> list[dict]:
    return warehouse.query(
        f"select * from marts.fct_daily_engagement where {where} order by activity_date, org_id", params
    ).to_pylist()


def test_every_format_holds_exactly_the_window(env, warehouse: Warehouse, landing: Landing, tmp_path: Path) -> None:  # noqa: ANN001
    write_history(landing)
    assert run_pipeline(D1, D3).success
    expected = direct(warehouse, "activity_date between ? and ?", (D1, D2))
    assert len(expected) == 3  # two schools on day 1, one on day 2; day 3 is outside the window

    for fmt in ("csv", "parquet", "json", "xlsx"):
        path = tmp_path / f"engagement.{fmt}"
        assert export(warehouse, "fct_daily_engagement", D1, D2, fmt, path) == 3
        if fmt == "csv":
            rows = pacsv.read_csv(path).to_pylist()
        elif fmt == "parquet":
            rows = pq.read_table(path).to_pylist()
        elif fmt == "json":
            rows = [{**r, "activity_date": date.fromisoformat(r["activity_date"][:10])} for r in json.loads(path.read_text())]
        else:
            rows = [{**r, "activity_date": r["activity_date"].date()} for r in pd.read_excel(path).to_dict("records")]
        assert list(rows[0]) == list(expected[0]), fmt  # the mart's column order
        assert rows == expected, fmt

    by_school = tmp_path / "a.csv"
    assert export(warehouse, "marts.fct_daily_engagement", D1, D3, "csv", by_school, org="A") == 3
    assert pacsv.read_csv(by_school).to_pylist() == direct(warehouse, "org_id = ?", ("A",))

    with pytest.raises(ExportError, match="no rows from 2025-02-01 to 2025-02-03"):
        export(warehouse, "fct_daily_engagement", date(2025, 2, 1), date(2025, 2, 3), "csv", tmp_path / "empty.csv")
    assert not (tmp_path / "empty.csv").exists()
    with pytest.raises(ExportError, match="has no school column"):
        export(warehouse, "fct_kpi_daily", D1, D2, "csv", tmp_path / "kpi.csv", org="A")


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("raw.users", "cannot be exported"),
        ("fct_daily_engagement; drop table raw.users", "cannot be exported"),
        ("marts.fct_daily_engagement where 1=1 --", "cannot be exported"),
    ],
)
def test_tables_off_the_allow_list_are_refused_before_any_query(
    env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, table: str, message: str  # noqa: ANN001
) -> None:
    monkeypatch.setenv("ANALYTICS_WAREHOUSE", "postgres")
    monkeypatch.setenv("ANALYTICS_PG_PORT", "1")  # a query would fail with a connection error instead
    with pytest.raises(ExportError, match=message):
        export(Warehouse(get_settings()), table, D1, D2, "csv", tmp_path / "x.csv")


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_cli_errors_are_one_sentence(env, tmp_path: Path) -> None:  # noqa: ANN001
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "analytics_pipeline.cli", "export", *args], cwd=PROJECT_ROOT,
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=120)  # fmt: skip

    bad_date = cli("fct_daily_engagement", "--start", "2025-13-01", "--end", "2025-01-02")
    assert bad_date.returncode == 2 and "is not a date" in bad_date.stderr
    unknown = cli("users; drop table x", "--start", "2025-01-01", "--end", "2025-01-02")
    assert unknown.returncode == 2 and "cannot be exported" in unknown.stderr
    (tmp_path / "a-file").write_text("")
    unwritable = cli("fct_daily_engagement", "--start", "2025-01-01", "--end", "2025-01-02",
                     "--output", str(tmp_path / "a-file" / "out.csv"))  # fmt: skip
    assert unwritable.returncode == 2 and "choose another --output" in unwritable.stderr
    for result in (bad_date, unknown, unwritable):
        assert "Traceback" not in result.stderr
