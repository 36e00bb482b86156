"""Deterministic, realistic sample data for the landing zone.

The ingestion layer reads ``<landing_dir>/<dataset>/date=YYYY-MM-DD/<file>`` daily partitions and
``<landing_dir>/<dimension>/<file>`` snapshots. This module writes exactly that layout with data
that behaves like a real education product (schools of very different sizes, sign-up growth and
churn, weekly and school-hour seasonality, trending and intermittent item demand, stockouts) plus a
controlled share of malformed records, so ingestion, dbt models and data-quality checks can be
built and tested without production data.

Two properties matter more than anything else:

* Determinism: the same arguments give byte-identical files, so tests and benchmarks are
  reproducible. Every day draws from its own generator seeded by ``(seed, day ordinal)``; the
  dimensions draw from one seeded by ``seed``; gzip headers carry no time stamp or file name.
* Speed: a day of one million events is built with numpy and Arrow kernels only. Python loops run
  over days, organisations, items and the few injected bad records, never over ordinary records.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics_pipeline.defs.ingestion.quality import reject_rate_fails
from analytics_pipeline.settings import Settings

ACTIVITY_TYPES: tuple[str, ...] = (
    "login",
    "logout",
    "view_content",
    "complete_lesson",
    "submit_assignment",
    "generate_report",
    "download_report",
    "share_report",
    "delete_report",
    "create_client",
    "update_client",
    "delete_client",
    "csv_upload",
    "search",
)
UNCATALOGUED_ACTIVITY_TYPES: tuple[str, ...] = ("export_grades", "print_certificate")
ORDER_STATUSES: tuple[str, ...] = ("completed", "refunded", "cancelled")
PLANS: tuple[str, ...] = ("free", "basic", "premium")
REGIONS: tuple[str, ...] = ("na-east", "na-west", "eu", "apac")
ROLES: tuple[str, ...] = ("student", "teacher", "staff", "admin")
CATEGORIES: tuple[str, ...] = (
    "books",
    "kits",
    "software",
    "stationery",
    "art_supplies",
    "electronics",
)

# the reject-rate check at its default settings: sample data made with a bad rate within its
# threshold passes it (see _defect_positions)
_DEFAULT_CHECK = Settings()

DATASETS: tuple[str, ...] = (
    "activity_events",
    "order_lines",
    "inventory_snapshots",
    "organizations",
    "users",
    "items",
)
EVENT_DEFECTS: tuple[str, ...] = (
    "truncated_json",
    "missing_field",
    "unparseable_timestamp",
    "wrong_date",
    "duplicate_event",
)
ORDER_DEFECTS: tuple[str, ...] = (
    "missing_field",
    "unparseable_timestamp",
    "wrong_date",
    "non_positive_quantity",
    "unknown_status",
)
INVENTORY_DEFECTS: tuple[str, ...] = ("negative_on_hand", "missing_field", "unparseable_date")

EVENT_FILES = ("events-part-0.jsonl", "events-part-1.jsonl.gz")
ORDER_FILE = "orders.csv"
INVENTORY_FILE = "inventory.csv.gz"
ORGANIZATION_FILE = "organizations.jsonl"
ORGANIZATION_UPDATES_FILE = "organizations-updates.jsonl"
USER_FILE = "users.csv"
ITEM_FILE = "items.parquet"

ORDER_COLUMNS = (
    "order_id",
    "line_no",
    "ordered_at",
    "org_id",
    "user_id",
    "item_id",
    "quantity",
    "unit_price",
    "unit_cost",
    "currency",
    "status",
)
INVENTORY_COLUMNS = ("snapshot_date", "item_id", "on_hand", "on_order", "reorder_point")
USER_COLUMNS = ("user_id", "org_id", "role", "created_at", "updated_at")

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 24 * MS_PER_HOUR
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
NEVER = 10**9
GZIP_LEVEL = 6

# Monday..Sunday. Events: a school day is ~1.0, weekends are quiet. Orders: almost none on weekends.
EVENT_WEEKDAY_FACTORS = (1.05, 1.1, 1.1, 1.0, 0.85, 0.25, 0.3)
ORDER_WEEKDAY_FACTORS = (1.1, 1.05, 1.05, 1.0, 0.9, 0.12, 0.08)
WEEKEND_ACTIVITY_FACTOR = 0.35

# Relative activity by local hour 0..23.
SCHOOL_DAY_HOURS = (
    0.2,
    0.1,
    0.1,
    0.1,
    0.2,
    0.5,
    1.5,
    4,
    9,
    11,
    11,
    10,
    8,
    9,
    9,
    7,
    5,
    4,
    4.5,
    5,
    4.5,
    3,
    1.5,
    0.6,
)
WEEKEND_HOURS = (
    0.5,
    0.3,
    0.2,
    0.2,
    0.2,
    0.4,
    0.8,
    1.5,
    2.5,
    3.5,
    4.5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5.5,
    5.5,
    4.5,
    3,
    1.5,
)
ORDERING_HOURS = (
    0,
    0,
    0,
    0,
    0,
    0,
    0.2,
    1,
    4,
    7,
    8,
    7,
    5,
    6,
    6,
    5,
    3,
    1,
    0.5,
    0.3,
    0.2,
    0.1,
    0,
    0,
)
REGION_WEIGHTS = (0.35, 0.25, 0.25, 0.15)
REGION_UTC_OFFSET_HOURS = (-5, -8, 1, 8)
PLAN_WEIGHTS = (0.4, 0.35, 0.25)
ROLE_WEIGHTS = (0.86, 0.09, 0.03, 0.02)

# Per catalogue entry: relative frequency for students, for staff, and typical duration in ms.
STUDENT_ACTIVITY_WEIGHTS = (20, 7, 38, 12, 8, 0, 0.5, 0, 0, 0, 0, 0, 0, 10)
STAFF_ACTIVITY_WEIGHTS = (18, 6, 22, 0, 0, 9, 7, 3, 1, 2, 4, 0.5, 2.5, 12)
MEDIAN_DURATION_MS = (
    900,
    300,
    60_000,
    420_000,
    20_000,
    4_000,
    1_500,
    800,
    500,
    2_500,
    2_000,
    700,
    9_000,
    600,
)
SCORED_ACTIVITIES = ("complete_lesson", "submit_assignment")
UPPER_CASE_SHARE = 0.02
MIXED_CASE_SHARE = 0.015
UNCATALOGUED_SHARE = 0.002
NULL_SESSION_SHARE = 0.02
NULL_DURATION_SHARE = 0.01

# (device, user agent); students mostly on school Chromebooks and tablets, staff on laptops.
WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
SAFARI = "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2"
DEVICES = (
    ("chromebook", f"Mozilla/5.0 (X11; CrOS x86_64 15633.69.0) {WEBKIT} Chrome/120.0.6099.235 Safari/537.36"),
    ("tablet", f"Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) {SAFARI} Mobile/15E148 Safari/604.1"),
    ("laptop", f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {WEBKIT} Chrome/121.0.0.0 Safari/537.36 Edg/121.0.0.0"),
    ("laptop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:122.0) Gecko/20100101 Firefox/122.0"),
    ("phone", f"Mozilla/5.0 (Linux; Android 14; Pixel 7) {WEBKIT} Chrome/121.0.6167.101 Mobile Safari/537.36"),
    ("phone", f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) {SAFARI} Mobile/15E148 Safari/604.1"),
    ("desktop", f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {SAFARI} Safari/605.1.15"),
)
STUDENT_DEVICE_WEIGHTS = (0.45, 0.2, 0.07, 0.03, 0.08, 0.12, 0.05)
STAFF_DEVICE_WEIGHTS = (0.1, 0.05, 0.3, 0.15, 0.05, 0.1, 0.25)
PUBLIC_FIRST_OCTETS = (24, 50, 66, 67, 68, 71, 73, 76, 81, 86, 92, 98, 103, 110, 174, 185, 203)

SCHOOL_NAME_STEMS = (
    "Riverside",
    "Maple Grove",
    "Oak Hill",
    "Lincoln",
    "Washington",
    "Jefferson",
    "Cedar Ridge",
    "Lakeside",
    "Hillcrest",
    "Sunnyvale",
    "Pine Valley",
    "Westbrook",
    "Eastwood",
    "Northfield",
    "Southgate",
    "Brookside",
    "Fairview",
    "Greenwood",
    "Kingsley",
    "Meadowbrook",
    "Springfield",
    "Highland",
    "Valley View",
    "Harbor",
    "Summit",
    "Silver Lake",
    "Stonebridge",
    "Willow Creek",
    "Ashford",
    "Bayside",
)
SCHOOL_NAME_KINDS = (
    "Elementary School",
    "Middle School",
    "High School",
    "Academy",
    "Primary School",
    "Unified School District",
    "Charter School",
    "International School",
)

# Per category: product nouns, median unit cost in dollars, mean units per order line.
CATEGORY_PRODUCTS = {
    "books": (
        ("Reading Anthology", "Math Workbook", "Science Reader", "World Atlas", "Dictionary", "Phonics Set"),
        12.0,
        10.0,
    ),
    "kits": (
        ("Robotics Kit", "Chemistry Kit", "Microscope Set", "Geometry Kit", "Circuit Kit"),
        45.0,
        3.0,
    ),
    "software": (
        ("Math Practice Seat", "Typing Tutor Seat", "Coding Platform Seat", "Reading App Seat"),
        8.0,
        20.0,
    ),
    "stationery": (
        ("Notebook Pack", "Pencil Box", "Marker Set", "Graph Paper Ream", "Glue Sticks"),
        3.0,
        15.0,
    ),
    "art_supplies": (("Watercolor Set", "Sketch Pad", "Clay Pack", "Brush Set"), 6.0, 8.0),
    "electronics": (
        ("Graphing Calculator", "Headset", "Document Camera", "Tablet Case"),
        60.0,
        2.0,
    ),
}
CATEGORY_WEIGHTS = (0.3, 0.15, 0.15, 0.2, 0.1, 0.1)
CATEGORY_LEVELS = (
    "Grade 1",
    "Grade 3",
    "Grade 5",
    "Grade 7",
    "Grade 9",
    "Grade 11",
    "K-2",
    "3-5",
    "6-8",
    "9-12",
)

HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
SALT_EVENT_ID, SALT_REQUEST_ID, SALT_SESSION_ID = 0x1E7, 0x2E9, 0x5E5


@dataclass(frozen=True)
class GenerationSummary:
    """What one :func:`generate` call wrote.

    ``rows`` counts every record written, bad ones included (for ``activity_events`` the extra
    duplicate lines too); ``bad_records`` counts the injected bad ones, so
    ``rows - bad_records`` is what a correct loader should accept.
    """

    files_written: int
    rows: dict[str, int]
    bad_records: dict[str, int]
    seconds: float


@dataclass
class _Tally:
    """Running totals for the :class:`GenerationSummary`."""

    files: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DATASETS, 0))
    bad: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DATASETS, 0))

    def add(self, dataset: str, rows: int, bad: int = 0, files: int = 1) -> None:
        self.rows[dataset] += rows
        self.bad[dataset] += bad
        self.files += files


@dataclass(frozen=True)
class _Organizations:
    ids: np.ndarray
    names: list[str]
    plan: np.ndarray
    region: np.ndarray
    size_weight: np.ndarray
    school_ip: np.ndarray
    created_ms: np.ndarray
    updated_ms: np.ndarray

    @property
    def utc_offset_hours(self) -> np.ndarray:
        return np.asarray(REGION_UTC_OFFSET_HOURS, dtype=np.int64)[self.region]


@dataclass(frozen=True)
class _Users:
    ids: np.ndarray
    org: np.ndarray
    role: np.ndarray
    signup_day: np.ndarray
    churn_day: np.ndarray
    propensity: np.ndarray
    intensity: np.ndarray
    device: np.ndarray
    grade: np.ndarray
    home_ip: np.ndarray
    created_ms: np.ndarray
    updated_ms: np.ndarray

    @property
    def is_staff(self) -> np.ndarray:
        return self.role != ROLES.index("student")


@dataclass(frozen=True)
class _Items:
    ids: np.ndarray
    names: list[str]
    category: np.ndarray
    unit_cost_cents: np.ndarray
    list_price_cents: np.ndarray
    active: np.ndarray
    updated_ms: np.ndarray
    base_weight: np.ndarray
    daily_trend: np.ndarray
    occurrence_probability: np.ndarray
    mean_quantity: np.ndarray


@dataclass(frozen=True)
class _EventText:
    """Pre-rendered JSON fragments, so a day's lines are assembled by array lookups only."""

    user_id_bytes: np.ndarray
    org_id_bytes: np.ndarray
    activity_fragments: pa.Array
    ip_and_agent_fragments: pa.Array
    properties_fragments: pa.Array
    line_endings: pa.Array


