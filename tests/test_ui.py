"""The README's main command ends in the Dagster UI with the daemon: start it as the user does and
ask the webserver, over GraphQL, what an operator would see."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest
from tests_support import free_port

from analytics_pipeline.settings import PROJECT_ROOT

QUERY = """
{
  assetNodes { assetKey { path } groupName isPartitioned hasAssetChecks internalFreshnessPolicy { __typename } }
  instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } }
}
"""


def graphql(port: int) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


def start_ui(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    """``analytics-pipeline ui`` in a session of its own (so the test can clean up whatever leaks)."""
    return subprocess.Popen(
        [sys.executable, "-m", "analytics_pipeline.cli", "ui", "--port", str(port)],
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_until_served(port: int, process: subprocess.Popen[str]) -> dict:
    """What the webserver answers once the asset graph is loaded and the scheduler has a heartbeat."""
    data, deadline = None, time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            data = graphql(port)
            daemons = {d["daemonType"]: d["healthy"] for d in data["instance"]["daemonHealth"]["allDaemonStatuses"]}
            if data["assetNodes"] and daemons.get("SCHEDULER"):
                break
        except (urllib.error.URLError, ConnectionError, KeyError, TypeError):
            pass
        time.sleep(2)
    assert data and data["assetNodes"], "the webserver did not serve the asset graph in time"
    return data


def stop_and_check_nothing_is_left(process: subprocess.Popen[str], port: int, signo: int) -> str:
    """Signal only the ``ui`` process, as a supervisor does, and check the whole stack is gone.

    The stack (dg/dagster dev, webserver, daemon, their code servers) is walked before the signal;
    afterwards no process of it may be left and the port must be free. Returns the console output.
    """
    stack = psutil.Process(process.pid).children(recursive=True)
    commands = " ".join(" ".join(p.cmdline()) for p in stack)
    assert "dagster_webserver" in commands and "dagster._daemon" in commands, commands
    assert "grpc" in commands, f"no code server was running: {commands}"
    try:
        process.send_signal(signo)
        # generous: the stack stops in under 30 s (20 s grace, then SIGKILL); this only bounds a hang
        output, _ = process.communicate(timeout=90)
    finally:
        leftovers = [p for p in stack if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        os.killpg(process.pid, signal.SIGKILL) if process.poll() is None else None
        for leftover in leftovers:
            leftover.kill()
    assert process.returncode == 0, output
    assert not leftovers, f"still running after the ui process exited: {[' '.join(p.cmdline()) for p in leftovers]}"
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))  # raises while anything still listens on the port
    return output


@pytest.mark.e2e
@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_ui_serves_the_asset_graph_and_the_daemon_runs(env: dict[str, str]) -> None:
    port = free_port()
    process = start_ui(env, port)
    try:
        data = wait_until_served(port, process)
        daemons = {d["daemonType"]: d["healthy"] for d in data["instance"]["daemonHealth"]["allDaemonStatuses"]}
        groups = {node["groupName"] for node in data["assetNodes"]}
        assert {"ingestion", "engagement"} <= groups
        nodes = {"/".join(node["assetKey"]["path"]): node for node in data["assetNodes"]}
        assert nodes["raw/activity_events"]["isPartitioned"]
        assert (
            nodes["marts/fct_daily_engagement"]["isPartitioned"]
            and nodes["marts/fct_daily_engagement"]["hasAssetChecks"]
        )
        assert daemons.get("SCHEDULER") and daemons.get("SENSOR") and daemons.get("BACKFILL")
        # freshness is a policy on the key marts, evaluated by the daemon and shown with each asset
        assert nodes["marts/fct_kpi_daily"]["internalFreshnessPolicy"]["__typename"] == "TimeWindowFreshnessPolicy"
        output = stop_and_check_nothing_is_left(process, port, signal.SIGTERM)
        # started through dg, from the instance directory: neither Dagster warning reaches the console
        assert "SupersessionWarning" not in output and "dg dev" not in output, output
        assert "Found a dagster instance configuration" not in output, output
        assert "had no dagster.yaml: wrote the project's instance configuration" in output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.e2e
@pytest.mark.parametrize("warehouse_engine", ["duckdb"], indirect=True)
def test_sigint_to_the_ui_process_alone_stops_the_whole_stack(env: dict[str, str]) -> None:
    """Ctrl-C reaches only this process (the stack runs in its own session): it is passed on."""
    port = free_port()
    process = start_ui(env, port)
    try:
        wait_until_served(port, process)
        stop_and_check_nothing_is_left(process, port, signal.SIGINT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
