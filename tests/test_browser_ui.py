"""The real Dagster UI in a real browser: Debian's chromium (installed by ``make install``, never a
downloaded browser) driven by Playwright. ``dagster dev`` runs on an instance with two materialized
partitions and a backfill launched over GraphQL; the asset graph, an asset's partitions page and the
backfill's page must load without a page error or a console error. Screenshots are saved under the
test's tmp dir (and copied to ``$ANALYTICS_TEST_ARTIFACTS`` when set). The backfill, run by the
daemon, must be one run whose days each carry their own numbers, as the UI's plots read them."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from conftest import pipeline_resources
from ops_support import seed_dagster_home
from tests_support import free_port

from analytics_pipeline.instance import get_instance
from analytics_pipeline.settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EVENTS = dg.AssetKey(["raw", "activity_events"])
DAYS = [date(2025, 1, 2) + timedelta(days=n) for n in range(4)]
EVENTS_PER_DAY = [3, 3, 4, 6]

BACKFILL = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill {
    status runs(limit: 100) { status } } } }
"""
# what the UI's plots over partitions read: each day's materialization and its metadata
MATERIALIZATIONS = """
query($partitions: [String!]) { assetOrError(assetKey: {path: ["raw", "activity_events"]}) { ... on Asset {
    assetMaterializations(partitions: $partitions) { partition runId
        metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }
"""

