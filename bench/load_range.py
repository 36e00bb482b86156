"""Time the loader on a range of days, without Dagster: ``python -m bench.load_range``.

    python -m bench.load_range --landing /tmp/year --start 2025-01-01 --end 2025-12-31 \
        --engine duckdb --mode range [--dataset activity_events] [--profile out.prof]

``--mode days`` calls ``load_partition`` once per day (the loader as the ingestion asset used it
before ranges), ``--mode range`` calls ``load_partitions`` once for the whole range (what the asset
does now). Each run writes into a warehouse of its own: a temporary DuckDB file, or a PostgreSQL
database created on ``ANALYTICS_PG_HOST`` (default 127.0.0.1) and dropped afterwards. The figure is
the wall time of the load calls only (the raw tables exist before the clock starts); it prints one
JSON line: days, seconds, seconds per day, rows loaded, rows rejected.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import psycopg2

from analytics_pipeline.lib.ingestion import loader
from analytics_pipeline.lib.ingestion.datasets import ALL_DATASETS, RAW_TABLES
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import Settings


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _load(warehouse: Warehouse, landing: Path, dataset_name: str, days: list[date], mode: str) -> list:
    dataset = next(d for d in ALL_DATASETS if d.name == dataset_name)
    if mode == "range":
        return loader.load_partitions(warehouse, landing, dataset, days)
    return [loader.load_partition(warehouse, landing, dataset, day) for day in days]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--end", type=date.fromisoformat, required=True)
    parser.add_argument("--engine", choices=("duckdb", "postgres"), default="duckdb")
    parser.add_argument("--mode", choices=("days", "range"), default="range")
    parser.add_argument("--dataset", default="activity_events")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the load calls here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-load-range-") as scratch:
        database = f"ap_bench_{uuid.uuid4().hex[:10]}"
        env = {
            "ANALYTICS_WAREHOUSE": args.engine,
            "ANALYTICS_DUCKDB_PATH": str(Path(scratch) / "warehouse.duckdb"),
            "ANALYTICS_PG_HOST": os.environ.get("ANALYTICS_PG_HOST", "127.0.0.1"),
            "ANALYTICS_PG_USER": os.environ.get("ANALYTICS_PG_USER", "postgres"),
            "ANALYTICS_PG_DATABASE": database,
            "ANALYTICS_LANDING_DIR": str(args.landing),
        }
        settings = Settings.from_env(env)
        warehouse = Warehouse(settings)
        warehouse.ensure_ready(RAW_TABLES)
        days = _days(args.start, args.end)
        try:
            profiler = cProfile.Profile() if args.profile else None
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            reports = _load(warehouse, args.landing, args.dataset, days, args.mode)
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            seconds = time.perf_counter() - started
        finally:
            if args.engine == "postgres":
                _drop_database(settings, database)
    print(
        json.dumps(
            {
                "engine": args.engine,
                "mode": args.mode,
                "dataset": args.dataset,
                "days": len(days),
                "seconds": round(seconds, 2),
                "seconds_per_day": round(seconds / len(days), 4),
                "rows_loaded": sum(r.rows_loaded for r in reports),
                "rows_rejected": sum(r.rows_rejected for r in reports),
                "duplicates_dropped": sum(r.duplicates_dropped for r in reports),
            }
        )
    )


def _drop_database(settings: Settings, database: str) -> None:
    connection = psycopg2.connect(
        host=settings.pg_host,
        port=settings.pg_port,
        user=settings.pg_user,
        password=settings.pg_password or None,
        dbname="postgres",
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'drop database if exists "{database}" with (force)')
    finally:
        connection.close()


if __name__ == "__main__":
    main()
