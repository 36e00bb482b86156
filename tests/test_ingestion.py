"""Ingestion honours the landing contract of SPEC §4, on DuckDB and on PostgreSQL.

What this module proves, with every expectation worked out by hand from the files each test writes:

* every kind of bad record (unparseable line, missing field, wrong type, negative number, timestamp
  outside the folder's UTC day, unknown enum value) lands in ``raw.rejected_records`` with its
  dataset, partition date, file, line number, exact reason and original text; duplicates keep the
  first occurrence and are counted; per file, lines read = loaded + rejected + duplicates;
* an unreadable file is rejected whole (one reject row, no line number) and the rest of the
  partition still loads;
* JSON Lines, CSV (both optionally gzipped) and Parquet load to identical rows;
* loading is idempotent, a partition always equals its folder (removed files and removed folders
  leave nothing behind), and a failed write keeps the previous version of the partition;
* dimensions are full snapshots where the latest ``updated_at`` wins;
* a missing landing root or an unreachable PostgreSQL fail loudly, naming the setting to fix;
* the Dagster asset reports the accounting as metadata; its reject-rate check honours
  ``ANALYTICS_MAX_REJECT_RATE`` beyond chance (``ANALYTICS_REJECT_RATE_CONFIDENCE``) on every loaded
  day, so a bad day keeps failing until it is reloaded clean, and its files-present check warns
  about a day that other datasets have files for and this one has none.

Loads call ``load_partition`` directly (fast); only the metadata and asset-check tests materialize
the Dagster asset. dbt never runs here.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ORDER_HEADER, Landing, event, pipeline_resources

from analytics_pipeline.defs.ingestion.assets import FILES_PRESENT_CHECK, REJECT_RATE_CHECK, ingestion_assets
from analytics_pipeline.lib.ingestion import readers
from analytics_pipeline.lib.ingestion.datasets import (
    ACTIVITY_EVENTS,
    INVENTORY_SNAPSHOTS,
    ORDER_LINES,
    RAW_TABLES,
    USERS,
    Dataset,
)
from analytics_pipeline.lib.ingestion.loader import LandingZoneMissing, LoadReport, load_partition
from analytics_pipeline.lib.ingestion.quality import binomial_upper_tail
from analytics_pipeline.resources.warehouse import (
    TransientWarehouseError,
    Warehouse,
    WarehouseError,
    postgres_engine,
    tables,
)
from analytics_pipeline.settings import Settings

D1, D2, D3 = date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)
EVENTS_DIR = "activity_events/date=2025-01-02"  # file paths are recorded relative to the landing root

EVENT_COLUMNS = (
    "event_id, occurred_at, user_id, org_id, activity_type, session_id, duration_ms, properties, "
    "_partition_date, _source_file, _source_line"
)


# -- helpers ------------------------------------------------------------------------------------


def load(warehouse: Warehouse, landing: Landing, dataset: Dataset, day: date | None = D2) -> LoadReport:
    return load_partition(warehouse, landing.root, dataset, day)


def select(warehouse: Warehouse, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return [tuple(row.values()) for row in warehouse.query(sql, params).to_pylist()]


def rejects(warehouse: Warehouse, dataset: str) -> list[tuple[Any, ...]]:
    """(partition_date, file, line_no, reason, raw_text) of one dataset, by file and line."""
    return select(
        warehouse,
        "select partition_date, file, line_no, reason, raw_text from raw.rejected_records "
        "where dataset = ? order by file, coalesce(line_no, 0)",
        (dataset,),
    )


def ledger(warehouse: Warehouse, dataset: str) -> list[tuple[Any, ...]]:
    """(file, lines_read, rows_loaded, rows_rejected, duplicates_dropped, file_error) per file."""
    return select(
        warehouse,
        "select file, lines_read, rows_loaded, rows_rejected, duplicates_dropped, file_error "
        "from raw.ingested_files where dataset = ? order by file",
        (dataset,),
    )


def event_ids(warehouse: Warehouse, day: date = D2) -> list[str]:
    rows = select(
        warehouse, "select event_id from raw.activity_events where _partition_date = ? order by event_id", (day,)
    )
    return [row[0] for row in rows]


def snapshot(warehouse: Warehouse, dataset: Dataset) -> tuple[list, list, list]:
    """Everything a load wrote for ``dataset`` except the load timestamps."""
    columns = ", ".join(c for c in dataset.table.column_names if c != "_loaded_at")
    order = ", ".join(dataset.key)
    raw = select(warehouse, f"select {columns} from {dataset.table.name} order by {order}")
    reject_rows = select(
        warehouse,
        "select dataset, partition_date, file, line_no, reason, raw_text from raw.rejected_records "
        "where dataset = ? order by file, coalesce(line_no, 0)",
        (dataset.name,),
    )
    ledger_rows = select(
        warehouse,
        "select dataset, partition_date, file, size_bytes, modified_at, lines_read, rows_loaded, "
        "rows_rejected, duplicates_dropped, file_error from raw.ingested_files where dataset = ? "
        "order by partition_date, file",
        (dataset.name,),
    )
    return raw, reject_rows, ledger_rows


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    """Proper CSV (quoted where needed), None written as an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if value is None else value for value in row] for row in rows])
    return buffer.getvalue()


def raw_asset(dataset: str) -> dg.AssetsDefinition:
    return next(a for a in ingestion_assets if a.key == dg.AssetKey(["raw", dataset]))


def materialize_events(dataset: str = "activity_events", **kwargs: Any) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_asset(dataset)],
        resources=pipeline_resources(),
        instance=dg.DagsterInstance.ephemeral(),
        **kwargs,
    )


def metadata_values(metadata: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: metadata[name].value for name in names}


def good_events(prefix: str, day: date, count: int) -> list[dict[str, Any]]:
    return [event(f"{prefix}{n:03d}", f"{day.isoformat()}T12:00:00Z", "u1") for n in range(count)]


# -- 1. bad records of activity_events -----------------------------------------------------------

BAD_EVENT_LINES = [
    # line 1: valid; "properties" is an object, stored as JSON text
    json.dumps(event("e1", "2025-01-02T10:00:00Z", "u1", duration_ms=250, properties={"page": "home"})),
    '{"event_id": "e2", "occurred_at": ',  # 2: cut-off JSON
    '["e3", "2025-01-02T10:00:00Z", "u1"]',  # 3: an array, not an object
    "",  # 4: blank line in the middle
    json.dumps({k: v for k, v in event("e5", "2025-01-02T10:00:00Z", "u1").items() if k != "event_id"}),
    json.dumps({k: v for k, v in event("e6", "2025-01-02T10:00:00Z", "u1").items() if k != "occurred_at"}),
    json.dumps({k: v for k, v in event("e7", "2025-01-02T10:00:00Z", "u1").items() if k != "user_id"}),
    json.dumps(event("e8", "2025-01-02T10:00:00Z", "u1", org=None)),  # 8: org_id is JSON null
    json.dumps(event("e9", "2025-01-02T10:00:00Z", "u1", kind="")),  # 9: activity_type is empty
    json.dumps(event("e10", "2025-01-02T10:00:00", "u1")),  # 10: no offset
    json.dumps(event("e11", "yesterday", "u1")),  # 11: not a timestamp
    json.dumps(event("e12", "2025-01-02T23:30:00-02:00", "u1")),  # 12: = 2025-01-03T01:30Z
    json.dumps(event("e13", "2025-01-02T10:00:00Z", "u1", duration_ms=-5)),
    json.dumps(event("e14", "2025-01-02T10:00:00Z", "u1", duration_ms=12.5)),
    json.dumps(event("e15", "2025-01-02T10:00:00Z", "u1", duration_ms="abc")),
    json.dumps(event("e1", "2025-01-02T11:00:00Z", "u9")),  # 16: duplicate of line 1, dropped
    json.dumps(event("e17", "2025-01-02T01:30:00+01:00", "u2", kind="VIEW_CONTENT")),  # 17: 00:30Z
    json.dumps(event("e18", "2025-01-01T23:30:00-02:00", "u3", session=None)),  # 18: 2025-01-02T01:30Z
]

