"""`analytics-pipeline export`: exactly the mart's rows for the window, in every format, read back;
unsafe or impossible requests refused with one sentence and without touching the warehouse."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import Landing, event, run_pipeline
from test_engagement_marts import D1, D2, D3, write_history

from analytics_pipeline.defs.reporting.exports import ExportError, export
from analytics_pipeline.lib.reporting.documents import write_csv, write_xlsx
from analytics_pipeline.lib.reporting.spreadsheets import neutralise_arrow
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import PROJECT_ROOT, get_settings


def direct(warehouse: Warehouse, where: str, params: tuple) -> list[dict]:
    return warehouse.query(
        f"select * from marts.fct_daily_engagement where {where} order by activity_date, org_id", params
    ).to_pylist()


def test_every_format_holds_exactly_the_window(env, warehouse: Warehouse, landing: Landing, tmp_path: Path) -> None:
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
            rows = [
                {**r, "activity_date": date.fromisoformat(r["activity_date"][:10])}
                for r in json.loads(path.read_text())
            ]
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
    env,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    table: str,
    message: str,
) -> None:
    monkeypatch.setenv("ANALYTICS_WAREHOUSE", "postgres")
    monkeypatch.setenv("ANALYTICS_PG_PORT", "1")  # a query would fail with a connection error instead
    with pytest.raises(ExportError, match=message):
        export(Warehouse(get_settings()), table, D1, D2, "csv", tmp_path / "x.csv")


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_cli_errors_are_one_sentence(env, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "analytics_pipeline.cli", "export", *args],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    bad_date = cli("fct_daily_engagement", "--start", "2025-13-01", "--end", "2025-01-02")
    assert bad_date.returncode == 2 and "is not a date" in bad_date.stderr
    unknown = cli("users; drop table x", "--start", "2025-01-01", "--end", "2025-01-02")
    assert unknown.returncode == 2 and "cannot be exported" in unknown.stderr
    (tmp_path / "a-file").write_text("")
    unwritable = cli(
        "fct_daily_engagement",
        "--start",
        "2025-01-01",
        "--end",
        "2025-01-02",
        "--output",
        str(tmp_path / "a-file" / "out.csv"),
    )
    assert unwritable.returncode == 2 and "choose another --output" in unwritable.stderr
    for result in (bad_date, unknown, unwritable):
        assert "Traceback" not in result.stderr


# -- hostile values and paths --------------------------------------------------------------------

# School ids as a hostile landing file may carry them (OWASP's CSV-injection characters, a path)
HOSTILE_ORGS = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-3+4", "@SUM(A1)", "../../escaped"]


def write_hostile_day(landing: Landing) -> None:
    landing.jsonl(
        "activity_events",
        D1,
        "part-1.jsonl",
        [event(f"e{i}", "2025-01-01T08:00:00Z", f"u{i}", org, "login", f"s{i}") for i, org in enumerate(HOSTILE_ORGS)],
    )


def test_hostile_school_ids_stay_text_in_csv_and_xlsx(
    env, warehouse: Warehouse, landing: Landing, tmp_path: Path
) -> None:
    write_hostile_day(landing)
    assert run_pipeline(D1).success

    assert export(warehouse, "fct_daily_engagement", D1, D1, "csv", tmp_path / "e.csv") == 5
    with (tmp_path / "e.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    # sorted by org_id; each text cell a spreadsheet would run gets a leading quote, the path does not
    assert [r["org_id"] for r in rows] == [
        "'+1+2",
        "'-3+4",
        "../../escaped",
        '\'=HYPERLINK("http://evil.example","x")',
        "'@SUM(A1)",
    ]
    assert {(r["activity_date"], r["active_users"], r["events"], r["events_per_active_user"]) for r in rows} == {
        ("2025-01-01", "1", "1", "1")
    }  # numbers untouched

    assert export(warehouse, "fct_daily_engagement", D1, D1, "xlsx", tmp_path / "e.xlsx") == 5
    sheet = openpyxl.load_workbook(tmp_path / "e.xlsx")["export"]
    header = [c.value for c in sheet[1]]
    org_cells = [row[header.index("org_id")] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in org_cells] == sorted(HOSTILE_ORGS)  # the values themselves, unchanged
    assert {c.data_type for c in org_cells} == {"s"}  # text, never a formula
    assert {row[header.index("events")].data_type for row in sheet.iter_rows(min_row=2)} == {"n"}


def test_spreadsheet_writers_neutralise_text_and_keep_negative_numbers(tmp_path: Path) -> None:
    data = pd.DataFrame(
        {
            "school": ["=1+2", "-Birch", "\tTab", "\rCR", "Alder", None],
            "change_pct": [-12.5, 3.0, -0.5, 0.0, 1.0, -2.0],
            "delta": [-1, 2, -3, 4, 5, -6],
        }
    )
    write_csv(data, tmp_path / "r.csv")
    with (tmp_path / "r.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["school", "change_pct", "delta"],
        ["'=1+2", "-12.5", "-1"],
        ["'-Birch", "3.0", "2"],
        ["'\tTab", "-0.5", "-3"],
        ["'\rCR", "0.0", "4"],
        ["Alder", "1.0", "5"],
        ["", "-2.0", "-6"],
    ]

    write_xlsx({"summary": data}, tmp_path / "r.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "r.xlsx")["summary"]
    assert [(c.value, c.data_type) for c in sheet["A"][1:4]] == [("=1+2", "s"), ("-Birch", "s"), ("\tTab", "s")]
    assert [c.value for c in sheet["B"][1:]] == [-12.5, 3, -0.5, 0, 1, -2]
    assert {c.data_type for c in sheet["B"][1:]} == {"n"}

    table = pa.table({"org_id": ["@x", "ok", None], "value": [-1.5, 2.0, -3.0]})
    assert neutralise_arrow(table).to_pylist() == [
        {"org_id": "'@x", "value": -1.5},
        {"org_id": "ok", "value": 2.0},
        {"org_id": None, "value": -3.0},
    ]


def export_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analytics_pipeline.cli", "export", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_org_never_leads_the_default_file_out_of_the_output_folder(
    env,
    warehouse: Warehouse,
    landing: Landing,
    tmp_path: Path,
) -> None:
    write_hostile_day(landing)
    assert run_pipeline(D1).success
    output_dir = Path(env["ANALYTICS_OUTPUT_DIR"])
    before = files_under(tmp_path) - files_under(output_dir)

    refused = export_cli(
        env,
        "fct_daily_engagement",
        "--start",
        "2025-01-01",
        "--end",
        "2025-01-01",
        "--org",
        "../../../../tmp/x/escaped",
    )
    assert refused.returncode == 2 and "has no rows" in refused.stderr and "Traceback" not in refused.stderr
    assert not output_dir.exists()  # nothing was created for a refused request
    assert not Path("/tmp/x/escaped").exists()

    written = export_cli(
        env, "fct_daily_engagement", "--start", "2025-01-01", "--end", "2025-01-01", "--org", "../../escaped"
    )
    assert written.returncode == 0, written.stderr
    [name] = files_under(output_dir / "exports")
    assert name.startswith("fct_daily_engagement_2025-01-01_2025-01-01_escaped_") and name.endswith(".csv")
    assert "/" not in name and pacsv.read_csv(output_dir / "exports" / name).column("org_id").to_pylist() == [
        "../../escaped"
    ]
    assert (
        files_under(tmp_path) - files_under(output_dir) - {"output", "output/exports", f"output/exports/{name}"}
        == before
    )

    long_org = export_cli(
        env, "fct_daily_engagement", "--start", "2025-01-01", "--end", "2025-01-01", "--org", "A" * 300
    )
    assert long_org.returncode == 2 and "has no rows" in long_org.stderr and "Traceback" not in long_org.stderr
    assert len(long_org.stderr.strip().splitlines()) == 1
    long_name = export_cli(
        env,
        "fct_daily_engagement",
        "--start",
        "2025-01-01",
        "--end",
        "2025-01-01",
        "--output",
        str(tmp_path / ("x" * 300 + ".csv")),
    )
    assert long_name.returncode == 2 and "choose another --output" in long_name.stderr
    assert len(long_name.stderr.strip().splitlines()) == 1 and "x" * 100 not in long_name.stderr


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_the_temporary_file_never_follows_a_planted_link(
    env, warehouse: Warehouse, landing: Landing, tmp_path: Path
) -> None:
    write_hostile_day(landing)
    assert run_pipeline(D1).success
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    output = tmp_path / "out" / "e.csv"
    output.parent.mkdir()
    (output.parent / ".e.csv.partial").symlink_to(victim)  # where the temporary file used to go

    assert export(warehouse, "fct_daily_engagement", D1, D1, "csv", output) == 5

    assert victim.read_text() == "precious"
    assert not output.is_symlink() and len(pacsv.read_csv(output)) == 5
    assert {p.name for p in output.parent.iterdir()} == {"e.csv", ".e.csv.partial"}  # no temporary file left
    output.unlink()
    output.symlink_to(victim)  # a link where the export goes is replaced, not written through
    assert export(warehouse, "fct_daily_engagement", D1, D1, "json", output) == 5
    assert victim.read_text() == "precious" and not output.is_symlink()
