"""Demand forecasting assets (group ``forecasting``): weekly model selection and the forecast.

Both are daily-partitioned by *as-of date*, the last day of demand they use, so a vintage is a
partition: re-running an as-of date replaces only that vintage, earlier ones stay for the accuracy
mart, and a backfill of past as-of dates builds the history of vintages that accuracy is measured
on. A forecast uses the latest model selection made on or before its as-of date, never a later one.

They read ``marts.fct_item_daily_demand`` and write ``forecast.*`` in short transactions and do the
fitting in between, so they hold no warehouse lock (and no slot of the warehouse pool) while they
compute; a lock met on the way in or out is transient and retried.
"""


import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg
import pyarrow as pa

from analytics_pipeline.defs.forecasting.horizon import CV_WINDOWS, HISTORY_DAYS, HORIZON
from analytics_pipeline.defs.operations.log_context import get_logger
from analytics_pipeline.executors import FORECASTING_QUEUE, on_queue
from analytics_pipeline.lazy import LazyModule
from analytics_pipeline.metadata import markdown_table
from analytics_pipeline.partitions import daily_partitions
from analytics_pipeline.resources.policies import WAREHOUSE_RETRY_POLICY, failures_are_final
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
    """Parallel workers for model fitting (one per core is right on a laptop)."""

    n_jobs: int = 2


def _client(warehouse: WarehouseResource) -> Warehouse:
    client = warehouse.get_client()
    with failures_are_final("Preparing the forecast tables"):
        client.ensure_ready(FORECAST_TABLES)
    return client


def _read_demand(client: Warehouse, as_of: date) -> "pd.DataFrame":
    """A year of daily demand up to ``as_of``; fails clearly when that day is not loaded yet."""
    if not client.table_exists("marts.fct_item_daily_demand"):
        raise dg.Failure(
            description="marts.fct_item_daily_demand does not exist yet: load demand first "
            "(`analytics-pipeline backfill --days N`, or the daily_pipeline job).",
            allow_retries=False,
        )
    start = as_of - timedelta(days=HISTORY_DAYS - 1)
    demand = client.query(
        "select item_id, demand_date, units from marts.fct_item_daily_demand "
        "where demand_date between ? and ?",
        (start, as_of),
    ).to_pandas()
    if demand.empty or not (pd.to_datetime(demand["demand_date"]) == pd.Timestamp(as_of)).any():
        raise dg.Failure(
            description=f"No demand for {as_of} in marts.fct_item_daily_demand: a forecast as of that day "
            f"needs it. Run the daily pipeline for {as_of} first.",
            allow_retries=False,
        )
    return demand


SELECTION_COLUMNS = ["item_id", "evaluated_at", "model", "mase", "selected", "model_spec"]


