"""Demand forecasting assets (group ``forecasting``): weekly model selection and the forecast.

Both are daily-partitioned by *as-of date*, the last day of demand they use, so a vintage is a
partition: re-running an as-of date replaces only that vintage, earlier ones stay for the accuracy
mart, and a backfill of past as-of dates builds the history of vintages that accuracy is measured
on. A forecast uses the latest model selection made on or before its as-of date, never a later one.

Each is a graph: a planner cuts each as-of date's items into ranges (``items_per_step``), one step
per range fits them (Dagster's dynamic outputs: with the Celery executor, every range is a task on
the ``forecasting`` queue, so more workers share a run), and a writer replaces the run's vintages in
one transaction once every range is done, so a vintage is whole or untouched. They read
``marts.fct_item_daily_demand`` and write ``forecast.*`` in short transactions and do the fitting in
between, so they hold no warehouse lock (and no slot of the warehouse pool) while they compute; a
lock met on the way in or out is transient and retried.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg
import pyarrow as pa
from pydantic import Field

from analytics_pipeline.executors import FORECASTING_QUEUE, on_queue
from analytics_pipeline.lazy import LazyModule
from analytics_pipeline.lib.forecasting.horizon import CV_WINDOWS, HISTORY_DAYS, HORIZON
from analytics_pipeline.lib.log_context import get_logger
from analytics_pipeline.metadata import markdown_table
from analytics_pipeline.partitions import daily_partitions
from analytics_pipeline.resources.policies import TRANSIENT_RETRY_POLICY, failures_are_final
from analytics_pipeline.resources.warehouse import (
    Column,
    Table,
    Warehouse,
    WarehouseResource,
)

# the step's log lines, prefixed with [run=… asset=… partition=…] (log_context.py)
log = get_logger("analytics_pipeline.forecasting")

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")

ITEM_DEMAND = dg.AssetKey(["marts", "fct_item_daily_demand"])
MODEL_EVALUATIONS = dg.AssetKey(["forecast", "model_evaluations"])
DEMAND_FORECASTS = dg.AssetKey(["forecast", "demand_forecasts"])

MODEL_EVALUATIONS_TABLE = Table(
    "forecast.model_evaluations",
    (
        Column("item_id", "varchar"),
        Column("evaluated_at", "date"),
        Column("model", "varchar"),
        Column("family", "varchar"),
        Column("demand_class", "varchar"),
        Column("mase", "double precision"),
        Column("smape", "double precision"),
        Column("rmse", "double precision"),
        Column("selected", "boolean"),
        # the selected automatic model's structure (JSON: ETS components, ARIMA orders)
        Column("model_spec", "varchar"),
        Column("windows", "integer"),
        Column("horizon_days", "integer"),
        Column("created_at", "timestamp"),
    ),
    indexed_columns=("evaluated_at",),
)

DEMAND_FORECASTS_TABLE = Table(
    "forecast.demand_forecasts",
    (
        Column("item_id", "varchar"),
        Column("as_of_date", "date"),
        Column("forecast_date", "date"),
        Column("horizon_days", "integer"),
        Column("model", "varchar"),
        Column("yhat", "double precision"),
        Column("yhat_lo_80", "double precision"),
        Column("yhat_hi_80", "double precision"),
        Column("yhat_lo_95", "double precision"),
        Column("yhat_hi_95", "double precision"),
        Column("fallback_reason", "varchar"),
        Column("created_at", "timestamp"),
    ),
    indexed_columns=("as_of_date",),
)

FORECAST_TABLES = (MODEL_EVALUATIONS_TABLE, DEMAND_FORECASTS_TABLE)

# A vintage reads the year of demand up to its as-of date; a selection made in the week before is
# the one it uses.
_HISTORY = dg.TimeWindowPartitionMapping(
    start_offset=-(HISTORY_DAYS - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
)
_LAST_WEEK = dg.TimeWindowPartitionMapping(start_offset=-6, end_offset=0, allow_nonexistent_upstream_partitions=True)


class ForecastConfig(dg.Config):
    """How a run cuts the work: ``items_per_step`` items per step (each step of its own, so several
    Celery workers on the ``forecasting`` queue share one run), ``n_jobs`` fitting processes within
    a step (one per core of the machine that runs it)."""

    n_jobs: int = Field(default=2, ge=1)
    items_per_step: int = Field(default=100, ge=1)


@dataclass(frozen=True)
class ItemRange:
    """One step's work: the items ``first_item`` .. ``last_item`` (in the warehouse's order) as of ``as_of``."""

    as_of: date
    first_item: str
    last_item: str
    items: int
    n_jobs: int
    index: int

    @property
    def mapping_key(self) -> str:
        return f"{self.as_of:%Y%m%d}_{self.index}"


def _client(warehouse: WarehouseResource) -> Warehouse:
    client = warehouse.get_client()
    with failures_are_final("Preparing the forecast tables"):
        client.ensure_ready(FORECAST_TABLES)
    return client


def _demand_items(client: Warehouse, as_of: date) -> list[str]:
    """The items with demand in the year up to ``as_of``, in the warehouse's order; fails clearly
    when that day is not loaded yet."""
    if not client.table_exists("marts.fct_item_daily_demand"):
        raise dg.Failure(
            description="marts.fct_item_daily_demand does not exist yet: load demand first "
            "(`analytics-pipeline backfill --days N`, or the daily_pipeline job).",
            allow_retries=False,
        )
    if not client.scalar("select count(*) from marts.fct_item_daily_demand where demand_date = ?", (as_of,)):
        raise dg.Failure(
            description=f"No demand for {as_of} in marts.fct_item_daily_demand: a forecast as of that day "
            f"needs it. Run the daily pipeline for {as_of} first.",
            allow_retries=False,
        )
    rows = client.query(
        "select distinct item_id from marts.fct_item_daily_demand where demand_date between ? and ? order by item_id",
        (as_of - timedelta(days=HISTORY_DAYS - 1), as_of),
    ).column("item_id")
    return rows.to_pylist()


def _item_ranges(client: Warehouse, as_of: date, config: ForecastConfig) -> list[ItemRange]:
    items = _demand_items(client, as_of)
    return [
        ItemRange(as_of, part[0], part[-1], len(part), config.n_jobs, index)
        for index, part in enumerate(
            items[start : start + config.items_per_step] for start in range(0, len(items), config.items_per_step)
        )
    ]


def _read_demand(client: Warehouse, work: ItemRange) -> "pd.DataFrame":
    """A year of daily demand up to the range's as-of date, for the range's items."""
    return client.query(
        "select item_id, demand_date, units from marts.fct_item_daily_demand "
        "where demand_date between ? and ? and item_id between ? and ?",
        (work.as_of - timedelta(days=HISTORY_DAYS - 1), work.as_of, work.first_item, work.last_item),
    ).to_pandas()


SELECTION_COLUMNS = ["item_id", "evaluated_at", "model", "mase", "selected", "model_spec"]


def _selections_as_of(client: Warehouse, work: ItemRange) -> "pd.DataFrame":
    """Each of the range's items' selected model and scores, from its latest selection on or before
    the range's as-of date."""
    frame = client.query(
        """
        with latest as (
            select item_id, max(evaluated_at) as evaluated_at
            from forecast.model_evaluations
            where evaluated_at <= ? and item_id between ? and ?
            group by item_id
        )
        select evaluations.item_id, evaluations.evaluated_at, evaluations.model, evaluations.mase,
               evaluations.selected, evaluations.model_spec
        from forecast.model_evaluations as evaluations
        inner join latest
            on evaluations.item_id = latest.item_id and evaluations.evaluated_at = latest.evaluated_at
        """,
        (work.as_of, work.first_item, work.last_item),
    ).to_pandas()
    return frame if not frame.empty else pd.DataFrame(columns=SELECTION_COLUMNS).astype({"selected": bool})


