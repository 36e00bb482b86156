"""Tripwire for ``analytics_pipeline/runs_on_this_machine.py``: the run storage class it looks for must
still be where it imports it from, and the project's embedded instance must still be recognised."""

import shutil
from pathlib import Path

import dagster as dg

from analytics_pipeline.runs_on_this_machine import on_this_machine
from analytics_pipeline.settings import PROJECT_ROOT


def test_the_embedded_instance_runs_on_this_machine(tmp_path: Path) -> None:
    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert on_this_machine(instance)


def test_an_in_memory_instance_is_not_judged() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        assert not on_this_machine(instance)