BAD_EVENT_REASONS = {
    2: "invalid JSON",
    3: "not a JSON object",
    4: "blank line",
    5: "missing required field: event_id",
    6: "missing required field: occurred_at",
    7: "missing required field: user_id",
    8: "missing required field: org_id",
    9: "missing required field: activity_type",
    10: "occurred_at is not an ISO-8601 timestamp with offset or Z: '2025-01-02T10:00:00'",
    11: "occurred_at is not an ISO-8601 timestamp with offset or Z: 'yesterday'",
    12: "occurred_at '2025-01-02T23:30:00-02:00' is outside the folder date 2025-01-02 (UTC)",
    13: "duration_ms must be >= 0, got -5",
    14: "duration_ms is not an integer: '12.5'",
    15: "duration_ms is not an integer: 'abc'",
}


def test_every_kind_of_bad_event_is_rejected_with_its_reason_line_and_text(warehouse, landing: Landing) -> None:
    landing.jsonl("activity_events", D2, "events.jsonl", BAD_EVENT_LINES)
    load(warehouse, landing, ACTIVITY_EVENTS)

    file = f"{EVENTS_DIR}/events.jsonl"
    rows = select(warehouse, f"select {EVENT_COLUMNS} from raw.activity_events order by _source_line")
    properties = [json.loads(row[7]) if row[7] else None for row in rows]
    assert [row[:7] + row[8:] for row in rows] == [
        ("e1", datetime(2025, 1, 2, 10, 0), "u1", "org-1", "login", "s1", 250, D2, file, 1),
        ("e17", datetime(2025, 1, 2, 0, 30), "u2", "org-1", "view_content", "s1", None, D2, file, 17),
        ("e18", datetime(2025, 1, 2, 1, 30), "u3", "org-1", "login", None, None, D2, file, 18),
    ]
    assert properties == [{"page": "home"}, None, None]

    assert rejects(warehouse, "activity_events") == [
        (D2, file, line, reason, BAD_EVENT_LINES[line - 1]) for line, reason in BAD_EVENT_REASONS.items()
    ]
    # 18 lines = 3 loaded + 14 rejected + 1 duplicate
    assert ledger(warehouse, "activity_events") == [(file, 18, 3, 14, 1, None)]
    assert select(
        warehouse,
        "select count(*) from raw.ingested_files where lines_read <> rows_loaded + rows_rejected + duplicates_dropped",
    ) == [(0,)]


def test_spaces_around_lines_and_values_are_not_part_of_the_record(warehouse, landing: Landing) -> None:
    padded = event(" e1 ", " 2025-01-02T10:00:00Z ", "u1  ", kind=" LOGIN ", duration_ms=" 250 ")
    lines = [
        " \t " + json.dumps(padded) + "  ",  # 1: JSON whitespace before and after the object
        "    ",  # 2: spaces only
        json.dumps(event("e3", "2025-01-02T10:00:00Z", "u1", kind="  ")),  # 3: activity_type is only spaces
        json.dumps(event("e4", "2025-01-02T10:00:00Z", "\tu4")),  # 4: only spaces are trimmed, not tabs
        "\t [1]",  # 5: an array after JSON whitespace
    ]
    landing.jsonl("activity_events", D2, "events.jsonl", lines)
    load(warehouse, landing, ACTIVITY_EVENTS)

    rows = select(
        warehouse,
        "select event_id, occurred_at, user_id, activity_type, duration_ms, _source_line "
        "from raw.activity_events order by _source_line",
    )
    assert rows == [
        ("e1", datetime(2025, 1, 2, 10, 0), "u1", "login", 250, 1),
        ("e4", datetime(2025, 1, 2, 10, 0), "\tu4", "login", None, 4),
    ]
    file = f"{EVENTS_DIR}/events.jsonl"
    assert [row[2:4] for row in rejects(warehouse, "activity_events")] == [
        (2, "blank line"),
        (3, "missing required field: activity_type"),
        (5, "not a JSON object"),
    ]
    assert ledger(warehouse, "activity_events") == [(file, 5, 2, 3, 0, None)]


def test_first_occurrence_of_a_duplicate_key_wins_by_file_then_line(warehouse, landing: Landing) -> None:
    # b.jsonl has e1 on its first line, a.jsonl only on its third: a.jsonl still comes first
    landing.jsonl(
        "activity_events",
        D2,
        "b.jsonl",
        [
            event("e1", "2025-01-02T09:00:00Z", "from-b"),
            event("e2", "2025-01-02T09:00:00Z", "from-b"),
        ],
    )
    landing.jsonl(
        "activity_events",
        D2,
        "a.jsonl",
        [
            event("e3", "2025-01-02T08:00:00Z", "from-a-line-1"),
            event("e3", "2025-01-02T08:00:00Z", "from-a-line-2"),
            event("e1", "2025-01-02T08:00:00Z", "from-a-line-3"),
        ],
    )
    load(warehouse, landing, ACTIVITY_EVENTS)

    assert select(warehouse, "select event_id, user_id, _source_line from raw.activity_events order by event_id") == [
        ("e1", "from-a-line-3", 3),
        ("e2", "from-b", 2),
        ("e3", "from-a-line-1", 1),
    ]
    assert ledger(warehouse, "activity_events") == [
        (f"{EVENTS_DIR}/a.jsonl", 3, 2, 0, 1, None),
        (f"{EVENTS_DIR}/b.jsonl", 2, 1, 0, 1, None),
    ]
    assert rejects(warehouse, "activity_events") == []


# -- 2. bad records of the CSV datasets ----------------------------------------------------------

AT = "2025-01-02T10:00:00Z"


