"""Load partitions of one dataset from the landing zone into ``raw``.

The write replaces the partitions' rows, their rejected records and their file ledger in one
transaction (per chunk of days, for a range), so a partition is always either the old version or
the new one, and re-running it changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from analytics_pipeline.lib.ingestion.datasets import INGESTED_FILES, REJECTED_RECORDS, Dataset
from analytics_pipeline.lib.ingestion.landing_zone import LandingFile, LandingZone
from analytics_pipeline.lib.ingestion.readers import SKIPPED, RecordBatches, UnreadableFile, read_records
from analytics_pipeline.lib.ingestion.validation import Checker
from analytics_pipeline.lib.log_context import get_logger
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


FILE_REJECTS = "_file_rejects"  # the scratch table of whole-file rejects
# Days are written in chunks of whole days holding about this many lines read: one transaction per
# chunk, and the scratch tables hold one chunk at a time (a day larger than this is a chunk alone).
CHUNK_LINES = 1_000_000


def load_partition(
    warehouse: Warehouse, landing: LandingZone | Path | str, dataset: Dataset, partition: date | None
) -> LoadReport:
    """Read, validate and write one partition (``partition=None`` for a dimension snapshot)."""
    [report] = load_partitions(warehouse, landing, dataset, [partition])
    return report


def load_partitions(
    warehouse: Warehouse, landing: LandingZone | Path | str, dataset: Dataset, partitions: Sequence[date | None]
) -> list[LoadReport]:
    """Read, validate and write a range of partitions; one report per distinct partition, in order.

    Every partition ends exactly as :func:`load_partition` would leave it, but the range shares one
    scratch connection, one validation pass and one write per chunk of days (:data:`CHUNK_LINES`),
    so a day costs what its data costs. A chunk's rows, rejected records and file ledger are
    replaced in one transaction: a failure leaves that chunk's days as they were.
    """
    zone = LandingZone.at(landing)
    if not zone.exists():
        raise LandingZoneMissing(
            f"The landing directory {zone.url} does not exist; set ANALYTICS_LANDING_DIR "
            "or create sample data with `analytics-pipeline generate`."
        )
    reports: list[LoadReport] = []
    with warehouse.scratch() as connection:
        chunk = _Chunk(warehouse, connection, dataset)
        for partition in dict.fromkeys(partitions):  # a day asked for twice is read once
            report = chunk.read(zone, partition)
            reports.append(report)
            if chunk.lines >= CHUNK_LINES:
                chunk.write()
        chunk.write()
    return reports


class _Chunk:
    """The days read since the last write: their records in the checker (or waiting in the
    batches), their whole-file rejects in :data:`FILE_REJECTS`, their reports waiting for the
    counts :meth:`write` settles."""

    def __init__(self, warehouse: Warehouse, connection: duckdb.DuckDBPyConnection, dataset: Dataset):
        self.warehouse, self.connection, self.dataset = warehouse, connection, dataset
        self.checker = Checker(dataset, connection)
        self.batches = RecordBatches(connection, dataset.field_names, self.checker.write)
        connection.execute(
            f"create temp table {FILE_REJECTS} (file varchar, partition_date date, reason varchar, raw_text varchar)"
        )
        self.reports: list[LoadReport] = []
        self.files: dict[str, tuple[FileReport, LandingFile, date | None]] = {}  # the chunk's files read

    @property
    def lines(self) -> int:
        """Records read since the last write."""
        return self.batches.records

    def read(self, zone: LandingZone, partition: date | None) -> LoadReport:
        """Read every file of one partition's folder (its records are checked as batches fill)."""
        started = time.perf_counter()
        report = LoadReport(dataset=self.dataset.name, partition=partition)
        self.reports.append(report)
        for landing_file in zone.entries(zone.folder(self.dataset.name, partition)):
            file_report = FileReport(landing_file.relative, landing_file.size_bytes, landing_file.modified_at)
            report.files.append(file_report)
            if landing_file.skipped:
                file_report.file_error, file_report.skipped = SKIPPED + landing_file.skipped, True
                log.info(f"skipped {landing_file.relative}: {landing_file.skipped}")
                continue
            self.files[landing_file.relative] = (file_report, landing_file, partition)
            try:
                read_records(landing_file, partition, self.batches)
            except UnreadableFile as error:
                self._reject_file(landing_file.relative, str(error))
        report.seconds = time.perf_counter() - started
        return report

    def _reject_file(self, file: str, reason: str) -> None:
        """Drop whatever was read of ``file`` and reject it whole."""
        file_report, landing_file, partition = self.files[file]
        self.batches.discard(file)
        self.checker.discard(file)
        file_report.file_error = reason
        self.connection.execute(
            f"insert into {FILE_REJECTS} values (?, ?, ?, ?)", [file, partition, reason, _file_head(landing_file)]
        )
        log.warning(f"rejected the whole file {file}: {reason}")

    def write(self) -> None:
        """Settle duplicates and counts of the chunk's days, replace them in the warehouse, start afresh."""
        if not self.reports:
            return
        started = time.perf_counter()
        dataset, connection, checker = self.dataset, self.connection, self.checker
        self.batches.flush()
        for file, reason in self.batches.failed.items():
            self._reject_file(file, reason)
        loaded_at = datetime.now(UTC).replace(tzinfo=None)
        result = checker.finish()
        for report in self.reports:
            for file_report in report.files:
                for name, value in result.per_file.get(file_report.file, {}).items():
                    setattr(file_report, name, value)
        rejected = (
            f"select partition_date, file, line_no, reason, raw_text from ({checker.rejected_query()}) "
            f"union all select partition_date, file, null, reason, raw_text from {FILE_REJECTS}"
        )
        _top_reasons(connection, rejected, self.reports)

        days = [report.partition for report in self.reports]
        partition_filter = {"_partition_date": days} if dataset.daily else {}
        ledger_filter = {"dataset": dataset.name} | ({"partition_date": days} if dataset.daily else {})
        self.warehouse.replace_rows(
            [
                # in the order they were read (day, file name, line): sorting a chunk costs more than
                # writing it, and nothing reads the raw tables in their stored order
                (
                    dataset.table,
                    partition_filter,
                    _with_constants(
                        connection, checker.accepted_query(), None, {"_loaded_at": (loaded_at, "timestamp")}
                    ),
                ),
                (
                    REJECTED_RECORDS,
                    ledger_filter,
                    _with_constants(
                        connection,
                        rejected,
                        "file, line_no",
                        {"dataset": (dataset.name, "varchar"), "rejected_at": (loaded_at, "timestamp")},
                    ),
                ),
                (INGESTED_FILES, ledger_filter, _ledger_rows(self.reports, loaded_at)),
            ]
        )
        _share_seconds(self.reports, time.perf_counter() - started)
        checker.reset()
        connection.execute(f"delete from {FILE_REJECTS}")
        self.batches.failed.clear()
        self.batches.records = 0
        self.reports, self.files = [], {}


