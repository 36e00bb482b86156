"""Shared fixtures: a throw-away warehouse on each engine, a landing zone, a Dagster instance.

``warehouse_engine`` is parametrised over DuckDB (a temporary file) and PostgreSQL (a database of its
own on the real server at 127.0.0.1:5432, created here and dropped afterwards), so every test that
uses ``env`` runs against both engines. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest

from analytics_pipeline.lib.ingestion.datasets import RAW_TABLES
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import get_settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests first (processes, daemons, a browser: up to a few minutes each). Under
    ``-n 2`` a long test that starts last keeps one worker busy after the other has run out of tests;
    started first, the short tests fill in beside them. The order is otherwise kept (a stable sort)."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


PG = {
    "host": os.environ.get("TEST_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("TEST_PG_PORT", "5432")),
    "user": os.environ.get("TEST_PG_USER", "postgres"),
}


def _maintenance_connection() -> Any:
    connection = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
    connection.autocommit = True
    return connection


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    name = f"ap_test_{uuid.uuid4().hex[:12]}"
    connection = _maintenance_connection()
    with connection.cursor() as cursor:
        cursor.execute(f'create database "{name}"')
    try:
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'drop database if exists "{name}" with (force)')
        connection.close()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def env(
    warehouse_engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> dict[str, str]:
    """Settings for one test: its own warehouse, landing zone, output dir and Dagster home."""
    values = {
        "ANALYTICS_WAREHOUSE": warehouse_engine,
        "ANALYTICS_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "ANALYTICS_LANDING_DIR": str(tmp_path / "landing"),
        "ANALYTICS_OUTPUT_DIR": str(tmp_path / "output"),
        "ANALYTICS_START_DATE": "2025-01-01",
        "ANALYTICS_PG_HOST": PG["host"],
        "ANALYTICS_PG_PORT": str(PG["port"]),
        "ANALYTICS_PG_USER": PG["user"],
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    if warehouse_engine == "postgres":
        values["ANALYTICS_PG_DATABASE"] = request.getfixturevalue("postgres_database")
    (tmp_path / "landing").mkdir()
    (tmp_path / "dagster_home").mkdir()
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def warehouse(env: dict[str, str]) -> Warehouse:
    client = Warehouse(get_settings())
    client.ensure_ready(RAW_TABLES)
    return client


@pytest.fixture
def landing(env: dict[str, str]) -> Landing:
    return Landing(Path(env["ANALYTICS_LANDING_DIR"]))


# The order lines' CSV header as the product writes it (SPEC's landing-zone contract).
ORDER_HEADER = [
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
]


class Landing:
    """Writes files into the landing zone the way the product does."""

    def __init__(self, root: Path):
        self.root = root

    def folder(self, dataset: str, day: date | None = None) -> Path:
        folder = self.root / dataset / (f"date={day.isoformat()}" if day else "")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def jsonl(self, dataset: str, day: date | None, name: str, records: Sequence[dict[str, Any] | str]) -> Path:
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        path = self.folder(dataset, day) / name
        path.write_text("".join(line + "\n" for line in lines))
        return path

    def csv(
        self, dataset: str, day: date | None, name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> Path:
        text = (
            ",".join(header) + "\n" + "".join(",".join("" if v is None else str(v) for v in row) + "\n" for row in rows)
        )
        path = self.folder(dataset, day) / name
        path.write_text(text)
        return path

    def raw(self, dataset: str, day: date | None, name: str, data: bytes) -> Path:
        path = self.folder(dataset, day) / name
        path.write_bytes(data)
        return path


def event(
    event_id: str,
    when: str,
    user: str,
    org: str = "org-1",
    kind: str = "login",
    session: str | None = "s1",
    **extra: Any,
) -> dict[str, Any]:
    """An activity event record as the product writes it."""
    return {
        "event_id": event_id,
        "occurred_at": when,
        "user_id": user,
        "org_id": org,
        "activity_type": kind,
        "session_id": session,
        **extra,
    }


# -- running the pipeline -----------------------------------------------------------------------


def definitions() -> dg.Definitions:
    """The code location as a process started now would load it (with this test's settings)."""
    from analytics_pipeline.definitions import build_definitions

    return build_definitions(get_settings())


def pipeline_resources() -> dict[str, Any]:
    """The code location's resources with this test's settings."""
    from analytics_pipeline.definitions import build_resources

    return build_resources(get_settings())


def run_pipeline(
    start: date,
    end: date | None = None,
    selection: dg.AssetSelection | None = None,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize the daily assets for start..end in one run, as a single-run backfill does."""
    end = end or start
    defs = definitions()
    graph = defs.resolve_asset_graph()
    from analytics_pipeline.jobs import DAILY_ASSETS

    keys = (selection or DAILY_ASSETS).resolve(graph)
    return dg.materialize(
        assets=[*defs.assets, *defs.asset_checks],
        resources=dict(defs.resources),
        selection=sorted(keys),
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": end.isoformat(),
        },
        raise_on_error=raise_on_error,
    )


def run_unpartitioned(
    selection: dg.AssetSelection, instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    defs = definitions()
    keys = selection.resolve(defs.resolve_asset_graph())
    return dg.materialize(
        assets=[*defs.assets, *defs.asset_checks],
        resources=dict(defs.resources),
        selection=sorted(keys),
        instance=instance or dg.DagsterInstance.ephemeral(),
    )


def table_rows(warehouse: Warehouse, table: str, order_by: str) -> list[dict[str, Any]]:
    """All rows of ``table`` as dicts (floats rounded so both engines compare equal)."""
    rows = warehouse.query(f"select * from {table} order by {order_by}").to_pylist()
    return [{k: round(v, 9) if isinstance(v, float) else v for k, v in row.items()} for row in rows]
