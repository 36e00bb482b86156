"""Execution policies shared by every asset that writes to the warehouse."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from analytics_pipeline.resources.warehouse import TransientWarehouseError, WarehouseError

# Transient warehouse errors (a DuckDB file lock held by another run, a dropped PostgreSQL
# connection) are retried with exponential backoff and jitter: 2, 6 and 14 s, each ± 2 s. Errors that a retry
# cannot fix are raised as ``dg.Failure(allow_retries=False)`` (``failures_are_final``).
WAREHOUSE_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def retry_transient(action: Callable[[], None]) -> None:
    """``action`` outside any step (a command's own brief warehouse work) under the steps' retry rule:
    a :class:`TransientWarehouseError` (a DuckDB file held by another run's step) is tried again after
    the policy's delays (2, 6, 14 s, without jitter); anything else, or a fourth failure, is raised."""
    for attempt in range(WAREHOUSE_RETRY_POLICY.max_retries + 1):
        try:
            action()
            return
        except TransientWarehouseError:
            if attempt == WAREHOUSE_RETRY_POLICY.max_retries:
                raise
            time.sleep(WAREHOUSE_RETRY_POLICY.delay * (2 ** (attempt + 1) - 1))


# Every warehouse writer takes a slot in this pool; the instance sets its limit (dagster.yaml), so
# parallel runs queue instead of fighting over locks (DuckDB allows one writer process at a time).
WAREHOUSE_POOL = "warehouse"


# A terminated run notices within this long that it should stop waiting for a slot.
_POOL_WAIT_TICK_SECONDS = 1.0


def _seconds_to_next_pool_claim(self: Any) -> float:
    """Seconds to sleep before a step waiting for a pool slot tries again (0: try now), at most a tick.

    Raises ``DagsterExecutionInterruptedError`` if the run was terminated meanwhile: the in-process
    executor looks for a captured interrupt only when its next step starts, so a run terminated
    while it waited (the UI's Terminate, a cancelled backfill) stayed CANCELING until the run
    holding the slot had finished. Raised here, it ends as Dagster ends an interrupted run (CANCELED
    when terminated, FAILURE for an interrupt no one asked Dagster for, such as a CLI's Ctrl-C), its
    pending claims withdrawn."""
    from dagster._core.errors import DagsterExecutionInterruptedError
    from dagster._utils.interrupts import pop_captured_interrupt

    if pop_captured_interrupt():
        raise DagsterExecutionInterruptedError("Terminated while its next step waited for a pool slot.")
    timeouts = [self._pending_timeouts.get(step) for step in self._pending_claims]
    if not timeouts or None in timeouts:
        return 0.0
    return min(_POOL_WAIT_TICK_SECONDS, max(0.0, min(timeouts) - time.time()))


def _wait_for_pool_slots_without_spinning() -> None:
    """Make a run whose next step waits for a pool slot sleep until its next claim instead of spinning,
    and stop waiting when the run is terminated.

    The in-process executor (every job's here) sleeps for ``InstanceConcurrencyContext.
    interval_to_next_pending_claim_check()``, which in Dagster 1.13 returns ``min(0, ...)``: never
    more than zero, so a run queued on the warehouse pool spun a core of its machine for as long as
    the run holding the slot worked. The claims themselves stay Dagster's (retried after 1 s,
    backing off to 15 s); this only restores the sleep in between, in ticks of at most a second so
    that a termination is seen. Only the in-process executor's wait calls the method.
    ``tests/test_definitions.py`` checks the CPU a blocked run uses and that a terminated one stops,
    so a Dagster release that changes this surfaces there.
    """
    from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

    if hasattr(InstanceConcurrencyContext, "interval_to_next_pending_claim_check"):
        InstanceConcurrencyContext.interval_to_next_pending_claim_check = _seconds_to_next_pool_claim


_wait_for_pool_slots_without_spinning()


@contextmanager
def failures_are_final(what: str, *explained: type[Exception]) -> Iterator[None]:
    """The step rule of every warehouse writer, around the work of a step under ``WAREHOUSE_RETRY_POLICY``.

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
