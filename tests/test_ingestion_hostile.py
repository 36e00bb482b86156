"""Hostile landing files and values (issue 18) cost only themselves, on DuckDB and on PostgreSQL.

Every test writes the hostile file or value next to good ones and checks, with expectations worked
out by hand: what is loaded, what is rejected with which reason, that the rest of the partition
still loads, and that lines read = loaded + rejected + duplicates for every file.

* a CSV or Parquet file whose column names repeat (also only by case) or are empty is rejected whole;
  a BOM and unknown extra columns load cleanly; wrongly-typed Parquet columns reject their records;
* numbers above ``NUMBER_LIMIT`` and decimals with more than 4 places are rejected, not overflowed or
  rounded; values at the bound go through the commerce marts (``test_values_at_the_bound_build_the_commerce_marts``);
* file names with glob characters are read by their exact name, in every format;
* skipped files and subfolders are named in the ledger and never wake the landing sensor;
* a symbolic link out of the landing root is refused without opening its target;
* reserved org ids (``__all__``, ``platform``) are rejected wherever org_id is a field;
* JSON ``NaN`` / ``Infinity`` tokens and a repeated key reject their record.
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ORDER_HEADER, Landing, event, pipeline_resources, run_pipeline, run_unpartitioned, table_rows
from test_ingestion import ledger as ingestion_ledger
from test_ingestion import load, select

from analytics_pipeline.defs.ingestion.sensors import scan_landing
from analytics_pipeline.lib.ingestion.datasets import (
    ACTIVITY_EVENTS,
    INVENTORY_SNAPSHOTS,
    ITEMS,
    NUMBER_LIMIT,
    ORDER_LINES,
    ORGANIZATIONS,
    USERS,
)
from analytics_pipeline.resources.warehouse import Warehouse

D2 = date(2025, 1, 2)
EVENTS_DIR = "activity_events/date=2025-01-02"
ORDERS_DIR = "order_lines/date=2025-01-02"
AT = "2025-01-02T10:00:00Z"


def rejects(warehouse: Warehouse, dataset: str) -> list[tuple[Any, ...]]:
    """(file, line_no, reason, raw_text) of one dataset, by file and line."""
    return select(
        warehouse,
        "select file, line_no, reason, raw_text from raw.rejected_records where dataset = ? "
        "order by file, coalesce(line_no, 0)",
        (dataset,),
    )


def ledger(warehouse: Warehouse, dataset: str) -> list[tuple[Any, ...]]:
    """The file ledger (``test_ingestion.ledger``), with every row's accounting checked."""
    rows = ingestion_ledger(warehouse, dataset)
    assert all(row[1] == row[2] + row[3] + row[4] for row in rows)  # the accounting of SPEC §4
    return rows


def order(order_id: str, quantity: Any = 1, price: Any = "2.50", cost: Any = "1.00", org: str = "A") -> list[Any]:
    return [order_id, 1, AT, org, "u1", "i1", quantity, price, cost, "USD", "completed"]


def write_good_orders(landing: Landing) -> None:
    landing.csv("order_lines", D2, "good.csv", ORDER_HEADER, [order("g1"), order("g2")])


def order_ids(warehouse: Warehouse) -> list[str]:
    return [row[0] for row in select(warehouse, "select order_id from raw.order_lines order by order_id")]


# -- 2. file shapes that must reject the file, not stop the partition ------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ([*ORDER_HEADER, "quantity"], "CSV header repeats the column 'quantity' (names are case-insensitive)"),
        ([*ORDER_HEADER[:-1], "QUANTITY"], "CSV header repeats the column 'quantity' (names are case-insensitive)"),
        ([*ORDER_HEADER[:-1], ""], "CSV header has an empty column name (column 11)"),
    ],
)
def test_a_csv_header_that_is_not_a_set_of_names_rejects_only_its_file(
    warehouse,
    landing: Landing,
    header: list[str],
    reason: str,
) -> None:
    write_good_orders(landing)
    rows = [order("b1")[: len(header)] + [7] * (len(header) - 11)]
    path = landing.csv("order_lines", D2, "bad.csv", header, rows)
    report = load(warehouse, landing, ORDER_LINES)

    assert order_ids(warehouse) == ["g1", "g2"]
    assert rejects(warehouse, "order_lines") == [(f"{ORDERS_DIR}/bad.csv", None, reason, path.read_text())]
    assert ledger(warehouse, "order_lines") == [
        (f"{ORDERS_DIR}/bad.csv", 0, 0, 0, 0, reason),
        (f"{ORDERS_DIR}/good.csv", 2, 2, 0, 0, None),
    ]
    assert report.files_rejected == 1