def test_order_lines_validation(warehouse, landing: Landing) -> None:
    path = landing.csv(
        "order_lines",
        D2,
        "orders.csv",
        ORDER_HEADER,
        [
            ["o1", 1, AT, "A", "u1", "i1", 2, "9.99", "5.00", "EUR", "completed"],  # line 2: valid
            ["o1", 2, AT, "A", "u1", "i1", 0, "9.99", "5.00", "EUR", "completed"],  # 3: quantity 0
            ["o2", 1, AT, "A", "u1", "i1", -1, "9.99", "5.00", "EUR", "completed"],  # 4: quantity -1
            ["o3", 1, AT, "A", "u1", "i1", 1, "9.99", "5.00", "EUR", "pending"],  # 5: unknown status
            ["o4", 1, AT, "A", "u1", "i1", 1, "9.99", "5.00", "EUR", "COMPLETED"],  # 6: valid, lower-cased
            ["o5", 1, AT, "A", "u1", "i1", 1, "-1.50", "5.00", "EUR", "completed"],  # 7: negative price
            ["o6", 1, AT, "A", None, "i1", 3, "2.50", "1.25", None, "refunded"],  # 8: valid, USD default
            ["o7", 1, AT, "A", "u1", "i1", 1, "9.99", "5.00", "EUR"],  # 9: 10 fields, not 11
            ["o1", 1, AT, "B", "u2", "i2", 7, "1.00", "0.50", "EUR", "completed"],  # 10: duplicate key
        ],
    )
    load(warehouse, landing, ORDER_LINES)

    file = "order_lines/date=2025-01-02/orders.csv"
    assert select(
        warehouse,
        "select order_id, line_no, ordered_at, org_id, user_id, item_id, quantity, unit_price, unit_cost, "
        "currency, status, _source_line from raw.order_lines order by order_id, line_no",
    ) == [
        (
            "o1",
            1,
            datetime(2025, 1, 2, 10),
            "A",
            "u1",
            "i1",
            2,
            Decimal("9.99"),
            Decimal("5.00"),
            "EUR",
            "completed",
            2,
        ),
        (
            "o4",
            1,
            datetime(2025, 1, 2, 10),
            "A",
            "u1",
            "i1",
            1,
            Decimal("9.99"),
            Decimal("5.00"),
            "EUR",
            "completed",
            6,
        ),
        ("o6", 1, datetime(2025, 1, 2, 10), "A", None, "i1", 3, Decimal("2.50"), Decimal("1.25"), "USD", "refunded", 8),
    ]
    lines = path.read_text().splitlines()
    assert rejects(warehouse, "order_lines") == [
        (D2, file, 3, "quantity must be >= 1, got 0", lines[2]),
        (D2, file, 4, "quantity must be >= 1, got -1", lines[3]),
        (D2, file, 5, "unknown status 'pending' (expected one of completed, refunded, cancelled)", lines[4]),
        (D2, file, 7, "unit_price must be >= 0, got -1.50", lines[6]),
        (
            D2,
            file,
            9,
            "wrong number of CSV fields (expected 11, got 10)",
            "o7,1,2025-01-02T10:00:00Z,A,u1,i1,1,9.99,5.00,EUR",
        ),
    ]
    # 9 data lines = 3 loaded + 5 rejected + 1 duplicate
    assert ledger(warehouse, "order_lines") == [(file, 9, 3, 5, 1, None)]


def test_a_csv_file_with_only_its_header_is_read_as_no_records(warehouse, landing: Landing) -> None:
    landing.csv("order_lines", D2, "empty.csv", ORDER_HEADER, [])
    landing.csv(
        "order_lines",
        D2,
        "orders.csv",
        ORDER_HEADER,
        [
            ["o1", 1, AT, "A", "u1", "i1", 2, "9.99", "5.00", "EUR", "completed"],
        ],
    )
    load(warehouse, landing, ORDER_LINES)

    assert select(warehouse, "select order_id from raw.order_lines") == [("o1",)]
    assert ledger(warehouse, "order_lines") == [
        ("order_lines/date=2025-01-02/empty.csv", 0, 0, 0, 0, None),
        ("order_lines/date=2025-01-02/orders.csv", 1, 1, 0, 0, None),
    ]


def test_inventory_snapshot_date_must_equal_the_folder_and_stock_cannot_be_negative(
    warehouse, landing: Landing
) -> None:
    landing.csv(
        "inventory_snapshots",
        D2,
        "stock.csv",
        ["snapshot_date", "item_id", "on_hand", "on_order", "reorder_point"],
        [
            ["2025-01-02", "i1", 5, 0, 2],  # line 2: valid
            ["2025-01-03", "i2", 5, 0, 2],  # 3: another day's snapshot
            ["2025-01-02", "i3", -3, 0, 2],  # 4: negative stock
            ["2025-01-02", "i4", 4, None, None],  # 5: valid, optional fields empty
        ],
    )
    load(warehouse, landing, INVENTORY_SNAPSHOTS)

    file = "inventory_snapshots/date=2025-01-02/stock.csv"
    assert select(
        warehouse,
        "select snapshot_date, item_id, on_hand, on_order, reorder_point, _partition_date "
        "from raw.inventory_snapshots order by item_id",
    ) == [(D2, "i1", 5, 0, 2, D2), (D2, "i4", 4, None, None, D2)]
    assert rejects(warehouse, "inventory_snapshots") == [
        (D2, file, 3, "snapshot_date '2025-01-03' is outside the folder date 2025-01-02 (UTC)", "2025-01-03,i2,5,0,2"),
        (D2, file, 4, "on_hand must be >= 0, got -3", "2025-01-02,i3,-3,0,2"),
    ]
    assert ledger(warehouse, "inventory_snapshots") == [(file, 4, 2, 2, 0, None)]


# -- 3. unreadable files -------------------------------------------------------------------------


def test_unreadable_files_are_rejected_whole_and_the_rest_of_the_partition_loads(warehouse, landing: Landing) -> None:
    landing.jsonl(
        "activity_events",
        D2,
        "good.jsonl",
        [
            event("g1", "2025-01-02T10:00:00Z", "u1"),
            event("g2", "2025-01-02T11:00:00Z", "u2"),
        ],
    )
    landing.raw("activity_events", D2, "plain.jsonl.gz", b'{"event_id": "x"}\n')  # named .gz, not gzip
    landing.raw("activity_events", D2, "latin.jsonl", b'\xff\xfe{"event_id": "y"}\n')  # not UTF-8
    landing.raw("activity_events", D2, "empty.jsonl", b"")
    landing.raw("activity_events", D2, "notes.txt", b"call me\n")
    landing.raw("activity_events", D2, "fake.parquet", b"event_id,occurred_at\nz,2025-01-02\n")
    report = load(warehouse, landing, ACTIVITY_EVENTS)

    assert event_ids(warehouse) == ["g1", "g2"]
    got = {row[1].rsplit("/", 1)[1]: row for row in rejects(warehouse, "activity_events")}
    assert sorted(got) == ["empty.jsonl", "fake.parquet", "latin.jsonl", "notes.txt", "plain.jsonl.gz"]
    assert all(row[0] == D2 and row[2] is None for row in got.values())  # partition date, no line number
    assert got["latin.jsonl"][3:] == ("not UTF-8 text", '\ufffd\ufffd{"event_id": "y"}\n')
    assert got["empty.jsonl"][3:] == ("empty file", "")
    assert got["notes.txt"][3:] == (
        "unsupported file type 'notes.txt'; expected one of .csv, .csv.gz, .jsonl, .jsonl.gz, .parquet",
        "call me\n",
    )
    assert got["plain.jsonl.gz"][3].startswith("not a valid gzip file (")
    assert got["plain.jsonl.gz"][4] == '{"event_id": "x"}\n'
    assert got["fake.parquet"][3].startswith("not a readable Parquet file (")
    assert got["fake.parquet"][4] == "event_id,occurred_at\nz,2025-01-02\n"

    assert ledger(warehouse, "activity_events") == [
        (f"{EVENTS_DIR}/empty.jsonl", 0, 0, 0, 0, "empty file"),
        (f"{EVENTS_DIR}/fake.parquet", 0, 0, 0, 0, got["fake.parquet"][3]),
        (f"{EVENTS_DIR}/good.jsonl", 2, 2, 0, 0, None),
        (f"{EVENTS_DIR}/latin.jsonl", 0, 0, 0, 0, "not UTF-8 text"),
        (f"{EVENTS_DIR}/notes.txt", 0, 0, 0, 0, got["notes.txt"][3]),
        (f"{EVENTS_DIR}/plain.jsonl.gz", 0, 0, 0, 0, got["plain.jsonl.gz"][3]),
    ]
    # an unreadable file counts as one rejected line: 5 of 2 + 5
    assert report.files_rejected == 5
    assert report.reject_rate == pytest.approx(5 / 7)