def _named(items: dict[str, str], limit: int = 50) -> dg.MetadataValue:
    """Items and reasons as a markdown list (the first ``limit``)."""
    if not items:
        return dg.MetadataValue.md("none")
    lines = [f"- `{item}`: {reason}" for item, reason in sorted(items.items())[:limit]]
    if len(items) > limit:
        lines.append(f"- … and {len(items) - limit} more")
    return dg.MetadataValue.md("\n".join(lines))


def _model_mix(models_used: "pd.Series") -> dg.MetadataValue:
    from analytics_pipeline.lib.forecasting import models  # statsforecast: loaded on first use

    counts = models_used.value_counts().rename_axis("model").reset_index(name="items")
    counts["family"] = counts["model"].map(models.FAMILIES)
    table = counts[["model", "family", "items"]]
    return dg.MetadataValue.md(markdown_table(list(table.columns), table.itertuples(index=False)))


def _mase_vs_naive(scores: "pd.DataFrame") -> dict[str, Any]:
    """Mean cross-validated MASE of the selected models vs seasonal naive on the same items."""
    from analytics_pipeline.lib.forecasting import models  # statsforecast: loaded on first use

    scored = scores.dropna(subset=["mase"])
    selected = scored[scored["selected"]].set_index("item_id")["mase"]
    naive = scored[scored["model"] == models.SEASONAL_NAIVE].set_index("item_id")["mase"]
    common = selected.index.intersection(naive.index)
    if common.empty:
        return {}
    mean_selected, mean_naive = float(selected[common].mean()), float(naive[common].mean())
    result = {"mean_mase_selected": round(mean_selected, 4), "mean_mase_seasonal_naive": round(mean_naive, 4)}
    if mean_naive > 0:
        result["mase_improvement_vs_naive_pct"] = round(100 * (1 - mean_selected / mean_naive), 2)
    return result


