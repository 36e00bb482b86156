"""The house rules of the package's layout, read from its source (ast, no imports run):

- ``lib/`` and ``resources/`` never import ``defs/`` (dependencies point from definitions to code);
- Dagster's and dagster-dbt's private modules (``dagster._…``) are imported only by the workaround
  modules, one per upstream gap, each with its own tripwire test;
- the environment is read by ``settings.py`` alone (steps get their configuration from resources);
- no module grows past ~600 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from analytics_pipeline.settings import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "analytics_pipeline"
MODULES = sorted(PACKAGE.rglob("*.py"))
WORKAROUNDS = {
    "batched_event_log.py",
    "partition_metadata.py",
    "self_driven_backfill.py",
    "pool_wait_without_spinning.py",
    "runs_on_this_machine.py",
    "resources/dbt_cli_fixed_costs.py",
    "resources/dbt_cli_environment.py",
}


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_the_workaround_modules_exist() -> None:
    assert {name for name in WORKAROUNDS if (PACKAGE / name).exists()} == WORKAROUNDS


@pytest.mark.parametrize("folder", ["lib", "resources"])
def test_code_never_imports_definitions(folder: str) -> None:
    offenders = {
        _name(path): sorted(m for m in _imports(path) if m.startswith("analytics_pipeline.defs"))
        for path in MODULES
        if _name(path).startswith(f"{folder}/")
    }
    assert not {name: found for name, found in offenders.items() if found}


def test_private_dagster_modules_are_imported_by_the_workarounds_only() -> None:
    offenders = {
        _name(path): sorted(m for m in _imports(path) if m.startswith(("dagster._", "dagster_dbt._")))
        for path in MODULES
        if _name(path) not in WORKAROUNDS
    }
    assert not {name: found for name, found in offenders.items() if found}


def test_only_settings_reads_the_environment_for_configuration() -> None:
    """``ANALYTICS_*`` names are read in settings.py; elsewhere a module may only name them in text
    (messages, docs) or hand them on (the dbt environment), never look one up."""
    offenders = []
    for path in MODULES:
        if _name(path) == "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            looked_up = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("get", "getenv")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).startswith("ANALYTICS_")
            ) or (
                isinstance(node, ast.Subscript)
                and isinstance(node.slice, ast.Constant)
                and str(node.slice.value).startswith("ANALYTICS_")
                and "environ" in ast.unparse(node.value)
            )
            if looked_up:
                offenders.append(f"{_name(path)}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, offenders


def test_no_module_is_over_600_lines() -> None:
    sizes = {_name(path): len(path.read_text().splitlines()) for path in MODULES}
    assert not {name: lines for name, lines in sizes.items() if lines > 600}
