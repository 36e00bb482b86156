"""Workaround: whether every run of a Dagster instance executes on this machine.

The gap: the dead-run monitor judges a run by the process id the in-process executor recorded, and a
process id means something only on the machine that ran the run. Dagster has no public way to ask
where an instance's runs execute; the embedded instance (``dagster.yaml``: SQLite run storage, a
file on this machine that no other machine's run writes to) is the case where every run is local.
So this module, and only this module, looks at the instance's run storage class, which Dagster
exports only from its private modules.

Tripwire: ``tests/test_runs_on_this_machine.py`` fails by name when the class moves, and checks the
answer for the project's embedded instance (yes) and an in-memory one (no: nothing to judge).
"""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.runs.sqlite import SqliteRunStorage


def on_this_machine(instance: dg.DagsterInstance) -> bool:
    """Whether every run of the instance ran on this machine (the embedded instance's SQLite storage)."""
    return isinstance(instance.run_storage, SqliteRunStorage)
