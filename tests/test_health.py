"""``analytics-pipeline health``: ok on a healthy setup, the right status and reason for each kind of
trouble, and a PostgreSQL warehouse that goes away and comes back (a throw-away server of the test's
own: the shared one at 127.0.0.1:5432 is never stopped)."""

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from ops_support import make_healthy, scrape, seed_dagster_home
from tests_support import free_port

from analytics_pipeline.cli import main
from analytics_pipeline.defs.operations.freshness import KEY_MARTS
from analytics_pipeline.defs.operations.health import (
    HealthReport,
    check_asset_checks,
    check_daemon,
    check_freshness,
    check_runs,
    evaluate,
)
from analytics_pipeline.instance import get_instance
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import PROJECT_ROOT, get_settings

CLI = [sys.executable, "-m", "analytics_pipeline.cli"]


def statuses(report: HealthReport) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


def test_health_is_ok_on_a_healthy_setup(
    env: dict[str, str], warehouse: Warehouse, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_dagster_home(Path(env["DAGSTER_HOME"]))
    make_healthy(get_instance())

    report = evaluate()
    assert statuses(report) == dict.fromkeys(("warehouse", "instance", "daemon", "freshness", "runs", "checks"), "ok")
    assert "answered in" in report.check("warehouse").reason

    assert main(["health", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["status"] == "ok"
    assert document["checks"]["freshness"]["details"]["assets"]["marts/fct_kpi_daily"]["state"] == "ok"
    assert document["checks"]["warehouse"]["details"]["engine"] == get_settings().warehouse

    assert main(["health"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["warehouse", "ok"] and lines[-1].split() == ["overall", "ok"]


def test_a_fresh_key_mart_without_rows_is_degraded(env: dict[str, str], warehouse: Warehouse) -> None:
    """Materialized every day from a dataset that never landed: fresh, and empty."""
    seed_dagster_home(Path(env["DAGSTER_HOME"]))
    instance = get_instance()
    make_healthy(instance)
    assert check_freshness(instance, datetime.now(UTC), get_settings()).status == "ok"

    warehouse.execute("delete from marts.fct_daily_engagement")
    warehouse.execute("drop table marts.fct_engagement_rolling")
    report = evaluate()
    freshness = report.check("freshness")
    assert (report.status, freshness.status) == ("degraded", "degraded")
    assert "marts/fct_daily_engagement has no rows at all" in freshness.reason
    assert "marts/fct_engagement_rolling has no rows at all" in freshness.reason  # no table, no rows
    assert "marts/fct_kpi_daily" not in freshness.reason
    assert freshness.details["assets"]["marts/fct_daily_engagement"]["has_rows"] is False
    assert freshness.details["assets"]["marts/fct_kpi_daily"]["has_rows"] is True

    warehouse.execute("insert into marts.fct_daily_engagement values (1)")
    warehouse.execute("create table marts.fct_engagement_rolling (placeholder integer)")
    warehouse.execute("insert into marts.fct_engagement_rolling values (1)")
    assert evaluate().check("freshness").status == "ok"


@dg.asset(
    check_specs=[dg.AssetCheckSpec("rows_present", asset="orders"), dg.AssetCheckSpec("kpi_in_band", asset="orders")]
)
def orders(context) -> dg.MaterializeResult:
    bad = context.run.tags.get("bad") == "yes"
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(check_name="rows_present", passed=not bad),
            dg.AssetCheckResult(check_name="kpi_in_band", passed=False, severity=dg.AssetCheckSeverity.WARN),
        ]
    )


@dg.op
def nightly_op(context) -> None:
    if context.run.tags.get("fail") == "yes":
        raise RuntimeError("the warehouse said no")


@dg.job
def nightly() -> None:
    nightly_op()


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_each_kind_of_trouble_has_its_status_and_reason(env: dict[str, str], warehouse: Warehouse) -> None:
    seed_dagster_home(Path(env["DAGSTER_HOME"]))
    instance = get_instance()
    for key in KEY_MARTS:
        instance.report_runless_asset_event(dg.AssetMaterialization(key))

    report = evaluate()  # no daemon has ever run against this instance
    assert statuses(report)["daemon"] == "degraded" and (report.status, report.exit_code) == ("degraded", 1)
    assert "dagster-daemon run" in report.check("daemon").reason
    make_healthy(instance)
    assert check_daemon(instance).status == "ok"

    later = datetime.now(UTC) + timedelta(hours=25)
    stale = check_freshness(instance, later)
    assert stale.status == "degraded"
    assert "marts/fct_kpi_daily last updated 25.0 h ago (over 24 h)" in stale.reason
    assert stale.details["assets"]["marts/fct_kpi_daily"]["state"] == "warn"
    assert "over 26 h" in check_freshness(instance, later + timedelta(hours=2)).reason

    assert not nightly.execute_in_process(instance=instance, tags={"fail": "yes"}, raise_on_error=False).success
    runs = check_runs(instance, datetime.now(UTC))
    assert runs.status == "degraded"
    assert "nightly" in runs.reason and "nightly_op: RuntimeError: the warehouse said no" in runs.reason
    assert nightly.execute_in_process(instance=instance).success
    runs = check_runs(instance, datetime.now(UTC))
    assert runs.status == "ok" and runs.reason == "1 failed runs in the last 24 h, each job has succeeded since"

    dg.materialize([orders], instance=instance)  # the WARN-severity check fails: listed, still ok
    checks = check_asset_checks(instance, datetime.now(UTC))
    assert checks.status == "ok" and "1 failing with WARN severity" in checks.reason
    dg.materialize([orders], instance=instance, tags={"bad": "yes"})
    checks = check_asset_checks(instance, datetime.now(UTC))
    assert checks.status == "degraded" and "orders:rows_present" in checks.reason
    assert {(f["check"], f["severity"]) for f in checks.details["failing"]} == {
        ("rows_present", "ERROR"),
        ("kpi_in_band", "WARN"),
    }
    dg.materialize([orders], instance=instance)  # fixed: the latest evaluation passes
    assert check_asset_checks(instance, datetime.now(UTC)).status == "ok"
    assert evaluate().status == "ok"


@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_unreadable_instance_is_down(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    Path(env["DAGSTER_HOME"], "dagster.yaml").write_text("run_storage:\n  module: no_such_module\n  class: Nope\n")
    report = evaluate()
    assert report.status == "down" and report.exit_code == 2
    assert "DAGSTER_HOME" in report.check("instance").reason
    assert report.check("runs").reason.startswith("not checked")
    assert main(["health", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["checks"]["instance"]["status"] == "down"


# -- a PostgreSQL warehouse that goes away and comes back -----------------------------------------


@dataclass
class ThrowawayPostgres:
    """A PostgreSQL cluster of the test's own on a free port, started and stopped with pg_ctl."""

    bin_dir: Path
    root: Path
    port: int
    as_postgres: list[str]

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        self._pg_ctl("-l", str(self.root / "server.log"), "-w", "-o", options, "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins:
        pytest.fail("initdb/pg_ctl not found under /usr/lib/postgresql/*/bin: install the PostgreSQL server package.")
    root = Path(tempfile.mkdtemp(prefix="ap_pg_"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: the cluster belongs to the postgres user
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("The tests run as root and there is no `postgres` user to own a throw-away cluster.")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    cluster = ThrowawayPostgres(bins[-1].parent, root, free_port(), as_postgres)
    subprocess.run(
        [
            *as_postgres,
            str(cluster.bin_dir / "initdb"),
            "-D",
            str(root / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.e2e
def test_health_follows_a_postgres_warehouse_that_goes_away_and_comes_back(
    throwaway_postgres: ThrowawayPostgres,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    values = {
        "ANALYTICS_WAREHOUSE": "postgres",
        "ANALYTICS_PG_HOST": "127.0.0.1",
        "ANALYTICS_PG_PORT": str(throwaway_postgres.port),
        "ANALYTICS_PG_USER": "postgres",
        "ANALYTICS_PG_DATABASE": "analytics",
        "DAGSTER_HOME": str(tmp_path / "home"),
        "ANALYTICS_OUTPUT_DIR": str(tmp_path / "output"),
        "ANALYTICS_LANDING_DIR": str(tmp_path / "landing"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    Warehouse(get_settings()).ensure_ready()  # creates the database on the throw-away server
    seed_dagster_home(tmp_path / "home")
    make_healthy(get_instance())
    process_env = {**os.environ, **values}
    metrics_port = free_port()
    log = (tmp_path / "metrics.log").open("w")
    server = subprocess.Popen(
        [*CLI, "metrics", "--serve", str(metrics_port)],
        env=process_env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert "/metrics" in server.stdout.readline()  # serving
        up = ("analytics_pipeline_up", (("component", "warehouse"),))
        assert evaluate().status == "ok"
        assert scrape(metrics_port)[up] == 1

        throwaway_postgres.stop()
        started = time.monotonic()
        report = evaluate()
        assert time.monotonic() - started < 5  # refused at once, no long timeout
        assert report.status == "down" and report.check("warehouse").status == "down"
        assert f"127.0.0.1:{throwaway_postgres.port}" in report.check("warehouse").reason
        assert "ANALYTICS_PG_HOST" in report.check("warehouse").reason
        assert statuses(report)["instance"] == "ok"
        down = _cli("health", "--json", env=process_env)
        assert down.returncode == 2, down.stderr
        assert json.loads(down.stdout)["checks"]["warehouse"]["status"] == "down"
        samples = scrape(metrics_port)  # the same long-running process sees it at the next scrape
        assert samples[up] == 0 and samples[("analytics_pipeline_health_status", (("check", "warehouse"),))] == 2

        throwaway_postgres.start()
        assert evaluate().status == "ok"  # no restart, no manual step
        assert main(["health"]) == 0
        assert capsys.readouterr().out.splitlines()[-1].split() == ["overall", "ok"]
        assert scrape(metrics_port)[up] == 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        finally:
            if server.poll() is None:  # never leave a server behind, even when the assertion is that it stops
                server.kill()
            log.close()
