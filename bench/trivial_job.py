"""Dagster's fixed cost: a one-op job that does nothing, run like the daily pipeline (section 3)."""

import dagster as dg


@dg.op
def nothing() -> None:
    """No work at all."""


@dg.job
def trivial() -> None:
    nothing()
