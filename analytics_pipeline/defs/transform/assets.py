"""dbt models as Dagster assets, and dbt tests as asset checks.

Two sets, split by the dbt tag ``daily``: models that hold days (incremental, one partition = one
UTC day, window passed as dbt vars) and models that do not (views over dimensions, full-rebuild
tables such as retention cohorts). Backfills of the daily set run as one dbt invocation over the
whole range (``BackfillPolicy.single_run()``).
"""

import json
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from analytics_pipeline.defs.transform.previews import daily_numbers, partition_preview
from analytics_pipeline.executors import WAREHOUSE_QUEUE, on_queue
from analytics_pipeline.lib.log_context import get_logger
from analytics_pipeline.partition_metadata import add_partition_metadata
from analytics_pipeline.partitions import daily_partitions
from analytics_pipeline.resources.dbt import AnalyticsDbtCliResource, dbt_project, window_env
from analytics_pipeline.resources.policies import TRANSIENT_RETRY_POLICY, WAREHOUSE_POOL
from analytics_pipeline.resources.warehouse import WarehouseResource

# the step's log lines, prefixed with [run=… asset=… partition=…] (log_context.py)
log = get_logger("analytics_pipeline.transform")

DAILY_TAG = "daily"


def _window_columns(manifest_path: Path) -> dict[tuple[str, ...], str]:
    """Asset key path -> the date column a window-replacing model is partitioned on."""
    manifest = json.loads(manifest_path.read_text())
    return {
        (node["config"].get("schema") or node["schema"], node["name"]): node["config"]["window_column"]
        for node in manifest["nodes"].values()
        if node.get("resource_type") == "model" and node.get("config", {}).get("window_column")
    }


