"""The Dagster instance the CLI records its runs in (the same one the UI and the daemon read)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import dagster as dg

from analytics_pipeline.settings import PROJECT_ROOT, get_settings

DEFAULT_INSTANCE_CONFIG = PROJECT_ROOT / "dagster.yaml"


def prepare_dagster_home() -> Path:
    """Make sure ``DAGSTER_HOME`` exists and, by default, uses the project's ``dagster.yaml``.

    A DAGSTER_HOME chosen by the user is left as it is (its own dagster.yaml, or Dagster's
    defaults); the project default ``data/dagster_home`` links to the embedded configuration.
    """
    settings = get_settings()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if "DAGSTER_HOME" not in os.environ and not config.exists():
        config.symlink_to(DEFAULT_INSTANCE_CONFIG)
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
