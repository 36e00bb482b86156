"""Tripwire for ``resources/dbt_cli_environment.py``: dbt gets the environment a step hands it, and
the step's process keeps its own (dagster-dbt's ``cli`` takes no ``env``; dagster-io/dagster#29656),
on DuckDB (the file) and PostgreSQL (the database)."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import PG

from analytics_pipeline.resources.dbt import dbt_resource, window_env
from analytics_pipeline.resources.warehouse import WarehouseResource
from analytics_pipeline.settings import get_settings


def test_dbt_sees_the_environment_it_is_handed_and_the_process_keeps_its_own(tmp_path: Path, monkeypatch) -> None:
    # the process points at one DuckDB file, the invocation at another: dbt must connect to the second
    monkeypatch.setenv("ANALYTICS_WAREHOUSE", "duckdb")
    monkeypatch.setenv("ANALYTICS_DUCKDB_PATH", str(tmp_path / "process.duckdb"))
    monkeypatch.delenv("ANALYTICS_DBT_MIN_DATE", raising=False)
    settings = get_settings()
    handed = tmp_path / "handed.duckdb"
    env = {
        **WarehouseResource.from_settings(settings).model_copy(update={"duckdb_path": str(handed)}).dbt_env(),
        **window_env({"min_date": "2025-01-01", "max_date": "2025-01-02"}),
    }
    before = dict(os.environ)

    invocation = dbt_resource(settings).cli(["debug"], env=env, target_path=tmp_path / "target", raise_on_error=False)
    invocation.wait()

    assert invocation.is_successful(), invocation.get_error()
    assert handed.exists(), "dbt did not connect to the DuckDB file its environment named"
    assert not (tmp_path / "process.duckdb").exists()
    assert dict(os.environ) == before, "the step's environment changed"


def test_dbt_reaches_the_postgres_database_it_is_handed(tmp_path: Path, monkeypatch, postgres_database: str) -> None:
    # the process names a database that does not exist; only the handed connection reaches one
    monkeypatch.setenv("ANALYTICS_WAREHOUSE", "postgres")
    monkeypatch.setenv("ANALYTICS_PG_HOST", PG["host"])
    monkeypatch.setenv("ANALYTICS_PG_PORT", str(PG["port"]))
    monkeypatch.setenv("ANALYTICS_PG_USER", PG["user"])
    monkeypatch.setenv("ANALYTICS_PG_DATABASE", "ap_no_such_database")
    settings = get_settings()
    handed = WarehouseResource.from_settings(settings).model_copy(update={"pg_database": postgres_database})
    before = dict(os.environ)

    failing = dbt_resource(settings).cli(["debug"], target_path=tmp_path / "process", raise_on_error=False)
    failing.wait()
    invocation = dbt_resource(settings).cli(
        ["debug"], env=handed.dbt_env(), target_path=tmp_path / "handed", raise_on_error=False
    )
    invocation.wait()

    assert not failing.is_successful(), "the process's own database should not exist"
    assert invocation.is_successful(), invocation.get_error()
    assert dict(os.environ) == before, "the step's environment changed"
