"""Tripwire for ``analytics_pipeline/pool_wait_without_spinning.py``: the one Dagster method it
replaces, and the private state and helper it reads, must still be there. When a Dagster upgrade
renames or removes them this fails by name, before a run spins a core or ignores a termination.
(The behaviour itself, the CPU of a run blocked on the pool and a terminated run stopping, is
measured in tests/test_definitions.py.)"""

import inspect

from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

import analytics_pipeline.resources.policies  # noqa: F401 - importing the policies applies the workaround
from analytics_pipeline.pool_wait_without_spinning import _seconds_to_next_pool_claim


def test_the_replaced_method_is_ours() -> None:
    assert InstanceConcurrencyContext.interval_to_next_pending_claim_check is _seconds_to_next_pool_claim


def test_the_private_state_it_reads_still_exists() -> None:
    source = inspect.getsource(InstanceConcurrencyContext)
    assert "self._pending_timeouts" in source and "self._pending_claims" in source
    from dagster._utils.interrupts import pop_captured_interrupt

    assert callable(pop_captured_interrupt)
