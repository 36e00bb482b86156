"""Helpers for the health, metrics, task-health and log tests."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import dagster as dg
from dagster._daemon.types import DaemonHeartbeat
from prometheus_client.parser import text_string_to_metric_families

from analytics_pipeline.defs.operations.freshness import KEY_MARTS
from analytics_pipeline.lib.ingestion.datasets import RAW_TABLES
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import get_settings

_TEMPLATE: Path | None = None

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def seed_dagster_home(home: Path) -> None:
    """Give an empty DAGSTER_HOME the storage schema of a new default instance, copied from one
    created once per test process (creating the SQLite schema takes about two seconds each time)."""
    global _TEMPLATE
    if _TEMPLATE is None:
        template = Path(tempfile.mkdtemp(prefix="ap_dagster_home_"))
        atexit.register(shutil.rmtree, template, True)
        instance = dg.DagsterInstance.from_config(str(template))
        instance.get_run_records(limit=1)
        instance.get_asset_records([dg.AssetKey("x")])
        instance.get_daemon_heartbeats()
        instance.dispose()
        _TEMPLATE = template
    shutil.copytree(_TEMPLATE, home, dirs_exist_ok=True)


def make_healthy(instance: dg.DagsterInstance) -> None:
    """What a running daemon and a fresh daily run leave behind: heartbeats and key marts just built,
    with a row each in the warehouse of the current settings."""
    for daemon_type in instance.get_required_daemon_types():
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time(), daemon_type, "test", None))
    for key in KEY_MARTS:
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    fill_key_marts(Warehouse(get_settings()))


def fill_key_marts(warehouse: Warehouse) -> None:
    """One row in each key mart's table (stand-ins for the marts, created if missing)."""
    warehouse.ensure_ready(RAW_TABLES)
    with warehouse.transaction() as session:
        session.execute("create schema if not exists marts")
        for key in KEY_MARTS:
            table = ".".join(key.path)
            if key.path[0] == "raw":
                session.execute(f"insert into {table} (event_id) values ('health-test')")
            else:
                session.execute(f"create table if not exists {table} (placeholder integer)")
                session.execute(f"insert into {table} values (1)")


def parse_metrics(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(port: int) -> Samples:
    """GET /metrics over HTTP, parsed with prometheus_client's own parser."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        return parse_metrics(response.read().decode())
