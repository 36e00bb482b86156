"""Workaround: a run waiting for a concurrency-pool slot spins a core (Dagster 1.13's in-process executor).

The gap: ``InstanceConcurrencyContext.interval_to_next_pending_claim_check()`` returns ``min(0, …)``,
never more than zero, so the in-process executor re-checks its pending claim in a busy loop for as
long as another run holds the slot (the sleep the method was meant to give was discussed upstream in
https://github.com/dagster-io/dagster/pull/20367). Dagster has no public setting for it, so this
module, and only this module, replaces that one method when it is imported (by
``resources/policies.py``, which every job imports). It also makes a run terminated while it waits
stop waiting (the executor only looks for a captured interrupt when its next step starts).

Tripwires: ``tests/test_definitions.py`` measures the CPU a run blocked on the warehouse pool uses
and that a terminated one stops; ``tests/test_pool_wait_workaround.py`` fails as soon as the
method or the private attributes read here are gone or renamed.
"""

from __future__ import annotations

import time
from typing import Any

import dagster as dg

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
    from dagster._utils.interrupts import pop_captured_interrupt

    if pop_captured_interrupt():
        raise dg.DagsterExecutionInterruptedError("Terminated while its next step waited for a pool slot.")
    timeouts = [self._pending_timeouts.get(step) for step in self._pending_claims]
    if not timeouts or None in timeouts:
        return 0.0
    return min(_POOL_WAIT_TICK_SECONDS, max(0.0, min(timeouts) - time.time()))


def wait_for_pool_slots_without_spinning() -> None:
    """Make a run whose next step waits for a pool slot sleep until its next claim instead of spinning,
    and stop waiting when the run is terminated.

    The in-process executor (every job's here) sleeps for ``InstanceConcurrencyContext.
    interval_to_next_pending_claim_check()``, which in Dagster 1.13 returns ``min(0, ...)``: never
    more than zero, so a run queued on the warehouse pool spun a core of its machine for as long as
    the run holding the slot worked. The claims themselves stay Dagster's (retried after 1 s,
    backing off to 15 s); this only restores the sleep in between, in ticks of at most a second so
    that a termination is seen. Only the in-process executor's wait calls the method.
    """
    from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

    if hasattr(InstanceConcurrencyContext, "interval_to_next_pending_claim_check"):
        InstanceConcurrencyContext.interval_to_next_pending_claim_check = _seconds_to_next_pool_claim