def test_a_bom_unknown_columns_and_a_header_only_file_load_cleanly(warehouse, landing: Landing) -> None:
    text = "\ufeff" + ",".join([*ORDER_HEADER, "coupon"]) + "\n" + ",".join(map(str, [*order("b1"), "X"])) + "\n"
    landing.raw("order_lines", D2, "bom.csv", text.encode())
    landing.csv("order_lines", D2, "header-only.csv", ORDER_HEADER, [])
    write_good_orders(landing)
    load(warehouse, landing, ORDER_LINES)

    assert order_ids(warehouse) == ["b1", "g1", "g2"]
    assert rejects(warehouse, "order_lines") == []
    assert ledger(warehouse, "order_lines") == [
        (f"{ORDERS_DIR}/bom.csv", 1, 1, 0, 0, None),
        (f"{ORDERS_DIR}/good.csv", 2, 2, 0, 0, None),
        (f"{ORDERS_DIR}/header-only.csv", 0, 0, 0, 0, None),
    ]


def test_a_parquet_file_repeating_a_column_is_rejected_and_wrong_types_reject_their_records(
    warehouse,
    landing: Landing,
) -> None:
    write_good_orders(landing)
    folder = landing.folder("order_lines", D2)
    columns = {name: pa.array([str(value)]) for name, value in zip(ORDER_HEADER, order("p1"), strict=True)}
    twice = pa.Table.from_arrays([*columns.values(), pa.array(["9"])], names=[*ORDER_HEADER, "QUANTITY"])
    pq.write_table(twice, folder / "twice.parquet")
    # epoch seconds where a timestamp belongs, an integer where text belongs
    epoch = pa.table(
        {
            **columns,
            "order_id": pa.array(["e1"]),
            "ordered_at": pa.array([1735812000], pa.int64()),
            "user_id": pa.array([42], pa.int64()),
        }
    )
    pq.write_table(epoch, folder / "epoch.parquet")
    # a type DuckDB cannot take at all (half-precision float): the catch-all rejects the file
    half = pa.table({**columns, "order_id": pa.array(["h1"]), "quantity": pa.array(np.array([2], np.float16))})
    pq.write_table(half, folder / "half.parquet")
    load(warehouse, landing, ORDER_LINES)

    assert order_ids(warehouse) == ["g1", "g2"]
    twice_reason = "Parquet file repeats the column 'quantity' (names are case-insensitive)"
    half_reason = "not a readable parquet file (Not implemented Error: Unsupported Internal Arrow Type e)"
    assert [row[:3] for row in rejects(warehouse, "order_lines")] == [
        (f"{ORDERS_DIR}/epoch.parquet", 1, "ordered_at is not an ISO-8601 timestamp with offset or Z: '1735812000'"),
        (f"{ORDERS_DIR}/half.parquet", None, half_reason),
        (f"{ORDERS_DIR}/twice.parquet", None, twice_reason),
    ]
    assert ledger(warehouse, "order_lines") == [
        (f"{ORDERS_DIR}/epoch.parquet", 1, 0, 1, 0, None),
        (f"{ORDERS_DIR}/good.csv", 2, 2, 0, 0, None),
        (f"{ORDERS_DIR}/half.parquet", 0, 0, 0, 0, half_reason),
        (f"{ORDERS_DIR}/twice.parquet", 0, 0, 0, 0, twice_reason),
    ]


def test_a_parquet_fraction_or_nan_where_an_integer_belongs_is_rejected(warehouse, landing: Landing) -> None:
    columns = {name: pa.array([str(value)] * 2) for name, value in zip(ORDER_HEADER, order("p"), strict=True)}
    table = pa.table(
        {
            **columns,
            "order_id": pa.array(["f1", "f2"]),
            "quantity": pa.array([2.5, float("nan")], pa.float64()),
            "unit_price": pa.array([float("inf"), 1.5], pa.float64()),
        }
    )
    pq.write_table(table, landing.folder("order_lines", D2) / "floats.parquet")
    write_good_orders(landing)
    load(warehouse, landing, ORDER_LINES)

    assert order_ids(warehouse) == ["g1", "g2"]
    assert [row[1:3] for row in rejects(warehouse, "order_lines")] == [
        (1, "quantity is not an integer: '2.5'"),
        (2, "quantity is not an integer: 'nan'"),
    ]


