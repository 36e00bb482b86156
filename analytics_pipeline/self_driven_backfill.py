"""A Dagster backfill whose runs the command that launched it creates and runs: Dagster's internals
for it, in one place.

The gap: Dagster has no public Python API to launch a backfill (the UI's GraphQL mutation
``launchPartitionBackfill`` is the only interface; a Python API was proposed and closed unmerged,
dagster-io/dagster#26731), and a backfill it launches is always driven by the daemon's backfill loop:
one tick every 30 s, runs submitted to the queue and started in a new process each (a code-location
load apiece), and an asset backfill's runs are runs of the implicit asset job, split wherever an
unpartitioned parent sits between daily assets. ``analytics-pipeline backfill`` must instead give a
backfill whose runs belong to a named job, one run over the whole range, that works without a daemon
and costs seconds, not minutes. So it does what Dagster's own ``dagster job backfill`` command does
for job backfills: it records the backfill and creates the runs itself, and it tells a daemon that
starts meanwhile that every partition is already taken care of:

* a **job backfill** (the UI's backfill from a job's partitions page) when one named job holds the
  daily assets: ``last_submitted_partition_name`` is the range's last day, so the daemon's job-backfill
  loop finds nothing left to submit and only marks the backfill completed once its runs have ended;
* an **asset backfill** (the UI's backfill of a selection that spans jobs) otherwise: every target is
  recorded as requested and its roots as launched, so the daemon's asset-backfill loop requests nothing
  and only follows materializations and failures of the backfill's runs.

Runs are created from an in-process load of the code location, under the name ``workspace.yaml`` gives
it, so they carry the job snapshot and the code location, repository and job names of runs the UI or
the daemon launch: the run-failure sensor, re-execution from the UI and the Backfills tab find them as
any other (their code origin names this process's Python, which launchers that start a run from it,
unlike the default one, would use). A run is then either executed in this process (Dagster's
``execute_run``, as ``dagster api execute_run`` does) or submitted to the instance's run queue for a
running daemon. The command ends the backfill when its last run has ended; a daemon tick that falls
between two of its runs may end it a moment early, and the command's ending then overwrites it.

``tests/test_self_driven_backfill.py`` runs Dagster's own backfill daemon iteration over such a
backfill and checks that it launches nothing, so a Dagster release that changes any of this fails there.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.execution.api import execute_run
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.remote_representation.code_location import CodeLocation
from dagster._core.storage.tags import BACKFILL_ID_TAG, MAX_RETRIES_TAG, PARTITION_SET_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_backfill_id
from dagster._core.workspace.context import BaseWorkspaceRequestContext, WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._utils.hosted_user_process import recon_job_from_origin

from analytics_pipeline.settings import PROJECT_ROOT

# the code location's name in workspace.yaml, deploy/workspace.grpc.yaml and pyproject's [tool.dagster]
CODE_LOCATION = "analytics_pipeline"
DEFINITIONS_MODULE = "analytics_pipeline.definitions"
# Dagster's job for any selection of assets (what the UI's "Materialize" launches)
IMPLICIT_ASSET_JOB = "__ASSET_JOB"
# a daemon whose queue loop sent no heartbeat for this long is not dequeuing runs (Dagster's own
# tolerance, 30 min, is for alerting; it heartbeats every 30 s)
DAEMON_HEARTBEAT_WINDOW_SECONDS = 90.0
QUEUED_RUN_DAEMON = "QUEUED_RUN_COORDINATOR"


def new_backfill_id() -> str:
    """An id in Dagster's format for backfills (as the UI's)."""
    return make_new_backfill_id()


@contextmanager
def code_location(instance: dg.DagsterInstance) -> Iterator[Location]:
    """The project's code location, loaded in this process (the definitions module is imported once)."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable, module_name=DEFINITIONS_MODULE, working_directory=str(PROJECT_ROOT)
        ),
        location_name=CODE_LOCATION,
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget([origin])) as process_context:
        workspace = process_context.create_request_context()
        yield Location(instance, process_context, workspace, workspace.get_code_location(CODE_LOCATION))


