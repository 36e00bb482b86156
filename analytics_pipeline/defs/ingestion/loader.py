"""Load one partition of one dataset from the landing zone into ``raw``.

The write replaces the partition's rows, its rejected records and its file ledger in one
transaction, so a partition is always either the old version or the new one, and re-running it
changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from analytics_pipeline.defs.ingestion.datasets import INGESTED_FILES, REJECTED_RECORDS, Dataset
from analytics_pipeline.defs.ingestion.readers import LandingFile, UnreadableFile, list_files, read_records
from analytics_pipeline.defs.ingestion.validation import validate
from analytics_pipeline.defs.operations.log_context import get_logger
from analytics_pipeline.resources.warehouse import Warehouse

log = get_logger("analytics_pipeline.ingestion")


class LandingZoneMissing(FileNotFoundError):
    """The landing root does not exist: nothing can be loaded and guessing would hide a typo."""


@dataclass
class FileReport:
    file: str
    size_bytes: int
    modified_at: datetime
    lines_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    duplicates_dropped: int = 0
    file_error: str | None = None


@dataclass
class LoadReport:
    dataset: str
    partition: date | None
    files: list[FileReport] = field(default_factory=list)
    seconds: float = 0.0
    top_reasons: list[tuple[str, int]] = field(default_factory=list)

    @property
    def lines_read(self) -> int:
        return sum(f.lines_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def duplicates_dropped(self) -> int:
        return sum(f.duplicates_dropped for f in self.files)

    @property
    def files_rejected(self) -> int:
        return sum(1 for f in self.files if f.file_error)

    @property
    def reject_rate(self) -> float:
        """Share of lines read that were rejected; an unreadable file counts as fully rejected."""
        lines = self.lines_read + self.files_rejected
        return (self.rows_rejected + self.files_rejected) / lines if lines else 0.0


def landing_folder(landing_root: Path, dataset: Dataset, partition: date | None) -> Path:
    folder = landing_root / dataset.name
    return folder / f"date={partition.isoformat()}" if partition is not None else folder


def _validation_connection() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("set TimeZone = 'UTC'")
    return connection


def load_partition(
    warehouse: Warehouse, landing_root: Path, dataset: Dataset, partition: date | None
) -> LoadReport:
    """Read, validate and write one partition (``partition=None`` for a dimension snapshot)."""
    if not landing_root.is_dir():
        raise LandingZoneMissing(
            f"The landing directory {landing_root} does not exist; set ANALYTICS_LANDING_DIR "
            "or create sample data with `analytics-pipeline generate`."
        )
    started = time.perf_counter()
    report = LoadReport(dataset=dataset.name, partition=partition)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    connection = _validation_connection()
    try:
        record_tables, file_rejects = [], []
        files = list_files(landing_folder(landing_root, dataset, partition), landing_root)
        for landing_file in files:
            file_report = FileReport(landing_file.relative, landing_file.size_bytes, landing_file.modified_at)
            report.files.append(file_report)
            try:
                records = read_records(landing_file, dataset.field_names, connection)
            except UnreadableFile as error:
                file_report.file_error = str(error)
                file_rejects.append(_whole_file_reject(landing_file, str(error)))
                log.warning(f"rejected the whole file {landing_file.relative}: {error}")
                continue
            record_tables.append(
                records.append_column("_file", pa.array([landing_file.relative] * records.num_rows, pa.string()))
            )
        records = _concat(record_tables) if record_tables else _no_records(dataset)
        result = validate(records, dataset, partition, connection)
        del records, record_tables  # the raw records (the largest thing held) are not needed past here
        for file_report in report.files:
            for name, value in result.per_file.get(file_report.file, {}).items():
                setattr(file_report, name, value)
        accepted = result.accepted
        rejected = _with_file_rejects(result.rejected, file_rejects)
        report.top_reasons = _top_reasons(rejected, connection)
    finally:
        connection.close()

    partition_filter = {"_partition_date": partition} if dataset.daily else {}
    ledger_filter = {"dataset": dataset.name}
    if dataset.daily:
        accepted = accepted.append_column("_partition_date", pa.array([partition] * accepted.num_rows, pa.date32()))
        ledger_filter["partition_date"] = partition
    accepted = accepted.append_column("_loaded_at", _constant(loaded_at, accepted.num_rows))
    warehouse.replace_rows(
        [
            (dataset.table, partition_filter, accepted),
            (REJECTED_RECORDS, ledger_filter, _reject_rows(rejected, dataset, partition, loaded_at)),
            (INGESTED_FILES, ledger_filter, _ledger_rows(report, partition, loaded_at)),
        ]
    )
    report.seconds = time.perf_counter() - started
    return report


def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table from every file's records; a column missing from a file's format is null there."""
    return pa.concat_tables(tables, promote_options="permissive")


def _no_records(dataset: Dataset) -> pa.Table:
    """The reader shape with no rows: a partition without readable files still replaces its rows."""
    names = ["_raw", "_error", *dataset.field_names, "_file"]
    return pa.table({"_line": pa.array([], pa.int64()), **{name: pa.array([], pa.string()) for name in names}})


def _constant(value: object, rows: int) -> pa.Array:
    return pa.array([value] * rows)


def _whole_file_reject(landing_file: LandingFile, reason: str) -> dict[str, object]:
    head = landing_file.path.read_bytes()[:200].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return {"file": landing_file.relative, "line_no": None, "reason": reason, "raw_text": head}


def _with_file_rejects(rejected: pa.Table, file_rejects: list[dict[str, object]]) -> pa.Table:
    if not file_rejects:
        return rejected
    extra = pa.Table.from_pylist(file_rejects, schema=rejected.schema)
    return pa.concat_tables([rejected, extra], promote_options="permissive")


def _top_reasons(rejected: pa.Table, connection: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    if rejected.num_rows == 0:
        return []
    connection.register("_rejected", rejected)
    try:
        return connection.execute(
            "select reason, count(*) as n from _rejected group by reason order by n desc, reason limit 10"
        ).fetchall()
    finally:
        connection.unregister("_rejected")


def _reject_rows(rejected: pa.Table, dataset: Dataset, partition: date | None, at: datetime) -> pa.Table:
    rows = rejected.num_rows
    return pa.table(
        {
            "dataset": pa.array([dataset.name] * rows, pa.string()),
            "partition_date": pa.array([partition] * rows, pa.date32()),
            "file": rejected.column("file"),
            "line_no": rejected.column("line_no"),
            "reason": rejected.column("reason"),
            "raw_text": rejected.column("raw_text"),
            "rejected_at": _constant(at, rows),
        }
    )


def _ledger_rows(report: LoadReport, partition: date | None, at: datetime) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "dataset": report.dataset,
                "partition_date": partition,
                "file": f.file,
                "size_bytes": f.size_bytes,
                "modified_at": f.modified_at,
                "lines_read": f.lines_read,
                "rows_loaded": f.rows_loaded,
                "rows_rejected": f.rows_rejected,
                "duplicates_dropped": f.duplicates_dropped,
                "file_error": f.file_error,
                "loaded_at": at,
            }
            for f in report.files
        ],
        schema=pa.schema(
            [("dataset", pa.string()), ("partition_date", pa.date32()), ("file", pa.string()),
             ("size_bytes", pa.int64()), ("modified_at", pa.timestamp("us")), ("lines_read", pa.int64()),
             ("rows_loaded", pa.int64()), ("rows_rejected", pa.int64()), ("duplicates_dropped", pa.int64()),
             ("file_error", pa.string()), ("loaded_at", pa.timestamp("us"))]
        ),  # fmt: skip
    )