class AnalyticsDbtTranslator(DagsterDbtTranslator):
    """Asset keys mirror warehouse tables (``raw/activity_events``, ``forecast/demand_forecasts``,
    ``marts/fct_daily_engagement``).

    A daily model's partition depends on the same day of its daily parents (Dagster's default
    mapping), also where the model reads history (first activity ever, 30-day windows, weeks and
    months): such a model recomputes in SQL the later days a window changes, so a late file for an
    old day, or a backfill of an old range, plans just those days instead of every later one."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """The domain folder of a model (``models/<layer>/<domain>/<model>.sql``: engagement,
        commerce, forecasting), as dagster-open-platform's translator derives it; elsewhere (a seed,
        a source) the ``meta.dagster.group`` of its YAML, if any."""
        fqn = dbt_resource_props.get("fqn") or []
        if dbt_resource_props.get("resource_type") == "model" and len(fqn) == 4:
            return fqn[2]
        return super().get_group_name(dbt_resource_props)

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            # raw/<table> from ingestion, forecast/<table> from the forecasting assets
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]
        return dg.AssetKey([schema, dbt_resource_props["name"]])


WINDOW_COLUMNS = _window_columns(dbt_project.manifest_path)

translator = AnalyticsDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_code_references=False)
)


def _dbt_vars(context: dg.AssetExecutionContext) -> dict[str, str]:
    window = context.partition_time_window
    return {
        "min_date": window.start.date().isoformat(),
        "max_date": (window.end - timedelta(days=1)).date().isoformat(),
    }


def _run_dbt(
    context: dg.AssetExecutionContext,
    dbt: AnalyticsDbtCliResource,
    warehouse: WarehouseResource,
    dbt_vars: Mapping[str, str] | None,
) -> Iterator[Any]:
    # dbt reaches the warehouse through its environment (profiles.yml); the window travels there
    # too: as --vars it would make dbt re-parse the project
    env = {**warehouse.dbt_env(), **window_env(dbt_vars)}
    if dbt_vars:
        log.info(f"dbt window {dbt_vars['min_date']} .. {dbt_vars['max_date']}")
    # dbt opens the DuckDB file itself: the step holds the warehouse for the whole invocation, so
    # readers (export, health, metrics) wait for it instead of making dbt fail on the file's lock.
    with warehouse.get_client().writing(f"dbt build in step {context.op_def.name}, run {context.run_id[:8]}"):
        invocation = dbt.cli(["build"], context=context, env=env)
        # Collected before previews are queried: a DuckDB file takes one writer process at a time, and
        # dbt holds it until it exits.
        events, failure = [], None
        try:
            events.extend(invocation.stream())
        except DagsterDbtCliRuntimeError as error:
            failure = error  # raised after the events: the checks that ran, failed ones included, are reported
        invocation.process.wait()
    dbt.keep_saved_parse(invocation, env)
    yield from _with_previews(events, context, warehouse, dbt_vars)
    if failure is not None:
        failed = _failed_tests(invocation)
        if failed:  # the data is wrong: running dbt again would fail the same way
            raise dg.Failure(
                description=f"dbt tests failed: {', '.join(failed)} (see the failed asset checks)",
                allow_retries=False,
            ) from failure
        raise failure  # a model failed to build (a lock, a lost connection): the retry policy applies


def _failed_tests(invocation: Any) -> list[str]:
    """Names of the data tests dbt reported as failed (status ``fail``) in the invocation."""
    try:
        results = invocation.get_artifact("run_results.json")["results"]
    except (OSError, KeyError, ValueError):
        return []
    return sorted(r["unique_id"].split(".")[2] for r in results if r.get("status") == "fail")


def _with_previews(
    events: list[Any],
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    dbt_vars: Mapping[str, str] | None,
) -> Iterator[Any]:
    """The events, each model's output with its window (on every day) and, per day of the run, that
    day's own numbers (partition-scoped metadata: on the day's materialization, no event added); the
    window's preview table goes on its last day only."""
    # Not dagster-dbt's ``.fetch_row_counts()``: it counts whole tables through an in-process dbt
    # adapter built per invocation (the cost dbt_cli_fixed_costs.py avoids), and a count of the whole
    # table is not a day's number; the previews query the window's own rows in one statement per model.
    if not dbt_vars:
        yield from events
        return
    # one read session for every model's queries, not a connection per query
    with warehouse.get_client().transaction() as session:
        for event in events:
            if isinstance(event, dg.Output | dg.AssetMaterialization):
                key = (
                    event.asset_key
                    if isinstance(event, dg.AssetMaterialization)
                    else context.asset_key_for_output(event.output_name)
                )
                window_column = WINDOW_COLUMNS.get(tuple(key.path))
                per_day = daily_numbers(session, key, window_column, context.partition_keys)
                rows = sum(int(numbers.get("rows", 0)) for numbers in per_day.values()) if window_column else None
                preview = partition_preview(session, key, rows, dbt_vars["min_date"], dbt_vars["max_date"])
                table = preview.pop("preview", None)
                if isinstance(event, dg.Output) and table is not None and context.partition_keys:
                    # the window's table only on its last day (the latest materialization), not copied
                    # onto every day of a long backfill
                    last = context.partition_keys[-1]
                    per_day = {**per_day, last: {**per_day.get(last, {}), "preview": table}}
                elif table is not None:
                    preview["preview"] = table
                event = event.with_metadata({**event.metadata, **preview})
                if isinstance(event, dg.Output):
                    add_partition_metadata(context, key, per_day)
            yield event


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=f"tag:{DAILY_TAG}",
    name="daily_dbt_models",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    dagster_dbt_translator=translator,
    retry_policy=TRANSIENT_RETRY_POLICY,
    pool=WAREHOUSE_POOL,
    op_tags=on_queue(WAREHOUSE_QUEUE),
)
def daily_dbt_models(
    context: dg.AssetExecutionContext, dbt: AnalyticsDbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """Daily dbt models for the partition window (one run covers a whole backfill range)."""
    yield from _run_dbt(context, dbt, warehouse, _dbt_vars(context))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=f"tag:{DAILY_TAG}",
    name="dbt_models",
    dagster_dbt_translator=translator,
    retry_policy=TRANSIENT_RETRY_POLICY,
    pool=WAREHOUSE_POOL,
    op_tags=on_queue(WAREHOUSE_QUEUE),
)
def dbt_models(
    context: dg.AssetExecutionContext, dbt: AnalyticsDbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """Unpartitioned dbt models: dimension views and full-rebuild tables."""
    yield from _run_dbt(context, dbt, warehouse, None)
