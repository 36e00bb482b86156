"""Execution policies shared by every asset that writes to the warehouse."""

from __future__ import annotations

import dagster as dg

# Transient warehouse errors (a DuckDB file lock held by another run, a dropped PostgreSQL
# connection) are retried with exponential backoff and jitter: 2, 6 and 14 s, each ± 2 s. Errors that a retry
# cannot fix are raised as ``dg.Failure(allow_retries=False)``.
WAREHOUSE_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# Every warehouse writer takes a slot in this pool; the instance sets its limit (dagster.yaml), so
# parallel runs queue instead of fighting over locks (DuckDB allows one writer process at a time).
WAREHOUSE_POOL = "warehouse"