def test_hidden_temporary_and_marker_files_are_skipped_and_named_in_the_ledger(warehouse, landing: Landing) -> None:
    landing.jsonl("activity_events", D2, "good.jsonl", [event("g1", "2025-01-02T10:00:00Z", "u1")])
    landing.raw("activity_events", D2, ".good.jsonl.swp", b"\x00binary")
    landing.raw("activity_events", D2, "_SUCCESS", b"")
    landing.raw("activity_events", D2, "~lock.jsonl", b"not json\n")
    sub = landing.folder("activity_events", D2) / "retry"
    sub.mkdir()
    (sub / "more.jsonl").write_text(json.dumps(event("s1", "2025-01-02T10:00:00Z", "u1")) + "\n")
    report = load(warehouse, landing, ACTIVITY_EVENTS)

    assert event_ids(warehouse) == ["g1"]
    assert rejects(warehouse, "activity_events") == []  # skipped is not rejected
    assert ledger(warehouse, "activity_events") == [
        (f"{EVENTS_DIR}/.good.jsonl.swp", 0, 0, 0, 0, "skipped: hidden file (name starts with '.')"),
        (f"{EVENTS_DIR}/_SUCCESS", 0, 0, 0, 0, "skipped: marker or temporary file (name starts with '_')"),
        (f"{EVENTS_DIR}/good.jsonl", 1, 1, 0, 0, None),
        (
            f"{EVENTS_DIR}/retry/",
            0,
            0,
            0,
            0,
            "skipped: subfolder (files in subfolders of a landing folder are not read)",
        ),
        (f"{EVENTS_DIR}/~lock.jsonl", 0, 0, 0, 0, "skipped: temporary file (name starts with '~')"),
    ]
    assert (report.files_rejected, report.reject_rate) == (0, 0.0)


def test_a_utf16_file_is_rejected_whole_on_every_engine(warehouse, landing: Landing) -> None:
    landing.jsonl("activity_events", D2, "good.jsonl", [event("g1", "2025-01-02T10:00:00Z", "u1")])
    utf16 = (json.dumps(event("w1", "2025-01-02T10:00:00Z", "u1")) + "\n").encode("utf-16")  # BOM ff fe, then NULs
    landing.raw("activity_events", D2, "windows.jsonl", utf16)
    load(warehouse, landing, ACTIVITY_EVENTS)

    assert event_ids(warehouse) == ["g1"]
    assert [row[1:4] for row in rejects(warehouse, "activity_events")] == [
        (f"{EVENTS_DIR}/windows.jsonl", None, "not UTF-8 text")
    ]


def test_a_nul_character_in_a_value_does_not_stop_the_partition(warehouse, landing: Landing) -> None:
    landing.jsonl(
        "activity_events",
        D2,
        "events.jsonl",
        [
            event("n1", "2025-01-02T10:00:00Z", "u1", user_agent="Mozilla\u0000"),
            event("n2", "2025-01-02T11:00:00Z", "u2"),
        ],
    )
    load(warehouse, landing, ACTIVITY_EVENTS)

    # PostgreSQL text cannot hold NUL: n1 is rejected (and kept in rejected_records), n2 loads
    assert event_ids(warehouse) == ["n2"]
    assert [row[2:4] for row in rejects(warehouse, "activity_events")] == [(1, "a value contains a NUL character")]
    assert ledger(warehouse, "activity_events")[0][1] == 2  # lines read


@pytest.mark.parametrize("name", ["big.jsonl", "big.jsonl.gz"])
def test_a_file_larger_than_a_block_reads_as_if_whole(warehouse, landing: Landing, monkeypatch, name: str) -> None:
    # JSON Lines are read in blocks of whole lines; with 64-byte blocks every line here spans blocks
    monkeypatch.setattr(readers, "BLOCK_BYTES", 64)
    long_line = json.dumps(event("e2", "2025-01-02T11:00:00Z", "u2", properties=json.dumps({"note": "x" * 200})))
    lines = [
        "\ufeff" + json.dumps(event("e1", "2025-01-02T10:00:00Z", "u1")) + "\r\n",  # byte-order mark, CRLF
        "\n",  # blank
        "not json\n",
        long_line + "\n",  # longer than three blocks
        json.dumps(event("e3", "2025-01-02T12:00:00Z", "u3")),  # no newline at the end
    ]
    data = "".join(lines).encode()
    landing.raw("activity_events", D2, name, gzip.compress(data) if name.endswith(".gz") else data)
    load(warehouse, landing, ACTIVITY_EVENTS)

    assert select(warehouse, "select event_id, _source_line from raw.activity_events order by event_id") == [
        ("e1", 1),
        ("e2", 4),
        ("e3", 5),
    ]
    assert [row[2:5] for row in rejects(warehouse, "activity_events")] == [
        (2, "blank line", ""),
        (3, "invalid JSON", "not json"),
    ]
    assert ledger(warehouse, "activity_events") == [(f"{EVENTS_DIR}/{name}", 5, 3, 2, 0, None)]


def test_a_bad_byte_in_a_later_block_rejects_the_whole_file_and_keeps_none_of_its_lines(
    warehouse,
    landing: Landing,
    monkeypatch,
) -> None:
    monkeypatch.setattr(readers, "BLOCK_BYTES", 64)
    good = [json.dumps(event(f"b{i}", "2025-01-02T10:00:00Z", "u1")) for i in range(4)]  # blocks 1..4 read fine
    landing.raw("activity_events", D2, "late.jsonl", ("\n".join(good) + "\n").encode() + b"\xff\xfe oops\n")
    landing.jsonl("activity_events", D2, "other.jsonl", [event("o1", "2025-01-02T10:00:00Z", "u1")])
    report = load(warehouse, landing, ACTIVITY_EVENTS)

    assert event_ids(warehouse) == ["o1"]
    assert [row[1:4] for row in rejects(warehouse, "activity_events")] == [
        (f"{EVENTS_DIR}/late.jsonl", None, "not UTF-8 text")
    ]
    assert ledger(warehouse, "activity_events")[0] == (f"{EVENTS_DIR}/late.jsonl", 0, 0, 0, 0, "not UTF-8 text")
    assert (report.files_rejected, report.lines_read) == (1, 1)


def test_rows_written_in_many_small_batches_are_the_same_rows(warehouse, landing: Landing, monkeypatch) -> None:
    landing.jsonl(
        "activity_events",
        D2,
        "a.jsonl",
        [
            *good_events("s", D2, 7),
            'not json, "quoted", with commas',
            "{}",
            event("x", "2025-01-02T10:00:00Z", "u9"),
        ],
    )
    load(warehouse, landing, ACTIVITY_EVENTS)
    whole = snapshot(warehouse, ACTIVITY_EVENTS)
    assert len(whole[0]) == 8 and len(whole[1]) == 2  # rows, rejects

    # two rows a batch and 7-byte reads: every batch and read boundary of the bulk write is crossed
    monkeypatch.setattr(tables, "SCRATCH_ROWS_PER_BATCH", 2)
    monkeypatch.setattr(postgres_engine, "_CSV_READ_BYTES", 7)
    load(warehouse, landing, ACTIVITY_EVENTS)
    assert snapshot(warehouse, ACTIVITY_EVENTS) == whole


