"""On realistic generated data, DuckDB and PostgreSQL end with identical marts, even when PostgreSQL
receives the days in a scrambled order, one run per day, and DuckDB gets one single-run backfill."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import run_pipeline

from analytics_pipeline.lib.sample_data import generate
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import get_settings

START = date(2025, 2, 3)
DAYS = [START + timedelta(days=n) for n in range(4)]
MARTS = {
    "marts.fct_daily_engagement": "activity_date, org_id",
    "marts.fct_engagement_rolling": "activity_date, org_id",
    "marts.fct_activity_summary": "activity_date, org_id, activity_type",
    "marts.fct_hourly_usage": "activity_hour, activity_type",
    "intermediate.int_user_activity_daily": "activity_date, org_id, user_id",
}


def marts() -> dict[str, list[tuple]]:
    warehouse = Warehouse(get_settings())
    return {
        table: [
            tuple(round(v, 12) if isinstance(v, float) else v for v in row.values())
            for row in warehouse.query(f"select * from {table} order by {order}").to_pylist()
        ]
        for table, order in MARTS.items()
    }


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_duckdb_in_order_equals_postgres_scrambled(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    generate(
        Path(env["ANALYTICS_LANDING_DIR"]),
        DAYS[0],
        DAYS[-1],
        events_per_day=1_500,
        users=300,
        orgs=5,
        items=10,
        bad_rate=0.01,
    )
    Warehouse(get_settings()).ensure_ready()
    assert run_pipeline(DAYS[0], DAYS[-1]).success
    on_duckdb = marts()

    monkeypatch.setenv("ANALYTICS_WAREHOUSE", "postgres")
    monkeypatch.setenv("ANALYTICS_PG_DATABASE", request.getfixturevalue("postgres_database"))
    for day in (DAYS[2], DAYS[0], DAYS[3], DAYS[1]):
        assert run_pipeline(day).success
    on_postgres = marts()

    for table in MARTS:
        assert on_duckdb[table], table
        assert on_postgres[table] == on_duckdb[table], table
