"""Loading a range of days (``load_partitions``) leaves exactly what loading its days one by one
leaves, on DuckDB and on PostgreSQL.

The landing zone of these tests, with every outcome worked out by hand:

* 2025-01-01: ``a.jsonl`` (e1, an invalid line, e2), ``b.jsonl`` (e1 again: a duplicate across
  files of the day, dropped from b; e3) and a ``_SUCCESS`` marker (skipped, named in the ledger);
* 2025-01-02: loaded once with a file, then its folder is removed: a day without files, cleared;
* 2025-01-03: ``bad.jsonl.gz`` (not gzip: rejected whole) and ``c.jsonl`` (e1 again, which is no
  duplicate on another day; e4, timestamped the next day; e5, whose offset puts it on this day);
* 2025-01-04: ``d.csv`` (e6, e6 again in the same file, e7 without an activity type).

A range is written in chunks of days (``CHUNK_LINES``), one transaction each: the chunking
changes nothing, and a failed chunk keeps its days' previous rows while earlier chunks stay written.
The records of many files are checked in one statement; when it fails on one file's content, that
file alone is rejected whole.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import dagster as dg
import duckdb
import pytest
from conftest import Landing, event
from test_ingestion import ACCOUNTING, SecondInsertFails, materialize_events, metadata_values, select, snapshot

from analytics_pipeline.lib.ingestion import loader, validation
from analytics_pipeline.lib.ingestion.datasets import ACTIVITY_EVENTS
from analytics_pipeline.lib.ingestion.loader import LoadReport, load_partition, load_partitions
from analytics_pipeline.resources.warehouse import Warehouse

D1, D2, D3, D4 = date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 4)
DAYS = [D1, D2, D3, D4]
GZIP_ERROR = "not a valid gzip file (Not a gzipped file (b'no'))"
OUTSIDE = "occurred_at '2025-01-04T01:00:00Z' is outside the folder date 2025-01-03 (UTC)"
MISSING_TYPE = "missing required field: activity_type"
SKIPPED_MARKER = "skipped: marker or temporary file (name starts with '_')"


def folder(day: date) -> str:
    return f"activity_events/date={day.isoformat()}"


def write_days(landing: Landing) -> None:
    landing.jsonl(
        "activity_events",
        D1,
        "a.jsonl",
        [
            event("e1", "2025-01-01T08:00:00Z", "u1"),
            "oops",
            event("e2", "2025-01-01T09:00:00Z", "u2"),
        ],
    )
    landing.jsonl(
        "activity_events",
        D1,
        "b.jsonl",
        [
            event("e1", "2025-01-01T10:00:00Z", "u9"),
            event("e3", "2025-01-01T23:59:59Z", "u3"),
        ],
    )
    landing.raw("activity_events", D1, "_SUCCESS", b"")
    landing.raw("activity_events", D3, "bad.jsonl.gz", b"not gzip")
    landing.jsonl(
        "activity_events",
        D3,
        "c.jsonl",
        [
            event("e1", "2025-01-03T08:00:00Z", "u1"),
            event("e4", "2025-01-04T01:00:00Z", "u4"),
            event("e5", "2025-01-02T23:30:00-02:00", "u5"),  # = 2025-01-03T01:30Z
        ],
    )
    landing.csv(
        "activity_events",
        D4,
        "d.csv",
        ["event_id", "occurred_at", "user_id", "org_id", "activity_type"],
        [
            ["e6", "2025-01-04T12:00:00Z", "u6", "org-1", "login"],
            ["e6", "2025-01-04T13:00:00Z", "u6", "org-1", "logout"],
            ["e7", "2025-01-04T14:00:00Z", "u7", "org-1", ""],
        ],
    )


def load_an_older_version_of_d2(warehouse: Warehouse, landing: Landing) -> None:
    """D2 had a file once and was loaded; its folder is gone now."""
    landing.jsonl("activity_events", D2, "old.jsonl", [event("old1", "2025-01-02T10:00:00Z", "u1"), "{"])
    load_partition(warehouse, landing.root, ACTIVITY_EVENTS, D2)
    shutil.rmtree(landing.folder("activity_events", D2))


EXPECTED_EVENTS = [  # (event_id, occurred_at UTC, user_id, _partition_date, _source_file, _source_line)
    ("e1", datetime(2025, 1, 1, 8), "u1", D1, f"{folder(D1)}/a.jsonl", 1),
    ("e2", datetime(2025, 1, 1, 9), "u2", D1, f"{folder(D1)}/a.jsonl", 3),
    ("e3", datetime(2025, 1, 1, 23, 59, 59), "u3", D1, f"{folder(D1)}/b.jsonl", 2),
    ("e1", datetime(2025, 1, 3, 8), "u1", D3, f"{folder(D3)}/c.jsonl", 1),
    ("e5", datetime(2025, 1, 3, 1, 30), "u5", D3, f"{folder(D3)}/c.jsonl", 3),
    ("e6", datetime(2025, 1, 4, 12), "u6", D4, f"{folder(D4)}/d.csv", 2),
]
EXPECTED_REJECTS = [  # (partition_date, file, line_no, reason, raw_text)
    (D1, f"{folder(D1)}/a.jsonl", 2, "invalid JSON", "oops"),
    (D3, f"{folder(D3)}/bad.jsonl.gz", None, GZIP_ERROR, "not gzip"),
    (D3, f"{folder(D3)}/c.jsonl", 2, OUTSIDE, None),  # raw text: the JSON line, checked apart
    (D4, f"{folder(D4)}/d.csv", 4, MISSING_TYPE, "e7,2025-01-04T14:00:00Z,u7,org-1,"),
]
EXPECTED_LEDGER = [  # (partition_date, file, lines_read, rows_loaded, rows_rejected, duplicates_dropped, file_error)
    (D1, f"{folder(D1)}/_SUCCESS", 0, 0, 0, 0, SKIPPED_MARKER),
    (D1, f"{folder(D1)}/a.jsonl", 3, 2, 1, 0, None),
    (D1, f"{folder(D1)}/b.jsonl", 2, 1, 0, 1, None),
    (D3, f"{folder(D3)}/bad.jsonl.gz", 0, 0, 0, 0, GZIP_ERROR),
    (D3, f"{folder(D3)}/c.jsonl", 3, 2, 1, 0, None),
    (D4, f"{folder(D4)}/d.csv", 3, 1, 1, 1, None),
]
EXPECTED_REPORTS = {  # day: (lines_read, rows_loaded, rows_rejected, duplicates_dropped, files, files_skipped,
    #                       files_rejected, top_reasons)
    D1: (5, 3, 1, 1, 2, 1, 0, [("invalid JSON", 1)]),
    D2: (0, 0, 0, 0, 0, 0, 0, []),
    D3: (3, 2, 1, 0, 2, 0, 1, [(GZIP_ERROR, 1), (OUTSIDE, 1)]),
    D4: (3, 1, 1, 1, 1, 0, 0, [(MISSING_TYPE, 1)]),
}


def events(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    return select(
        warehouse,
        "select event_id, occurred_at, user_id, _partition_date, _source_file, _source_line "
        "from raw.activity_events order by _partition_date, event_id",
    )


def rejects(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    rows = select(
        warehouse,
        "select partition_date, file, line_no, reason, raw_text from raw.rejected_records "
        "where dataset = 'activity_events'",
    )
    return sorted(rows, key=lambda row: (row[0], row[1], row[2] or 0))


def ledger(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    rows = select(
        warehouse,
        "select partition_date, file, lines_read, rows_loaded, rows_rejected, duplicates_dropped, file_error "
        "from raw.ingested_files where dataset = 'activity_events'",
    )
    assert all(row[2] == row[3] + row[4] + row[5] for row in rows)  # the accounting of SPEC §4
    return sorted(rows, key=lambda row: (row[0], row[1]))


def summary(report: LoadReport) -> tuple[Any, ...]:
    return (
        report.lines_read,
        report.rows_loaded,
        report.rows_rejected,
        report.duplicates_dropped,
        len(report.files) - report.files_skipped,
        report.files_skipped,
        report.files_rejected,
        report.top_reasons,
    )


def assert_expected(warehouse: Warehouse, reports: list[LoadReport]) -> None:
    assert events(warehouse) == EXPECTED_EVENTS
    found_rejects = rejects(warehouse)
    assert [row[:4] for row in found_rejects] == [row[:4] for row in EXPECTED_REJECTS]
    assert [row[4] for row in found_rejects if row[1].endswith(("a.jsonl", "gz", "d.csv"))] == [
        "oops",
        "not gzip",
        "e7,2025-01-04T14:00:00Z,u7,org-1,",
    ]
    assert '"event_id": "e4"' in found_rejects[2][4]
    assert ledger(warehouse) == EXPECTED_LEDGER
    assert {report.partition: summary(report) for report in reports} == EXPECTED_REPORTS


def clear(warehouse: Warehouse) -> None:
    for table in ("raw.activity_events", "raw.rejected_records", "raw.ingested_files"):
        warehouse.execute(f"delete from {table}")


@pytest.fixture
def days_written(warehouse: Warehouse, landing: Landing) -> Landing:
    write_days(landing)
    load_an_older_version_of_d2(warehouse, landing)
    return landing


def test_a_range_loads_exactly_what_its_days_load_one_by_one(warehouse: Warehouse, days_written: Landing) -> None:
    one_by_one = [load_partition(warehouse, days_written.root, ACTIVITY_EVENTS, day) for day in DAYS]
    assert_expected(warehouse, one_by_one)
    by_day = snapshot(warehouse, ACTIVITY_EVENTS)

    clear(warehouse)
    load_an_older_version_of_d2(warehouse, days_written)  # D2 has old rows again, to be cleared by the range
    as_range = load_partitions(warehouse, days_written.root, ACTIVITY_EVENTS, DAYS)

    assert [report.partition for report in as_range] == DAYS
    assert_expected(warehouse, as_range)
    assert snapshot(warehouse, ACTIVITY_EVENTS) == by_day


def test_loading_a_range_again_changes_nothing(warehouse: Warehouse, days_written: Landing) -> None:
    load_partitions(warehouse, days_written.root, ACTIVITY_EVENTS, DAYS)
    first = snapshot(warehouse, ACTIVITY_EVENTS)
    again = load_partitions(warehouse, days_written.root, ACTIVITY_EVENTS, DAYS)

    assert snapshot(warehouse, ACTIVITY_EVENTS) == first
    assert_expected(warehouse, again)


def test_days_out_of_order_or_asked_twice_are_read_once_each(warehouse: Warehouse, days_written: Landing) -> None:
    reports = load_partitions(warehouse, days_written.root, ACTIVITY_EVENTS, [D4, D1, D3, D1, D2, D4])

    assert [report.partition for report in reports] == [D4, D1, D3, D2]
    assert_expected(warehouse, reports)


# CHUNK_LINES = 1: a chunk as soon as a day has lines (D1 | D2 + D3 | D4); 4: D1 | D2 + D3 + D4
@pytest.mark.parametrize("chunk_lines", [1, 4, 10**9])
def test_the_chunking_of_a_range_changes_nothing(
    warehouse: Warehouse, days_written: Landing, monkeypatch: pytest.MonkeyPatch, chunk_lines: int
) -> None:
    monkeypatch.setattr(loader, "CHUNK_LINES", chunk_lines)
    reports = load_partitions(warehouse, days_written.root, ACTIVITY_EVENTS, DAYS)

    assert_expected(warehouse, reports)


def test_a_failed_chunk_keeps_its_days_and_earlier_chunks_stay_written(
    warehouse: Warehouse, days_written: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader, "CHUNK_LINES", 1)  # chunks: D1 | D2 + D3 | D4
    load_partitions(warehouse, days_written.root, ACTIVITY_EVENTS, DAYS)
    days_written.jsonl("activity_events", D1, "late.jsonl", [event("e8", "2025-01-01T12:00:00Z", "u8")])
    days_written.jsonl("activity_events", D3, "late.jsonl", [event("e9", "2025-01-03T12:00:00Z", "u9")])
    days_written.jsonl("activity_events", D4, "late.jsonl", [event("e10", "2025-01-04T12:00:00Z", "u10")])

    original, transactions = Warehouse.transaction, []

    @contextmanager
    def second_transaction_fails(self: Warehouse, scratch: Any = None) -> Iterator[Any]:
        transactions.append(scratch)
        with original(self, scratch) as session:
            yield SecondInsertFails(session) if len(transactions) == 2 else session

    # the second chunk (D2 + D3) fails after replacing its rows, while writing its rejected records
    with monkeypatch.context() as patch:
        patch.setattr(Warehouse, "transaction", second_transaction_fails)
        with pytest.raises(RuntimeError, match="simulated failure while writing raw.rejected_records"):
            load_partitions(warehouse, days_written.root, ACTIVITY_EVENTS, DAYS)

    written = events(warehouse)
    assert [row[0] for row in written if row[3] == D1] == ["e1", "e2", "e3", "e8"]  # the first chunk committed
    assert [row[:3] for row in written if row[3] != D1] == [row[:3] for row in EXPECTED_EVENTS if row[3] != D1]
    assert [row[:4] for row in rejects(warehouse) if row[0] != D1] == [
        row[:4] for row in EXPECTED_REJECTS if row[0] != D1
    ]
    assert [row for row in ledger(warehouse) if row[0] != D1] == [row for row in EXPECTED_LEDGER if row[0] != D1]
    assert f"{folder(D1)}/late.jsonl" in [row[1] for row in ledger(warehouse)]


def test_a_range_materialization_reports_each_day_as_its_own_run_would(env, days_written: Landing) -> None:
    def observed(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
        assert result.success
        return {
            m.materialization.partition: metadata_values(m.materialization.metadata, ACCOUNTING + ("files_skipped",))
            for m in result.get_asset_materialization_events()
        }

    as_range = observed(
        materialize_events(
            tags={
                "dagster/asset_partition_range_start": D1.isoformat(),
                "dagster/asset_partition_range_end": D4.isoformat(),
            }
        )
    )
    single = {}
    for day in DAYS:
        single |= observed(materialize_events(partition_key=day.isoformat()))

    assert as_range == single
    assert as_range["2025-01-03"] == {
        "lines_read": 3,
        "rows_loaded": 2,
        "rows_rejected": 1,
        "duplicates_dropped": 0,
        "files": 2,
        "files_rejected": 1,
        "reject_rate": 0.5,
        "files_skipped": 0,
    }


def test_a_file_whose_records_fail_the_shared_statement_is_rejected_alone(
    warehouse: Warehouse, landing: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three files of two days are checked in one statement; DuckDB failing on the records of one
    of them (as it may on a shape no rule foresaw) rejects that file whole and loads the others."""
    landing.jsonl("activity_events", D1, "a.jsonl", [event("a1", "2025-01-01T08:00:00Z", "u1")])
    landing.jsonl("activity_events", D1, "b.jsonl", [event("b1", "2025-01-01T09:00:00Z", "u1"), "{"])
    landing.jsonl("activity_events", D2, "c.jsonl", [event("c1", "2025-01-02T10:00:00Z", "u1")])
    original = validation.Checker.write

    def failing_on_b(self: validation.Checker, records: str, params: Any) -> int:
        (has_b,) = self.connection.execute(
            f"select count(*) from ({records}) where _file like '%/b.jsonl'", list(params)
        ).fetchone()
        if has_b:
            raise duckdb.ConversionException("Conversion Error: simulated")
        return original(self, records, params)

    monkeypatch.setattr(validation.Checker, "write", failing_on_b)
    reports = load_partitions(warehouse, landing.root, ACTIVITY_EVENTS, [D1, D2])

    reason = "not a readable jsonl file (Conversion Error: simulated)"
    assert [row[0] for row in events(warehouse)] == ["a1", "c1"]
    assert ledger(warehouse) == [
        (D1, f"{folder(D1)}/a.jsonl", 1, 1, 0, 0, None),
        (D1, f"{folder(D1)}/b.jsonl", 0, 0, 0, 0, reason),
        (D2, f"{folder(D2)}/c.jsonl", 1, 1, 0, 0, None),
    ]
    assert [row[:4] for row in rejects(warehouse)] == [(D1, f"{folder(D1)}/b.jsonl", None, reason)]
    assert [(r.partition, r.files_rejected, r.lines_read, r.top_reasons) for r in reports] == [
        (D1, 1, 1, [(reason, 1)]),
        (D2, 0, 1, []),
    ]