# -- one step per range of items: the fitting -------------------------------------------------------


@dataclass
class RangeEvaluation:
    work: ItemRange
    scores: "pd.DataFrame"  # models.SCORE_COLUMNS
    skipped: dict[str, str]
    seconds: float


@dataclass
class RangeForecast:
    work: ItemRange
    forecasts: "pd.DataFrame"  # DEMAND_FORECASTS_TABLE's columns
    fallbacks: dict[str, str]
    selections: "pd.DataFrame"  # SELECTION_COLUMNS of the selections used
    seconds: float


def _evaluate(client: Warehouse, work: ItemRange) -> RangeEvaluation:
    """Select a model for each of the range's items on the year up to its as-of date."""
    from analytics_pipeline.lib.forecasting import models  # statsforecast: loaded on first use

    started = time.perf_counter()
    series = models.prepare_series(_read_demand(client, work), pd.Timestamp(work.as_of))
    selection = models.select_models(series, n_jobs=work.n_jobs)
    return RangeEvaluation(work, selection.scores, selection.skipped, time.perf_counter() - started)


def _forecast(client: Warehouse, work: ItemRange) -> RangeForecast:
    """Forecast each of the range's items as of its as-of date with the item's selected model."""
    from analytics_pipeline.lib.forecasting import models  # statsforecast: loaded on first use

    started = time.perf_counter()
    series = models.prepare_series(_read_demand(client, work), pd.Timestamp(work.as_of))
    evaluations = _selections_as_of(client, work)
    selected = evaluations[evaluations["selected"].astype(bool)]
    choices = {
        item: models.Choice(model, spec if isinstance(spec, str) else None)
        for item, model, spec in zip(selected["item_id"], selected["model"], selected["model_spec"], strict=True)
    }
    result = models.forecast(series, choices, n_jobs=work.n_jobs)
    rows = result.forecasts.assign(
        as_of_date=work.as_of,
        forecast_date=result.forecasts["forecast_date"].dt.date,
        horizon_days=(result.forecasts["forecast_date"] - pd.Timestamp(work.as_of)).dt.days,
        fallback_reason=result.forecasts["item_id"].map(result.fallbacks),
    )
    return RangeForecast(work, rows, result.fallbacks, evaluations, time.perf_counter() - started)


# -- a vintage is written whole, once every range of its items is done ---------------------------------


def _evaluation_rows(done: list[RangeEvaluation]) -> tuple["pd.DataFrame", dict[str, Any]]:
    """One as-of date's evaluations from its ranges, and the vintage's metadata."""
    scores = pd.concat([part.scores for part in done], ignore_index=True)
    skipped = {item: why for part in done for item, why in part.skipped.items()}
    rows = scores.assign(
        evaluated_at=done[0].work.as_of,
        windows=CV_WINDOWS,
        horizon_days=HORIZON,
        created_at=pd.Timestamp.now(tz="UTC").tz_localize(None),
    )
    chosen = scores[scores["selected"].astype(bool)]
    return rows, {
        "as_of_date": done[0].work.as_of.isoformat(),
        "items_evaluated": int(chosen["item_id"].nunique()),
        "items_skipped": len(skipped),
        "skipped": _named(skipped),
        "model_mix": _model_mix(chosen["model"]),
        **_mase_vs_naive(scores),
        "rows": len(rows),
        "item_steps": len(done),
        "seconds": round(sum(part.seconds for part in done), 2),
    }