def _selections_as_of(client: Warehouse, as_of: date) -> "pd.DataFrame":
    """Each item's selected model and scores from its latest selection on or before ``as_of``."""
    frame = client.query(
        """
        with latest as (
            select item_id, max(evaluated_at) as evaluated_at
            from forecast.model_evaluations
            where evaluated_at <= ?
            group by item_id
        )
        select evaluations.item_id, evaluations.evaluated_at, evaluations.model, evaluations.mase,
               evaluations.selected, evaluations.model_spec
        from forecast.model_evaluations as evaluations
        inner join latest
            on evaluations.item_id = latest.item_id and evaluations.evaluated_at = latest.evaluated_at
        """,
        (as_of,),
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
    from analytics_pipeline.defs.forecasting import models  # statsforecast: loaded on first use

    counts = models_used.value_counts().rename_axis("model").reset_index(name="items")
    counts["family"] = counts["model"].map(models.FAMILIES)
    table = counts[["model", "family", "items"]]
    return dg.MetadataValue.md(markdown_table(list(table.columns), table.itertuples(index=False)))


def _mase_vs_naive(scores: "pd.DataFrame") -> dict[str, Any]:
    """Mean cross-validated MASE of the selected models vs seasonal naive on the same items."""
    from analytics_pipeline.defs.forecasting import models  # statsforecast: loaded on first use

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


def _evaluate(client: Warehouse, as_of: date, n_jobs: int) -> dict[str, Any]:
    """Select a model per item on the year up to ``as_of``; replace that as-of date's evaluations."""
    from analytics_pipeline.defs.forecasting import models  # statsforecast: loaded on first use

    started = time.perf_counter()
    series = models.prepare_series(_read_demand(client, as_of), pd.Timestamp(as_of))
    selection = models.select_models(series, n_jobs=n_jobs)
    rows = selection.scores.assign(
        evaluated_at=as_of,
        windows=CV_WINDOWS,
        horizon_days=HORIZON,
        created_at=pd.Timestamp.now(tz="UTC").tz_localize(None),
    )
    table = pa.Table.from_pandas(rows[MODEL_EVALUATIONS_TABLE.column_names], preserve_index=False)
    client.replace_rows([(MODEL_EVALUATIONS_TABLE, {"evaluated_at": as_of}, table)])
    chosen = selection.scores[selection.scores["selected"]]
    return {
        "as_of_date": as_of.isoformat(),
        "items_evaluated": int(chosen["item_id"].nunique()),
        "items_skipped": len(selection.skipped),
        "skipped": _named(selection.skipped),
        "model_mix": _model_mix(chosen["model"]),
        **_mase_vs_naive(selection.scores),
        "rows": len(rows),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _forecast(client: Warehouse, as_of: date, n_jobs: int) -> dict[str, Any]:
    """Forecast every item as of ``as_of`` with its selected model; replace that vintage."""
    from analytics_pipeline.defs.forecasting import models  # statsforecast: loaded on first use

    started = time.perf_counter()
    series = models.prepare_series(_read_demand(client, as_of), pd.Timestamp(as_of))
    evaluations = _selections_as_of(client, as_of)
    selected = evaluations[evaluations["selected"].astype(bool)]
    choices = {
        item: models.Choice(model, spec if isinstance(spec, str) else None)
        for item, model, spec in zip(selected["item_id"], selected["model"], selected["model_spec"], strict=True)
    }
    result = models.forecast(series, choices, n_jobs=n_jobs)
    rows = result.forecasts.assign(
        as_of_date=as_of,
        forecast_date=result.forecasts["forecast_date"].dt.date,
        horizon_days=(result.forecasts["forecast_date"] - pd.Timestamp(as_of)).dt.days,
        fallback_reason=result.forecasts["item_id"].map(result.fallbacks),
        created_at=pd.Timestamp.now(tz="UTC").tz_localize(None),
    )
    table = pa.Table.from_pandas(rows[DEMAND_FORECASTS_TABLE.column_names], preserve_index=False)
    client.replace_rows([(DEMAND_FORECASTS_TABLE, {"as_of_date": as_of}, table)])
    forecast_items = rows.drop_duplicates("item_id")
    return {
        "as_of_date": as_of.isoformat(),
        "items_forecast": len(forecast_items),
        "rows": len(rows),
        "model_mix": _model_mix(forecast_items["model"]),
        "fallbacks": len(result.fallbacks),
        "fallback_items": _named(result.fallbacks),
        "selection_used": str(evaluations["evaluated_at"].max()) if not evaluations.empty else "none yet",
        **_mase_vs_naive(evaluations[evaluations["item_id"].isin(selected["item_id"])]),
        "forecast_units_next_7_days": round(float(rows.loc[rows["horizon_days"] <= 7, "yhat"].sum()), 1),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _for_each_as_of_date(
    context: dg.AssetExecutionContext, key: dg.AssetKey, step: Callable[[date], dict[str, Any]]
) -> dg.MaterializeResult:
    """Run ``step`` for every as-of date of the run; with several, each gets its own observation."""
    metadata: dict[str, Any] = {}
    for partition_key in context.partition_keys:
        with failures_are_final(f"{key.to_user_string()} as of {partition_key}"):
            metadata = step(date.fromisoformat(partition_key))
        log.info(f"{key.to_user_string()} as of {partition_key}: "
                         + ", ".join(f"{k} {v}" for k, v in metadata.items() if isinstance(v, int | float | str)))  # fmt: skip
        if len(context.partition_keys) > 1:
            context.log_event(dg.AssetObservation(asset_key=key, partition=partition_key, metadata=metadata))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=MODEL_EVALUATIONS,
    group_name="forecasting",
    partitions_def=daily_partitions,
    deps=[dg.AssetDep(ITEM_DEMAND, partition_mapping=_HISTORY)],
    # a backfill of many as-of dates is one run, as for the vintages: the dates are evaluated in turn
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=WAREHOUSE_RETRY_POLICY,
    op_tags=on_queue(FORECASTING_QUEUE),
    kinds={"python", "statsforecast"},
    description="Weekly model selection: rolling-origin cross-validation of the candidate models per item "
    "(MASE, sMAPE, RMSE); the best is `selected`. Partition = as-of date (last day of demand used).",
)
def model_evaluations(
    context: dg.AssetExecutionContext, config: ForecastConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    client = _client(warehouse)
    return _for_each_as_of_date(context, MODEL_EVALUATIONS, lambda as_of: _evaluate(client, as_of, config.n_jobs))


@dg.asset(
    key=DEMAND_FORECASTS,
    group_name="forecasting",
    partitions_def=daily_partitions,
    deps=[
        dg.AssetDep(ITEM_DEMAND, partition_mapping=_HISTORY),
        dg.AssetDep(MODEL_EVALUATIONS, partition_mapping=_LAST_WEEK),
    ],
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=WAREHOUSE_RETRY_POLICY,
    op_tags=on_queue(FORECASTING_QUEUE),
    kinds={"python", "statsforecast"},
    description=f"Per-item demand forecast, {HORIZON} days ahead with 80% and 95% intervals, from each item's "
    "selected model (a named fallback otherwise). Partition = as-of date = vintage; earlier vintages are kept.",
)
def demand_forecasts(
    context: dg.AssetExecutionContext, config: ForecastConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    client = _client(warehouse)
    return _for_each_as_of_date(context, DEMAND_FORECASTS, lambda as_of: _forecast(client, as_of, config.n_jobs))


forecasting_assets = [model_evaluations, demand_forecasts]
