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

import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from analytics_pipeline.lib.sample_data.catalogue import EVENT_FILES, INVENTORY_FILE, ORDER_FILE
from analytics_pipeline.lib.sample_data.defects import _inject_inventory_defects, _inject_order_defects
from analytics_pipeline.lib.sample_data.events import _write_activity_events
from analytics_pipeline.lib.sample_data.files import _partition, _write_csv
from analytics_pipeline.lib.sample_data.orders import _InventorySimulation, _simulate_orders
from analytics_pipeline.lib.sample_data.world import GenerationSummary, _build_world, _Tally, _World, _write_dimensions


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