# -- 3. numbers the warehouse and the marts can hold ---------------------------------------------


def test_numbers_beyond_the_bound_or_the_scale_are_rejected_never_overflowed_or_rounded(
    warehouse,
    landing: Landing,
) -> None:
    limit = str(NUMBER_LIMIT)
    rows = [
        order("a-at-bound", limit, f"{limit}.0000", limit),  # line 2: loads
        order("b-issue", "999999999999999999"),  # 3: the value of issue 18
        order("c-int-overflow", "99999999999999999999"),  # 4: too large even for bigint
        order("d-price", 1, f"{limit}.0001"),  # 5: just above the bound
        order("e-exponent", 1, "1e+18"),  # 6: how JSON writes 10^18
        order("f-huge", 1, "1e40"),  # 7: too large for any decimal
        order("g-scale", 1, "1.23456"),  # 8: would round to 1.2346
        order("h-tiny", 1, "0.00004"),  # 9: would round to 0
        order("i-zeros", 1, "1.50000"),  # 10: loads: only zeros beyond 4 places
        order("j-exp-scale", 1, "4e-05"),  # 11: 0.00004 in exponent form
        order("k-exp-ok", 1, "1.5e2"),  # 12: loads as 150
        order("l-negative-huge", "-99999999999999999999"),  # 13
    ]
    path = landing.csv("order_lines", D2, "orders.csv", ORDER_HEADER, rows)
    write_good_orders(landing)
    load(warehouse, landing, ORDER_LINES)

    assert select(
        warehouse, "select order_id, quantity, unit_price, unit_cost from raw.order_lines order by order_id"
    ) == [
        ("a-at-bound", NUMBER_LIMIT, Decimal("1000000000.0000"), Decimal("1000000000.0000")),
        ("g1", 1, Decimal("2.5"), Decimal("1")),
        ("g2", 1, Decimal("2.5"), Decimal("1")),
        ("i-zeros", 1, Decimal("1.5"), Decimal("1")),
        ("k-exp-ok", 1, Decimal("150"), Decimal("1")),
    ]
    lines = path.read_text().splitlines()
    file = f"{ORDERS_DIR}/orders.csv"
    assert rejects(warehouse, "order_lines") == [
        (file, 3, "quantity must be <= 1000000000, got 999999999999999999", lines[2]),
        (file, 4, "quantity must be <= 1000000000, got 99999999999999999999", lines[3]),
        (file, 5, "unit_price must be <= 1000000000, got 1000000000.0001", lines[4]),
        (file, 6, "unit_price must be <= 1000000000, got 1e+18", lines[5]),
        (file, 7, "unit_price must be <= 1000000000, got 1e40", lines[6]),
        (file, 8, "unit_price has more than 4 decimal places: '1.23456'", lines[7]),
        (file, 9, "unit_price has more than 4 decimal places: '0.00004'", lines[8]),
        (file, 11, "unit_price has more than 4 decimal places: '4e-05'", lines[10]),
        (file, 13, "quantity must be >= 1, got -99999999999999999999", lines[12]),
    ]
    assert ledger(warehouse, "order_lines") == [(f"{ORDERS_DIR}/good.csv", 2, 2, 0, 0, None), (file, 12, 3, 9, 0, None)]


