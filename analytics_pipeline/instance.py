"""The Dagster instance the CLI records its runs in (the same one the UI and the daemon read)."""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from pathlib import Path

import dagster as dg

from analytics_pipeline.settings import PROJECT_ROOT, get_settings

DEFAULT_INSTANCE_CONFIG = PROJECT_ROOT / "dagster.yaml"


def prepare_dagster_home() -> Path:
    """Make sure ``DAGSTER_HOME`` exists and has the project's instance configuration.

    The project default ``data/dagster_home`` links to the top-level ``dagster.yaml``. A DAGSTER_HOME
    chosen by the user keeps its own ``dagster.yaml``; one without gets a copy of the project's
    (said once), because Dagster's defaults differ where it matters: telemetry on, no ``warehouse``
    pool (concurrent runs would fight over the DuckDB file), no run monitoring.
    """
    settings = get_settings()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and not (home / "dagster.yml").exists():
        if "DAGSTER_HOME" not in os.environ:
            config.symlink_to(DEFAULT_INSTANCE_CONFIG)
        else:
            partial = home / f".dagster.yaml.{os.getpid()}"
            shutil.copyfile(DEFAULT_INSTANCE_CONFIG, partial)
            partial.replace(config)  # whole or not at all, even with two commands starting at once
            print(
                f"DAGSTER_HOME={home} had no dagster.yaml: wrote the project's instance configuration "
                f"there (from {DEFAULT_INSTANCE_CONFIG}); edit it to change the instance.",
                file=sys.stderr,
            )
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def get_instance() -> dg.DagsterInstance:
    """The instance of ``DAGSTER_HOME``. Opening it is serialized across processes: two commands
    started at once on a new home would otherwise race to create the SQLite schema."""
    home = prepare_dagster_home()
    with (home / ".instance.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return dg.DagsterInstance.get()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