def _forecast_rows(done: list[RangeForecast]) -> tuple["pd.DataFrame", dict[str, Any]]:
    """One as-of date's forecasts from its ranges, and the vintage's metadata."""
    rows = pd.concat([part.forecasts for part in done], ignore_index=True)
    rows = rows.assign(created_at=pd.Timestamp.now(tz="UTC").tz_localize(None))
    fallbacks = {item: why for part in done for item, why in part.fallbacks.items()}
    evaluations = pd.concat([part.selections for part in done], ignore_index=True)
    selected = evaluations[evaluations["selected"].astype(bool)]
    forecast_items = rows.drop_duplicates("item_id")
    return rows, {
        "as_of_date": done[0].work.as_of.isoformat(),
        "items_forecast": len(forecast_items),
        "rows": len(rows),
        "model_mix": _model_mix(forecast_items["model"]),
        "fallbacks": len(fallbacks),
        "fallback_items": _named(fallbacks),
        "selection_used": str(evaluations["evaluated_at"].max()) if not evaluations.empty else "none yet",
        **_mase_vs_naive(evaluations[evaluations["item_id"].isin(selected["item_id"])]),
        "forecast_units_next_7_days": round(float(rows.loc[rows["horizon_days"] <= 7, "yhat"].sum()), 1),
        "item_steps": len(done),
        "seconds": round(sum(part.seconds for part in done), 2),
    }


def _write_vintages(
    context: dg.OpExecutionContext,
    client: Warehouse,
    key: dg.AssetKey,
    table: Table,
    date_column: str,
    done: list[Any],
    vintage: Callable[[list[Any]], tuple["pd.DataFrame", dict[str, Any]]],
) -> dg.Output:
    """Replace every as-of date of the run in one transaction; with several, each gets its own
    observation, and the materialization carries the last one's metadata."""
    by_date: dict[date, list[Any]] = {}
    for part in sorted(done, key=lambda part: (part.work.as_of, part.work.index)):
        by_date.setdefault(part.work.as_of, []).append(part)
    replacements, metadata_by_date = [], {}
    for as_of, parts in by_date.items():
        rows, metadata_by_date[as_of] = vintage(parts)
        arrow = pa.Table.from_pandas(rows[table.column_names], preserve_index=False)
        replacements.append((table, {date_column: as_of}, arrow))
    with failures_are_final(f"Writing {table.name}"):
        client.replace_rows(replacements)
    for as_of, metadata in metadata_by_date.items():
        log.info(
            f"{key.to_user_string()} as of {as_of}: "
            + ", ".join(f"{k} {v}" for k, v in metadata.items() if isinstance(v, int | float | str))
        )
        if len(metadata_by_date) > 1:
            context.log_event(dg.AssetObservation(asset_key=key, partition=as_of.isoformat(), metadata=metadata))
    return dg.Output(None, metadata=metadata_by_date[max(metadata_by_date)])


# -- the ops: plan the ranges, fit each range in a step of its own, write the vintages whole ------------

_FORECASTING_OP = {"retry_policy": TRANSIENT_RETRY_POLICY, "tags": on_queue(FORECASTING_QUEUE)}


def _range_planner(name: str, what: str) -> dg.OpDefinition:
    @dg.op(
        name=name,
        ins={"upstream": dg.In(dg.Nothing)},
        out=dg.DynamicOut(ItemRange),
        description=f"The run's as-of dates' items, cut into ranges of `items_per_step`: one {what} step each.",
        **_FORECASTING_OP,
    )
    def plan(
        context: dg.OpExecutionContext, config: ForecastConfig, warehouse: WarehouseResource
    ) -> Iterator[dg.DynamicOutput[ItemRange]]:
        client = _client(warehouse)
        for partition_key in context.partition_keys:
            with failures_are_final(f"Planning the {what} as of {partition_key}"):
                ranges = _item_ranges(client, date.fromisoformat(partition_key), config)
            log.info(
                f"{what} as of {partition_key}: {sum(r.items for r in ranges)} items in "
                f"{len(ranges)} step(s) of up to {config.items_per_step}"
            )
            for work in ranges:
                yield dg.DynamicOutput(work, mapping_key=work.mapping_key)

    return plan