# -- 4. formats ----------------------------------------------------------------------------------

FORMAT_RECORDS = [
    {
        "event_id": "f1",
        "occurred_at": "2025-01-02T08:15:00Z",
        "user_id": "u1",
        "org_id": "A",
        "activity_type": "Login",
        "session_id": "s1",
        "duration_ms": 120,
        "properties": '{"k":"v"}',
    },
    {
        "event_id": "f2",
        "occurred_at": "2025-01-03T01:59:59+02:00",
        "user_id": "u2",
        "org_id": "B",
        "activity_type": "search",
        "session_id": None,
        "duration_ms": None,
        "properties": None,
    },
]
FORMAT_ROWS = [  # (event_id, occurred_at UTC, user_id, org_id, activity_type, session_id, duration_ms, properties)
    ("f1", datetime(2025, 1, 2, 8, 15), "u1", "A", "login", "s1", 120, '{"k":"v"}'),
    ("f2", datetime(2025, 1, 2, 23, 59, 59), "u2", "B", "search", None, None, None),
]


def write_format(landing: Landing, name: str, records: list[dict[str, Any]]) -> None:
    jsonl = "".join(json.dumps(r) + "\n" for r in records).encode()
    header = list(records[0])
    text_csv = csv_text(header, [[r[c] for c in header] for r in records]).encode()
    if name.endswith(".jsonl"):
        landing.raw("activity_events", D2, name, jsonl)
    elif name.endswith(".jsonl.gz"):
        landing.raw("activity_events", D2, name, gzip.compress(jsonl))
    elif name.endswith(".csv"):
        landing.raw("activity_events", D2, name, text_csv)
    elif name.endswith(".csv.gz"):
        landing.raw("activity_events", D2, name, gzip.compress(text_csv))
    else:  # Parquet: a real (naive = UTC) timestamp column and an integer column
        columns = {c: [r[c] for r in records] for c in header}
        columns["occurred_at"] = pa.array([UTC_NAIVE[r["occurred_at"]] for r in records], pa.timestamp("us"))
        columns["duration_ms"] = pa.array(columns["duration_ms"], pa.int64())
        pq.write_table(pa.table(columns), landing.folder("activity_events", D2) / name)


# the instants of FORMAT_RECORDS (and of the mixed-folder records below) in UTC, worked out by hand
UTC_NAIVE = {
    "2025-01-02T08:15:00Z": datetime(2025, 1, 2, 8, 15),
    "2025-01-03T01:59:59+02:00": datetime(2025, 1, 2, 23, 59, 59),
    "2025-01-02T13:00:00Z": datetime(2025, 1, 2, 13),
}


@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz", "events.csv", "events.csv.gz", "events.parquet"])
def test_every_format_loads_the_same_rows(warehouse, landing: Landing, name: str) -> None:
    write_format(landing, name, FORMAT_RECORDS)
    load(warehouse, landing, ACTIVITY_EVENTS)

    rows = select(
        warehouse,
        "select event_id, occurred_at, user_id, org_id, activity_type, session_id, duration_ms, properties, "
        "_partition_date, _source_file from raw.activity_events order by event_id",
    )
    assert [row[:7] for row in rows] == [expected[:7] for expected in FORMAT_ROWS]
    assert [json.loads(row[7]) if row[7] else None for row in rows] == [{"k": "v"}, None]
    assert {row[8:] for row in rows} == {(D2, f"{EVENTS_DIR}/{name}")}
    assert rejects(warehouse, "activity_events") == []
    assert ledger(warehouse, "activity_events") == [(f"{EVENTS_DIR}/{name}", 2, 2, 0, 0, None)]


def test_one_folder_may_mix_every_format(warehouse, landing: Landing) -> None:
    names = ["a.jsonl", "b.jsonl.gz", "c.csv", "d.csv.gz", "e.parquet"]
    for n, name in enumerate(names, start=1):
        record = {**FORMAT_RECORDS[0], "event_id": f"m{n}", "occurred_at": "2025-01-02T13:00:00Z"}
        write_format(landing, name, [record])
    load(warehouse, landing, ACTIVITY_EVENTS)

    assert select(
        warehouse, "select event_id, occurred_at, _source_file, _source_line from raw.activity_events order by event_id"
    ) == [
        ("m1", datetime(2025, 1, 2, 13), f"{EVENTS_DIR}/a.jsonl", 1),
        ("m2", datetime(2025, 1, 2, 13), f"{EVENTS_DIR}/b.jsonl.gz", 1),
        ("m3", datetime(2025, 1, 2, 13), f"{EVENTS_DIR}/c.csv", 2),  # CSV line 1 is the header
        ("m4", datetime(2025, 1, 2, 13), f"{EVENTS_DIR}/d.csv.gz", 2),
        ("m5", datetime(2025, 1, 2, 13), f"{EVENTS_DIR}/e.parquet", 1),
    ]
    assert ledger(warehouse, "activity_events") == [(f"{EVENTS_DIR}/{name}", 1, 1, 0, 0, None) for name in names]


def test_parquet_struct_properties_are_stored_as_json(warehouse, landing: Landing) -> None:
    table = pa.table(
        {
            "event_id": ["p1"],
            "occurred_at": pa.array([datetime(2025, 1, 2, 8, 15)], pa.timestamp("us")),
            "user_id": ["u1"],
            "org_id": ["A"],
            "activity_type": ["login"],
            "properties": [{"k": "v"}],
        }
    )
    pq.write_table(table, landing.folder("activity_events", D2) / "events.parquet")
    load(warehouse, landing, ACTIVITY_EVENTS)

    assert rejects(warehouse, "activity_events") == []
    rows = select(warehouse, "select event_id, properties from raw.activity_events")
    assert [(row[0], json.loads(row[1])) for row in rows] == [("p1", {"k": "v"})]


# -- 5. idempotence ------------------------------------------------------------------------------


def write_two_files(landing: Landing) -> None:
    landing.jsonl(
        "activity_events",
        D2,
        "a.jsonl",
        [
            event("a1", "2025-01-02T10:00:00Z", "u1"),
            "not json",
            event("a1", "2025-01-02T10:05:00Z", "u1"),
        ],
    )
    landing.jsonl(
        "activity_events",
        D2,
        "b.jsonl",
        [
            event("b1", "2025-01-02T12:00:00Z", "u2"),
            event("b2", "2025-01-03T12:00:00Z", "u2"),
        ],
    )


def test_loading_a_partition_twice_changes_nothing(warehouse, landing: Landing) -> None:
    write_two_files(landing)
    load(warehouse, landing, ACTIVITY_EVENTS)
    first = snapshot(warehouse, ACTIVITY_EVENTS)
    load(warehouse, landing, ACTIVITY_EVENTS)

    assert snapshot(warehouse, ACTIVITY_EVENTS) == first
    assert event_ids(warehouse) == ["a1", "b1"]
    assert [row[1:4] for row in rejects(warehouse, "activity_events")] == [
        (f"{EVENTS_DIR}/a.jsonl", 2, "invalid JSON"),
        (f"{EVENTS_DIR}/b.jsonl", 2, "occurred_at '2025-01-03T12:00:00Z' is outside the folder date 2025-01-02 (UTC)"),
    ]
    assert ledger(warehouse, "activity_events") == [
        (f"{EVENTS_DIR}/a.jsonl", 3, 1, 1, 1, None),
        (f"{EVENTS_DIR}/b.jsonl", 2, 1, 1, 0, None),
    ]


