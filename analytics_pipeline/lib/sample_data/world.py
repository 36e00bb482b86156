"""The generated world (schools, users, items) and its dimension files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analytics_pipeline.lib.sample_data.catalogue import (
    ACTIVITY_TYPES,
    CATEGORIES,
    CATEGORY_LEVELS,
    CATEGORY_PRODUCTS,
    CATEGORY_WEIGHTS,
    DATASETS,
    DEVICES,
    EPOCH_ORDINAL,
    ITEM_FILE,
    MS_PER_DAY,
    MS_PER_HOUR,
    NEVER,
    ORGANIZATION_FILE,
    ORGANIZATION_UPDATES_FILE,
    PLAN_WEIGHTS,
    PLANS,
    PUBLIC_FIRST_OCTETS,
    REGION_UTC_OFFSET_HOURS,
    REGION_WEIGHTS,
    REGIONS,
    ROLE_WEIGHTS,
    ROLES,
    SCHOOL_NAME_KINDS,
    SCHOOL_NAME_STEMS,
    STAFF_DEVICE_WEIGHTS,
    STUDENT_DEVICE_WEIGHTS,
    UNCATALOGUED_ACTIVITY_TYPES,
    USER_COLUMNS,
    USER_FILE,
)
from analytics_pipeline.lib.sample_data.files import _atomic_output, _write_csv


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