WORKSPACE = """
{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError {
    __typename ... on PythonError { message } } } } } }
"""
RESOURCES = """
{ allTopLevelResourceDetailsOrError(repositorySelector: {repositoryLocationName: "analytics_pipeline",
                                                         repositoryName: "__repository__"}) {
    __typename ... on ResourceDetailsList { results { name configuredValues { key value type } } } } }
"""
LAUNCH_BACKFILL = """
mutation($partitions: [String!]) {
  launchPartitionBackfill(backfillParams: {partitionNames: $partitions, assetSelection: [{path: ["raw", "activity_events"]}]}) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""


@pytest.fixture
def warehouse_engine() -> str:
    return "duckdb"


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def _materialize_two_days(env: dict[str, str], landing) -> None:
    from analytics_pipeline.defs.ingestion.assets import ingestion_assets

    # landing files for every day, with a different number of events each; the first two days are
    # materialized here, the others by the UI-launched backfill under test
    for day, events in zip(DAYS, EVENTS_PER_DAY, strict=True):
        landing.jsonl(
            "activity_events",
            day,
            "events.jsonl",
            [
                {
                    "event_id": f"{day}-{n}",
                    "occurred_at": f"{day}T0{n}:00:00Z",
                    "user_id": f"u{n}",
                    "org_id": "o1",
                    "activity_type": "login",
                }
                for n in range(events)
            ],
        )
    home = Path(env["DAGSTER_HOME"])
    seed_dagster_home(home)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")  # the embedded default `make demo` uses
    # the backfill under test loads the other days: the daemon's landing sensor must not load them first
    stopped = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "sensor",
            "stop",
            "landing_file_sensor",
            "-w",
            str(PROJECT_ROOT / "workspace.yaml"),
        ],
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    events, instance = next(a for a in ingestion_assets if a.key == EVENTS), get_instance()
    for day in DAYS[:2]:
        dg.materialize([events], instance=instance, partition_key=day.isoformat(), resources=pipeline_resources())


@pytest.mark.e2e
def test_dagster_ui_pages_load_in_chromium_without_errors(
    env: dict[str, str],
    landing,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (it installs Debian's chromium for this test).")
    monkeypatch.setenv("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    # a password the UI must name (the variable) and never show
    monkeypatch.setenv("ANALYTICS_PG_PASSWORD", "never-shown-in-the-ui")
    _materialize_two_days(env, landing)
    port = free_port()
    log = (tmp_path / "dagster_dev.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "analytics_pipeline.cli", "ui", "--port", str(port)],
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                [entry] = _graphql(port, WORKSPACE)["workspaceOrError"]["locationEntries"]
                loaded = entry["locationOrLoadError"] or {}
                assert loaded.get("__typename") != "PythonError", (
                    f"the code location failed to load: {loaded.get('message')}"
                )
                if loaded.get("__typename") == "RepositoryLocation":
                    break
            except (urllib.error.URLError, ConnectionError, KeyError, TypeError, ValueError):
                pass
            assert time.monotonic() < deadline, "dagster dev did not load the code location in time"
            time.sleep(1)
        # the configuration is the code location's resources, typed and with the password as a variable
        resources = {
            r["name"]: {v["key"]: (v["type"], v["value"]) for v in r["configuredValues"]}
            for r in _graphql(port, RESOURCES)["allTopLevelResourceDetailsOrError"]["results"]
        }
        assert {"warehouse", "dbt", "landing_zone", "reports", "report_delivery", "alerting"} <= set(resources)
        assert resources["warehouse"]["pg_password"] == ("ENV_VAR", "ANALYTICS_PG_PASSWORD")
        assert resources["warehouse"]["engine"] == ("VALUE", '"duckdb"'), resources["warehouse"]
        assert "never-shown-in-the-ui" not in json.dumps(resources)
        _graphql(port, "mutation { setNuxSeen }")  # the first-visit newsletter dialog would cover the pages
        launched = _graphql(port, LAUNCH_BACKFILL, {"partitions": [d.isoformat() for d in DAYS[2:]]})
        assert launched["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["launchPartitionBackfill"]["backfillId"]

        # the daemon runs the backfill: one run (a single-run backfill policy) over both days, each day's
        # materialization with its own numbers
        while (backfill := _graphql(port, BACKFILL, {"id": backfill_id})["partitionBackfillOrError"])[
            "status"
        ] == "REQUESTED":
            assert time.monotonic() < deadline + 300, f"the UI-launched backfill did not finish: {backfill}"
            time.sleep(1)
        assert backfill["status"] == "COMPLETED_SUCCESS" and backfill["runs"] == [{"status": "SUCCESS"}], backfill
        backfilled = [d.isoformat() for d in DAYS[2:]]
        shown = _graphql(port, MATERIALIZATIONS, {"partitions": backfilled})["assetOrError"]["assetMaterializations"]
        loaded = {
            m["partition"]: {e["label"]: e.get("intValue") for e in m["metadataEntries"]}["rows_loaded"] for m in shown
        }
        assert loaded == dict(zip(backfilled, EVENTS_PER_DAY[2:], strict=True)), shown
        assert len({m["runId"] for m in shown}) == 1

        pages = {
            "asset_graph": ("/asset-groups", "operations"),  # the groups, ours among them
            "asset_partitions": ("/assets/raw/activity_events?view=partitions", "Materialized (4)"),
            "backfill": (f"/runs/b/{backfill_id}", re.compile(f"{DAYS[2]}(…|\\.\\.\\.){DAYS[3]}")),  # its partitions
            "resource": ("/locations/analytics_pipeline/resources/warehouse", "ANALYTICS_PG_PASSWORD"),
        }
        problems: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.on("pageerror", lambda error: problems.append(f"page error on {page.url}: {error}"))
                page.on(
                    "console",
                    lambda message: (
                        message.type == "error" and problems.append(f"console error on {page.url}: {message.text}")
                    ),
                )
                for name, (path, expected_text) in pages.items():
                    page.goto(f"http://127.0.0.1:{port}{path}", wait_until="domcontentloaded")
                    page.get_by_text(expected_text).first.wait_for(timeout=60_000)
                    page.wait_for_load_state("networkidle", timeout=30_000)
                    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            finally:
                browser.close()
        assert not problems, "\n".join(problems)
        assert sorted(p.name for p in shots.iterdir()) == [
            "asset_graph.png",
            "asset_partitions.png",
            "backfill.png",
            "resource.png",
        ]
        if os.environ.get("ANALYTICS_TEST_ARTIFACTS"):
            shutil.copytree(shots, Path(os.environ["ANALYTICS_TEST_ARTIFACTS"]) / "browser_ui", dirs_exist_ok=True)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