@dataclass
class Location:
    instance: dg.DagsterInstance
    process_context: WorkspaceProcessContext
    workspace: BaseWorkspaceRequestContext
    code_location: CodeLocation

    @property
    def repository(self):
        [repository] = self.code_location.get_repositories().values()
        return repository

    def partition_set_name(self, job_name: str) -> str | None:
        """The job's partition set (``<job>_partition_set``), which a job backfill targets."""
        sets = [s.name for s in self.repository.get_partition_sets() if s.job_name == job_name]
        return sets[0] if sets else None

    # -- the backfill's record -------------------------------------------------------------------

    def record_job_backfill(
        self,
        backfill_id: str,
        job_name: str,
        partition_keys: Sequence[str],
        asset_selection: Sequence[dg.AssetKey] | None,
        tags: Mapping[str, str],
        title: str,
        description: str,
    ) -> None:
        """A backfill of ``job_name``'s partitions, as the UI launches from the job's page, with every
        partition marked submitted: the runs are this command's."""
        partition_set = self.repository.get_partition_set(self.partition_set_name(job_name))
        backfill = PartitionBackfill(
            backfill_id=backfill_id,
            status=BulkActionStatus.REQUESTED,
            from_failure=False,
            tags=dict(tags),
            backfill_timestamp=time.time(),
            asset_selection=list(asset_selection) if asset_selection else None,
            title=title,
            description=description,
            partition_set_origin=partition_set.get_remote_origin(),
            partition_names=list(partition_keys),
            last_submitted_partition_name=partition_keys[-1],
        )
        self.instance.add_backfill(backfill)

    def record_asset_backfill(
        self,
        backfill_id: str,
        partitioned: Sequence[dg.AssetKey],
        partition_keys: Sequence[str],
        unpartitioned: Sequence[dg.AssetKey],
        tags: Mapping[str, str],
        title: str,
        description: str,
    ) -> None:
        """A backfill of these assets (the UI's backfill of a selection), every target requested."""
        target = self._subset(
            ((key, day) for key in partitioned for day in partition_keys), ((key, None) for key in unpartitioned)
        )
        backfill = PartitionBackfill.from_asset_graph_subset(
            backfill_id=backfill_id,
            backfill_timestamp=time.time(),
            tags=dict(tags),
            dynamic_partitions_store=self.instance,
            asset_graph_subset=target,
            title=title,
            description=description,
            run_config=None,
        )
        data = backfill.get_asset_backfill_data(self.repository.asset_graph)._replace(
            requested_subset=target,
            requested_runs_for_target_roots=True,
            # materializations after this storage id count for the backfill (the daemon follows them)
            latest_storage_id=self.instance.event_log_storage.get_maximum_record_id(),
        )
        self.instance.add_backfill(backfill.with_asset_backfill_data(data, self.instance, self.repository.asset_graph))

    def finish_backfill(
        self, backfill_id: str, status: str, materialized: Iterable[tuple[dg.AssetKey, str | None]]
    ) -> None:
        """End the backfill as ``succeeded``, ``failed`` or ``canceled``; an asset backfill also
        records what its runs materialized (and, unless it succeeded, the rest as failed)."""
        backfill = self.instance.get_backfill(backfill_id)
        if backfill is None:
            return
        if backfill.is_asset_backfill:
            data = backfill.get_asset_backfill_data(self.repository.asset_graph)
            targets = data.target_subset.asset_keys
            done = self._subset((key, partition) for key, partition in materialized if key in targets)
            data = data._replace(
                materialized_subset=done,
                failed_and_downstream_subset=AssetGraphSubset() if status == "succeeded" else data.target_subset - done,
                latest_storage_id=self.instance.event_log_storage.get_maximum_record_id(),
            )
            backfill = backfill.with_asset_backfill_data(data, self.instance, self.repository.asset_graph)
        final = {
            "succeeded": BulkActionStatus.COMPLETED_SUCCESS,
            "failed": BulkActionStatus.COMPLETED_FAILED,
            "canceled": BulkActionStatus.CANCELED,
        }[status]
        self.instance.update_backfill(backfill.with_status(final).with_end_timestamp(time.time()))

    def cancel_backfill(self, backfill_id: str) -> None:
        """What the UI's "Cancel backfill" does: the daemon terminates its runs, then marks it canceled."""
        backfill = self.instance.get_backfill(backfill_id)
        if backfill is not None and backfill.status == BulkActionStatus.REQUESTED:
            self.instance.update_backfill(backfill.with_status(BulkActionStatus.CANCELING))

    def _subset(self, *members: Iterable[tuple[dg.AssetKey, str | None]]) -> AssetGraphSubset:
        return AssetGraphSubset.from_asset_partition_set(
            {AssetKeyPartitionKey(key, partition) for group in members for key, partition in group},
            self.repository.asset_graph,
        )

    # -- its runs ----------------------------------------------------------------------------------

    def create_run(
        self,
        job_name: str,
        asset_keys: Sequence[dg.AssetKey] | None,
        tags: Mapping[str, str],
        run_config: Mapping[str, object],
        in_this_process: bool,
    ) -> dg.DagsterRun:
        """A run of ``job_name`` (of these of its assets and their checks; None: the whole job), not
        started, as the daemon creates one. A run this process executes is not retried by a daemon
        behind its back: it is over when this command says so."""
        remote_job = self.code_location.get_job(
            JobSubsetSelector(
                location_name=CODE_LOCATION,
                repository_name=self.repository.name,
                job_name=job_name,
                op_selection=None,
                asset_selection=list(asset_keys) if asset_keys else None,
            )
        )
        plan = self.code_location.get_execution_plan(
            remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=self.instance
        )
        partition_set = self.partition_set_name(job_name)
        run_tags = {
            **remote_job.tags,
            **(
                {PARTITION_SET_TAG: partition_set}
                if partition_set and "dagster/asset_partition_range_start" in tags
                else {}
            ),
            **tags,
            **({MAX_RETRIES_TAG: "0"} if in_this_process else {}),
        }
        return self.instance.create_run(
            job_name=remote_job.name,
            run_id=None,
            run_config=run_config,
            resolved_op_selection=None,
            step_keys_to_execute=None,
            status=dg.DagsterRunStatus.NOT_STARTED,
            op_selection=None,
            root_run_id=None,
            parent_run_id=None,
            tags=run_tags,
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=frozenset(asset_keys) if asset_keys else None,
            asset_check_selection=None,
            asset_graph=self.repository.asset_graph,
        )

    def execute_here(self, run: dg.DagsterRun) -> Sequence[dg.DagsterEvent]:
        """Execute the run in this process (what a run worker does), to its end; its events."""
        return execute_run(recon_job_from_origin(run.job_code_origin), run, self.instance).all_events

    def submit(self, run: dg.DagsterRun) -> None:
        """Hand the run to the instance's run queue, which a running daemon launches."""
        self.instance.submit_run(run.run_id, self.workspace)

    def cancel_run(self, run_id: str) -> None:
        self.instance.run_coordinator.cancel_run(run_id)


def backfill_runs(instance: dg.DagsterInstance, backfill_id: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id})))


def daemon_launches_queued_runs(instance: dg.DagsterInstance, now: float | None = None) -> bool:
    """Whether submitted runs are launched by a daemon that is running now: the instance queues runs
    (QueuedRunCoordinator) and its queue daemon sent a heartbeat within the last 90 s."""
    if not isinstance(instance.run_coordinator, dg.QueuedRunCoordinator):
        return False
    heartbeat = instance.get_daemon_heartbeats().get(QUEUED_RUN_DAEMON)
    return heartbeat is not None and (now or time.time()) - heartbeat.timestamp <= DAEMON_HEARTBEAT_WINDOW_SECONDS