def test_every_numeric_field_is_bounded(warehouse, landing: Landing) -> None:
    above = str(NUMBER_LIMIT + 1)
    landing.csv(
        "inventory_snapshots",
        D2,
        "stock.csv",
        ["snapshot_date", "item_id", "on_hand", "on_order", "reorder_point"],
        [
            ["2025-01-02", "i1", NUMBER_LIMIT, NUMBER_LIMIT, NUMBER_LIMIT],  # line 2: at the bound
            ["2025-01-02", "i2", above, 0, 0],
            ["2025-01-02", "i3", 0, above, 0],
            ["2025-01-02", "i4", 0, 0, above],
        ],
    )
    landing.jsonl(
        "activity_events",
        D2,
        "events.jsonl",
        [
            event("e1", AT, "u1", duration_ms=NUMBER_LIMIT),
            event("e2", AT, "u1", duration_ms=NUMBER_LIMIT + 1),
        ],
    )
    landing.jsonl(
        "items",
        None,
        "items.jsonl",
        [
            {"item_id": "i1", "unit_cost": 1000000000, "list_price": 0.5, "updated_at": AT},
            {"item_id": "i2", "unit_cost": 1000000000.5, "updated_at": AT},
            {"item_id": "i3", "list_price": 0.00001, "updated_at": AT},  # JSON writes it 1e-05
        ],
    )
    landing.csv(
        "order_lines",
        D2,
        "orders.csv",
        ORDER_HEADER,
        [
            [*order("o1")[:1], NUMBER_LIMIT + 1, *order("o1")[2:]],
        ],
    )
    for dataset, day in ((INVENTORY_SNAPSHOTS, D2), (ACTIVITY_EVENTS, D2), (ITEMS, None), (ORDER_LINES, D2)):
        load(warehouse, landing, dataset, day)

    assert select(warehouse, "select item_id, on_hand, on_order, reorder_point from raw.inventory_snapshots") == [
        ("i1", NUMBER_LIMIT, NUMBER_LIMIT, NUMBER_LIMIT)
    ]
    assert [row[2] for row in rejects(warehouse, "inventory_snapshots")] == [
        f"on_hand must be <= 1000000000, got {above}",
        f"on_order must be <= 1000000000, got {above}",
        f"reorder_point must be <= 1000000000, got {above}",
    ]
    assert select(warehouse, "select event_id, duration_ms from raw.activity_events") == [("e1", NUMBER_LIMIT)]
    assert [row[2] for row in rejects(warehouse, "activity_events")] == [
        f"duration_ms must be <= 1000000000, got {above}"
    ]
    assert select(warehouse, "select item_id, unit_cost, list_price from raw.items") == [
        ("i1", Decimal("1000000000"), Decimal("0.5"))
    ]
    assert [row[1:3] for row in rejects(warehouse, "items")] == [
        (2, "unit_cost must be <= 1000000000, got 1000000000.5"),
        (3, "list_price has more than 4 decimal places: '1e-05'"),
    ]
    assert [row[1:3] for row in rejects(warehouse, "order_lines")] == [
        (2, f"line_no must be <= 1000000000, got {above}")
    ]


def test_values_at_the_bound_build_the_commerce_marts(env, warehouse, landing: Landing) -> None:
    """Three completed lines at the bound on one day: every money sum is 3 x 10^18, beyond the 10^14
    a numeric(18,4) mart column holds, and the marts still build with exact numbers."""
    limit, big = NUMBER_LIMIT, Decimal(NUMBER_LIMIT) * NUMBER_LIMIT
    landing.csv(
        "items",
        None,
        "items.csv",
        ["item_id", "name", "category", "unit_cost", "list_price", "active", "updated_at"],
        [["i1", "Gold", "x", limit, limit, "true", "2024-12-01T00:00:00Z"]],
    )
    landing.csv("order_lines", D2, "orders.csv", ORDER_HEADER, [order(f"o{n}", limit, limit, limit) for n in range(3)])
    landing.csv(
        "inventory_snapshots",
        D2,
        "stock.csv",
        ["snapshot_date", "item_id", "on_hand", "on_order", "reorder_point"],
        [["2025-01-02", "i1", limit, limit, limit]],
    )
    landing.jsonl("activity_events", D2, "events.jsonl", [event("e1", AT, "u1", duration_ms=limit)])
    assert run_unpartitioned(dg.AssetSelection.assets(["raw", "items"])).success
    result = run_pipeline(D2)
    assert result.success

    [kpi] = table_rows(warehouse, "marts.fct_kpi_daily", "kpi_date")
    assert (kpi["revenue"], kpi["cogs"], kpi["gross_profit"], kpi["units"], kpi["orders"]) == (
        3 * big,
        3 * big,
        0,
        3 * limit,
        3,
    )
    assert (kpi["avg_order_value"], kpi["inventory_value"]) == (big, big)  # 10^9 on hand x cost 10^9
    [demand] = table_rows(warehouse, "marts.fct_item_daily_demand", "demand_date")
    assert (demand["units"], demand["revenue"], demand["on_hand"]) == (3 * limit, 3 * big, limit)


