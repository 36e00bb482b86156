"""Workaround: dagster-dbt's ``DbtCliResource.cli`` takes no environment for the dbt process.

The gap: ``cli`` starts dbt with a copy of this process's ``os.environ`` and nothing else of the
caller's; a proposal to add an ``env`` argument was declined (dagster-io/dagster#29656), pointing to
setting the variables around the call instead. This project hands dbt the warehouse connection
(``profiles.yml`` reads it with ``env_var``) and the partition window (in the environment rather
than ``--vars``, which would make dbt re-parse: dbt-labs/dbt-core#10492 asks for vars from the
environment) per invocation, from its resources. So this module, and only this module, sets them in
``os.environ`` for exactly as long as ``cli`` takes to start the process, under a lock, and puts the
old values back: no step leaves the process's environment changed.

Tripwire: ``tests/test_dbt_cli_environment.py`` starts dbt through the project's resource with a
DuckDB path that only this environment names, and fails when dbt no longer sees it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_LOCK = threading.Lock()


@contextmanager
def environment_for_dbt_cli(env: Mapping[str, str]) -> Iterator[None]:
    """``env`` on top of ``os.environ`` inside the block (where ``DbtCliResource.cli`` copies it)."""
    with _LOCK:
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
