"""The dbt project and the dbt CLI resource.

The manifest is what Dagster builds dbt assets from, so it must exist before the definitions
import. ``make install`` prepares it; if it is missing anyway (a fresh clone imported without the
install step), or the code runs under ``dagster dev`` (where models are being edited), it is
prepared here with ``dbt parse``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from analytics_pipeline.settings import DBT_PROJECT_DIR, get_settings

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """The dbt installed beside this Python (a virtualenv need not be on PATH), else dbt on PATH."""
    for candidate in (Path(sys.prefix) / "bin" / "dbt", Path(sys.executable).parent / "dbt"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("dbt") or "dbt"


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())


def prepare_manifest() -> None:
    """Write ``target/manifest.json`` with ``dbt parse``."""
    os.environ.update(get_settings().dbt_env())
    dbt_resource().cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()


# `python -m analytics_pipeline.resources.dbt` (make install) always re-parses.
if __name__ == "__main__" or not dbt_project.manifest_path.exists() or os.getenv("DAGSTER_IS_DEV_CLI"):
    prepare_manifest()