# -- 4. file names are names, not glob patterns --------------------------------------------------


def write_named(landing: Landing, name: str, event_id: str) -> None:
    record = event(event_id, AT, "u1")
    jsonl = (json.dumps(record) + "\n").encode()
    csv_bytes = (",".join(record) + "\n" + ",".join(str(v) for v in record.values()) + "\n").encode()
    folder = landing.folder("activity_events", D2)
    if name.endswith(".parquet"):
        pq.write_table(pa.table({k: [v] for k, v in record.items()}), folder / name)
    elif name.endswith(".jsonl.gz"):
        (folder / name).write_bytes(gzip.compress(jsonl))
    elif name.endswith(".jsonl"):
        (folder / name).write_bytes(jsonl)
    elif name.endswith(".csv.gz"):
        (folder / name).write_bytes(gzip.compress(csv_bytes))
    else:
        (folder / name).write_bytes(csv_bytes)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".csv", ".csv.gz", ".parquet"])
def test_a_file_name_with_glob_characters_is_read_by_its_exact_name(warehouse, landing: Landing, suffix: str) -> None:
    names = {
        f"x[1]{suffix}": "bracket",
        f"x1{suffix}": "plain",
        f"snap-*{suffix}": "star",
        f"snap-1{suffix}": "snap1",
        f"snap-2{suffix}": "snap2",
        f"what?{suffix}": "question",
    }
    for name, event_id in names.items():
        write_named(landing, name, event_id)
    load(warehouse, landing, ACTIVITY_EVENTS)

    loaded = select(warehouse, "select _source_file, event_id from raw.activity_events order by _source_file")
    assert loaded == sorted((f"{EVENTS_DIR}/{name}", event_id) for name, event_id in names.items())
    assert rejects(warehouse, "activity_events") == []
    assert ledger(warehouse, "activity_events") == sorted((f"{EVENTS_DIR}/{name}", 1, 1, 0, 0, None) for name in names)


# -- 5. skipped files are recorded, and do not wake the sensor -----------------------------------


def test_skipped_files_and_unknown_types_are_recorded_and_the_sensor_ignores_what_is_skipped(
    warehouse,
    landing: Landing,
) -> None:
    landing.jsonl("users", None, "users.jsonl", [{"user_id": "u1", "org_id": "A", "updated_at": AT}])
    landing.raw("users", None, "_SUCCESS", b"")
    (landing.folder("users") / "archive").mkdir()
    (landing.folder("users") / "archive" / "old.jsonl").write_text("{}\n")
    landing.raw("users", None, "users.xlsx", b"PK\x03\x04")
    landing.jsonl("activity_events", D2, "events.jsonl", [event("e1", AT, "u1")])
    landing.raw("activity_events", D2, "~events.jsonl.tmp", b"half a li")
    (landing.folder("activity_events", D2) / "nested").mkdir()
    report = load(warehouse, landing, USERS, None)

    assert ledger(warehouse, "users") == [
        ("users/_SUCCESS", 0, 0, 0, 0, "skipped: marker or temporary file (name starts with '_')"),
        ("users/archive/", 0, 0, 0, 0, "skipped: subfolder (files in subfolders of a landing folder are not read)"),
        ("users/users.jsonl", 1, 1, 0, 0, None),
        (
            "users/users.xlsx",
            0,
            0,
            0,
            0,
            "unsupported file type 'users.xlsx'; expected one of .csv, .csv.gz, .jsonl, .jsonl.gz, .parquet",
        ),
    ]
    assert [row[:3] for row in rejects(warehouse, "users")] == [("users/users.xlsx", None, report.files[3].file_error)]
    assert report.files_rejected == 1  # the unknown type is a rejected file; skipped entries are not

    # the sensor only wakes for files the loader reads
    assert sorted(v.path for v in scan_landing(landing.root)) == [f"{EVENTS_DIR}/events.jsonl", "users/users.jsonl"]


# -- 6. symbolic links ---------------------------------------------------------------------------