@dataclass(frozen=True)
class _World:
    seed: int
    start: date
    end: date
    events_per_day: int
    bad_rate: float
    organizations: _Organizations
    users: _Users
    items: _Items
    event_text: _EventText

    @property
    def day_count(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def orders_per_weekday(self) -> float:
        return 2.5 * len(self.organizations.ids) + len(self.users.ids) / 250


@dataclass(frozen=True)
class _DayEvents:
    user: np.ndarray
    ms_of_day: np.ndarray
    activity: np.ndarray
    session_no: np.ndarray
    session_missing: np.ndarray
    at_school: np.ndarray
    duration_ms: np.ndarray
    duration_missing: np.ndarray
    line_ending: np.ndarray


@dataclass(frozen=True)
class _DayOrders:
    frame: pd.DataFrame
    completed_units: np.ndarray


def generate(
    landing_dir: Path,
    start: date,
    end: date,
    *,
    events_per_day: int = 20_000,
    orgs: int = 12,
    users: int = 2_000,
    items: int = 60,
    seed: int = 7,
    bad_rate: float = 0.002,
) -> GenerationSummary:
    """Write sample landing files for every UTC day from ``start`` to ``end`` inclusive.

    ``events_per_day`` is the volume of a typical school day; weekends get far fewer. ``bad_rate``
    is the per-record probability of a malformed record (0 gives a fully valid landing zone).
    Existing files are overwritten; other files in ``landing_dir`` are left alone.
    """
    began = time.perf_counter()
    start, end = _as_date(start), _as_date(end)
    _validate_arguments(
        start,
        end,
        bad_rate,
        events_per_day=events_per_day,
        orgs=orgs,
        users=users,
        items=items,
    )
    landing_dir = Path(landing_dir)
    world = _build_world(start, end, events_per_day, orgs, users, items, seed, bad_rate)
    tally = _Tally()
    _write_dimensions(world, landing_dir, tally)
    inventory = _InventorySimulation(np.random.default_rng([seed, 1]), world)
    for day_index in range(world.day_count):
        _write_day(world, inventory, day_index, landing_dir, tally)
    return GenerationSummary(
        files_written=tally.files,
        rows=tally.rows,
        bad_records=tally.bad,
        seconds=time.perf_counter() - began,
    )


def _write_day(
    world: _World,
    inventory: _InventorySimulation,
    day_index: int,
    landing_dir: Path,
    tally: _Tally,
) -> None:
    """One day of every daily dataset; days run in order because each day's completed orders
    drain the stock that the next day's snapshot starts from."""
    day = world.start + timedelta(days=day_index)
    events_rng, orders_rng, defects_rng = _day_generators(world.seed, day)
    written, defects = _write_activity_events(
        world, day, events_rng, defects_rng, landing_dir, tally.bad["activity_events"]
    )
    tally.add("activity_events", written, defects, files=len(EVENT_FILES))

    orders = _simulate_orders(world, day, day_index, orders_rng)
    defects = _inject_order_defects(defects_rng, orders.frame, world.bad_rate, day, tally.bad["order_lines"])
    _write_csv(orders.frame, _partition(landing_dir, "order_lines", day) / ORDER_FILE)
    tally.add("order_lines", len(orders.frame), defects)

    snapshot = inventory.close_day(day, day_index, orders.completed_units)
    defects = _inject_inventory_defects(defects_rng, snapshot, world.bad_rate, day, tally.bad["inventory_snapshots"])
    _write_csv(snapshot, _partition(landing_dir, "inventory_snapshots", day) / INVENTORY_FILE)
    tally.add("inventory_snapshots", len(snapshot), defects)


def _as_date(value: date) -> date:
    """Accept datetimes too, but partition by their date: folders are named by day."""
    return value.date() if isinstance(value, datetime) else value


def _validate_arguments(start: date, end: date, bad_rate: float, **counts: int) -> None:
    if end < start:
        raise ValueError(
            f"end ({end}) is before start ({start}); the range is inclusive, so end must be on or after start."
        )
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if not 0.0 <= bad_rate <= 0.5:
        raise ValueError(f"bad_rate must be between 0 and 0.5 inclusive, got {bad_rate!r}.")


def _day_generators(seed: int, day: date) -> list[np.random.Generator]:
    """Independent streams for events, orders and defects, so e.g. a different ``bad_rate`` or
    ``events_per_day`` leaves the other datasets of the day unchanged."""
    children = np.random.SeedSequence([seed, day.toordinal()]).spawn(3)
    return [np.random.default_rng(child) for child in children]


def _partition(landing_dir: Path, dataset: str, day: date) -> Path:
    return landing_dir / dataset / f"date={day.isoformat()}"


# --------------------------------------------------------------------------------------------
# Dimensions
# --------------------------------------------------------------------------------------------


def _build_world(
    start: date,
    end: date,
    events_per_day: int,
    orgs: int,
    users: int,
    items: int,
    seed: int,
    bad_rate: float,
) -> _World:
    rng = np.random.default_rng(seed)
    organizations = _build_organizations(rng, orgs, start)
    user_table = _build_users(rng, users, organizations, start, end)
    item_table = _build_items(rng, items, start)
    return _World(
        seed=seed,
        start=start,
        end=end,
        events_per_day=events_per_day,
        bad_rate=bad_rate,
        organizations=organizations,
        users=user_table,
        items=item_table,
        event_text=_build_event_text(organizations, user_table),
    )


def _build_organizations(rng: np.random.Generator, count: int, start: date) -> _Organizations:
    """Schools with heavy-tailed sizes (a few districts, many small schools), created more than a
    year before the range so that they pre-date all of their users."""
    start_ms = _epoch_ms(start)
    created_ms = start_ms - rng.integers(400, 2200, count) * MS_PER_DAY
    created_ms += rng.integers(8 * MS_PER_HOUR, 18 * MS_PER_HOUR, count)
    updated_ms = created_ms + (rng.random(count) * (start_ms - created_ms)).astype(np.int64)
    return _Organizations(
        ids=_ids("org-", count, 3),
        names=_school_names(rng, count),
        plan=rng.choice(len(PLANS), size=count, p=PLAN_WEIGHTS),
        region=rng.choice(len(REGIONS), size=count, p=REGION_WEIGHTS),
        size_weight=rng.pareto(1.1, count) + 1.0,
        school_ip=_random_ips(rng, count),
        created_ms=created_ms,
        updated_ms=updated_ms,
    )


def _school_names(rng: np.random.Generator, count: int) -> list[str]:
    combos = rng.permutation(len(SCHOOL_NAME_STEMS) * len(SCHOOL_NAME_KINDS))
    names = []
    for index in range(count):
        combo = combos[index % len(combos)]
        stem, kind = divmod(int(combo), len(SCHOOL_NAME_KINDS))
        name = f"{SCHOOL_NAME_STEMS[stem]} {SCHOOL_NAME_KINDS[kind]}"
        cycle = index // len(combos)
        names.append(name if cycle == 0 else f"{name} {cycle + 1}")
    return names


def _build_users(rng: np.random.Generator, count: int, organizations: _Organizations, start: date, end: date) -> _Users:
    """Users spread over schools by school size. Every school gets one admin who signed up before
    the range (so each school can order); 40% of the others also pre-date the range, the rest
    sign up during it (growth), and a fifth eventually churn."""
    org_count = len(organizations.ids)
    weights = organizations.size_weight / organizations.size_weight.sum()
    org = rng.choice(org_count, size=count, p=weights)
    role = rng.choice(len(ROLES), size=count, p=ROLE_WEIGHTS)
    anchors = rng.choice(count, size=min(org_count, count), replace=False)
    org[anchors] = np.arange(len(anchors))
    role[anchors] = ROLES.index("admin")
    is_anchor = np.zeros(count, dtype=bool)
    is_anchor[anchors] = True

    day_count = (end - start).days + 1
    before_range = is_anchor | (rng.random(count) < 0.4)
    signup_day = np.where(
        before_range,
        start.toordinal() - rng.integers(1, 366, count),
        start.toordinal() + rng.integers(0, day_count, count),
    )
    churns = ~is_anchor & (rng.random(count) < 0.2)
    churn_after = 7 + rng.exponential(45.0, count).astype(np.int64)
    churn_day = np.where(churns, signup_day + churn_after, NEVER)

    staff = role != ROLES.index("student")
    propensity = np.where(staff, rng.beta(4.0, 2.0, count), rng.beta(2.0, 2.5, count))
    device = np.where(
        staff,
        rng.choice(len(DEVICES), size=count, p=STAFF_DEVICE_WEIGHTS),
        rng.choice(len(DEVICES), size=count, p=STUDENT_DEVICE_WEIGHTS),
    )
    created_ms = (signup_day - EPOCH_ORDINAL) * MS_PER_DAY
    created_ms += rng.integers(6 * MS_PER_HOUR, 23 * MS_PER_HOUR, count)
    last_ms = _epoch_ms(end) + MS_PER_DAY - 1
    touched_ms = created_ms + (rng.exponential(20.0, count) * MS_PER_DAY).astype(np.int64)
    updated_ms = np.where(touched_ms <= last_ms, touched_ms, created_ms)
    return _Users(
        ids=_ids("u-", count, 6),
        org=org,
        role=role,
        signup_day=signup_day,
        churn_day=churn_day,
        propensity=propensity,
        intensity=rng.lognormal(0.0, 1.0, count),
        device=device,
        grade=rng.integers(1, 13, count),
        home_ip=_random_ips(rng, count),
        created_ms=created_ms,
        updated_ms=updated_ms,
    )


def _build_items(rng: np.random.Generator, count: int, start: date) -> _Items:
    """A catalogue with skewed popularity, per-item trends (some growing, some declining) and a
    subset of intermittent sellers that sell nothing on most days."""
    category = rng.choice(len(CATEGORIES), size=count, p=CATEGORY_WEIGHTS)
    median_cost = np.array([CATEGORY_PRODUCTS[c][1] for c in CATEGORIES])[category]
    mean_quantity = np.array([CATEGORY_PRODUCTS[c][2] for c in CATEGORIES])[category]
    unit_cost_cents = np.maximum(np.round(median_cost * rng.lognormal(0.0, 0.35, count) * 100), 50)
    unit_cost_cents = unit_cost_cents.astype(np.int64)
    markup = rng.uniform(1.25, 2.2, count)
    list_price_cents = np.maximum(np.round(unit_cost_cents * markup), unit_cost_cents + 1)
    list_price_cents = (list_price_cents.astype(np.int64) // 5 * 5 - 1).clip(unit_cost_cents + 1)
    active = np.ones(count, dtype=bool)
    if count >= 5:
        inactive = rng.choice(count, size=max(1, round(count * 0.07)), replace=False)
        active[inactive] = False
    intermittent = rng.random(count) < 0.3
    updated_ms = _epoch_ms(start) - rng.integers(1, 400, count) * MS_PER_DAY
    updated_ms += rng.integers(0, MS_PER_DAY, count)
    return _Items(
        ids=_ids("item-", count, 4),
        names=_item_names(rng, category),
        category=category,
        unit_cost_cents=unit_cost_cents,
        list_price_cents=list_price_cents,
        active=active,
        updated_ms=updated_ms,
        base_weight=rng.lognormal(0.0, 1.0, count),
        # growth or decline of typically up to ±70% a year (a daily rate compounds: exp(0.0015 * 365))
        daily_trend=np.clip(rng.normal(0.0, 0.0015, count), -0.004, 0.004),
        occurrence_probability=np.where(intermittent, rng.uniform(0.1, 0.4, count), 1.0),
        mean_quantity=mean_quantity * rng.uniform(0.6, 1.5, count),
    )


def _item_names(rng: np.random.Generator, category: np.ndarray) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for code in category:
        products = CATEGORY_PRODUCTS[CATEGORIES[code]][0]
        name = f"{products[rng.integers(len(products))]} ({rng.choice(CATEGORY_LEVELS)})"
        while name in seen:
            name = f"{name} v2" if not name[-1].isdigit() else f"{name[:-1]}{int(name[-1]) + 1}"
        seen.add(name)
        names.append(name)
    return names


def _ids(prefix: str, count: int, width: int) -> np.ndarray:
    """Fixed-width ids (``org-003``): fixed width lets events copy them as raw bytes."""
    width = max(width, len(str(count)))
    return np.char.add(prefix, np.char.zfill(np.arange(1, count + 1).astype(str), width))


def _random_ips(rng: np.random.Generator, count: int) -> np.ndarray:
    first = rng.choice(PUBLIC_FIRST_OCTETS, size=count).astype(str)
    rest = [rng.integers(0, 256, count).astype(str) for _ in range(2)]
    last = rng.integers(1, 255, count).astype(str)
    return _join_text(first, ".", rest[0], ".", rest[1], ".", last)


def _join_text(*parts: np.ndarray | str) -> np.ndarray:
    result = np.asarray(parts[0])
    for part in parts[1:]:
        result = np.char.add(result, part)
    return result


def _epoch_ms(day: date) -> int:
    return (day.toordinal() - EPOCH_ORDINAL) * MS_PER_DAY


def _iso_timestamps(epoch_ms: np.ndarray) -> np.ndarray:
    """``2025-01-03T14:05:09.123Z``; for the small tables (the event path has a faster one)."""
    values = np.asarray(epoch_ms, dtype=np.int64).astype("datetime64[ms]")
    return np.datetime_as_string(values, unit="ms", timezone="UTC")


def _write_dimensions(world: _World, landing_dir: Path, tally: _Tally) -> None:
    organizations = _write_organizations(world, landing_dir / "organizations")
    tally.add("organizations", organizations, files=2)
    tally.add("users", _write_users(world.users, world.organizations, landing_dir / "users"))
    tally.add("items", _write_items(world.items, landing_dir / "items"))


def _write_organizations(world: _World, folder: Path) -> int:
    """The snapshot plus a later file re-stating 1-2 organisations with a new plan, so that
    'latest updated_at wins' is exercised by the loader."""
    orgs = world.organizations
    created = _iso_timestamps(orgs.created_ms)
    updated = _iso_timestamps(orgs.updated_ms)
    records = [
        _organization_record(orgs, index, PLANS[orgs.plan[index]], created[index], updated[index])
        for index in range(len(orgs.ids))
    ]
    _write_json_lines(folder / ORGANIZATION_FILE, records)

    rng = np.random.default_rng([world.seed, 2])
    how_many = min(len(orgs.ids), int(rng.integers(1, 3)))
    changed = rng.choice(len(orgs.ids), size=how_many, replace=False)
    range_ms = world.day_count * MS_PER_DAY
    updates = []
    for index in sorted(int(i) for i in changed):
        new_plan = (orgs.plan[index] + 1 + int(rng.integers(0, 2))) % len(PLANS)
        new_updated_ms = _epoch_ms(world.start) + int(rng.integers(0, range_ms))
        new_updated = _iso_timestamps(np.array([new_updated_ms]))[0]
        updates.append(_organization_record(orgs, index, PLANS[new_plan], created[index], new_updated))
    _write_json_lines(folder / ORGANIZATION_UPDATES_FILE, updates)
    return len(records) + len(updates)


def _organization_record(
    orgs: _Organizations, index: int, plan: str, created_at: str, updated_at: str
) -> dict[str, str]:
    return {
        "org_id": str(orgs.ids[index]),
        "name": orgs.names[index],
        "plan": plan,
        "region": REGIONS[orgs.region[index]],
        "created_at": str(created_at),
        "updated_at": str(updated_at),
    }


def _write_json_lines(path: Path, records: Sequence[dict[str, object]]) -> None:
    text = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
    with _atomic_output(path) as handle:
        handle.write(text.encode("utf-8"))


def _write_users(users: _Users, orgs: _Organizations, folder: Path) -> int:
    frame = pd.DataFrame(
        {
            "user_id": users.ids,
            "org_id": orgs.ids[users.org],
            "role": np.asarray(ROLES)[users.role],
            "created_at": _iso_timestamps(users.created_ms),
            "updated_at": _iso_timestamps(users.updated_ms),
        },
        columns=USER_COLUMNS,
    )
    _write_csv(frame, folder / USER_FILE)
    return len(frame)


def _write_items(items: _Items, folder: Path) -> int:
    table = pa.table(
        {
            "item_id": pa.array(items.ids.tolist(), pa.string()),
            "name": pa.array(items.names, pa.string()),
            "category": pa.array([CATEGORIES[c] for c in items.category], pa.string()),
            "unit_cost": _decimal_array(items.unit_cost_cents),
            "list_price": _decimal_array(items.list_price_cents),
            "active": pa.array(items.active, pa.bool_()),
            "updated_at": pa.array(items.updated_ms, pa.timestamp("ms", tz="UTC")),
        }
    )
    path = folder / ITEM_FILE
    with _atomic_output(path) as handle:
        pq.write_table(table, handle, compression="snappy")
    return table.num_rows


def _decimal_array(cents: np.ndarray) -> pa.Array:
    values = [Decimal(int(c)).scaleb(-2) for c in cents]
    return pa.array(values, pa.decimal128(10, 2))


# --------------------------------------------------------------------------------------------
# Activity events
# --------------------------------------------------------------------------------------------


def _build_event_text(orgs: _Organizations, users: _Users) -> _EventText:
    """Everything about an event that only depends on its user or activity code is rendered
    once here; a day then needs only ``take`` and one join to produce its JSON lines."""
    variants = (
        list(ACTIVITY_TYPES)
        + [name.upper() for name in ACTIVITY_TYPES]
        + ["_".join(part.capitalize() for part in name.split("_")) for name in ACTIVITY_TYPES]
        + list(UNCATALOGUED_ACTIVITY_TYPES)
    )
    agents = np.asarray([agent for _, agent in DEVICES])[users.device]
    device_names = np.asarray([device for device, _ in DEVICES])[users.device]
    tail = _join_text('","user_agent":"', agents, '","duration_ms":')
    home = _join_text(users.home_ip, tail)
    school = _join_text(orgs.school_ip[users.org], tail)
    ip_and_agent = np.stack([home, school], axis=1).ravel()
    properties = _join_text(',"properties":{"device":"', device_names, '","grade":', users.grade.astype(str))
    endings = [f',"score":{score}}}}}\n' for score in range(101)] + ["}}\n"]
    return _EventText(
        user_id_bytes=_fixed_width_bytes(users.ids),
        org_id_bytes=_fixed_width_bytes(orgs.ids[users.org]),
        activity_fragments=_large_strings([f'{name}","session_id":' for name in variants]),
        ip_and_agent_fragments=_large_strings(ip_and_agent.tolist()),
        properties_fragments=_large_strings(properties.tolist()),
        line_endings=_large_strings(endings),
    )


def _large_strings(values: Sequence[str]) -> pa.Array:
    return pa.array(values, pa.large_string())


def _fixed_width_bytes(values: np.ndarray) -> np.ndarray:
    """(n, width) uint8 matrix of equal-length ASCII strings."""
    encoded = np.asarray(values).astype(bytes)
    width = encoded.dtype.itemsize
    return np.frombuffer(encoded.tobytes(), dtype=np.uint8).reshape(len(encoded), width)


def _write_activity_events(
    world: _World,
    day: date,
    rng: np.random.Generator,
    defects_rng: np.random.Generator,
    landing_dir: Path,
    defects_so_far: int,
) -> tuple[int, int]:
    """Writes the day as two files (plain and gzip) split at the middle of the chronologically
    ordered lines; returns (lines written, bad lines). A day without events gets empty files."""
    events = _simulate_events(world, day, rng)
    lines = _event_lines(world, day, events)
    patches = _event_defect_patches(defects_rng, lines, world.bad_rate, day, defects_so_far)
    folder = _partition(landing_dir, "activity_events", day)
    middle = len(lines) // 2
    written = _write_lines(folder / EVENT_FILES[0], lines, 0, middle, patches)
    written += _write_lines(folder / EVENT_FILES[1], lines, middle, len(lines), patches)
    return written, len(patches)


def _simulate_events(world: _World, day: date, rng: np.random.Generator) -> _DayEvents:
    """The day's events: a volume set by the weekday, spread over the users active that day with
    heavy-tailed per-user counts, at school-hour-shaped local times, grouped into sessions."""
    users = world.users
    weekday = day.weekday()
    school_day = weekday < 5
    target = world.events_per_day * EVENT_WEEKDAY_FACTORS[weekday] * rng.lognormal(0.0, 0.05)
    active = _active_users(users, day.toordinal(), school_day, rng)
    total = int(rng.poisson(target)) if len(active) else 0
    weights = users.intensity[active] * rng.gamma(2.0, 0.5, len(active))
    counts = rng.multinomial(total, weights / weights.sum()) if len(active) else np.zeros(0, int)
    user = np.repeat(active, counts)

    hours = SCHOOL_DAY_HOURS if school_day else WEEKEND_HOURS
    local_hour = rng.choice(24, size=total, p=np.asarray(hours) / sum(hours))
    offset = world.organizations.utc_offset_hours[users.org[user]]
    utc_hour = (local_hour - offset) % 24
    ms_of_day = utc_hour * MS_PER_HOUR + rng.integers(0, MS_PER_HOUR, total)
    session_no = _session_numbers(rng, counts, ms_of_day)

    activity, base_activity = _activity_codes(rng, users.is_staff[user])
    median = np.append(MEDIAN_DURATION_MS, 3_000)[base_activity]
    duration = np.round(median * rng.lognormal(0.0, 0.8, total)).astype(np.int64)
    scored = np.isin(base_activity, [ACTIVITY_TYPES.index(a) for a in SCORED_ACTIVITIES])
    score = np.clip(np.round(rng.normal(78.0, 12.0, total)), 0, 100).astype(np.int64)
    at_school = school_day & (local_hour >= 7) & (local_hour <= 15) & (rng.random(total) < 0.9)
    session_missing = rng.random(total) < NULL_SESSION_SHARE
    duration_missing = rng.random(total) < NULL_DURATION_SHARE

    order = np.argsort(ms_of_day, kind="stable")
    return _DayEvents(
        user=user[order],
        ms_of_day=ms_of_day[order],
        activity=activity[order],
        session_no=session_no[order],
        session_missing=session_missing[order],
        at_school=at_school[order],
        duration_ms=duration[order],
        duration_missing=duration_missing[order],
        line_ending=np.where(scored, score, 101)[order],
    )


def _active_users(users: _Users, ordinal: int, school_day: bool, rng: np.random.Generator) -> np.ndarray:
    """Users who signed up before today, have not churned, and feel like it today (each has a
    personal propensity; weekends dampen it). Falls back to all eligible users on a quiet day."""
    eligible = (users.signup_day < ordinal) & (ordinal < users.churn_day)
    propensity = users.propensity * (1.0 if school_day else WEEKEND_ACTIVITY_FACTOR)
    active = np.flatnonzero(eligible & (rng.random(len(eligible)) < propensity))
    return active if len(active) else np.flatnonzero(eligible)


def _session_numbers(rng: np.random.Generator, counts: np.ndarray, ms_of_day: np.ndarray) -> np.ndarray:
    """Split each user's day, in time order, into a few consecutive sessions. Events arrive
    grouped by user (from ``np.repeat``), so the group of an event is known without a sort."""
    total = int(counts.sum())
    group = np.repeat(np.arange(len(counts)), counts)
    group_start = np.cumsum(counts) - counts
    sessions = np.minimum(counts, 1 + rng.poisson(counts / 15.0))
    by_time = np.lexsort((ms_of_day, group))
    rank = np.empty(total, dtype=np.int64)
    rank[by_time] = np.arange(total) - group_start[group[by_time]]
    safe_counts = np.maximum(counts, 1)
    return rank * sessions[group] // safe_counts[group]


def _activity_codes(rng: np.random.Generator, is_staff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Catalogue activity by role, then the casing noise and the rare uncatalogued type that a
    real client fleet produces. Returns (code into the variant vocabulary, catalogue index)."""
    total = len(is_staff)
    draw = rng.random(total)
    base = np.where(
        is_staff,
        np.searchsorted(_cumulative(STAFF_ACTIVITY_WEIGHTS), draw, side="right"),
        np.searchsorted(_cumulative(STUDENT_ACTIVITY_WEIGHTS), draw, side="right"),
    ).clip(0, len(ACTIVITY_TYPES) - 1)
    casing = rng.random(total)
    code = base.copy()
    code[casing < UPPER_CASE_SHARE] += len(ACTIVITY_TYPES)
    mixed = (casing >= UPPER_CASE_SHARE) & (casing < UPPER_CASE_SHARE + MIXED_CASE_SHARE)
    code[mixed] += 2 * len(ACTIVITY_TYPES)
    uncatalogued = rng.random(total) < UNCATALOGUED_SHARE
    which = rng.integers(0, len(UNCATALOGUED_ACTIVITY_TYPES), total)
    code[uncatalogued] = 3 * len(ACTIVITY_TYPES) + which[uncatalogued]
    base[uncatalogued] = len(ACTIVITY_TYPES)
    return code, base


def _cumulative(weights: Sequence[float]) -> np.ndarray:
    cumulative = np.cumsum(weights, dtype=np.float64)
    return cumulative / cumulative[-1]


def _event_lines(world: _World, day: date, events: _DayEvents) -> pa.Array:
    """One JSON object per line, built column-wise: fixed-width parts as byte matrices, the rest
    by ``take`` from pre-rendered fragments, all joined by one Arrow kernel."""
    text = world.event_text
    total = len(events.user)
    ordinal = day.toordinal()
    position = np.arange(total, dtype=np.uint64)
    day_key = np.uint64(ordinal) << np.uint64(32)
    event_hash = _mix64((day_key | position) ^ _seed_salt(world.seed, SALT_EVENT_ID))
    request_hash = _mix64((day_key | position) ^ _seed_salt(world.seed, SALT_REQUEST_ID))
    head = _concat_columns(
        total,
        b'{"event_id":"ev-',
        _hex_bytes(event_hash),
        b'","occurred_at":"' + day.isoformat().encode() + b"T",
        _time_of_day_bytes(events.ms_of_day),
        b'Z","user_id":"',
        text.user_id_bytes[events.user],
        b'","org_id":"',
        text.org_id_bytes[events.user],
        b'","activity_type":"',
    )
    request = _concat_columns(total, b',"request_id":"req-', _hex_bytes(request_hash), b'","ip_address":"')
    parts = [
        _strings_from_bytes(head),
        _take(text.activity_fragments, events.activity),
        _session_json(world.seed, ordinal, events),
        _strings_from_bytes(request),
        _take(text.ip_and_agent_fragments, events.user * 2 + events.at_school),
        _duration_json(events),
        _take(text.properties_fragments, events.user),
        _take(text.line_endings, events.line_ending),
    ]
    return pc.binary_join_element_wise(*parts, pa.scalar("", pa.large_string()))


def _session_json(seed: int, ordinal: int, events: _DayEvents) -> pa.Array:
    user_key = _mix64(
        (np.uint64(ordinal) << np.uint64(32)) ^ events.user.astype(np.uint64) ^ _seed_salt(seed, SALT_SESSION_ID)
    )
    session_hash = _mix64(user_key + events.session_no.astype(np.uint64))
    quoted = _concat_columns(len(events.user), b'"ses-', _hex_bytes(session_hash), b'"')
    null = pa.scalar("null", pa.large_string())
    return pc.if_else(pa.array(events.session_missing), null, _strings_from_bytes(quoted))


def _duration_json(events: _DayEvents) -> pa.Array:
    durations = pa.array(events.duration_ms, mask=events.duration_missing)
    return pc.fill_null(pc.cast(durations, pa.large_string()), "null")


def _take(fragments: pa.Array, indices: np.ndarray) -> pa.Array:
    return pc.take(fragments, pa.array(indices.astype(np.int64, copy=False)))


def _seed_salt(seed: int, stream: int) -> np.uint64:
    mixed = _mix64(np.array([(seed * 0x9E3779B97F4A7C15 + stream) & (2**64 - 1)], np.uint64))
    return mixed[0]


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on 64-bit integers, so distinct keys (day, position)
    always give distinct event ids while looking random."""
    x = values.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _hex_bytes(values: np.ndarray) -> np.ndarray:
    """(n, 16) ASCII hex digits of 64-bit values."""
    octets = values.astype(">u8").view(np.uint8).reshape(-1, 8)
    out = np.empty((len(values), 16), dtype=np.uint8)
    out[:, 0::2] = HEX_DIGITS[octets >> 4]
    out[:, 1::2] = HEX_DIGITS[octets & 15]
    return out


def _time_of_day_bytes(ms_of_day: np.ndarray) -> np.ndarray:
    """(n, 12) ASCII ``HH:MM:SS.mmm``; about 20x faster than ``datetime_as_string``."""
    ms = ms_of_day.astype(np.int32)
    seconds, millis = np.divmod(ms, 1000)
    minutes, second = np.divmod(seconds, 60)
    hour, minute = np.divmod(minutes, 60)
    out = np.full((len(ms), 12), ord(":"), dtype=np.uint8)
    out[:, 8] = ord(".")
    for column, value in ((0, hour), (3, minute), (6, second)):
        out[:, column] = 48 + value // 10
        out[:, column + 1] = 48 + value % 10
    out[:, 9] = 48 + millis // 100
    out[:, 10] = 48 + millis // 10 % 10
    out[:, 11] = 48 + millis % 10
    return out


def _concat_columns(rows: int, *parts: bytes | np.ndarray) -> np.ndarray:
    """Place constant byte strings and (rows, w) byte matrices side by side in one matrix."""
    widths = [len(part) if isinstance(part, bytes) else part.shape[1] for part in parts]
    out = np.empty((rows, sum(widths)), dtype=np.uint8)
    column = 0
    for part, width in zip(parts, widths, strict=False):
        if isinstance(part, bytes):
            out[:, column : column + width] = np.frombuffer(part, dtype=np.uint8)
        else:
            out[:, column : column + width] = part
        column += width
    return out


def _strings_from_bytes(matrix: np.ndarray) -> pa.Array:
    """Zero-copy Arrow strings over the rows of a byte matrix (every row is one string)."""
    rows, width = matrix.shape
    offsets = np.arange(0, rows * width + 1, width, dtype=np.int64)
    data = np.ascontiguousarray(matrix)
    return pa.Array.from_buffers(pa.large_string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


# --------------------------------------------------------------------------------------------
# Orders and inventory
# --------------------------------------------------------------------------------------------


def _item_weights_on(world: _World, day_index: int, rng: np.random.Generator) -> np.ndarray:
    """Today's relative demand per item: popularity x trend, zero for inactive items and for
    intermittent items on their (many) off days, boosted on their on days to keep the mean."""
    items = world.items
    occurs = rng.random(len(items.ids)) < items.occurrence_probability
    trend = np.exp(items.daily_trend * day_index)
    weight = items.base_weight * trend * occurs / items.occurrence_probability
    return np.where(items.active, weight, 0.0)


def _simulate_orders(world: _World, day: date, day_index: int, rng: np.random.Generator) -> _DayOrders:
    """Multi-line orders placed by schools in proportion to their size during office hours;
    each line is a distinct item drawn by today's demand weights."""
    orgs, items = world.organizations, world.items
    weights = _item_weights_on(world, day_index, rng)
    candidates = np.flatnonzero(weights > 0)
    order_count = int(rng.poisson(world.orders_per_weekday * ORDER_WEEKDAY_FACTORS[day.weekday()]))
    if order_count == 0 or len(candidates) == 0:
        return _DayOrders(pd.DataFrame(columns=ORDER_COLUMNS), np.zeros(len(items.ids)))

    org = rng.choice(len(orgs.ids), size=order_count, p=orgs.size_weight / orgs.size_weight.sum())
    ms_of_day = _ordering_times(rng, org, orgs)
    chronological = np.argsort(ms_of_day, kind="stable")
    org, ms_of_day = org[chronological], ms_of_day[chronological]
    status = rng.choice(len(ORDER_STATUSES), size=order_count, p=(0.9, 0.05, 0.05))
    buyer = _order_buyers(world, day, org, rng)

    lines_per_order = np.minimum(1 + rng.poisson(1.2, order_count), len(candidates))
    order_of_line, line_no, item = _distinct_lines(rng, weights, candidates, lines_per_order)
    quantity = 1 + rng.poisson(items.mean_quantity[item] - 1.0)
    price_cents = _discounted_prices(rng, items.list_price_cents[item])

    order_ids = np.char.add(f"ord-{day:%Y%m%d}-", np.char.zfill((np.arange(order_count) + 1).astype(str), 5))
    frame = pd.DataFrame(
        {
            "order_id": order_ids[order_of_line],
            "line_no": line_no.astype(str),
            "ordered_at": _iso_timestamps(_epoch_ms(day) + ms_of_day)[order_of_line],
            "org_id": orgs.ids[org][order_of_line],
            "user_id": buyer[order_of_line],
            "item_id": items.ids[item],
            "quantity": quantity.astype(str),
            "unit_price": _money(price_cents),
            "unit_cost": _money(items.unit_cost_cents[item]),
            "currency": "USD",
            "status": np.asarray(ORDER_STATUSES)[status][order_of_line],
        },
        columns=ORDER_COLUMNS,
    ).astype(object)
    completed = status[order_of_line] == ORDER_STATUSES.index("completed")
    units = np.bincount(item[completed], weights=quantity[completed], minlength=len(items.ids))
    return _DayOrders(frame, units)


def _ordering_times(rng: np.random.Generator, org: np.ndarray, orgs: _Organizations) -> np.ndarray:
    local_hour = rng.choice(24, size=len(org), p=np.asarray(ORDERING_HOURS) / sum(ORDERING_HOURS))
    utc_hour = (local_hour - orgs.utc_offset_hours[org]) % 24
    return utc_hour * MS_PER_HOUR + rng.integers(0, MS_PER_HOUR, len(org))


def _order_buyers(world: _World, day: date, org: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A teacher, staff member or admin of the ordering school who has an account today; empty
    for a few orders (placed by phone) and for schools without such a user."""
    users = world.users
    ordinal = day.toordinal()
    can_order = users.is_staff & (users.signup_day <= ordinal) & (ordinal < users.churn_day)
    staff = np.flatnonzero(can_order)
    staff = staff[np.argsort(users.org[staff], kind="stable")]
    per_org = np.bincount(users.org[staff], minlength=len(world.organizations.ids))
    first = np.cumsum(per_org) - per_org
    pick = first[org] + (rng.random(len(org)) * per_org[org]).astype(np.int64)
    anonymous = (per_org[org] == 0) | (rng.random(len(org)) < 0.06)
    chosen = users.ids[staff[np.minimum(pick, max(len(staff) - 1, 0))]] if len(staff) else ""
    return np.where(anonymous, "", chosen)


def _distinct_lines(
    rng: np.random.Generator,
    weights: np.ndarray,
    candidates: np.ndarray,
    lines_per_order: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted sampling of distinct items per order without a per-order loop (Gumbel top-k)."""
    keys = np.log(weights[candidates]) + rng.gumbel(size=(len(lines_per_order), len(candidates)))
    widest = int(lines_per_order.max())
    ranked = np.argsort(-keys, axis=1, kind="stable")[:, :widest]
    slots = np.arange(widest)
    taken = slots[None, :] < lines_per_order[:, None]
    order_of_line = np.repeat(np.arange(len(lines_per_order)), lines_per_order)
    line_no = np.broadcast_to(slots + 1, taken.shape)[taken]
    return order_of_line, line_no, candidates[ranked[taken]]


def _discounted_prices(rng: np.random.Generator, list_cents: np.ndarray) -> np.ndarray:
    discounted = rng.random(len(list_cents)) < 0.2
    rate = rng.choice([0.05, 0.1, 0.15, 0.2], size=len(list_cents))
    price = np.round(list_cents * (1.0 - np.where(discounted, rate, 0.0)))
    return np.maximum(price, 1).astype(np.int64)


def _money(cents: np.ndarray) -> np.ndarray:
    """Cents as ``12.50``: decimal text, never binary floats, in the landing files."""
    cents = np.asarray(cents, dtype=np.int64)
    whole, fraction = np.divmod(cents, 100)
    return _join_text(whole.astype(str), ".", np.char.zfill(fraction.astype(str), 2))


class _InventorySimulation:
    """End-of-day stock per active item under a reorder-point policy with lead times.

    Reorder points cover the expected lead-time demand plus a buffer of a few typical order
    lines, thin for some items; demand trends and lumpy orders then make some items run dry for
    a few days until the replenishment arrives (stockouts), as in a real warehouse.
    """

    def __init__(self, rng: np.random.Generator, world: _World) -> None:
        items = world.items
        self.items = np.flatnonzero(items.active)
        expected = self._expected_daily_units(world)[self.items]
        line_size = items.mean_quantity[self.items]
        count = len(self.items)
        self.lead_time = rng.integers(3, 13, count)
        lead_time_demand = expected * self.lead_time * rng.uniform(1.0, 1.6, count)
        buffer = line_size * rng.uniform(0.0, 3.0, count)
        self.reorder_point = np.maximum(1, np.ceil(lead_time_demand + buffer)).astype(np.int64)
        cycle_units = np.ceil(expected * rng.uniform(7, 25, count))
        batch = np.maximum(cycle_units, np.ceil(line_size))
        self.order_up_to = self.reorder_point + batch.astype(np.int64)
        self.on_hand = rng.integers(self.reorder_point, self.order_up_to + 1)
        self.on_order = np.zeros(count, dtype=np.int64)
        self.arrivals = np.zeros((count, world.day_count + int(self.lead_time.max()) + 1), np.int64)
        self.item_ids = items.ids[self.items]

    @staticmethod
    def _expected_daily_units(world: _World) -> np.ndarray:
        items = world.items
        share = np.where(items.active, items.base_weight, 0.0)
        share = share / share.sum() if share.sum() > 0 else share
        lines_per_day = world.orders_per_weekday * np.mean(ORDER_WEEKDAY_FACTORS) * 2.2
        return lines_per_day * share * items.mean_quantity * 0.9

    def close_day(self, day: date, day_index: int, units_sold: np.ndarray) -> pd.DataFrame:
        """Receive today's arrivals, ship today's completed units (never below zero: unmet
        demand is lost), reorder what fell to the reorder point, and report the stock."""
        arriving = self.arrivals[:, day_index]
        self.on_hand += arriving
        self.on_order -= arriving
        sold = np.round(units_sold[self.items]).astype(np.int64)
        self.on_hand = np.maximum(self.on_hand - sold, 0)
        position = self.on_hand + self.on_order
        reorder = position <= self.reorder_point
        quantity = np.where(reorder, self.order_up_to - position, 0)
        self.arrivals[np.flatnonzero(reorder), day_index + self.lead_time[reorder]] += quantity[reorder]
        self.on_order += quantity
        return pd.DataFrame(
            {
                "snapshot_date": day.isoformat(),
                "item_id": self.item_ids,
                "on_hand": self.on_hand.astype(str),
                "on_order": self.on_order.astype(str),
                "reorder_point": self.reorder_point.astype(str),
            },
            columns=INVENTORY_COLUMNS,
        ).astype(object)


# --------------------------------------------------------------------------------------------
# Bad records
# --------------------------------------------------------------------------------------------


def _defect_positions(
    rng: np.random.Generator, rows: int, bad_rate: float, kinds: Sequence[str], defects_so_far: int
) -> tuple[np.ndarray, list[str]]:
    """About ``bad_rate`` of the rows, at least one on any day with 200+ rows, and at least one a
    day until every kind has appeared; the kinds take turns, so a short range (the demo's) holds
    every kind of bad record while each day stays one or two bad lines.

    With a bad rate within the default reject-rate threshold, no day gets more bad records than
    the reject-rate check allows at its default settings (``ANALYTICS_MAX_REJECT_RATE``,
    ``ANALYTICS_REJECT_RATE_CONFIDENCE``): a thin day (a weekend, the first days of a growing
    school) gets none rather than one bad line among four, so the sample data passes its own checks.
    """
    if bad_rate <= 0 or rows == 0:
        return np.zeros(0, dtype=np.int64), []
    count = int(rng.binomial(rows, bad_rate))
    if rows >= 200 or defects_so_far < len(kinds):
        count = max(count, 1)
    if bad_rate <= _DEFAULT_CHECK.max_reject_rate:
        while count and reject_rate_fails(count, rows, _DEFAULT_CHECK):
            count -= 1
    positions = np.sort(rng.choice(rows, size=min(count, rows), replace=False))
    return positions, [kinds[(defects_so_far + n) % len(kinds)] for n in range(len(positions))]


def _event_defect_patches(
    rng: np.random.Generator, lines: pa.Array, bad_rate: float, day: date, defects_so_far: int
) -> dict[int, list[str]]:
    """Replacement text per line position: the corrupted line, or for a duplicate the original
    line followed by an exact copy of an earlier clean line of the same day."""
    positions, kinds = _defect_positions(rng, len(lines), bad_rate, EVENT_DEFECTS, defects_so_far)
    chosen = set(positions.tolist())
    patches: dict[int, list[str]] = {}
    for position, kind in zip(positions.tolist(), kinds, strict=False):
        line = lines[position].as_py()
        if kind == "duplicate_event":
            source = _earlier_clean_position(rng, position, chosen)
            if source is not None:
                patches[position] = [line, lines[source].as_py()]
                continue
            kind = "missing_field"
        patches[position] = [_corrupt_event_line(rng, line, str(kind), day)]
    return patches


def _earlier_clean_position(rng: np.random.Generator, position: int, chosen: set[int]) -> int | None:
    for _ in range(8):
        if position == 0:
            return None
        source = int(rng.integers(0, position))
        if source not in chosen:
            return source
    return None


def _corrupt_event_line(rng: np.random.Generator, line: str, kind: str, day: date) -> str:
    if kind == "truncated_json":
        body = line.rstrip("\n")
        return body[: int(rng.integers(len(body) // 3, len(body) * 2 // 3))] + "\n"
    record = json.loads(line)
    if kind == "missing_field":
        del record[str(rng.choice(["user_id", "event_id", "occurred_at", "activity_type"]))]
    elif kind == "unparseable_timestamp":
        record["occurred_at"] = _unparseable_timestamp(rng, day)
    elif kind == "wrong_date":
        record["occurred_at"] = _shift_date(rng, record["occurred_at"], day)
    return json.dumps(record, separators=(",", ":")) + "\n"


def _unparseable_timestamp(rng: np.random.Generator, day: date) -> str:
    choices = (
        f"{day.isoformat()}T25:61:00Z",
        f"{day.year}-02-30T10:00:00.000Z",
        "not-a-timestamp",
        f"{day:%d/%m/%Y} 14:05",
    )
    return choices[int(rng.integers(len(choices)))]


def _shift_date(rng: np.random.Generator, timestamp: str, day: date) -> str:
    """A late or early arrival: same time of day, another UTC date."""
    shifted = day + timedelta(days=int(rng.choice([-3, -2, -1, 1])))
    return shifted.isoformat() + timestamp[10:]


def _inject_order_defects(
    rng: np.random.Generator, frame: pd.DataFrame, bad_rate: float, day: date, defects_so_far: int
) -> int:
    positions, kinds = _defect_positions(rng, len(frame), bad_rate, ORDER_DEFECTS, defects_so_far)
    column = {name: index for index, name in enumerate(ORDER_COLUMNS)}
    for position, kind in zip(positions.tolist(), kinds, strict=False):
        if kind == "missing_field":
            frame.iat[position, column[str(rng.choice(["order_id", "org_id", "item_id"]))]] = ""
        elif kind == "unparseable_timestamp":
            frame.iat[position, column["ordered_at"]] = _unparseable_timestamp(rng, day)
        elif kind == "wrong_date":
            original = frame.iat[position, column["ordered_at"]]
            frame.iat[position, column["ordered_at"]] = _shift_date(rng, original, day)
        elif kind == "non_positive_quantity":
            frame.iat[position, column["quantity"]] = str(-int(rng.integers(0, 5)))
        else:
            frame.iat[position, column["status"]] = str(rng.choice(["pending", "on_hold"]))
    return len(positions)


def _inject_inventory_defects(
    rng: np.random.Generator, frame: pd.DataFrame, bad_rate: float, day: date, defects_so_far: int
) -> int:
    positions, kinds = _defect_positions(rng, len(frame), bad_rate, INVENTORY_DEFECTS, defects_so_far)
    column = {name: index for index, name in enumerate(INVENTORY_COLUMNS)}
    for position, kind in zip(positions.tolist(), kinds, strict=False):
        if kind == "negative_on_hand":
            frame.iat[position, column["on_hand"]] = str(-int(rng.integers(1, 50)))
        elif kind == "missing_field":
            frame.iat[position, column["item_id"]] = ""
        else:
            frame.iat[position, column["snapshot_date"]] = f"{day:%d/%m/%Y}"
    return len(positions)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


@contextmanager
def _atomic_output(path: Path) -> Iterator[BinaryIO]:
    """Write beside the target under a hidden name and rename at the end, so a loader listing the
    folder never reads a half-written file; ``.gz`` targets get gzip with mtime 0 and no stored
    file name, which keeps reruns byte-identical."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as raw:
            if path.name.endswith(".gz"):
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL
                ) as compressed:
                    yield compressed
            else:
                yield raw
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write_lines(path: Path, lines: pa.Array, first: int, stop: int, patches: dict[int, list[str]]) -> int:
    """Stream lines ``first..stop-1`` straight from the Arrow buffer, swapping in the patched
    lines; returns how many lines were written."""
    written = stop - first
    cursor = first
    with _atomic_output(path) as handle:
        if first == stop:
            return 0
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset :]
        data = memoryview(lines.buffers()[2])
        for position in sorted(p for p in patches if first <= p < stop):
            handle.write(data[offsets[cursor] : offsets[position]])
            handle.write("".join(patches[position]).encode("utf-8"))
            written += len(patches[position]) - 1
            cursor = position + 1
        if cursor < stop:
            handle.write(data[offsets[cursor] : offsets[stop]])
    return written


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    text = frame.to_csv(index=False, lineterminator="\n")
    with _atomic_output(path) as handle:
        handle.write(text.encode("utf-8"))
