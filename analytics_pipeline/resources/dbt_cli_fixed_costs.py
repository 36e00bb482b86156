"""Workaround: dagster-dbt's fixed costs per dbt invocation, which this project has no use for.

The gap: ``DbtCliResource.cli`` asks for ``_cli_version`` on every invocation, which runs
``dbt --version`` in a subprocess (a Python start-up, and dbt looks up the latest release on PyPI:
dbt-labs/dbt-core#6085), and builds an in-process dbt adapter with every macro of the project
(``_initialize_dbt_core_adapter``) that only ``fetch_column_metadata()`` and ``fetch_row_counts()``
use; this project fetches neither. dagster-dbt has no setting for either, so this module, and only
this module, overrides those two private members: the version comes from the installed dbt-core
package when the executable is this environment's dbt (else from one ``dbt --version`` per
process), and no adapter is built (dagster-dbt accepts ``None``). ``bench/RESULTS.md`` ("Where the
time goes") measures what this saves per run.

Tripwire: ``tests/test_dbt_cli_fixed_costs.py`` fails by name when dagster-dbt renames these
members or stops calling them from ``cli``.
"""

from __future__ import annotations

import importlib.metadata
import sys
from functools import cache
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource
from packaging import version


@cache
def _dbt_version(executable: str) -> version.Version | None:
    """The version of dbt-core when ``executable`` is the dbt of this Python environment."""
    if Path(executable).parent not in {Path(sys.prefix) / "bin", Path(sys.executable).parent}:
        return None
    try:
        return version.parse(importlib.metadata.version("dbt-core"))
    except importlib.metadata.PackageNotFoundError:
        return None


@cache
def _other_dbt_version(executable: str, project_dir: str) -> version.Version:
    """Another dbt installation: ask it once per process, as dagster-dbt would once per run."""
    return DbtCliResource(project_dir=project_dir, dbt_executable=executable)._cli_version


class DbtCliWithoutFixedCosts(DbtCliResource):
    """``DbtCliResource`` whose invocations skip ``dbt --version`` and the in-process adapter."""

    @property
    def _cli_version(self) -> version.Version:  # type: ignore[override]
        return _dbt_version(self.dbt_executable) or _other_dbt_version(self.dbt_executable, self.project_dir)

    def _initialize_dbt_core_adapter(self, args: Any) -> None:  # type: ignore[override]
        return None
