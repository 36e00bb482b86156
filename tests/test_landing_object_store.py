"""An object-store landing zone (``ANALYTICS_LANDING_DIR=s3://bucket/prefix``) is read exactly like a
local folder, against a real S3 server process (moto's server mode, started here on a free port).

* the same files -- sample data with its bad records, plus hostile names and files -- give the same
  raw rows, rejects, file ledger and marts from the bucket as from a local folder, on both warehouses;
* the landing sensor lists the bucket past one listing page (1,000 keys), wakes only for files the
  loader reads, and tells an overwritten object from the one it handled by its ETag;
* ``analytics-pipeline generate --landing-dir s3://...`` writes the sample data into the bucket.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from conftest import pipeline_resources, run_pipeline, run_unpartitioned

from analytics_pipeline import cli
from analytics_pipeline.defs.ingestion import sensors
from analytics_pipeline.defs.ingestion.sensors import landing_file_sensor, scan_landing
from analytics_pipeline.lib.ingestion.datasets import DAILY_DATASETS
from analytics_pipeline.lib.ingestion.landing_zone import LandingZone, ObjectStoreLandingZone
from analytics_pipeline.lib.sample_data import generate
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import get_settings

START = date(2025, 2, 3)
DAYS = [START + timedelta(days=n) for n in range(3)]
EVENTS_DIR = f"activity_events/date={DAYS[1].isoformat()}"
# What is compared: every raw table and mart, without the times a load or a file's write set.
TABLES = {
    "raw.activity_events": ("event_id", ("_loaded_at",)),
    "raw.order_lines": ("order_id, line_no", ("_loaded_at",)),
    "raw.inventory_snapshots": ("item_id, snapshot_date", ("_loaded_at",)),
    "raw.users": ("user_id, _source_file, _source_line", ("_loaded_at",)),
    "raw.organizations": ("org_id, _source_file, _source_line", ("_loaded_at",)),
    "raw.items": ("item_id, _source_file, _source_line", ("_loaded_at",)),
    "raw.rejected_records": ("dataset, file, line_no", ("rejected_at",)),
    "raw.ingested_files": ("dataset, file", ("modified_at", "loaded_at")),
    "marts.fct_daily_engagement": ("activity_date, org_id", ()),
    "marts.fct_activity_summary": ("activity_date, org_id, activity_type", ()),
    "marts.fct_hourly_usage": ("activity_hour, activity_type", ()),
    "marts.fct_kpi_daily": ("kpi_date", ()),
    "marts.fct_item_daily_demand": ("demand_date, item_id", ()),
    "marts.kpi_snapshots": ("kpi_name, grain, period_start", ()),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[dict[str, str]]:
    """A moto S3 server process; yields the standard AWS settings that reach it."""
    port = _free_port()
    moto = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        }
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def bucket(s3_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket on the server; the AWS settings are in the environment. Returns its URL with a
    prefix, as ANALYTICS_LANDING_DIR names it."""
    for name, value in s3_server.items():
        monkeypatch.setenv(name, value)
    name = f"landing-{uuid.uuid4().hex[:12]}"
    zone = ObjectStoreLandingZone(f"s3://{name}")
    zone.fs.mkdir(name)
    return f"s3://{name}/product/drops"


def _hostile_files(root: Path) -> None:
    """Files another team's writer leaves beside good ones (each kind has its own local test in
    test_ingestion_hostile; here they must come out of the bucket the same way)."""
    events = root / EVENTS_DIR
    line = '{"event_id": "%s", "occurred_at": "%sT09:00:00Z", "user_id": "u-x", "org_id": "org-x", "activity_type": "login"}\n'
    (events / "part[1].jsonl").write_text(line % ("glob-1", DAYS[1]))
    (events / "snap-*.jsonl").write_text(line % ("glob-2", DAYS[1]))
    (events / "=cmd|' x'!A1.jsonl").write_text(line % ("formula-1", DAYS[1]))
    (events / "with space.jsonl.gz").write_bytes(gzip.compress((line % ("gz-1", DAYS[1])).encode()))
    (events / "broken.jsonl.gz").write_bytes(b"\x1f\x8b not gzip at all")
    (events / "empty.jsonl").write_bytes(b"")
    (events / "utf16.jsonl").write_bytes((line % ("u16", DAYS[1])).encode("utf-16"))
    (events / "notes.xlsx").write_bytes(b"PK\x03\x04")
    (events / "_SUCCESS").write_bytes(b"")
    (events / ".part-0.jsonl.crc").write_bytes(b"crc")
    (events / "archive").mkdir()
    (events / "archive" / "old.jsonl").write_text(line % ("archived", DAYS[1]))