def test_removing_a_file_and_reloading_removes_its_rows_and_rejects(warehouse, landing: Landing) -> None:
    write_two_files(landing)
    landing.jsonl("activity_events", D1, "other-day.jsonl", [event("d1", "2025-01-01T10:00:00Z", "u1"), "{"])
    load(warehouse, landing, ACTIVITY_EVENTS, D1)
    load(warehouse, landing, ACTIVITY_EVENTS, D2)
    (landing.folder("activity_events", D2) / "b.jsonl").unlink()
    load(warehouse, landing, ACTIVITY_EVENTS, D2)

    assert event_ids(warehouse, D2) == ["a1"]
    assert [row[:3] for row in rejects(warehouse, "activity_events")] == [
        (D1, "activity_events/date=2025-01-01/other-day.jsonl", 2),
        (D2, f"{EVENTS_DIR}/a.jsonl", 2),
    ]
    assert [row[0] for row in ledger(warehouse, "activity_events")] == [
        "activity_events/date=2025-01-01/other-day.jsonl",
        f"{EVENTS_DIR}/a.jsonl",
    ]
    assert event_ids(warehouse, D1) == ["d1"]  # the other day is untouched


# -- 6. dimensions -------------------------------------------------------------------------------


@pytest.mark.parametrize("newer_file", ["a.jsonl", "b.jsonl"])
def test_latest_updated_at_wins_whatever_the_file_order(warehouse, landing: Landing, newer_file: str) -> None:
    older_file = "b.jsonl" if newer_file == "a.jsonl" else "a.jsonl"
    # 06:00Z is later than 10:00+05:00 (= 05:00Z) although it sorts before it as text
    landing.jsonl(
        "users",
        None,
        newer_file,
        [
            {"user_id": "u1", "org_id": "NEW", "role": "Admin", "updated_at": "2025-01-05T06:00:00Z"},
        ],
    )
    landing.jsonl(
        "users",
        None,
        older_file,
        [
            {"user_id": "u1", "org_id": "OLD", "role": "student", "updated_at": "2025-01-05T10:00:00+05:00"},
            {"user_id": "u2", "org_id": "A", "role": "teacher", "updated_at": "2025-01-01T00:00:00Z"},
        ],
    )
    load(warehouse, landing, USERS, None)

    assert select(
        warehouse, "select user_id, org_id, role, updated_at, _source_file from raw.users order by user_id"
    ) == [
        ("u1", "NEW", "admin", datetime(2025, 1, 5, 6), f"users/{newer_file}"),
        ("u2", "A", "teacher", datetime(2025, 1, 1), f"users/{older_file}"),
    ]
    assert sorted(ledger(warehouse, "users")) == sorted(
        [
            (f"users/{newer_file}", 1, 1, 0, 0, None),
            (f"users/{older_file}", 2, 1, 0, 1, None),  # the old version of u1 is the dropped duplicate
        ]
    )


def test_an_unknown_role_is_rejected(warehouse, landing: Landing) -> None:
    lines = [
        json.dumps({"user_id": "u1", "org_id": "A", "role": "Teacher", "updated_at": "2025-01-01T00:00:00Z"}),
        json.dumps({"user_id": "u2", "org_id": "A", "role": "superuser", "updated_at": "2025-01-01T00:00:00Z"}),
    ]
    landing.jsonl("users", None, "users.jsonl", lines)
    load(warehouse, landing, USERS, None)

    assert select(warehouse, "select user_id, role from raw.users") == [("u1", "teacher")]
    assert rejects(warehouse, "users") == [
        (
            None,
            "users/users.jsonl",
            2,
            "unknown role 'superuser' (expected one of student, teacher, staff, admin)",
            lines[1],
        ),
    ]
    assert ledger(warehouse, "users") == [("users/users.jsonl", 2, 1, 1, 0, None)]


def test_a_dimension_snapshot_replaces_the_whole_table(warehouse, landing: Landing) -> None:
    landing.jsonl(
        "users",
        None,
        "users.jsonl",
        [
            {"user_id": "u1", "org_id": "A", "role": "student", "updated_at": "2025-01-01T00:00:00Z"},
            {"user_id": "u2", "org_id": "A", "role": "student", "updated_at": "2025-01-01T00:00:00Z"},
            {"user_id": "u3", "org_id": "A", "role": "pirate", "updated_at": "2025-01-01T00:00:00Z"},
        ],
    )
    load(warehouse, landing, USERS, None)
    assert [row[0] for row in select(warehouse, "select user_id from raw.users order by user_id")] == ["u1", "u2"]

    (landing.folder("users") / "users.jsonl").unlink()
    landing.jsonl(
        "users",
        None,
        "users-v2.jsonl",
        [
            {"user_id": "u1", "org_id": "B", "role": "teacher", "updated_at": "2025-01-02T00:00:00Z"},
        ],
    )
    load(warehouse, landing, USERS, None)

    assert select(warehouse, "select user_id, org_id, role from raw.users") == [("u1", "B", "teacher")]
    assert rejects(warehouse, "users") == []  # the old snapshot's reject went with it
    assert ledger(warehouse, "users") == [("users/users-v2.jsonl", 1, 1, 0, 0, None)]


# -- 7. missing landing root / missing day folder ------------------------------------------------


def test_a_missing_landing_root_raises_and_names_the_setting(tmp_path: Path) -> None:
    warehouse = Warehouse(Settings.from_env({"ANALYTICS_DUCKDB_PATH": str(tmp_path / "w.duckdb")}))
    missing = tmp_path / "no-such-landing"
    with pytest.raises(LandingZoneMissing) as caught:
        load_partition(warehouse, missing, ACTIVITY_EVENTS, D2)

    assert "ANALYTICS_LANDING_DIR" in str(caught.value)
    assert str(missing) in str(caught.value)
    assert not (tmp_path / "w.duckdb").exists()  # nothing was written


def test_a_missing_day_folder_loads_nothing_and_clears_an_earlier_load(warehouse, landing: Landing) -> None:
    landing.jsonl("activity_events", D2, "events.jsonl", [event("e1", "2025-01-02T10:00:00Z", "u1"), "oops"])
    load(warehouse, landing, ACTIVITY_EVENTS)
    assert event_ids(warehouse) == ["e1"]

    shutil.rmtree(landing.folder("activity_events", D2))
    report = load(warehouse, landing, ACTIVITY_EVENTS)

    assert (report.files, report.lines_read, report.rows_loaded) == ([], 0, 0)
    assert event_ids(warehouse) == []
    assert rejects(warehouse, "activity_events") == []
    assert ledger(warehouse, "activity_events") == []


# -- 8. unreachable PostgreSQL -------------------------------------------------------------------


def test_an_unreachable_postgres_raises_a_transient_error_naming_the_settings() -> None:
    settings = Settings.from_env(
        {
            "ANALYTICS_WAREHOUSE": "postgres",
            "ANALYTICS_PG_HOST": "127.0.0.1",
            "ANALYTICS_PG_PORT": "1",
            "ANALYTICS_PG_DATABASE": "analytics_unreachable",
        }
    )
    with pytest.raises(TransientWarehouseError) as caught:
        Warehouse(settings).ensure_ready(RAW_TABLES)

    message = str(caught.value)
    assert isinstance(caught.value, WarehouseError)
    assert "127.0.0.1:1" in message
    assert "ANALYTICS_PG_HOST" in message and "ANALYTICS_PG_PORT" in message


