"""Structured log lines: every line our own code logs carries the run id, the asset and the partition.

Our modules log through :func:`get_logger`. It returns a child of Dagster's built-in logger
(``dagster.builtin.<name>``), which Dagster captures inside every step whatever the executor: in the
multiprocess executor each step's process attaches Dagster's handler, so the line lands in the run's
event log (the UI's log viewer, tagged with run id and step key) and in the step's captured stderr.
Dagster tags neither the asset nor the partition, so a filter on each of our loggers prefixes the
message with ``[run=<id> asset=<key> partition=<key or start..end>]``, read from the execution
context Dagster sets for the step being computed (no per-asset code needed). Outside a step (a
sensor, the CLI) a caller may pass the fields itself, e.g. ``extra={"run_id": ...}``; missing
fields read ``-``.
"""

from __future__ import annotations

import logging

import dagster as dg

FIELDS = ("run_id", "asset", "partition")
_TAGGED = "_analytics_context"


def _asset_of(context: dg.OpExecutionContext) -> str:
    if not context.has_assets_def:
        return f"op:{context.op_def.name}"
    keys = sorted(context.selected_asset_keys)
    if len(keys) == 1:
        return keys[0].to_user_string()
    return f"{context.op_def.name}[{len(keys)} assets]" if keys else f"op:{context.op_def.name}"


def _partition_of(context: dg.OpExecutionContext) -> str:
    if context.has_partition_key_range:
        window = context.partition_key_range
        return window.start if window.start == window.end else f"{window.start}..{window.end}"
    if context.has_partition_key:
        return context.partition_key
    return "-"


def current_fields() -> dict[str, str]:
    """run id, asset and partition of the step being computed in this thread (``-`` outside one)."""
    try:
        context = dg.OpExecutionContext.get()
    except dg.DagsterInvariantViolationError:
        return dict.fromkeys(FIELDS, "-")
    try:
        return {"run_id": context.run_id, "asset": _asset_of(context), "partition": _partition_of(context)}
    except Exception:
        return {"run_id": context.run_id, "asset": "-", "partition": "-"}


def prefix(fields: dict[str, str]) -> str:
    return f"[run={fields['run_id']} asset={fields['asset']} partition={fields['partition']}]"


class RunContextFilter(logging.Filter):
    """Adds ``run_id``, ``asset`` and ``partition`` to each record (explicit ``extra`` wins) and
    prefixes its message with them, so every handler (Dagster's event log, captured stderr, a
    plain console) shows them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _TAGGED, False):
            return True
        fields = current_fields()
        for name in FIELDS:
            value = getattr(record, name, None)
            fields[name] = str(value) if value not in (None, "") else fields[name]
            setattr(record, name, fields[name])
        tag = prefix(fields)
        record.msg = f"{tag.replace('%', '%%') if record.args else tag} {record.msg}"
        setattr(record, _TAGGED, True)
        return True


def get_logger(name: str) -> logging.Logger:
    """The logger for one of our modules, e.g. ``get_logger("analytics_pipeline.alerts")``."""
    logger = dg.get_dagster_logger(name)
    if not any(isinstance(f, RunContextFilter) for f in logger.filters):
        logger.addFilter(RunContextFilter())
    return logger