DIMENSIONS = dg.AssetSelection.assets(["raw", "organizations"], ["raw", "users"], ["raw", "items"])


def _load_everything() -> None:
    run_unpartitioned(DIMENSIONS)
    run_pipeline(DAYS[0], DAYS[-1])


def _tables(warehouse: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    for table, (order, volatile) in TABLES.items():
        rows = warehouse.query(f"select * from {table} order by {order}").to_pylist()
        found[table] = [
            tuple(round(v, 9) if isinstance(v, float) else v for k, v in row.items() if k not in volatile)
            for row in rows
        ]
    return found


def test_a_bucket_loads_exactly_what_the_same_local_files_load(env, bucket: str, monkeypatch) -> None:
    local = Path(env["ANALYTICS_LANDING_DIR"])
    generate(local, DAYS[0], DAYS[-1], events_per_day=400, users=120, orgs=4, items=20, seed=11)
    _hostile_files(local)
    ObjectStoreLandingZone(bucket).upload(local)

    _load_everything()
    warehouse = Warehouse(get_settings())
    from_folder = _tables(warehouse)
    assert all(from_folder[table] for table in TABLES)  # every table has rows to compare

    # the same days again, now from the bucket alone: each partition is replaced by what the bucket holds
    shutil.rmtree(local)
    monkeypatch.setenv("ANALYTICS_LANDING_DIR", bucket)
    _load_everything()
    from_bucket = _tables(warehouse)

    assert from_bucket == from_folder
    # nothing was lost on the way: the sample data's bad records and the hostile files are all there
    ledger = {row[2]: row for row in from_bucket["raw.ingested_files"]}
    assert ledger[f"{EVENTS_DIR}/part[1].jsonl"][4:7] == (1, 1, 0)  # read by its exact name: 1 line, loaded
    assert ledger[f"{EVENTS_DIR}/snap-*.jsonl"][4:7] == (1, 1, 0)
    assert ledger[f"{EVENTS_DIR}/=cmd|' x'!A1.jsonl"][4:7] == (1, 1, 0)
    assert ledger[f"{EVENTS_DIR}/with space.jsonl.gz"][4:7] == (1, 1, 0)
    assert ledger[f"{EVENTS_DIR}/archive/"][-1].startswith("skipped: subfolder")
    assert ledger[f"{EVENTS_DIR}/_SUCCESS"][-1].startswith("skipped: marker")
    assert ledger[f"{EVENTS_DIR}/.part-0.jsonl.crc"][-1].startswith("skipped: hidden")
    for rejected in ("broken.jsonl.gz", "empty.jsonl", "utf16.jsonl", "notes.xlsx"):
        assert ledger[f"{EVENTS_DIR}/{rejected}"][-1], rejected  # rejected whole, with its reason
    assert len(from_bucket["raw.rejected_records"]) > 4  # the generator's bad records as well
    # the ledger's modification times are the objects', not the deleted local files'
    times = warehouse.query("select file, modified_at from raw.ingested_files where file not like '%/'").to_pylist()
    zone = ObjectStoreLandingZone(bucket)
    listed = {
        entry.relative: entry.modified_at
        for _, _, entry in zone.files([d.name for d in DAILY_DATASETS], ["users", "organizations", "items"])
    }
    assert {row["file"]: row["modified_at"].replace(microsecond=0) for row in times} == {
        file: at.replace(microsecond=0) for file, at in listed.items() if not file.endswith("/")
    }


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_the_sensor_lists_the_bucket_past_a_page_and_sees_an_overwritten_object(env, bucket: str, monkeypatch) -> None:
    zone = ObjectStoreLandingZone(bucket)
    folder = zone.root
    monkeypatch.setenv("ANALYTICS_LANDING_DIR", bucket)
    monkeypatch.setattr(sensors, "SETTLE_SECONDS", 0)  # an object is whole once written: no settling wait
    files = {f"{folder}/users/part-{n:04d}.jsonl": b'{"user_id": "u"}\n' for n in range(1_050)}
    files[f"{folder}/{EVENTS_DIR}/a.jsonl"] = b'{"event_id": "e"}\n'
    files[f"{folder}/{EVENTS_DIR}/_SUCCESS"] = b""
    files[f"{folder}/not-a-dataset/x.jsonl"] = b"{}\n"
    zone.fs.pipe(files)

    versions = scan_landing(bucket)
    assert len(versions) == 1_051  # every user file (two listing pages) and the event file; no marker
    assert {v.path for v in versions if v.dataset == "activity_events"} == {f"{EVENTS_DIR}/a.jsonl"}

    instance = dg.DagsterInstance.ephemeral()

    def requested(result: dg.SensorResult) -> set[tuple]:
        return {
            (r.partition_key, tuple(sorted(k.path[-1] for k in r.asset_selection if k.path[0] == "raw")))
            for r in result.run_requests
        }

    # dimensions first: the day waits until the dimension run has loaded the users
    dimensions_first = landing_file_sensor(
        dg.build_sensor_context(resources=pipeline_resources(), instance=instance, cursor=None)
    )
    assert requested(dimensions_first) == {(None, ("users",))}
    instance.report_runless_asset_event(dg.AssetMaterialization(["raw", "users"]))
    first = landing_file_sensor(
        dg.build_sensor_context(resources=pipeline_resources(), instance=instance, cursor=dimensions_first.cursor)
    )
    assert requested(first) == {(DAYS[1].isoformat(), ("activity_events",))}
    assert not landing_file_sensor(
        dg.build_sensor_context(resources=pipeline_resources(), instance=instance, cursor=first.cursor)
    ).run_requests

    time.sleep(1.1)  # S3 keeps modification times to the second
    zone.fs.pipe({f"{folder}/{EVENTS_DIR}/a.jsonl": b'{"event_id": "e2"}\n'})  # overwritten by the product
    [changed] = [v for v in scan_landing(bucket) if v.dataset == "activity_events"]
    [before] = [v for v in versions if v.dataset == "activity_events"]
    assert changed.version != before.version and changed.token != before.token  # a new ETag
    again = landing_file_sensor(
        dg.build_sensor_context(resources=pipeline_resources(), instance=instance, cursor=first.cursor)
    )
    assert [r.partition_key for r in again.run_requests] == [DAYS[1].isoformat()]
    assert again.run_requests[0].run_key != next(r.run_key for r in first.run_requests if r.partition_key)


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_generate_writes_the_sample_data_into_a_bucket(env, bucket: str, capsys) -> None:
    local = Path(env["ANALYTICS_LANDING_DIR"])
    args = ["--start", DAYS[0].isoformat(), "--end", DAYS[1].isoformat(), "--events-per-day", "50", "--seed", "3"]
    assert cli.main(["generate", "--landing-dir", str(local), *args]) == 0
    assert cli.main(["generate", "--landing-dir", bucket, *args]) == 0
    assert f"files to {bucket}" in capsys.readouterr().out
    written = {p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*") if p.is_file()}
    zone = LandingZone.at(bucket)
    assert isinstance(zone, ObjectStoreLandingZone)
    in_bucket = {key.removeprefix(f"{zone.root}/"): zone.fs.cat_file(key) for key in zone.fs.find(zone.root)}
    assert in_bucket == written
    assert os.environ["ANALYTICS_LANDING_DIR"] == str(local)  # the setting itself is untouched


def test_a_landing_url_of_another_scheme_is_refused_in_one_sentence(env, monkeypatch) -> None:
    from analytics_pipeline.settings import SettingsError

    monkeypatch.setenv("ANALYTICS_LANDING_DIR", "gs://bucket/landing")
    with pytest.raises(SettingsError, match="s3://bucket/prefix"):
        get_settings()
