"""Exports of marts to CSV, Parquet, XLSX or JSON: what ``?format=csv`` on a summary endpoint did.

Only allow-listed marts can be exported, the table name never reaches SQL unless it is on the list,
and the window and school are bound parameters. The file holds exactly the mart's rows and values
for the window, in the mart's column order, sorted by its grain. In CSV and XLSX, text a
spreadsheet would run as a formula is neutralised (``spreadsheets``); numbers are never touched.

The default file name is built from a sanitised ``--org``, so it stays inside
``<ANALYTICS_OUTPUT_DIR>/exports/``, and nothing is created until the rows are there to write. The
file is written to a temporary file of its own in the target folder (created exclusively, never
through an existing link) and renamed into place, so readers never see half an export.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from analytics_pipeline.lib.reporting.spreadsheets import neutralise_arrow, text_not_formulas
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.resources.warehouse_lock import Progress


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
        Exportable(
            "marts.fct_retention_cohorts", "cohort_week", ("cohort_week", "org_id", "weeks_since_first_activity")
        ),
        Exportable("marts.fct_kpi_daily", "kpi_date", ("kpi_date",), has_org=False),
        Exportable("marts.kpi_snapshots", "period_start", ("kpi_name", "grain", "period_start"), has_org=False),
        Exportable("marts.fct_item_daily_demand", "demand_date", ("demand_date", "item_id"), has_org=False),
    )
}
FORMATS = ("csv", "parquet", "xlsx", "json")
BATCH_ROWS = 50_000
# In a default file name a school id keeps these characters (no separators, no leading dot) and at
# most this many of them; a changed or shortened id gets a short hash so two schools never share a name.
_SAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_ORG_IN_NAME = 60


def resolve(table: str) -> Exportable:
    """The allow-listed mart for ``table`` (``fct_daily_engagement`` or ``marts.fct_daily_engagement``)."""
    name = table.strip().lower()
    name = name.removeprefix("marts.")
    if name not in EXPORTABLE:
        raise ExportError(f"{table!r} cannot be exported; choose one of: {', '.join(sorted(EXPORTABLE))}.")
    return EXPORTABLE[name]


def safe_name_part(value: str) -> str:
    """``value`` reduced to a piece of a file name: letters, digits, ``_`` and ``-`` only, at most
    :data:`_MAX_ORG_IN_NAME` of them, plus a hash of the original when anything was changed."""
    safe = _SAFE_NAME_CHARACTERS.sub("_", value).strip("_")[:_MAX_ORG_IN_NAME]
    if safe == value:
        return safe
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe}_{digest}" if safe else digest


def default_output(output_dir: Path, mart: Exportable, start: date, end: date, org: str | None, fmt: str) -> Path:
    """``<output_dir>/exports/<mart>_<start>_<end>[_<org>].<fmt>``; always inside ``<output_dir>/exports``."""
    suffix = f"_{safe_name_part(org)}" if org else ""
    name = mart.table.split(".")[1]
    return output_dir / "exports" / f"{name}_{start.isoformat()}_{end.isoformat()}{suffix}.{fmt}"


def fetch(
    warehouse: Warehouse, mart: Exportable, start: date, end: date, org: str | None, waiting: Progress | None = None
) -> pa.Table:
    """The rows, read as a reader of the warehouse: a running step is waited for, never disturbed."""
    where, params = f"{mart.date_column} between ? and ?", [start, end]
    if org is not None:
        if not mart.has_org:
            raise ExportError(f"{mart.table} has no school column; leave out --org.")
        where, params = where + " and org_id = ?", [*params, org]
    schema, table = mart.table.split(".")
    with warehouse.reading(progress=waiting) as session:
        exists = (
            session.query(
                "select count(*) as n from information_schema.tables where table_schema = ? and table_name = ?",
                (schema, table),
            )
            .column("n")[0]
            .as_py()
        )
        if not exists:
            raise ExportError(f"{mart.table} has not been built yet; run `analytics-pipeline backfill` first.")
        return session.query(f"select * from {mart.table} where {where} order by {', '.join(mart.grain)}", params)


def _write_csv(data: pa.Table, file: BinaryIO, progress: Callable[[int], None]) -> None:
    data = neutralise_arrow(data)
    with pacsv.CSVWriter(file, data.schema) as writer:
        for batch in data.to_batches(max_chunksize=BATCH_ROWS):
            writer.write_batch(batch)
            progress(batch.num_rows)


def _write_json(data: pa.Table, file: BinaryIO, progress: Callable[[int], None]) -> None:
    frame = data.to_pandas()
    text = frame.to_json(orient="records", date_format="iso", date_unit="s", indent=1, double_precision=15)
    file.write(text.encode("utf-8"))
    progress(data.num_rows)


def _write_xlsx(data: pa.Table, file: BinaryIO, progress: Callable[[int], None]) -> None:
    import pandas as pd

    with pd.ExcelWriter(file, engine="openpyxl") as writer:
        data.to_pandas().to_excel(writer, index=False, sheet_name="export")
        text_not_formulas(writer.book)
    progress(data.num_rows)


def _write_parquet(data: pa.Table, file: BinaryIO, progress: Callable[[int], None]) -> None:
    pq.write_table(data, file)
    progress(data.num_rows)


WRITERS = {"csv": _write_csv, "json": _write_json, "xlsx": _write_xlsx, "parquet": _write_parquet}


def export(
    warehouse: Warehouse,
    table: str,
    start: date,
    end: date,
    fmt: str,
    output: Path,
    org: str | None = None,
    progress: Callable[[int], None] = lambda rows: None,
    waiting: Progress | None = None,
) -> int:
    """Write the mart's rows for start..end (and one school) to ``output``; returns the row count."""
    mart = resolve(table)
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r} is not supported; choose one of: {', '.join(FORMATS)}.")
    if end < start:
        raise ExportError(f"--end {end} is before --start {start}.")
    _check_writable(output)
    data = fetch(warehouse, mart, start, end, org, waiting)
    if data.num_rows == 0:
        school = f" for school {_shortened(org)!r}" if org else ""
        raise ExportError(f"{mart.table} has no rows from {start} to {end}{school}; nothing was written.")
    try:
        _write_atomically(output, lambda file: WRITERS[fmt](data, file, progress))
    except OSError as error:
        raise ExportError(f"Cannot write {output}: {error.strerror or error}; choose another --output.") from None
    return data.num_rows


