"""Exports of marts to CSV, Parquet, XLSX or JSON: what ``?format=csv`` on a summary endpoint did.

Only allow-listed marts can be exported, the table name never reaches SQL unless it is on the list,
and the window and school are bound parameters. The file holds exactly the mart's rows and values
for the window, in the mart's column order, sorted by its grain.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from analytics_pipeline.resources.warehouse import Warehouse


class ExportError(ValueError):
    """The export cannot be made; the message says what to change."""


@dataclass(frozen=True)
class Exportable:
    table: str
    date_column: str
    grain: tuple[str, ...]
    has_org: bool = True


EXPORTABLE = {
    e.table.split(".")[1]: e
    for e in (
        Exportable("marts.fct_daily_engagement", "activity_date", ("activity_date", "org_id")),
        Exportable("marts.fct_engagement_rolling", "activity_date", ("activity_date", "org_id")),
        Exportable("marts.fct_activity_summary", "activity_date", ("activity_date", "org_id", "activity_type")),
        Exportable("marts.fct_hourly_usage", "activity_date", ("activity_hour", "activity_type"), has_org=False),
        Exportable("marts.fct_retention_cohorts", "cohort_week", ("cohort_week", "org_id", "weeks_since_first_activity")),
        Exportable("marts.fct_kpi_daily", "kpi_date", ("kpi_date",), has_org=False),
        Exportable("marts.kpi_snapshots", "period_start", ("kpi_name", "grain", "period_start"), has_org=False),
        Exportable("marts.fct_item_daily_demand", "demand_date", ("demand_date", "item_id"), has_org=False),
    )
}
FORMATS = ("csv", "parquet", "xlsx", "json")
BATCH_ROWS = 50_000


def resolve(table: str) -> Exportable:
    """The allow-listed mart for ``table`` (``fct_daily_engagement`` or ``marts.fct_daily_engagement``)."""
    name = table.strip().lower()
    name = name.removeprefix("marts.")
    if name not in EXPORTABLE:
        raise ExportError(f"{table!r} cannot be exported; choose one of: {', '.join(sorted(EXPORTABLE))}.")
    return EXPORTABLE[name]


def default_output(output_dir: Path, mart: Exportable, start: date, end: date, org: str | None, fmt: str) -> Path:
    suffix = f"_{org}" if org else ""
    name = mart.table.split(".")[1]
    return output_dir / "exports" / f"{name}_{start.isoformat()}_{end.isoformat()}{suffix}.{fmt}"


def fetch(warehouse: Warehouse, mart: Exportable, start: date, end: date, org: str | None) -> pa.Table:
    where, params = f"{mart.date_column} between ? and ?", [start, end]
    if org is not None:
        if not mart.has_org:
            raise ExportError(f"{mart.table} has no school column; leave out --org.")
        where, params = where + " and org_id = ?", [*params, org]
    return warehouse.query(f"select * from {mart.table} where {where} order by {', '.join(mart.grain)}", params)


def _write_csv(data: pa.Table, path: Path, progress: Callable[[int], None]) -> None:
    with pacsv.CSVWriter(path, data.schema) as writer:
        for batch in data.to_batches(max_chunksize=BATCH_ROWS):
            writer.write_batch(batch)
            progress(batch.num_rows)


def _write_json(data: pa.Table, path: Path, progress: Callable[[int], None]) -> None:
    frame = data.to_pandas()
    path.write_text(frame.to_json(orient="records", date_format="iso", date_unit="s", indent=1, double_precision=15))
    progress(data.num_rows)


def _write_xlsx(data: pa.Table, path: Path, progress: Callable[[int], None]) -> None:
    import pandas as pd

    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        data.to_pandas().to_excel(writer, index=False, sheet_name="export")
    progress(data.num_rows)


def _write_parquet(data: pa.Table, path: Path, progress: Callable[[int], None]) -> None:
    pq.write_table(data, path)
    progress(data.num_rows)


WRITERS = {"csv": _write_csv, "json": _write_json, "xlsx": _write_xlsx, "parquet": _write_parquet}


def export(
    warehouse: Warehouse, table: str, start: date, end: date, fmt: str, output: Path, org: str | None = None,
    progress: Callable[[int], None] = lambda rows: None,
) -> int:  # fmt: skip
    """Write the mart's rows for start..end (and one school) to ``output``; returns the row count."""
    mart = resolve(table)
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r} is not supported; choose one of: {', '.join(FORMATS)}.")
    if end < start:
        raise ExportError(f"--end {end} is before --start {start}.")
    _check_writable(output)
    data = fetch(warehouse, mart, start, end, org)
    if data.num_rows == 0:
        school = f" for school {org!r}" if org else ""
        raise ExportError(f"{mart.table} has no rows from {start} to {end}{school}; nothing was written.")
    partial = output.with_name(f".{output.name}.partial")
    WRITERS[fmt](data, partial, progress)
    partial.replace(output)  # readers never see a half-written export
    return data.num_rows


def _check_writable(output: Path) -> None:
    """Fail before querying when the file cannot be written (a directory, a missing or read-only parent)."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"Cannot create the folder for {output}: {error.strerror}; choose another --output.") from None
    if output.is_dir() or not os.access(output.parent, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise ExportError(f"Cannot write {output}; choose another --output.")