plan_model_evaluations = _range_planner("plan_model_evaluations", "model selection")
plan_demand_forecasts = _range_planner("plan_demand_forecasts", "forecast")


@dg.op(**_FORECASTING_OP)
def evaluate_items(warehouse: WarehouseResource, work: ItemRange) -> RangeEvaluation:
    """Cross-validate the candidate models of one range of items."""
    with failures_are_final(f"Model selection for {work.items} items as of {work.as_of}"):
        return _evaluate(warehouse.get_client(), work)


@dg.op(**_FORECASTING_OP)
def forecast_items(warehouse: WarehouseResource, work: ItemRange) -> RangeForecast:
    """Forecast one range of items with their selected models."""
    with failures_are_final(f"Forecast for {work.items} items as of {work.as_of}"):
        return _forecast(warehouse.get_client(), work)


@dg.op(out=dg.Out(dg.Nothing), **_FORECASTING_OP)
def write_model_evaluations(
    context: dg.OpExecutionContext, warehouse: WarehouseResource, done: list[RangeEvaluation]
) -> dg.Output:
    """Replace the run's as-of dates' evaluations with every range's."""
    return _write_vintages(
        context, _client(warehouse), MODEL_EVALUATIONS, MODEL_EVALUATIONS_TABLE, "evaluated_at", done, _evaluation_rows
    )


@dg.op(out=dg.Out(dg.Nothing), **_FORECASTING_OP)
def write_demand_forecasts(
    context: dg.OpExecutionContext, warehouse: WarehouseResource, done: list[RangeForecast]
) -> dg.Output:
    """Replace the run's vintages with every range's forecasts."""
    return _write_vintages(
        context, _client(warehouse), DEMAND_FORECASTS, DEMAND_FORECASTS_TABLE, "as_of_date", done, _forecast_rows
    )


def _config_for(planner: dg.OpDefinition) -> dg.ConfigMapping:
    """The asset's run config (``ops: {forecast__<name>: {config: {n_jobs, items_per_step}}}``) goes to its planner."""

    @dg.config_mapping
    def to_planner(config: ForecastConfig) -> dict[str, Any]:
        return {planner.name: {"config": {"n_jobs": config.n_jobs, "items_per_step": config.items_per_step}}}

    return to_planner


# Both assets are graphs: a planner, one step per range of items (dynamic outputs, on the forecasting
# queue, so Celery workers share them) and one writer, so a vintage is replaced whole or not at all.
# A backfill of many as-of dates is one run; every range of every date is a step of it.


@dg.graph_asset(
    key=MODEL_EVALUATIONS,
    group_name="forecasting",
    partitions_def=daily_partitions,
    ins={"demand": dg.AssetIn(ITEM_DEMAND, partition_mapping=_HISTORY, dagster_type=dg.Nothing)},
    backfill_policy=dg.BackfillPolicy.single_run(),
    config=_config_for(plan_model_evaluations),
    kinds={"python", "statsforecast"},
    description="Weekly model selection: rolling-origin cross-validation of the candidate models per item "
    "(MASE, sMAPE, RMSE); the best is `selected`. Partition = as-of date (last day of demand used).",
)
def model_evaluations(demand):
    return write_model_evaluations(plan_model_evaluations(demand).map(evaluate_items).collect())  # type: ignore[union-attr]


@dg.graph_asset(
    key=DEMAND_FORECASTS,
    group_name="forecasting",
    partitions_def=daily_partitions,
    ins={
        "demand": dg.AssetIn(ITEM_DEMAND, partition_mapping=_HISTORY, dagster_type=dg.Nothing),
        "evaluations": dg.AssetIn(MODEL_EVALUATIONS, partition_mapping=_LAST_WEEK, dagster_type=dg.Nothing),
    },
    backfill_policy=dg.BackfillPolicy.single_run(),
    config=_config_for(plan_demand_forecasts),
    kinds={"python", "statsforecast"},
    description=f"Per-item demand forecast, {HORIZON} days ahead with 80% and 95% intervals, from each item's "
    "selected model (a named fallback otherwise). Partition = as-of date = vintage; earlier vintages are kept.",
)
def demand_forecasts(demand, evaluations):
    return write_demand_forecasts(plan_demand_forecasts([demand, evaluations]).map(forecast_items).collect())  # type: ignore[union-attr]


forecasting_assets = [model_evaluations, demand_forecasts]
