"""The README's main command ends in the Dagster UI with the daemon: start it as the user does and
ask the webserver, over GraphQL, what an operator would see."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from analytics_pipeline.settings import PROJECT_ROOT
from tests_support import free_port

QUERY = """
{
  assetNodes { assetKey { path } groupName isPartitioned hasAssetChecks internalFreshnessPolicy { __typename } }
  instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } }
}
"""


def graphql(port: int) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


@pytest.mark.e2e
@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_ui_serves_the_asset_graph_and_the_daemon_runs(env: dict[str, str]) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "analytics_pipeline.cli", "ui", "--port", str(port)],
        env={**os.environ, **env}, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        data, deadline = None, time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                data = graphql(port)
                daemons = {d["daemonType"]: d["healthy"] for d in data["instance"]["daemonHealth"]["allDaemonStatuses"]}
                if data["assetNodes"] and daemons.get("SCHEDULER"):
                    break
            except (urllib.error.URLError, ConnectionError, KeyError, TypeError):
                pass
            time.sleep(2)
        assert data and data["assetNodes"], "the webserver did not serve the asset graph in time"
        groups = {node["groupName"] for node in data["assetNodes"]}
        assert {"ingestion", "engagement"} <= groups
        nodes = {"/".join(node["assetKey"]["path"]): node for node in data["assetNodes"]}
        assert nodes["raw/activity_events"]["isPartitioned"]
        assert nodes["marts/fct_daily_engagement"]["isPartitioned"] and nodes["marts/fct_daily_engagement"]["hasAssetChecks"]
        assert daemons.get("SCHEDULER") and daemons.get("SENSOR") and daemons.get("BACKFILL")
        # freshness is a policy on the key marts, evaluated by the daemon and shown with each asset
        assert nodes["marts/fct_kpi_daily"]["internalFreshnessPolicy"]["__typename"] == "TimeWindowFreshnessPolicy"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