def test_a_link_out_of_the_landing_root_is_refused_unread_and_a_link_inside_is_read(
    warehouse,
    landing: Landing,
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"password": "hunter2"}\n')
    folder = landing.folder("activity_events", D2)
    os.symlink(secret, folder / "leak.jsonl")
    os.symlink(tmp_path / "gone.jsonl", folder / "broken.jsonl")
    os.symlink(folder / "loop-b.jsonl", folder / "loop-a.jsonl")
    os.symlink(folder / "loop-a.jsonl", folder / "loop-b.jsonl")
    elsewhere = landing.jsonl("activity_events", None, "staged.jsonl", [event("s1", AT, "u1")])
    os.symlink(elsewhere, folder / "inside.jsonl")
    landing.jsonl("activity_events", D2, "good.jsonl", [event("g1", AT, "u1")])
    report = load(warehouse, landing, ACTIVITY_EVENTS)

    assert select(warehouse, "select event_id, _source_file from raw.activity_events order by event_id") == [
        ("g1", f"{EVENTS_DIR}/good.jsonl"),
        ("s1", f"{EVENTS_DIR}/inside.jsonl"),
    ]
    outside = "symbolic link to a file outside the landing zone (not followed)"
    assert rejects(warehouse, "activity_events") == [
        (f"{EVENTS_DIR}/broken.jsonl", None, outside, ""),  # its missing target would be outside too
        (f"{EVENTS_DIR}/leak.jsonl", None, outside, ""),  # nothing of the target
        (f"{EVENTS_DIR}/loop-a.jsonl", None, "symbolic link that does not resolve (a loop of links)", ""),
        (f"{EVENTS_DIR}/loop-b.jsonl", None, "symbolic link that does not resolve (a loop of links)", ""),
    ]
    assert [row[0] for row in ledger(warehouse, "activity_events")] == [
        f"{EVENTS_DIR}/broken.jsonl",
        f"{EVENTS_DIR}/good.jsonl",
        f"{EVENTS_DIR}/inside.jsonl",
        f"{EVENTS_DIR}/leak.jsonl",
        f"{EVENTS_DIR}/loop-a.jsonl",
        f"{EVENTS_DIR}/loop-b.jsonl",
    ]
    assert report.files_rejected == 4


# -- 10. reserved org ids ------------------------------------------------------------------------


def test_reserved_org_ids_are_rejected_wherever_org_id_is_a_field(warehouse, landing: Landing) -> None:
    landing.jsonl(
        "activity_events",
        D2,
        "events.jsonl",
        [
            event("e1", AT, "u1", org="platform"),
            event("e2", AT, "u1", org="__all__"),
            event("e3", AT, "u1", org=" __ALL__ "),
            event("e4", AT, "u1", org="platforms"),
        ],
    )
    landing.csv("order_lines", D2, "orders.csv", ORDER_HEADER, [order("o1", org="Platform"), order("o2", org="B")])
    landing.jsonl(
        "organizations",
        None,
        "orgs.jsonl",
        [
            {"org_id": "__all__", "name": "All", "updated_at": AT},
            {"org_id": "A", "name": "A", "updated_at": AT},
        ],
    )
    landing.jsonl(
        "users",
        None,
        "users.jsonl",
        [
            {"user_id": "u1", "org_id": "platform", "updated_at": AT},
            {"user_id": "u2", "org_id": "A", "updated_at": AT},
        ],
    )
    for dataset, day in ((ACTIVITY_EVENTS, D2), (ORDER_LINES, D2), (ORGANIZATIONS, None), (USERS, None)):
        load(warehouse, landing, dataset, day)

    reserved = " is reserved for platform-wide rows (reserved: __all__, platform)"
    assert select(warehouse, "select event_id, org_id from raw.activity_events") == [("e4", "platforms")]
    assert [row[1:3] for row in rejects(warehouse, "activity_events")] == [
        (1, f"org_id 'platform'{reserved}"),
        (2, f"org_id '__all__'{reserved}"),
        (3, f"org_id '__ALL__'{reserved}"),
    ]
    assert order_ids(warehouse) == ["o2"]
    assert [row[1:3] for row in rejects(warehouse, "order_lines")] == [(2, f"org_id 'Platform'{reserved}")]
    assert select(warehouse, "select org_id from raw.organizations") == [("A",)]
    assert [row[1:3] for row in rejects(warehouse, "organizations")] == [(1, f"org_id '__all__'{reserved}")]
    assert select(warehouse, "select user_id from raw.users") == [("u2",)]
    assert [row[1:3] for row in rejects(warehouse, "users")] == [(1, f"org_id 'platform'{reserved}")]


# -- 11. JSON that is not JSON -------------------------------------------------------------------

