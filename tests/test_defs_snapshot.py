"""The code location's shape as a reviewed file: every asset (group, partitions, backfill policy,
dependencies, queue, resources), asset check, job, schedule, sensor and resource (its type and
configuration fields), compared with
``tests/snapshots/definitions.json``. A change to the graph shows up as a diff of that file in the
change that makes it; after reviewing it, rewrite the file with

    UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_defs_snapshot.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analytics_pipeline.settings import PROJECT_ROOT

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"

# In a process of its own with the default settings: another test's environment (a start date, the
# Celery executor) must not show up in the snapshot.
_DESCRIBE = r"""
import json
import dagster as dg
from analytics_pipeline.definitions import defs

def partitions(spec_or_def):
    p = spec_or_def
    if p is None:
        return None
    if isinstance(p, dg.TimeWindowPartitionsDefinition):
        return {"kind": "time_window", "cron": p.cron_schedule, "start": p.start.isoformat(), "timezone": p.timezone}
    return {"kind": type(p).__name__}

graph = defs.resolve_asset_graph()
assets = {}
for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
    node = graph.get(key)
    policy = node.backfill_policy
    assets[key.to_user_string()] = {
        "group": node.group_name,
        "partitions": partitions(node.partitions_def),
        "backfill_policy": None if policy is None else {
            "type": policy.policy_type.value, "max_partitions_per_run": policy.max_partitions_per_run},
        "deps": sorted(k.to_user_string() for k in node.parent_keys),
        # (dbt's adapter kind follows whichever warehouse last parsed the manifest: not the graph's shape)
        "kinds": sorted(node.kinds - {"duckdb", "postgres"}),
        "checks": sorted(c.name for c in node.check_keys),
        "has_freshness_policy": node.freshness_policy is not None,
        "resources": sorted(defs.resolve_assets_def(key).required_resource_keys - {"io_manager"}),
    }
jobs = {}
for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
    if job.name.startswith("__"):
        continue
    ops = sorted(job.graph.iterate_op_defs(), key=lambda op: op.name)
    jobs[job.name] = {
        "partitioned": job.partitions_def is not None,
        "ops": {op.name: op.tags.get("dagster-celery/queue") for op in ops},
    }
schedules = {s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name,
                      "default_status": s.default_status.value}
             for s in sorted(defs.schedules or [], key=lambda s: s.name)}
sensors = {s.name: {"default_status": s.default_status.value, "resources": sorted(s.required_resource_keys)}
           for s in sorted(defs.sensors or [], key=lambda s: s.name)}
# a resource's type and typed fields (not their values: those are this machine's settings)
resources = {name: {"type": type(r).__name__, "fields": sorted(type(r).model_fields)}
             for name, r in sorted((defs.resources or {}).items())}
print(json.dumps({"assets": assets, "jobs": jobs, "schedules": schedules, "sensors": sensors,
                  "resources": resources}, indent=2, sort_keys=True))
"""


def _describe() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANALYTICS_", "DAGSTER_HOME"))}
    result = subprocess.run(
        [sys.executable, "-c", _DESCRIBE], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout[result.stdout.index("{") :])


def test_the_definitions_match_the_reviewed_snapshot() -> None:
    described = _describe()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(described, indent=2, sort_keys=True) + "\n")
        pytest.skip(f"rewrote {SNAPSHOT.relative_to(PROJECT_ROOT)}: review its diff")
    assert SNAPSHOT.exists(), f"no snapshot yet: run UPDATE_SNAPSHOTS=1 pytest {Path(__file__).name}"
    expected = json.loads(SNAPSHOT.read_text())
    for part in ("assets", "jobs", "schedules", "sensors", "resources"):
        added = sorted(set(described[part]) - set(expected[part]))
        removed = sorted(set(expected[part]) - set(described[part]))
        assert not added and not removed, f"{part}: added {added}, removed {removed} (review, then UPDATE_SNAPSHOTS=1)"
        changed = {
            name: {"now": described[part][name], "snapshot": expected[part][name]}
            for name in described[part]
            if described[part][name] != expected[part][name]
        }
        assert not changed, f"{part} changed (review, then UPDATE_SNAPSHOTS=1):\n{json.dumps(changed, indent=2)}"