# -- 9. the Dagster asset: metadata and the reject-rate check ------------------------------------

ACCOUNTING = (
    "lines_read",
    "rows_loaded",
    "rows_rejected",
    "duplicates_dropped",
    "files",
    "files_rejected",
    "reject_rate",
)


def test_materialization_reports_the_accounting_per_partition_and_in_total(env, landing: Landing, monkeypatch) -> None:
    monkeypatch.delenv("ANALYTICS_MAX_REJECT_RATE", raising=False)
    landing.jsonl("activity_events", D1, "clean.jsonl", good_events("c", D1, 3))
    landing.jsonl(
        "activity_events",
        D2,
        "a.jsonl",
        [
            *good_events("m", D2, 4),
            event("m000", "2025-01-02T13:00:00Z", "u2"),
            "{broken",
        ],
    )
    landing.raw("activity_events", D2, "b.jsonl.gz", b"not gzip")
    result = materialize_events(
        tags={"dagster/asset_partition_range_start": "2025-01-01", "dagster/asset_partition_range_end": "2025-01-02"}
    )
    assert result.success

    # a single-run backfill emits one materialization per day, each carrying that day's own accounting
    materializations = {
        m.materialization.partition: m.materialization.metadata for m in result.get_asset_materialization_events()
    }
    assert {day: metadata_values(metadata, ACCOUNTING) for day, metadata in materializations.items()} == {
        "2025-01-01": {
            "lines_read": 3,
            "rows_loaded": 3,
            "rows_rejected": 0,
            "duplicates_dropped": 0,
            "files": 1,
            "files_rejected": 0,
            "reject_rate": 0.0,
        },
        "2025-01-02": {
            "lines_read": 6,
            "rows_loaded": 4,
            "rows_rejected": 1,
            "duplicates_dropped": 1,
            "files": 2,
            "files_rejected": 1,
            "reject_rate": 0.285714,
        },  # (1 + 1) / (6 + 1)
    }
    assert not result.get_asset_observation_events()  # no event beyond the materializations
    for metadata in materializations.values():
        assert metadata_values(metadata, ("run_window", "run_days")) == {
            "run_window": "2025-01-01 .. 2025-01-02",
            "run_days": 2,
        }
    first, second = (
        materializations["2025-01-01"]["file_accounting"].value,
        materializations["2025-01-02"]["file_accounting"].value,
    )
    assert f"| {EVENTS_DIR}/a.jsonl | 6 | 4 | 1 | 1 |  |" in second and "a.jsonl" not in first
    assert f"| {EVENTS_DIR}/b.jsonl.gz | 0 | 0 | 0 | 0 | not a valid gzip file (" in second
    assert "clean.jsonl | 3 | 3 | 0 | 0 |  |" in first and "clean.jsonl" not in second

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[FILES_PRESENT_CHECK].passed  # no other dataset has files
    check = checks[REJECT_RATE_CHECK]
    assert not check.passed  # 2 of 7: P(X >= 2 | 7, 1%) = 0.0020, far below 5%
    assert check.metadata["partitions_over_threshold"].value == "2025-01-02"
    reasons = check.metadata["top_reasons"].value.splitlines()  # the run's rejects by reason
    assert reasons[:2] == ["| reason | records |", "|---|---|"]
    assert "| invalid JSON | 1 |" in reasons and sum(r.startswith("| not a valid gzip file (") for r in reasons) == 1


def test_a_load_step_leaves_postgres_planner_statistics_of_what_it_wrote(warehouse, landing: Landing) -> None:
    if warehouse.engine != "postgres":
        pytest.skip("DuckDB keeps its statistics as it writes")
    landing.jsonl("activity_events", D1, "a.jsonl", good_events("a", D1, 5))
    landing.jsonl("activity_events", D2, "b.jsonl", [*good_events("b", D2, 7), "{broken"])
    result = materialize_events(
        tags={"dagster/asset_partition_range_start": "2025-01-01", "dagster/asset_partition_range_end": "2025-01-02"}
    )
    assert result.success
    # pg_class.reltuples is -1 for a table never analyzed (PostgreSQL 14+); ANALYZE counts the rows
    assert select(
        warehouse,
        "select relname, cast(reltuples as bigint) from pg_class join pg_namespace on pg_namespace.oid = relnamespace "
        "where nspname = 'raw' and relname in ('activity_events', 'rejected_records', 'ingested_files') order by relname",
    ) == [("activity_events", 12), ("ingested_files", 2), ("rejected_records", 1)]


def run_check(day: date) -> dg.AssetCheckEvaluation:
    result = materialize_events(partition_key=day.isoformat())
    assert result.success
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == REJECT_RATE_CHECK]
    return check


def test_the_binomial_tail_by_hand() -> None:
    assert binomial_upper_tail(0, 10, 0.01) == 1.0
    assert binomial_upper_tail(1, 56, 0.01) == pytest.approx(1 - 0.99**56)  # 0.4304
    assert binomial_upper_tail(2, 20, 0.01) == pytest.approx(1 - 0.99**20 - 20 * 0.01 * 0.99**19)  # 0.0169
    assert binomial_upper_tail(2, 20, 0.06) == pytest.approx(1 - 0.94**20 - 20 * 0.06 * 0.94**19)  # 0.3396
    assert binomial_upper_tail(1, 5, 0.0) == 0.0  # any reject is beyond a threshold of 0
    assert binomial_upper_tail(500, 1000, 0.01) == 0.0  # 50% against 1%: far beyond chance
    # a million lines, 2,000 rejects (0.2%) against 1%: the sum stays finite and says "likely"
    assert binomial_upper_tail(2000, 1_000_000, 0.01) == pytest.approx(1.0)