# how many reasons a day's report names (the most frequent first)
TOP_REASONS = 10


def _top_reasons(connection: duckdb.DuckDBPyConnection, rejected: str, reports: list[LoadReport]) -> None:
    """Each report's most frequent reject reasons, most frequent first (ties by reason)."""
    counts = connection.execute(
        f"select partition_date, reason, count(*) as n from ({rejected}) group by partition_date, reason "
        "qualify row_number() over (partition by partition_date order by n desc, reason) <= ? "
        "order by partition_date, n desc, reason",
        [TOP_REASONS],
    ).fetchall()
    by_partition: dict[date | None, list[tuple[str, int]]] = {}
    for partition, reason, count in counts:
        by_partition.setdefault(partition, []).append((reason, count))
    for report in reports:
        report.top_reasons = by_partition.get(report.partition, [])


def _share_seconds(reports: list[LoadReport], seconds: float) -> None:
    """Add the time spent on the chunk as a whole to its days, in proportion to their lines read."""
    lines = sum(report.lines_read for report in reports)
    for report in reports:
        report.seconds += seconds * (report.lines_read / lines if lines else 1 / len(reports))


def _with_constants(
    connection: duckdb.DuckDBPyConnection, query: str, order: str | None, constants: dict[str, tuple[object, str]]
) -> ScratchQuery:
    """``query``'s rows (in ``order``, if given) with the ``constants`` (name: (value, SQL type)) as extra columns."""
    extra = "".join(f", ?::{sql_type} as {name}" for name, (_, sql_type) in constants.items())
    params = tuple(value for value, _ in constants.values())
    ordered = f" order by {order}" if order else ""
    return ScratchQuery(connection, f"select *{extra} from ({query}){ordered}", params)


def _file_head(landing_file: LandingFile) -> str:
    """The first bytes of a rejected file, as text; nothing of a file that was refused unopened."""
    if landing_file.refused:
        return ""
    with landing_file.open() as stream:
        head = stream.read(200)
    return head.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _ledger_rows(reports: list[LoadReport], at: datetime) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "dataset": report.dataset,
                "partition_date": report.partition,
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
            for report in reports
            for f in report.files
        ],
        schema=pa.schema(
            [
                ("dataset", pa.string()),
                ("partition_date", pa.date32()),
                ("file", pa.string()),
                ("size_bytes", pa.int64()),
                ("modified_at", pa.timestamp("us")),
                ("lines_read", pa.int64()),
                ("rows_loaded", pa.int64()),
                ("rows_rejected", pa.int64()),
                ("duplicates_dropped", pa.int64()),
                ("file_error", pa.string()),
                ("loaded_at", pa.timestamp("us")),
            ]
        ),
    )