def _shortened(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _write_atomically(output: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a new temporary file beside ``output`` and rename it into place.

    The temporary file is created exclusively (``O_CREAT | O_EXCL`` under a random name) and written
    through its own descriptor, so a file or link planted where it would go is never followed or
    overwritten; the rename replaces ``output`` itself, not what a link there points to."""
    output.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name[:100]}.", suffix=".partial")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(descriptor, 0o666 & ~umask)  # an export is an ordinary file, not mkstemp's private one
        with os.fdopen(descriptor, "wb") as file:
            write(file)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable(output: Path) -> None:
    """Fail before querying, and without creating anything, when the file cannot be written (a
    directory, a parent that is a file or read-only, a name too long for the file system)."""
    try:
        if output.is_dir():
            raise ExportError(f"Cannot write {output}: it is a folder; choose another --output.")
        ancestor = _existing_ancestor(output.parent)
        if not ancestor.is_dir():
            raise ExportError(f"Cannot create the folder for {output}: {ancestor} is a file; choose another --output.")
        limit = os.pathconf(ancestor, "PC_NAME_MAX")
    except OSError as error:
        raise ExportError(
            f"Cannot write {_shortened(str(output))}: {error.strerror or error}; choose another --output."
        ) from None
    too_long = next((part for part in output.parts if len(os.fsencode(part)) > limit), None)
    if too_long is not None:
        raise ExportError(
            f"Cannot write {_shortened(str(output))}: a name in the path is longer than {limit} bytes; "
            "choose another --output."
        )
    if not os.access(ancestor, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise ExportError(f"Cannot write {output}; choose another --output.")
