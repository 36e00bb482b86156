"""The embedded instance's event log (analytics_pipeline/batched_event_log.py) records what Dagster's
own SQLite event log records, and gets a run's per-partition events in batches.

Both instances run the same job; everything the UI and the daemons read back (materialized and
planned partitions, the latest materialization of each asset, asset checks, run status changes,
the run's own log) must be the same. A Dagster release that changes its storage's internals, or
stops handing planned events over in batches, fails here.
"""

from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.event_log.base import EventRecordsFilter

from analytics_pipeline.batched_event_log import BatchedSqliteEventLogStorage
from analytics_pipeline.settings import PROJECT_ROOT

DAYS = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")


@dg.asset(
    partitions_def=DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec("positive", asset="upstream")],
)
def upstream(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    for key in context.partition_keys:
        context.log_event(dg.AssetObservation(asset_key="upstream", partition=key, metadata={"rows": len(key)}))
    # fails on purpose: a failed evaluation must be recorded as Dagster records it
    return dg.MaterializeResult(
        metadata={"days": len(context.partition_keys)},
        check_results=[dg.AssetCheckResult(passed=False, metadata={"why": "test"})],
    )


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run(), deps=[upstream])
def downstream(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"window": context.partition_key_range.start})


@dg.asset(deps=[downstream])
def summary() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"done": True})


def _instance(home: Path, batched: bool) -> dg.DagsterInstance:
    home.mkdir()
    if batched:  # the project's instance configuration, as every home gets it
        (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    instance = dg.DagsterInstance.from_config(str(home))
    assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage) == batched
    return instance


def _run(instance: dg.DagsterInstance) -> list[str]:
    run_ids = []
    for first, last in (("2025-01-01", "2025-01-05"), ("2025-01-04", "2025-01-06")):  # overlapping ranges
        result = dg.materialize(
            [upstream, downstream],
            instance=instance,
            raise_on_error=False,
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        )
        run_ids.append(result.run_id)
    run_ids.append(dg.materialize([upstream, downstream, summary], selection=[summary], instance=instance).run_id)
    return run_ids


def _what_is_read_back(instance: dg.DagsterInstance, run_ids: list[str]) -> dict[str, object]:
    """Everything compared, with run ids replaced by their order (the two instances' ids differ)."""
    order = {run_id: n for n, run_id in enumerate(run_ids)}
    seen: dict[str, object] = {"asset_keys": sorted(k.to_user_string() for k in instance.get_asset_keys())}
    for key in (dg.AssetKey("upstream"), dg.AssetKey("downstream"), dg.AssetKey("summary")):
        name = key.to_user_string()
        seen[f"{name} materialized"] = (
            sorted(instance.get_materialized_partitions(key)) if key.path != ["summary"] else None
        )
        records = instance.fetch_materializations(key, limit=100).records
        seen[f"{name} materializations"] = sorted(
            (order[r.run_id], r.partition_key or "", dict(r.asset_materialization.metadata)) for r in records
        )
        latest = instance.get_latest_materialization_event(key)
        seen[f"{name} latest"] = (order[latest.run_id], latest.dagster_event.partition)
        (record,) = instance.get_asset_records([key])
        seen[f"{name} last run"] = order[record.asset_entry.last_run_id]
        planned = instance.get_event_records(
            EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=key), limit=1000
        )
        seen[f"{name} planned"] = Counter((order[r.run_id], r.partition_key or "") for r in planned)
        observations = instance.fetch_observations(key, limit=100).records
        seen[f"{name} observations"] = sorted((order[r.run_id], r.partition_key or "") for r in observations)
    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("upstream"), "positive"), limit=100
    )
    seen["check history"] = sorted(
        (
            order[h.run_id],
            h.partition or "",
            h.status.value,
            h.event.dagster_event.event_type_value,
            h.event.dagster_event.event_specific_data.partitions_subset is not None
            if h.event.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION_PLANNED"
            else None,
        )
        for h in history
    )
    for run_id in run_ids:
        seen[f"run {order[run_id]} events"] = Counter(
            e.dagster_event.event_type_value for e in instance.all_logs(run_id) if e.is_dagster_event
        )
        seen[f"run {order[run_id]} status"] = instance.get_run_by_id(run_id).status.value
    seen["status changes"] = len(
        instance.event_log_storage.fetch_run_status_changes(dg.DagsterEventType.RUN_SUCCESS, limit=100).records
    )
    return seen


def test_reads_back_what_dagsters_own_sqlite_event_log_does(tmp_path: Path) -> None:
    reference = _instance(tmp_path / "dagster", batched=False)
    batched = _instance(tmp_path / "batched", batched=True)
    expected = _what_is_read_back(reference, _run(reference))
    assert _what_is_read_back(batched, _run(batched)) == expected
    # what is compared is not empty: 5 + 3 planned and materialized days of each daily asset
    assert expected["downstream materialized"] == [f"2025-01-0{d}" for d in range(1, 7)]
    assert sum(expected["upstream planned"].values()) == 8
    assert "FAILED" in {status for _, _, status, _, _ in expected["check history"]}
    # the check is planned for each day of a run (one row per day, as Dagster writes them)
    planned = [
        (run, day) for run, day, _, kind, _ in expected["check history"] if kind == "ASSET_CHECK_EVALUATION_PLANNED"
    ]
    assert len(planned) >= 5, expected["check history"]
    # the files are where Dagster's default storage keeps them, so an instance can switch back
    assert (tmp_path / "batched" / "history" / "runs" / "index.db").is_file()


def test_a_runs_planned_events_reach_the_storage_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = _instance(tmp_path / "home", batched=True)
    storage = instance.event_log_storage
    batches: list[int] = []
    store_event_batch = storage.store_event_batch
    monkeypatch.setattr(
        storage, "store_event_batch", lambda events: (batches.append(len(events)), store_event_batch(events))
    )
    result = dg.materialize(
        [upstream, downstream],
        instance=instance,
        tags={"dagster/asset_partition_range_start": "2025-01-01", "dagster/asset_partition_range_end": "2025-01-30"},
    )
    assert result.success
    # 30 planned days of 2 assets, and the check, in one batch: not 61 writes
    assert max(batches) >= 61, batches


def test_what_the_storage_overrides_is_still_dagsters() -> None:
    """The storage replaces some of Dagster's own methods; a release that renames one would leave the
    replacement unused (and the slow path silently back)."""
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    replaced = [
        name
        for name, value in vars(BatchedSqliteEventLogStorage).items()
        if callable(value) and not name.startswith("__") and name not in ("config_type", "from_config_value")
    ]
    ours = {"_open", "_engine", "_connect", "_insert_returning_ids", "_store_asset_entries"}
    assert "_store_asset_check_evaluation_planned" in replaced
    for name in set(replaced) - ours:
        assert hasattr(SqlEventLogStorage, name) or hasattr(dg.DagsterInstance, name), name
