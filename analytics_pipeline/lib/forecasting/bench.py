"""Forecasting benchmark: speed and held-out accuracy on generated demand (``bench/`` calls :func:`run`).

Demand comes from ``analytics-pipeline generate``'s own order lines (completed units per item and
day, zero-filled for active items), read straight from the landing files: the benchmark measures the
models, not the loading. The last ``HORIZON`` days are held out: selection and forecast see the
history up to the day before, and their forecasts are scored on the held-out days against the
seasonal-naive forecast of the same items.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from analytics_pipeline.lib.forecasting import models
from analytics_pipeline.lib.sample_data import generate

# The held-out weeks fall in term time (mid-October to mid-November), not in the summer lull.
END = date(2025, 11, 16)


def generated_demand(landing: Path, start: date, end: date) -> pd.DataFrame:
    """Completed units per (item, day) for every active item and day, zeros included."""
    connection = duckdb.connect()
    lines = landing / "order_lines" / "date=*" / "*.csv"
    items = landing / "items" / "*.parquet"
    return connection.execute(
        f"""
        with lines as (
            select item_id, try_cast(ordered_at as timestamptz) as ordered_at, try_cast(quantity as integer) as quantity
            from read_csv('{lines}', all_varchar = true, union_by_name = true)
            where status = 'completed'
        ),
        demand as (
            select item_id, cast(ordered_at at time zone 'UTC' as date) as demand_date, sum(quantity) as units
            from lines where ordered_at is not null and quantity > 0 group by all
        ),
        grid as (
            select item_id, cast(day as date) as demand_date
            from read_parquet('{items}') as items
            cross join range(date '{start}', date '{end}' + interval 1 day, interval 1 day) as days(day)
            where items.active
        )
        select grid.item_id, grid.demand_date, coalesce(demand.units, 0) as units
        from grid left join demand using (item_id, demand_date)
        order by 1, 2
        """
    ).df()


def _mase(actual: pd.DataFrame, forecast: pd.DataFrame, scale: pd.Series) -> pd.Series:
    joined = forecast.merge(actual, on=["unique_id", "ds"])
    mae = (joined["yhat"] - joined["y"]).abs().groupby(joined["unique_id"]).mean()
    return (mae / scale).replace([np.inf, -np.inf], np.nan).dropna()


def _coverage(actual: pd.DataFrame, forecast: pd.DataFrame, level: int) -> float:
    joined = forecast.merge(actual, on=["unique_id", "ds"])
    inside = (joined["y"] >= joined[f"yhat_lo_{level}"] - 1e-9) & (joined["y"] <= joined[f"yhat_hi_{level}"] + 1e-9)
    return float(inside.mean())


def run(items: int = 1000, days: int = 730, repeat: int = 3, n_jobs: int = 2) -> dict[str, float | str]:
    """Figures for the results file: selection and forecast seconds, accuracy against seasonal naive."""
    start = END - timedelta(days=days - 1)
    with tempfile.TemporaryDirectory(prefix="forecast-bench-") as folder:
        landing = Path(folder)
        generate(
            landing,
            start,
            END,
            events_per_day=1_000,
            orgs=max(12, items),
            users=items * 20,
            items=items,
            seed=11,
            bad_rate=0.0,
        )
        demand = generated_demand(landing, start, END)
    as_of = pd.Timestamp(END - timedelta(days=models.HORIZON))
    history = models.prepare_series(demand, as_of)
    held_out = demand.rename(columns={"item_id": "unique_id", "demand_date": "ds", "units": "y"})
    held_out = held_out.assign(ds=pd.to_datetime(held_out["ds"]), y=held_out["y"].astype(float))
    held_out = held_out[held_out["ds"] > as_of]

    started = time.perf_counter()
    selection = models.select_models(history, n_jobs=n_jobs)
    selection_seconds = time.perf_counter() - started

    forecast_seconds = []
    for _ in range(max(repeat, 1)):
        started = time.perf_counter()
        result = models.forecast(history, selection.selected, n_jobs=n_jobs)
        forecast_seconds.append(time.perf_counter() - started)
    selected = result.forecasts.rename(columns={"item_id": "unique_id", "forecast_date": "ds"})
    naive = models.forecast(
        history, {item: models.SEASONAL_NAIVE for item in history["unique_id"].unique()}, n_jobs=n_jobs
    )
    naive_frame = naive.forecasts.rename(columns={"item_id": "unique_id", "forecast_date": "ds"})

    # MASE scale: in-sample seasonal-naive error of each item's history (items with a flat history,
    # whose scale is zero, are left out of both means).
    lagged = history.groupby("unique_id")["y"].diff(models.SEASON).abs()
    scale = lagged.groupby(history["unique_id"]).mean()
    mase_selected, mase_naive = _mase(held_out, selected, scale), _mase(held_out, naive_frame, scale)
    common = mase_selected.index.intersection(mase_naive.index)
    mean_selected, mean_naive = float(mase_selected[common].mean()), float(mase_naive[common].mean())
    mix = result.forecasts.drop_duplicates("item_id")["model"].value_counts()
    classes = models.demand_classes(history).value_counts()
    return {
        "items": items,
        "history_days": days,
        "items_forecast": int(result.forecasts["item_id"].nunique()),
        "smooth_items": int(classes.get("smooth", 0)),
        "intermittent_items": int(classes.get("intermittent", 0)),
        "fallbacks": len(result.fallbacks),
        "model_mix": ", ".join(f"{model} {count}" for model, count in mix.items()),
        "selection_seconds": round(selection_seconds, 1),
        "forecast_seconds": round(statistics.median(forecast_seconds), 1),
        "held_out_days": models.HORIZON,
        "mean_mase_selected": round(mean_selected, 4),
        "mean_mase_seasonal_naive": round(mean_naive, 4),
        "mase_improvement_vs_naive_pct": round(100 * (1 - mean_selected / mean_naive), 1),
        "coverage_80": round(_coverage(held_out, selected, 80), 3),
        "coverage_95": round(_coverage(held_out, selected, 95), 3),
    }


if __name__ == "__main__":
    import sys

    arguments = [int(a) for a in sys.argv[1:]]
    for name, value in run(*arguments).items():
        print(f"{name:32} {value}")
