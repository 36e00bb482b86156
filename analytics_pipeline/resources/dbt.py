"""The dbt project and the dbt CLI resource.

The manifest is what Dagster builds dbt assets from, so it must exist before the definitions
import. ``make install`` prepares it; if it is missing anyway (a fresh clone imported without the
install step), it is prepared here once with ``dbt parse`` rather than failing on import.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from analytics_pipeline.settings import DBT_PROJECT_DIR, get_settings

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

if not dbt_project.manifest_path.exists():
    os.environ.update(get_settings().dbt_env())
    dbt_project.preparer.prepare(dbt_project)
else:
    dbt_project.prepare_if_dev()


def dbt_executable() -> str:
    """The dbt installed beside this Python (a virtualenv need not be on PATH), else dbt on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
