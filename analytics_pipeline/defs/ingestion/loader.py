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
from analytics_pipeline.defs.ingestion.readers import (
    SKIPPED,
    LandingFile,
    UnreadableFile,
    list_files,
    read_records,
)
from analytics_pipeline.defs.ingestion.validation import Checker
from analytics_pipeline.defs.operations.log_context import get_logger
from analytics_pipeline.resources.warehouse import ScratchQuery, Warehouse

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
    skipped: bool = False  # not read on purpose (file_error says why): not a rejected file


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
    def files_skipped(self) -> int:
        return sum(1 for f in self.files if f.skipped)

    @property
    def files_rejected(self) -> int:
        return sum(1 for f in self.files if f.file_error and not f.skipped)

    @property
    def reject_rate(self) -> float:
        """Share of lines read that were rejected; an unreadable file counts as fully rejected."""
        lines = self.lines_read + self.files_rejected
        return (self.rows_rejected + self.files_rejected) / lines if lines else 0.0


def landing_folder(landing_root: Path, dataset: Dataset, partition: date | None) -> Path:
    folder = landing_root / dataset.name
    return folder / f"date={partition.isoformat()}" if partition is not None else folder


FILE_REJECTS = "_file_rejects"  # the scratch table of whole-file rejects


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
    with warehouse.scratch() as connection:
        checker = Checker(dataset, partition, connection)
        connection.execute(f"create temp table {FILE_REJECTS} (file varchar, reason varchar, raw_text varchar)")
        for landing_file in list_files(landing_folder(landing_root, dataset, partition), landing_root):
            file_report = FileReport(landing_file.relative, landing_file.size_bytes, landing_file.modified_at)
            report.files.append(file_report)
            if landing_file.skipped:
                file_report.file_error, file_report.skipped = SKIPPED + landing_file.skipped, True
                log.info(f"skipped {landing_file.relative}: {landing_file.skipped}")
                continue
            try:
                read_records(landing_file, dataset.field_names, connection, checker.write)
            except UnreadableFile as error:
                checker.discard(landing_file.relative)
                file_report.file_error = str(error)
                connection.execute(
                    f"insert into {FILE_REJECTS} values (?, ?, ?)",
                    [landing_file.relative, str(error), _file_head(landing_file)],
                )
                log.warning(f"rejected the whole file {landing_file.relative}: {error}")
        result = checker.finish()
        for file_report in report.files:
            for name, value in result.per_file.get(file_report.file, {}).items():
                setattr(file_report, name, value)
        rejected = (
            f"select file, line_no, reason, raw_text from ({checker.rejected_query()}) "
            f"union all select file, null, reason, raw_text from {FILE_REJECTS}"
        )
        report.top_reasons = connection.execute(
            f"select reason, count(*) as n from ({rejected}) group by reason order by n desc, reason limit 10"
        ).fetchall()

        partition_filter = {"_partition_date": partition} if dataset.daily else {}
        ledger_filter = {"dataset": dataset.name} | ({"partition_date": partition} if dataset.daily else {})
        warehouse.replace_rows(
            [
                (dataset.table, partition_filter, _with_constants(
                    connection, checker.accepted_query(), "_source_file, _source_line",
                    {"_partition_date": (partition, "date"), "_loaded_at": (loaded_at, "timestamp")})),
                (REJECTED_RECORDS, ledger_filter, _with_constants(
                    connection, rejected, "file, line_no",
                    {"dataset": (dataset.name, "varchar"), "partition_date": (partition, "date"),
                     "rejected_at": (loaded_at, "timestamp")})),
                (INGESTED_FILES, ledger_filter, _ledger_rows(report, partition, loaded_at)),
            ]
        )  # fmt: skip
    report.seconds = time.perf_counter() - started
    return report


def _with_constants(
    connection: duckdb.DuckDBPyConnection, query: str, order: str, constants: dict[str, tuple[object, str]]
) -> ScratchQuery:
    """``query``'s rows in ``order`` with the ``constants`` (name: (value, SQL type)) as extra columns."""
    extra = "".join(f", ?::{sql_type} as {name}" for name, (_, sql_type) in constants.items())
    params = tuple(value for value, _ in constants.values())
    return ScratchQuery(connection, f"select *{extra} from ({query}) order by {order}", params)


def _file_head(landing_file: LandingFile) -> str:
    """The first bytes of a rejected file, as text; nothing of a file that was refused unopened."""
    if landing_file.refused:
        return ""
    with landing_file.path.open("rb") as stream:
        head = stream.read(200)
    return head.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


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
