"""Tripwire for ``analytics_pipeline/resources/dbt_cli_fixed_costs.py``: the two private members of
dagster-dbt's ``DbtCliResource`` it overrides must still exist and still be what ``cli`` calls. When a
dagster-dbt upgrade renames them or stops calling them, this fails by name (the overrides would then
silently stop saving a ``dbt --version`` subprocess and an adapter per invocation)."""

import functools
import inspect
import subprocess

import pytest
from dagster_dbt import DbtCliResource
from packaging import version

from analytics_pipeline.resources.dbt import dbt_resource
from analytics_pipeline.settings import get_settings


def test_the_overridden_members_are_still_dagster_dbts() -> None:
    assert isinstance(inspect.getattr_static(DbtCliResource, "_cli_version"), property | functools.cached_property)
    assert callable(inspect.getattr_static(DbtCliResource, "_initialize_dbt_core_adapter"))
    source = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in source
    assert "self._initialize_dbt_core_adapter" in source


def test_the_version_comes_without_a_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    resource = dbt_resource(get_settings())
    assert isinstance(resource._cli_version, version.Version)
    assert resource._initialize_dbt_core_adapter([]) is None
