"""Execution policies shared by every asset that writes to the warehouse."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg

from analytics_pipeline.pool_wait_without_spinning import wait_for_pool_slots_without_spinning
from analytics_pipeline.resources.warehouse import TransientWarehouseError, WarehouseError

# The one retry rule for transient failures: a DuckDB file lock held by another run, a dropped
# PostgreSQL connection, a mail server that is down. Exponential backoff and jitter: 2, 6 and 14 s,
# each ± 2 s. Errors that a retry cannot fix are raised as ``dg.Failure(allow_retries=False)``
# (``failures_are_final``).
TRANSIENT_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def retry_transient(action: Callable[[], None]) -> None:
    """``action`` outside any step (a command's own brief warehouse work) under the steps' retry rule:
    a :class:`TransientWarehouseError` (a DuckDB file held by another run's step) is tried again after
    the policy's delays (2, 6, 14 s, without jitter); anything else, or a fourth failure, is raised."""
    for attempt in range(TRANSIENT_RETRY_POLICY.max_retries + 1):
        try:
            action()
            return
        except TransientWarehouseError:
            if attempt == TRANSIENT_RETRY_POLICY.max_retries:
                raise
            time.sleep(TRANSIENT_RETRY_POLICY.delay * (2 ** (attempt + 1) - 1))


# Every warehouse writer takes a slot in this pool; the instance sets its limit (dagster.yaml), so
# parallel runs queue instead of fighting over locks (DuckDB allows one writer process at a time).
WAREHOUSE_POOL = "warehouse"


# A run waiting for a slot of this pool sleeps instead of spinning a core (pool_wait_without_spinning.py).
wait_for_pool_slots_without_spinning()


@contextmanager
def failures_are_final(what: str, *explained: type[Exception]) -> Iterator[None]:
    """The step rule of every warehouse writer, around the work of a step under ``TRANSIENT_RETRY_POLICY``.

    - ``TransientWarehouseError`` (and a ``dg.Failure`` raised inside) passes through untouched:
      the retry policy backs off and tries again.
    - Any other ``WarehouseError``, and the ``explained`` errors (a domain's own errors whose message
      already says what is wrong and what to do), fail the step for good with that message.
    - Anything else (a bug, data the code did not expect) fails for good too, as
      "<what> failed: <type>: <message>": retrying would only repeat it.
    """
    try:
        yield
    except (TransientWarehouseError, dg.Failure):
        raise
    except (WarehouseError, *explained) as error:
        raise dg.Failure(description=str(error), allow_retries=False) from error
    except Exception as error:
        raise dg.Failure(description=f"{what} failed: {type(error).__name__}: {error}", allow_retries=False) from error
