"""The dbt project and the dbt CLI resource.

The manifest is what Dagster builds dbt assets from, so it must exist before the definitions
import. ``make install`` prepares it; if it is missing anyway (a fresh clone imported without the
install step), or the code runs under ``dagster dev`` (where models are being edited), it is
prepared here with ``dbt parse``.

A dbt step pays a fixed cost before its first model runs; most of it is avoidable, and this module
avoids it (``bench/RESULTS.md`` has the figures):

* dagster-dbt runs ``dbt --version`` (a Python start-up and a PyPI request) in every run, and loads
  every dbt macro into an in-process adapter that only serves column metadata and row counts, which
  this project does not fetch. ``dbt_cli_fixed_costs.py`` (the one module that overrides
  dagster-dbt's private methods) reads the version from the installed package and skips the adapter.
* dbt re-parses the whole project when its command-line ``--vars`` differ from the saved parse's,
  and a partition window differs every day. :func:`window_env` hands the window to dbt in the
  environment instead; the macros in ``dbt_project/macros/partition_window.sql`` read it only while
  executing, so it is not part of the parse state. ``--vars '{min_date: ..., max_date: ...}'``
  still works (and wins) when dbt is run by hand.
* dbt also re-parses when the warehouse connection differs from the saved parse's (a new test or
  benchmark warehouse, a switch between DuckDB and PostgreSQL). The saved parse is kept per
  connection under ``<target>/partial_parse/``; :meth:`AnalyticsDbtCliResource.cli` hands dbt the
  one for the current connection and :meth:`AnalyticsDbtCliResource.keep_saved_parse` keeps what dbt wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliInvocation, DbtProject
from pydantic import Field

from analytics_pipeline.resources.dbt_cli_environment import environment_for_dbt_cli
from analytics_pipeline.resources.dbt_cli_fixed_costs import DbtCliWithoutFixedCosts
from analytics_pipeline.resources.warehouse import WarehouseResource
from analytics_pipeline.settings import DBT_PROJECT_DIR, Settings, get_settings

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# The partition window: dbt var name -> the environment variable that carries it to dbt.
WINDOW_ENV = {"min_date": "ANALYTICS_DBT_MIN_DATE", "max_date": "ANALYTICS_DBT_MAX_DATE"}
_WINDOW = frozenset(WINDOW_ENV.values())
PARTIAL_PARSE_FILE = "partial_parse.msgpack"
SAVED_PARSES_KEPT = 16  # connections whose saved parse is kept (tests make one per warehouse)
RUN_DIRS_KEPT = 50  # per-run dbt target folders (logs, run_results.json) kept for inspection
_RUN_DIR_MIN_AGE_SECONDS = 3600  # never prune a folder a running step may still use
# a dbt invocation's own target folder: <op>-<run id[:7]>-<random[:7]>, or <random[:7]> outside a run
_RUN_DIR_NAME = re.compile(r"^(?:[A-Za-z0-9_]+-(?P<run>[0-9a-f]{7})-)?[0-9a-f]{7}$")


def dbt_executable() -> str:
    """The dbt installed beside this Python (a virtualenv need not be on PATH), else dbt on PATH."""
    for candidate in (Path(sys.prefix) / "bin" / "dbt", Path(sys.executable).parent / "dbt"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("dbt") or "dbt"


class AnalyticsDbtCliResource(DbtCliWithoutFixedCosts):
    """dagster-dbt's ``DbtCliResource`` without its per-run fixed costs (``dbt_cli_fixed_costs.py``),
    handing each invocation its environment (the warehouse connection, the partition window) and
    starting it from the saved parse of that connection."""

    reorder_lead_time_days: int = Field(
        default=14,
        description="Days between placing a reorder and receiving it, for mart_reorder_recommendations "
        "(ANALYTICS_REORDER_LEAD_TIME_DAYS, at most the 28-day forecast horizon).",
    )

    def cli(
        self,
        args: Any,
        *,
        env: Mapping[str, str] | None = None,
        target_path: Path | None = None,
        context: Any = None,
        **kwargs: Any,
    ) -> DbtCliInvocation:
        """``DbtCliResource.cli`` with ``env`` (:meth:`WarehouseResource.dbt_env` and
        :func:`window_env`) in the dbt process's environment, from the saved parse of its connection."""
        dbt_env = self.dbt_env(env)
        target_path = target_path or run_target_path(context)
        _restore_saved_parse(_absolute(target_path), dbt_env)
        with environment_for_dbt_cli(dbt_env):
            return super().cli(args, target_path=target_path, context=context, **kwargs)  # starts dbt

    def dbt_env(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """What a dbt process of this resource gets on top of this process's environment."""
        return {
            # dagster-dbt echoes dbt's messages to the step's stdout (the run's logs, and the console of
            # whatever started the run: the daemon's): dbt's colours there would be raw ANSI codes.
            "DBT_USE_COLORS": os.environ.get("DBT_USE_COLORS") or "false",
            "ANALYTICS_REORDER_LEAD_TIME_DAYS": str(self.reorder_lead_time_days),
            **window_env(None),
            **(env or {}),
        }

    def keep_saved_parse(self, invocation: DbtCliInvocation, env: Mapping[str, str] | None = None) -> None:
        """After an invocation started with ``env``: keep dbt's parse for the next one on its connection."""
        _keep_saved_parse(invocation, self.dbt_env(env))


def dbt_resource(settings: Settings) -> AnalyticsDbtCliResource:
    return AnalyticsDbtCliResource(
        project_dir=dbt_project,
        dbt_executable=dbt_executable(),
        reorder_lead_time_days=settings.reorder_lead_time_days,
    )


def dbt_env(settings: Settings) -> dict[str, str]:
    """The environment the pipeline's dbt processes get with ``settings`` (for dbt run outside a
    Dagster step: by hand, the CLI's checks, benchmarks)."""
    return dbt_resource(settings).dbt_env(WarehouseResource.from_settings(settings).dbt_env())


def window_env(window: Mapping[str, str] | None) -> dict[str, str]:
    """The partition window (``{"min_date": ..., "max_date": ...}``, or None for every day) as the
    dbt process's environment, which dbt's parse state does not include (``--vars`` would)."""
    return {name: str((window or {}).get(var, "")) for var, name in WINDOW_ENV.items()}


# -- each invocation's own target folder ------------------------------------------------------------


def run_target_path(context: Any | None) -> Path:
    """A dbt invocation's own target folder under ``DBT_TARGET_PATH``: ``<op>-<run id[:7]>-<random[:7]>``
    in a run (the naming dagster-dbt gives its own), ``<random[:7]>`` outside one. The dead-run
    monitor finds a dead run's dbt processes by it (:func:`run_id_prefix_of`)."""
    unique = uuid.uuid4().hex[:7]
    if context is None:
        return _target_root() / unique
    op_name = getattr(context, "op_execution_context", context).op.name
    return _target_root() / f"{op_name}-{context.run.run_id[:7]}-{unique}"


def run_id_prefix_of(target_path: Path) -> str | None:
    """The first 7 characters of the run id a target folder of :func:`run_target_path` belongs to."""
    match = _RUN_DIR_NAME.match(target_path.name)
    return match["run"] if match else None


# -- dbt's saved parse, per warehouse connection --------------------------------------------------


def _target_root() -> Path:
    """Where dagster-dbt puts the per-run target folders (``DBT_TARGET_PATH``, default ``target``)."""
    return _absolute(Path(os.environ.get("DBT_TARGET_PATH", "target")))


def _absolute(path: Path) -> Path:
    return path if path.is_absolute() else dbt_project.project_dir / path


def _saved_parse_path(dbt_env: Mapping[str, str]) -> Path:
    """The saved parse for the warehouse a dbt process's environment points at (dbt's own check
    decides whether it is still valid: a changed file is re-parsed, a mismatch means a full parse)."""
    connection = json.dumps(
        {name: value for name, value in dbt_env.items() if name.startswith("ANALYTICS_") and name not in _WINDOW},
        sort_keys=True,
    )
    key = hashlib.sha256(connection.encode()).hexdigest()[:16]
    return _target_root() / "partial_parse" / f"{key}.msgpack"


def _restore_saved_parse(target_path: Path, dbt_env: Mapping[str, str]) -> None:
    saved, destination = _saved_parse_path(dbt_env), target_path / PARTIAL_PARSE_FILE
    if destination.exists() or not saved.exists():
        return  # dagster-dbt then copies <target>/partial_parse.msgpack (from `make dbt-parse`)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileNotFoundError):  # pruned by another process meanwhile: dbt parses in full
        shutil.copy2(saved, destination)
        os.utime(saved)  # recently used: kept by the pruning below


def _keep_saved_parse(invocation: DbtCliInvocation, dbt_env: Mapping[str, str]) -> None:
    """After a dbt run with ``dbt_env``: keep the parse dbt saved for the next run on its connection,
    and prune old per-run target folders (each holds a few MB of logs and artifacts)."""
    written, saved = Path(invocation.target_path) / PARTIAL_PARSE_FILE, _saved_parse_path(dbt_env)
    if written.exists() and (not saved.exists() or written.stat().st_mtime_ns != saved.stat().st_mtime_ns):
        saved.parent.mkdir(parents=True, exist_ok=True)
        partial = saved.with_name(f".{saved.name}.{os.getpid()}")
        shutil.copy2(written, partial)
        partial.replace(saved)  # readers never see half a file
    _prune(sorted(saved.parent.glob("*.msgpack"), key=_mtime), SAVED_PARSES_KEPT)
    root = _target_root()
    if Path(invocation.target_path).parent != root:
        return  # a target folder chosen by the caller: not ours to tidy
    run_dirs = [p for p in root.iterdir() if p.is_dir() and _RUN_DIR_NAME.match(p.name)]
    old = [p for p in sorted(run_dirs, key=_mtime) if time.time() - _mtime(p) > _RUN_DIR_MIN_AGE_SECONDS]
    _prune(old, max(0, RUN_DIRS_KEPT - (len(run_dirs) - len(old))))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _prune(oldest_first: list[Path], keep: int) -> None:
    for path in oldest_first[: max(0, len(oldest_first) - keep)]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def save_parse(settings: Settings, target_path: Path | None = None) -> None:
    """``dbt parse`` with the pipeline's environment for ``settings``, kept as the saved parse of
    that connection (the one a step on it starts from)."""
    dbt, env = dbt_resource(settings), WarehouseResource.from_settings(settings).dbt_env()
    invocation = dbt.cli(["parse", "--quiet"], target_path=target_path, env=env)
    invocation.wait()
    dbt.keep_saved_parse(invocation, env)


def prepare_manifest() -> None:
    """Write ``target/manifest.json`` with ``dbt parse``, and keep that parse for this connection.

    The parse runs in a scratch target folder, so ``target/partial_parse.msgpack`` stays the one a
    hand run of ``dbt`` inside ``dbt_project/`` saved (or :func:`prepare_hand_parse` prepared):
    the pipeline's connection (absolute paths) differs from a hand run's, and each would make the
    other parse the whole project again.
    """
    scratch = _target_root() / f".prepare-{os.getpid()}"
    try:
        save_parse(get_settings(), target_path=scratch)
        manifest = dbt_project.manifest_path
        manifest.parent.mkdir(parents=True, exist_ok=True)
        partial = manifest.with_name(f".{manifest.name}.{os.getpid()}")
        shutil.copy2(scratch / "manifest.json", partial)
        partial.replace(manifest)  # a code location loading meanwhile never reads half a manifest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def prepare_hand_parse(project_dir: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``dbt parse`` as the README's hand run does it (in ``project_dir``, with ``profiles.yml``
    there and ``env`` as the shell's environment), so ``target/partial_parse.msgpack`` matches a
    hand run's profile and its ``dbt build`` reuses the parse instead of re-parsing everything."""
    hand_env = {name: value for name, value in env.items() if name not in WINDOW_ENV.values()}
    hand_env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_USE_COLORS="false")
    result = subprocess.run(
        [dbt_executable(), "parse", "--quiet", "--profiles-dir", "."],
        cwd=project_dir,
        env=hand_env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"dbt parse failed in {project_dir}:\n{result.stdout}{result.stderr}")
    return result


# `python -m analytics_pipeline.resources.dbt` (make install) always re-parses, for the pipeline and
# for hand runs; the shell's environment is taken before the settings (and .env) are exported.
if __name__ == "__main__":
    shell_env = dict(os.environ)
    prepare_hand_parse(DBT_PROJECT_DIR, shell_env)
    prepare_manifest()
elif not dbt_project.manifest_path.exists() or os.getenv("DAGSTER_IS_DEV_CLI"):
    prepare_manifest()
