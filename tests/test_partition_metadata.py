"""analytics_pipeline/partition_metadata.py: many partitions' own metadata added at once leaves each
partition's materialization as one public ``add_asset_metadata`` call per partition leaves it.

A Dagster release that moves the accumulator it sets fails here, not silently in the UI."""

import dagster as dg
import pytest

from analytics_pipeline.partition_metadata import add_partition_metadata

DAYS = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")
RANGE = {"dagster/asset_partition_range_start": "2025-01-01", "dagster/asset_partition_range_end": "2025-01-04"}


def _per_day(keys: list[str]) -> dict[str, dict[str, object]]:
    return {key: {"day_number": int(key[-2:]), "label": f"day {key}"} for key in keys}


def _materialize(add_all_at_once: bool) -> dict[tuple[str, str], dict[str, object]]:
    @dg.multi_asset(
        specs=[dg.AssetSpec("a"), dg.AssetSpec("b")],
        partitions_def=DAYS,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def both(context: dg.AssetExecutionContext):
        context.add_asset_metadata({"run": "shared", "label": "overridden"}, asset_key="a")  # every day of a
        for key in ("a", "b"):
            per_day = _per_day(context.partition_keys)
            if add_all_at_once:
                add_partition_metadata(context, dg.AssetKey(key), per_day)
            else:
                for day, metadata in per_day.items():
                    context.add_asset_metadata(metadata, asset_key=key, partition_key=day)
        yield dg.MaterializeResult(asset_key="a", metadata={"output": 1})
        yield dg.MaterializeResult(asset_key="b")

    result = dg.materialize([both], instance=dg.DagsterInstance.ephemeral(), tags=RANGE)
    assert result.success
    return {
        (m.asset_key.to_user_string(), m.partition): {k: v.value for k, v in m.materialization.metadata.items()}
        for m in result.get_asset_materialization_events()
    }


def test_all_at_once_leaves_what_one_call_per_partition_leaves() -> None:
    expected = _materialize(add_all_at_once=False)
    assert _materialize(add_all_at_once=True) == expected
    # what is compared is each day's own: a's days also carry the run-wide metadata and the output's
    assert expected[("a", "2025-01-03")] == {"run": "shared", "label": "day 2025-01-03", "day_number": 3, "output": 1}
    assert expected[("b", "2025-01-02")] == {"label": "day 2025-01-02", "day_number": 2}
    assert len(expected) == 8


def test_a_partition_outside_the_run_fails_as_dagster_words_it() -> None:
    @dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
    def days(context: dg.AssetExecutionContext) -> None:
        add_partition_metadata(context, context.asset_key, {"2025-01-01": {"n": 1}, "2025-02-01": {"n": 2}})

    with pytest.raises(
        dg.DagsterInvariantViolationError, match="partition key '2025-02-01' that is not being targeted"
    ):
        dg.materialize([days], instance=dg.DagsterInstance.ephemeral(), tags=RANGE)