NON_JSON_LINES = [
    '{"event_id": "n1", "occurred_at": "%s", "user_id": "u1", "org_id": "A", "activity_type": "login", "session_id": NaN}',
    '{"event_id": NaN, "occurred_at": "%s", "user_id": "u1", "org_id": "A", "activity_type": "login"}',
    '{"event_id": "n3", "occurred_at": "%s", "user_id": "u1", "org_id": "A", "activity_type": "login", "properties": {"x": [1, -Infinity]}}',
    '{"event_id": "n4", "occurred_at": "%s", "user_id": "u1", "org_id": "A", "activity_type": "login", "duration_ms": inf}',
    '{"event_id": "n5", "occurred_at": "%s", "user_id": "u1", "org_id": "A", "org_id": "platform", "activity_type": "login"}',
    '{"event_id": "n6", "occurred_at": "%s", "user_id": "u1", "org_id": "A", "activity_type": "login", "session_id": "NaN", "properties": {"note": "Infinity \\" NaN", "user_id": "user_id"}}',
    '{"event_id": "n7", "occurred_at": "%s", "user_id": "u1", "org_id": "A", "activity_type": "login", "properties": {"k": 1, "k": 2}}',
]


def test_nan_infinity_and_a_repeated_key_reject_the_record(warehouse, landing: Landing) -> None:
    lines = [line % AT for line in NON_JSON_LINES]
    landing.jsonl("activity_events", D2, "events.jsonl", lines)
    landing.jsonl("activity_events", D2, "good.jsonl", [event("g1", AT, "u1")])
    load(warehouse, landing, ACTIVITY_EVENTS)

    # n6: "NaN" and "Infinity" inside strings, and a nested key named like a field, are ordinary text;
    # n7: keys inside properties are stored as written (nothing of them is resolved by the pipeline)
    rows = select(warehouse, "select event_id, session_id, properties from raw.activity_events order by event_id")
    assert [(row[0], row[1], json.loads(row[2]) if row[2] else None) for row in rows] == [
        ("g1", "s1", None),
        ("n6", "NaN", {"note": 'Infinity " NaN', "user_id": "user_id"}),
        ("n7", None, {"k": 2}),
    ]
    assert '"k":1' in rows[2][2].replace(" ", "")
    non_finite = "invalid JSON: NaN and Infinity are not JSON numbers"
    assert rejects(warehouse, "activity_events") == [
        (f"{EVENTS_DIR}/events.jsonl", 1, non_finite, lines[0]),
        (f"{EVENTS_DIR}/events.jsonl", 2, non_finite, lines[1]),
        (f"{EVENTS_DIR}/events.jsonl", 3, non_finite, lines[2]),
        (f"{EVENTS_DIR}/events.jsonl", 4, non_finite, lines[3]),
        (f"{EVENTS_DIR}/events.jsonl", 5, 'the key "org_id" occurs twice in the record', lines[4]),
    ]
    assert ledger(warehouse, "activity_events") == [
        (f"{EVENTS_DIR}/events.jsonl", 7, 2, 5, 0, None),
        (f"{EVENTS_DIR}/good.jsonl", 1, 1, 0, 0, None),
    ]


def test_the_materialization_counts_skipped_entries_apart_from_files_read(env, landing: Landing) -> None:
    from analytics_pipeline.defs.ingestion.assets import ingestion_assets

    landing.jsonl("activity_events", D2, "events.jsonl", [event("e1", AT, "u1")])
    landing.raw("activity_events", D2, "_SUCCESS", b"")
    asset = next(a for a in ingestion_assets if a.key == dg.AssetKey(["raw", "activity_events"]))
    result = dg.materialize(
        [asset],
        resources=pipeline_resources(),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key=D2.isoformat(),
    )
    assert result.success

    [materialization] = result.get_asset_materialization_events()
    metadata = materialization.materialization.metadata
    names = ("files", "files_skipped", "files_rejected", "reject_rate")
    assert {name: metadata[name].value for name in names} == {
        "files": 1,
        "files_skipped": 1,
        "files_rejected": 0,
        "reject_rate": 0.0,
    }
    assert "| skipped: marker or temporary file (name starts with '_') |" in metadata["file_accounting"].value
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "reject_rate_below_threshold"]
    assert check.passed  # a skipped marker file is not an unreadable file