def test_reject_rate_check_judges_every_loaded_day_beyond_chance(env, landing: Landing, monkeypatch) -> None:
    monkeypatch.delenv("ANALYTICS_MAX_REJECT_RATE", raising=False)
    monkeypatch.delenv("ANALYTICS_REJECT_RATE_CONFIDENCE", raising=False)
    D4 = date(2025, 1, 4)
    landing.jsonl("activity_events", D1, "events.jsonl", good_events("a", D1, 20))  # 0 %
    landing.jsonl("activity_events", D2, "events.jsonl", good_events("b", D2, 99) + ["oops"])  # 1 / 100 = 1 %
    landing.jsonl("activity_events", D3, "events.jsonl", good_events("c", D3, 18) + ["oops", "oops"])  # 2 / 20 = 10 %
    landing.jsonl("activity_events", D4, "events.jsonl", good_events("d", D4, 55) + ["oops"])  # 1 / 56 = 1.8 %

    clean, at_threshold, above = run_check(D1), run_check(D2), run_check(D3)
    assert clean.passed and clean.metadata["worst_reject_rate"].value == 0.0
    assert at_threshold.passed  # the threshold must be exceeded, 1 % is allowed
    assert at_threshold.metadata["worst_reject_rate"].value == 0.01
    # 2 rejects of 20 would happen with probability 0.0169 if the true rate were 1 %: beyond chance
    assert not above.passed
    assert (above.metadata["threshold"].value, above.metadata["worst_reject_rate"].value) == (0.01, 0.1)
    assert above.metadata["partitions_over_threshold"].value == "2025-01-03"

    # A later, cleaner day: 1 reject in 56 happens with probability 0.43 at a 1 % rate: noise. The
    # check reads every loaded day, so the bad 2025-01-03 still fails it.
    later = run_check(D4)
    assert not later.passed
    assert later.metadata["partitions_over_threshold"].value == "2025-01-03"
    assert later.metadata["days_checked"].value == 4 and later.metadata["days_over_threshold"].value == 1
    assert "| 2025-01-03 | 20 | 2 | 10.0000% |  |" in later.metadata["failing_days"].value  # not in this run

    # Confidence 0: any rate over the threshold fails, the 1.8 % day too.
    monkeypatch.setenv("ANALYTICS_REJECT_RATE_CONFIDENCE", "0")
    strict = run_check(D4)
    assert strict.metadata["partitions_over_threshold"].value == "2025-01-03, 2025-01-04"
    assert "| 2025-01-04 | 56 | 1 | 1.7857% | yes |" in strict.metadata["failing_days"].value

    # A relaxed threshold: 10 % against 6 % has probability 0.34 with 20 lines; 1.8 % is under it.
    monkeypatch.setenv("ANALYTICS_REJECT_RATE_CONFIDENCE", "0.95")
    monkeypatch.setenv("ANALYTICS_MAX_REJECT_RATE", "0.06")
    relaxed = run_check(D4)
    assert relaxed.passed
    assert (relaxed.metadata["threshold"].value, relaxed.metadata["partitions_over_threshold"].value) == (0.06, "none")

    # Back to 1 %: still failing until the bad day itself is reloaded clean.
    monkeypatch.delenv("ANALYTICS_MAX_REJECT_RATE")
    assert not run_check(D1).passed
    landing.jsonl("activity_events", D3, "events.jsonl", good_events("c", D3, 20))
    reloaded = run_check(D3)
    assert reloaded.passed and reloaded.metadata["partitions_over_threshold"].value == "none"
    assert run_check(D4).passed


def test_a_day_without_files_that_other_datasets_have_warns(env, landing: Landing) -> None:
    """Orders on D1..D3, inventory snapshots only on D1: D2 and D3 have no snapshot files."""
    for day in (D1, D2, D3):
        landing.csv(
            "order_lines",
            day,
            "orders.csv",
            ["order_id", "line_no", "ordered_at", "org_id", "item_id", "quantity", "unit_price", "unit_cost", "status"],
            [[f"o-{day.day}", 1, f"{day.isoformat()}T10:00:00Z", "A", "I1", 1, "2.00", "1.00", "completed"]],
        )
    landing.csv(
        "inventory_snapshots", D1, "stock.csv", ["snapshot_date", "item_id", "on_hand"], [[D1.isoformat(), "I1", 3]]
    )
    window = {"dagster/asset_partition_range_start": "2025-01-01", "dagster/asset_partition_range_end": "2025-01-03"}
    assert materialize_events("order_lines", tags=window).success
    result = materialize_events("inventory_snapshots", tags=window)
    assert result.success  # missing data is a warning on the asset, not a failed run
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    missing = checks[FILES_PRESENT_CHECK]
    assert (missing.passed, missing.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert missing.metadata["missing_days"].value == "2025-01-02, 2025-01-03"
    assert missing.metadata["days_without_files"].value == 2
    assert (
        "no inventory_snapshots landing files on 2 days that order_lines have files" in missing.metadata["reason"].value
    )
    assert checks[REJECT_RATE_CHECK].passed  # no file, no reject: that is the other check's business
    observed = {
        m.materialization.partition: m.materialization.metadata["files"].value
        for m in result.get_asset_materialization_events()
    }
    assert observed == {"2025-01-01": 1, "2025-01-02": 0, "2025-01-03": 0}

    # a late snapshot file for D2 arrives and D2 is reloaded: only D3 is still missing
    landing.csv(
        "inventory_snapshots", D2, "stock.csv", ["snapshot_date", "item_id", "on_hand"], [[D2.isoformat(), "I1", 2]]
    )
    again = materialize_events("inventory_snapshots", partition_key="2025-01-02")
    [check] = [c for c in again.get_asset_check_evaluations() if c.check_name == FILES_PRESENT_CHECK]
    assert check.metadata["missing_days"].value == "2025-01-03"
    # the orders' own check passes: every day with snapshot files has order files
    orders = materialize_events("order_lines", partition_key="2025-01-01")
    assert all(c.passed for c in orders.get_asset_check_evaluations())


# -- 10. a failed write ------------------------------------------------------------------------


class SecondInsertFails:
    """Wraps a warehouse session; the second bulk insert of the transaction raises."""

    def __init__(self, session: Any):
        self._session = session
        self._inserts = 0

    def execute(self, sql: str, params: Any = ()) -> None:
        self._session.execute(sql, params)

    def query(self, sql: str, params: Any = ()) -> pa.Table:
        return self._session.query(sql, params)

    def insert_arrow(self, table: str, data: Any) -> None:
        self._inserts += 1
        if self._inserts == 2:
            raise RuntimeError(f"simulated failure while writing {table}")
        self._session.insert_arrow(table, data)


def test_a_failure_inside_the_write_keeps_the_previous_partition(warehouse, landing: Landing, monkeypatch) -> None:
    landing.jsonl(
        "activity_events",
        D2,
        "a.jsonl",
        [
            event("e1", "2025-01-02T10:00:00Z", "u1"),
            event("e2", "2025-01-02T11:00:00Z", "u2"),
            "oops",
        ],
    )
    load(warehouse, landing, ACTIVITY_EVENTS)
    before = snapshot(warehouse, ACTIVITY_EVENTS)

    landing.jsonl("activity_events", D2, "b.jsonl", [event("e3", "2025-01-02T12:00:00Z", "u3")])
    original = Warehouse.transaction

    @contextmanager
    def failing_transaction(self: Warehouse, scratch: Any = None) -> Iterator[SecondInsertFails]:
        with original(self, scratch) as session:
            yield SecondInsertFails(session)

    # rows are deleted and re-inserted (insert 1), then the rejects' insert (2) fails
    with monkeypatch.context() as patch:
        patch.setattr(Warehouse, "transaction", failing_transaction)
        with pytest.raises(RuntimeError, match="simulated failure while writing raw.rejected_records"):
            load(warehouse, landing, ACTIVITY_EVENTS)

    assert snapshot(warehouse, ACTIVITY_EVENTS) == before
    assert event_ids(warehouse) == ["e1", "e2"]
    assert [row[1:4] for row in rejects(warehouse, "activity_events")] == [(f"{EVENTS_DIR}/a.jsonl", 3, "invalid JSON")]


# -- timestamps the contract accepts -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2025-01-02T10:00Z", datetime(2025, 1, 2, 10, 0)),
        ("2025-01-02T10:00+02:00", datetime(2025, 1, 2, 8, 0)),
        ("2025-01-02T10:00:00z", datetime(2025, 1, 2, 10, 0)),
    ],
)
def test_iso_timestamps_with_minute_precision_or_lower_case_z_are_accepted(
    warehouse,
    landing: Landing,
    text: str,
    utc: datetime,
) -> None:
    landing.jsonl("activity_events", D2, "events.jsonl", [event("t1", text, "u1")])
    load(warehouse, landing, ACTIVITY_EVENTS)

    assert rejects(warehouse, "activity_events") == []
    assert select(warehouse, "select event_id, occurred_at from raw.activity_events") == [("t1", utc)]
