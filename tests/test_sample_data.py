"""The sample-data generator honours the landing contract, is deterministic, looks like real usage
and injects bad records only when asked to."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analytics_pipeline.lib.sample_data import generate

EVENT_REQUIRED = ("event_id", "occurred_at", "user_id", "org_id", "activity_type")
SMALL = {"events_per_day": 1_500, "users": 300}


def read_text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode("utf-8")


def event_lines(landing: Path, day: date) -> list[str]:
    folder = landing / "activity_events" / f"date={day.isoformat()}"
    return [
        line
        for name in ("events-part-0.jsonl", "events-part-1.jsonl.gz")
        for line in read_text(folder / name).splitlines()
    ]


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_text(path))))


def utc_date(timestamp: str) -> date:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).date()


def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def test_same_seed_gives_identical_files_and_another_seed_different_events(tmp_path: Path) -> None:
    start, end = date(2025, 1, 6), date(2025, 1, 7)
    generate(tmp_path / "a", start, end, seed=11, bad_rate=0.01, **SMALL)
    generate(tmp_path / "b", start, end, seed=11, bad_rate=0.01, **SMALL)
    generate(tmp_path / "c", start, end, seed=12, bad_rate=0.01, **SMALL)

    first, second = all_files(tmp_path / "a"), all_files(tmp_path / "b")
    assert first and first.keys() == second.keys()
    assert all(first[name] == second[name] for name in first)
    assert event_lines(tmp_path / "a", start) != event_lines(tmp_path / "c", start)


def test_rerun_overwrites_existing_files(tmp_path: Path) -> None:
    start = date(2025, 1, 6)
    generate(tmp_path, start, start, seed=1, **SMALL)
    generate(tmp_path, start, start, seed=2, **SMALL)
    generate(tmp_path / "fresh", start, start, seed=2, **SMALL)
    fresh = all_files(tmp_path / "fresh")
    rerun = {k: v for k, v in all_files(tmp_path).items() if not k.startswith("fresh/")}
    assert rerun == fresh


def test_layout_and_contract_without_bad_records(tmp_path: Path) -> None:
    start, end = date(2025, 1, 3), date(2025, 1, 5)
    summary = generate(tmp_path, start, end, bad_rate=0.0, **SMALL)

    for dimension in (
        "organizations/organizations.jsonl",
        "organizations/organizations-updates.jsonl",
        "users/users.csv",
        "items/items.parquet",
    ):
        assert (tmp_path / dimension).is_file(), dimension
    items = pq.read_table(tmp_path / "items" / "items.parquet").to_pylist()
    active_items = {item["item_id"] for item in items if item["active"]}
    assert all(item["list_price"] > item["unit_cost"] for item in items)
    assert 0 < len(active_items) < len(items)

    event_ids: list[str] = []
    for day in days(start, end):
        for dataset, name in (
            ("activity_events", "events-part-0.jsonl"),
            ("activity_events", "events-part-1.jsonl.gz"),
            ("order_lines", "orders.csv"),
            ("inventory_snapshots", "inventory.csv.gz"),
        ):
            assert (tmp_path / dataset / f"date={day.isoformat()}" / name).is_file()

        for line in event_lines(tmp_path, day):
            record = json.loads(line)
            assert all(record.get(field) for field in EVENT_REQUIRED)
            assert utc_date(record["occurred_at"]) == day
            assert isinstance(record["properties"], dict)
            assert record["duration_ms"] is None or record["duration_ms"] >= 0
            event_ids.append(record["event_id"])

        orders = csv_rows(tmp_path / "order_lines" / f"date={day.isoformat()}" / "orders.csv")
        assert {row["status"] for row in orders} <= {"completed", "refunded", "cancelled"}
        assert all(int(row["quantity"]) > 0 for row in orders)
        assert all(utc_date(row["ordered_at"]) == day for row in orders)
        assert len({(row["order_id"], row["line_no"]) for row in orders}) == len(orders)

        stock = csv_rows(tmp_path / "inventory_snapshots" / f"date={day.isoformat()}" / "inventory.csv.gz")
        assert sorted(row["item_id"] for row in stock) == sorted(active_items)
        assert all(row["snapshot_date"] == day.isoformat() for row in stock)
        assert all(int(row["on_hand"]) >= 0 for row in stock)

    assert len(event_ids) == len(set(event_ids)) == summary.rows["activity_events"]
    assert all(count == 0 for count in summary.bad_records.values())
    assert summary.files_written == 4 * 3 + 4


def test_latest_organization_update_changes_the_plan(tmp_path: Path) -> None:
    generate(tmp_path, date(2025, 1, 3), date(2025, 1, 5), **SMALL)
    folder = tmp_path / "organizations"
    base = {
        record["org_id"]: record for record in map(json.loads, read_text(folder / "organizations.jsonl").splitlines())
    }
    updates = list(map(json.loads, read_text(folder / "organizations-updates.jsonl").splitlines()))
    assert 1 <= len(updates) <= 2
    for update in updates:
        assert update["updated_at"] > base[update["org_id"]]["updated_at"]
        assert update["plan"] != base[update["org_id"]]["plan"]


def test_weekdays_are_much_busier_than_weekends(tmp_path: Path) -> None:
    start, end = date(2025, 3, 3), date(2025, 3, 16)  # two full weeks from a Monday
    generate(tmp_path, start, end, bad_rate=0.0, events_per_day=1_000, users=300)
    volume = {day: len(event_lines(tmp_path, day)) for day in days(start, end)}
    weekday = [count for day, count in volume.items() if day.weekday() < 5]
    weekend = [count for day, count in volume.items() if day.weekday() >= 5]
    assert sum(weekday) / len(weekday) > 2.5 * sum(weekend) / len(weekend)


def test_inventory_runs_out_of_stock_sometimes(tmp_path: Path) -> None:
    start, end = date(2025, 3, 1), date(2025, 4, 29)
    generate(tmp_path, start, end, bad_rate=0.0, events_per_day=50)
    on_hand = [
        int(row["on_hand"])
        for day in days(start, end)
        for row in csv_rows(tmp_path / "inventory_snapshots" / f"date={day.isoformat()}" / "inventory.csv.gz")
    ]
    assert 0 in on_hand
    assert on_hand.count(0) < len(on_hand) / 4


def test_bad_records_are_injected_and_counted(tmp_path: Path) -> None:
    day = date(2025, 1, 6)
    summary = generate(tmp_path, day, day, bad_rate=0.05, **SMALL)
    assert all(summary.bad_records[name] > 0 for name in ("activity_events", "order_lines"))

    problems: Counter[str] = Counter()
    ids: Counter[str] = Counter()
    lines = event_lines(tmp_path, day)
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            problems["unparseable"] += 1
            continue
        if not all(record.get(field) for field in EVENT_REQUIRED):
            problems["missing_field"] += 1
            continue
        try:
            if utc_date(record["occurred_at"]) != day:
                problems["wrong_date"] += 1
        except ValueError:
            problems["bad_timestamp"] += 1
        ids[record["event_id"]] += 1
    problems["duplicate"] = sum(count - 1 for count in ids.values())

    assert len(lines) == summary.rows["activity_events"]
    assert problems["unparseable"] > 0 and problems["missing_field"] > 0
    assert sum(problems.values()) == summary.bad_records["activity_events"]
    orders = csv_rows(tmp_path / "order_lines" / f"date={day.isoformat()}" / "orders.csv")
    assert len(orders) == summary.rows["order_lines"]


@pytest.mark.parametrize("seed", range(5))
def test_no_day_gets_more_bad_records_than_the_reject_rate_check_allows(seed: int) -> None:
    """At the demo's bad rate (0.2%) a day of any size holds at most the bad records the check's
    default settings allow (1% threshold, 95% confidence): 1 bad line among 4 would fail (the chance
    of 1+ rejects among 4 at a 1% rate is 1 - 0.99**4 = 3.9% < 5%), 1 among 6 passes (5.9%). The
    first days still get one bad record each whenever that passes, so every kind appears early."""
    import numpy as np
    from scipy.stats import binom

    from analytics_pipeline.lib.sample_data.defects import _defect_positions

    rng = np.random.default_rng(seed)
    for rows in range(1, 3_000):
        positions, kinds = _defect_positions(rng, rows, 0.002, ("a", "b", "c"), defects_so_far=0)
        bad = len(positions)
        assert bad == 0 or binom.sf(bad - 1, rows, 0.01) >= 0.05, (rows, bad)
        assert (bad >= 1) == (rows >= 6), (rows, bad)  # forced until every kind appeared, where it passes
        assert len(kinds) == bad


@pytest.mark.parametrize(
    "arguments",
    [
        {"start": date(2025, 1, 2), "end": date(2025, 1, 1)},
        {"events_per_day": 0},
        {"orgs": -1},
        {"users": 0},
        {"items": 0},
        {"bad_rate": -0.01},
        {"bad_rate": 0.6},
    ],
)
def test_invalid_arguments_raise_value_error(tmp_path: Path, arguments: dict) -> None:
    call = {"start": date(2025, 1, 1), "end": date(2025, 1, 1), **arguments}
    with pytest.raises(ValueError):
        generate(tmp_path, **call)
    assert not any(tmp_path.iterdir())


# What each injected kind of bad record is rejected as (raw.rejected_records.reason), per dataset.
REJECT_KINDS = {
    "activity_events": {
        "invalid JSON": "truncated_json",
        "missing required field": "missing_field",
        "is not an ISO-8601 timestamp": "unparseable_timestamp",
        "outside the folder date": "wrong_date",
    },
    "order_lines": {
        "missing required field": "missing_field",
        "is not an ISO-8601 timestamp": "unparseable_timestamp",
        "outside the folder date": "wrong_date",
        "quantity must be >= 1": "non_positive_quantity",
        "unknown status": "unknown_status",
    },
    "inventory_snapshots": {
        "missing required field": "missing_field",
        "on_hand must be >= 0": "negative_on_hand",
        "snapshot_date is not a date": "unparseable_date",
    },
}


def test_demo_data_passes_its_own_checks_and_holds_every_kind_of_bad_record(env: dict[str, str]) -> None:
    """A week with the demo's defaults (60 items, bad rate 0.2%): every check of the ingestion assets
    passes, and every kind of bad record the generator knows is there and rejected as such."""
    import dagster as dg
    from conftest import run_pipeline, run_unpartitioned

    from analytics_pipeline.lib.sample_data import (
        EVENT_DEFECTS,
        INVENTORY_DEFECTS,
        ORDER_DEFECTS,
    )
    from analytics_pipeline.resources.warehouse import Warehouse
    from analytics_pipeline.settings import get_settings

    start, end = date(2025, 1, 6), date(2025, 1, 12)
    summary = generate(Path(env["ANALYTICS_LANDING_DIR"]), start, end, **SMALL)
    assert run_unpartitioned(
        dg.AssetSelection.assets(["raw", "organizations"], ["raw", "users"], ["raw", "items"])
    ).success
    daily = dg.AssetSelection.assets(["raw", "activity_events"], ["raw", "order_lines"], ["raw", "inventory_snapshots"])
    result = run_pipeline(start, end, selection=daily)
    assert result.success

    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 6  # reject rate and files present, for each daily dataset
    assert [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed] == []

    warehouse = Warehouse(get_settings())
    reasons = warehouse.query(
        "select dataset, reason, count(*) as n from raw.rejected_records group by dataset, reason"
    ).to_pylist()
    found: dict[str, set[str]] = {name: set() for name in REJECT_KINDS}
    rejected: Counter[str] = Counter()
    for row in reasons:
        kind = next(k for text, k in REJECT_KINDS[row["dataset"]].items() if text in row["reason"])
        found[row["dataset"]].add(kind)
        rejected[row["dataset"]] += row["n"]
    duplicates = warehouse.scalar(
        "select sum(duplicates_dropped) from raw.ingested_files where dataset = 'activity_events'"
    )
    assert found == {
        "activity_events": set(EVENT_DEFECTS) - {"duplicate_event"},
        "order_lines": set(ORDER_DEFECTS),
        "inventory_snapshots": set(INVENTORY_DEFECTS),
    }
    assert duplicates > 0  # the fifth kind of bad event: an exact copy of an earlier line
    # every injected bad record is accounted for: rejected, or (a duplicate) dropped
    assert rejected["activity_events"] + duplicates == summary.bad_records["activity_events"]
    assert rejected["order_lines"] == summary.bad_records["order_lines"]
    assert rejected["inventory_snapshots"] == summary.bad_records["inventory_snapshots"]
