"""Demand forecasting: model selection on series of known structure, intervals, fallbacks, vintages,
and the accuracy and reorder marts on hand-computed inputs.

A few short series keep these fast; the 1,000-item figures (speed, accuracy against seasonal naive,
interval coverage) are measured in ``bench/``.
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import pipeline_resources, run_pipeline, run_unpartitioned
from test_commerce_kpis import D1, D2, D3, D4, D5, write_history

from analytics_pipeline.defs.forecasting.assets import (
    DEMAND_FORECASTS_TABLE,
    FORECAST_TABLES,
    demand_forecasts,
    model_evaluations,
)
from analytics_pipeline.lib.forecasting import models
from analytics_pipeline.resources.warehouse import Warehouse
from analytics_pipeline.settings import get_settings

WEEK = np.array([10.0, 14.0, 15.0, 13.0, 12.0, 3.0, 2.0])


def _frame(item: str, values: np.ndarray, end: str = "2025-06-30") -> pd.DataFrame:
    dates = pd.date_range(end=end, periods=len(values), freq="D")
    return pd.DataFrame({"unique_id": item, "ds": dates, "y": np.asarray(values, dtype=float)})


def _structured_series(days: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    t = np.arange(days)
    return pd.concat(
        [
            _frame("weekly", np.tile(WEEK, days // 7 + 1)[:days]),
            _frame("trend", 5 + 0.4 * t + rng.normal(0, 1, days)),
            _frame("intermittent", (rng.random(days) < 0.12) * rng.poisson(4, days)),
            _frame("noisy_weekly", np.clip(np.tile(WEEK, days // 7 + 1)[:days] + rng.normal(0, 2, days), 0, None)),
        ],
        ignore_index=True,
    )


# -- selection --------------------------------------------------------------------------------------


def test_selection_picks_the_family_of_the_structure() -> None:
    selection = models.select_models(_structured_series(), n_jobs=1)
    scores = selection.scores.set_index(["item_id", "model"])
    chosen = {item: choice.model for item, choice in selection.selected.items()}

    # A pure weekly pattern is repeated exactly by seasonal naive (zero error, and the simplest).
    assert chosen["weekly"] == "SeasonalNaive"
    assert scores.loc[("weekly", "SeasonalNaive"), "rmse"] == pytest.approx(0, abs=1e-9)
    # A linear trend goes to a model with a trend term, far ahead of seasonal naive (a week behind).
    assert models.FAMILIES[chosen["trend"]] in {"trend", "arima", "smoothing"}
    assert scores.loc[("trend", chosen["trend"]), "mase"] < 0.5 * scores.loc[("trend", "SeasonalNaive"), "mase"]
    # Sparse demand is classed intermittent and goes to a Croston-type model; ARIMA never runs on it.
    assert models.FAMILIES[chosen["intermittent"]] == "intermittent"
    assert "AutoARIMA" not in set(selection.scores.loc[selection.scores["item_id"] == "intermittent", "model"])
    # One selected model per item, every item scored against the seasonal-naive benchmark.
    assert selection.scores.groupby("item_id")["selected"].sum().eq(1).all()
    assert set(selection.scores.loc[selection.scores["model"] == "SeasonalNaive", "item_id"]) == set(chosen)
    assert selection.skipped == {}
    # Automatic models keep the structure they found, so the forecast only re-estimates it.
    for choice in selection.selected.values():
        if choice.model in ("AutoETS", "AutoARIMA"):
            assert json.loads(choice.spec)


def test_short_and_zero_series_are_skipped_by_selection_with_reasons() -> None:
    series = pd.concat([_frame("short", np.full(30, 3.0)), _frame("zero", np.zeros(200))], ignore_index=True)
    selection = models.select_models(series, n_jobs=1)
    assert selection.scores.empty and selection.selected == {}
    assert "30 days of history" in selection.skipped["short"]
    assert "no demand" in selection.skipped["zero"]


def test_prepare_series_fills_gaps_with_zero_from_each_items_first_day() -> None:
    demand = pd.DataFrame(
        {
            "item_id": ["a", "a", "b"],
            "demand_date": [date(2025, 3, 1), date(2025, 3, 4), date(2025, 3, 3)],
            "units": [2, 5, 1],
        }
    )
    series = models.prepare_series(demand, pd.Timestamp("2025-03-05"))
    a = series[series["unique_id"] == "a"]
    assert a["y"].tolist() == [2.0, 0.0, 0.0, 5.0, 0.0]
    assert series[series["unique_id"] == "b"]["y"].tolist() == [1.0, 0.0, 0.0]


# -- forecast ---------------------------------------------------------------------------------------


def test_intervals_contain_the_forecast_and_widen_with_the_horizon() -> None:
    series = _structured_series()
    selection = models.select_models(series, n_jobs=1)
    result = models.forecast(series, selection.selected, n_jobs=1)
    frame = result.forecasts
    assert len(frame) == 4 * models.HORIZON
    assert (frame["yhat_lo_95"] <= frame["yhat_lo_80"] + 1e-9).all()
    assert (frame["yhat_lo_80"] <= frame["yhat"] + 1e-9).all()
    assert (frame["yhat"] <= frame["yhat_hi_80"] + 1e-9).all()
    assert (frame["yhat_hi_80"] <= frame["yhat_hi_95"] + 1e-9).all()
    assert (frame[["yhat", "yhat_lo_80", "yhat_lo_95"]] >= 0).all().all()
    # Uncertainty never shrinks further ahead: the width (after the zero floor) grows or stays.
    for item, rows in frame.groupby("item_id"):
        for level in (80, 95):
            width = (rows[f"yhat_hi_{level}"] - rows[f"yhat_lo_{level}"]).to_numpy()
            assert (np.diff(width) >= -1e-9).all(), (item, level)
    # A noisy series has real uncertainty, and more of it four weeks out than tomorrow.
    noisy = frame[frame["item_id"] == "trend"]
    assert (
        noisy["yhat_hi_95"].iloc[-1] - noisy["yhat_lo_95"].iloc[-1]
        > noisy["yhat_hi_95"].iloc[0] - noisy["yhat_lo_95"].iloc[0]
    )
    # The forecast starts the day after the last observation and runs HORIZON days.
    assert frame["forecast_date"].min() == pd.Timestamp("2025-07-01")
    assert frame["forecast_date"].max() == pd.Timestamp("2025-07-01") + pd.Timedelta(days=models.HORIZON - 1)


def test_an_interval_cut_by_the_zero_floor_still_never_narrows() -> None:
    """Two days of one item whose intervals dip below zero: day 2's centre is lower, so clipping at
    zero cuts more of it, and before the fix its 95% width fell from 12 to 10.5."""
    frame = pd.DataFrame(
        {
            "item_id": ["a", "a"],
            "forecast_date": pd.to_datetime(["2025-07-01", "2025-07-02"]),
            "model": "AutoETS",
            "yhat": [2.0, 0.5],
            "yhat_lo_80": [-3.0, -4.0],
            "yhat_hi_80": [7.0, 5.0],  # half-widths 5 and 4.5
            "yhat_lo_95": [-8.0, -9.5],
            "yhat_hi_95": [12.0, 10.5],  # half-widths 10 and 10
        }
    )
    tidy = models._tidy_intervals(frame)
    # day 1: 80% [2-5, 2+5] -> [0, 7]; 95% [2-10, 2+10] -> [0, 12]
    # day 2: half-widths grow to 5 and 10 -> 80% [0, 5.5], 95% [0, 10.5]; widths 5.5 < 7 and 10.5 < 12,
    # so the upper bounds take up the rest: 80% [0, 7], 95% [0, 12]
    columns = ["yhat", "yhat_lo_80", "yhat_hi_80", "yhat_lo_95", "yhat_hi_95"]
    assert tidy[columns].to_numpy().tolist() == [[2.0, 0.0, 7.0, 0.0, 12.0], [0.5, 0.0, 7.0, 0.0, 12.0]]


def test_fallbacks_for_new_short_zero_and_unknown_models_are_named() -> None:
    series = pd.concat(
        [
            _frame("unselected", np.tile(WEEK, 20)),
            _frame("short", np.array([2.0, 4.0, 6.0])),
            _frame("zero", np.zeros(120)),
            _frame("retired", np.tile(WEEK, 20)),
            _frame("kept", np.tile(WEEK, 20)),
        ],
        ignore_index=True,
    )
    series = pd.concat([series, _frame("broken", np.tile(WEEK, 20))], ignore_index=True)
    choices = {
        "retired": models.Choice("ProphetXL"),
        "kept": models.Choice("SeasonalNaive"),
        "broken": models.Choice("AutoARIMA", '{"order": [1, 0'),
    }
    result = models.forecast(series, choices, n_jobs=1)
    by_item = result.forecasts.groupby("item_id")
    assert set(result.fallbacks) == {"unselected", "short", "zero", "retired", "broken"}
    # one series whose model fails gets seasonal naive and a reason; the others are unaffected
    assert result.fallbacks["broken"].startswith("AutoARIMA failed")
    assert "no model selected" in result.fallbacks["unselected"]
    assert "3 days" in result.fallbacks["short"]
    assert "no demand" in result.fallbacks["zero"]
    assert "ProphetXL" in result.fallbacks["retired"]
    assert by_item["model"].first().to_dict() == {
        "unselected": "SeasonalNaive",
        "short": "HistoricAverage",
        "zero": "ZeroDemand",
        "retired": "SeasonalNaive",
        "kept": "SeasonalNaive",
        "broken": "SeasonalNaive",
    }
    # the mean of 2, 4, 6; nothing for an item that never sold; next week repeats the last for the pattern
    assert by_item.get_group("short")["yhat"].tolist() == pytest.approx([4.0] * models.HORIZON)
    assert (by_item.get_group("zero")[["yhat", "yhat_hi_95"]] == 0).all().all()
    assert by_item.get_group("kept")["yhat"].tolist()[:7] == pytest.approx(WEEK.tolist())


# -- the assets on each warehouse ------------------------------------------------------------------

AS_OF = date(2025, 6, 30)


def _seed_demand(warehouse: Warehouse, last_day: date, days: int = 150, bump: float = 0.0) -> None:
    """``marts.fct_item_daily_demand`` (the forecasting input contract) with four known items."""
    rng = np.random.default_rng(3)
    rows = []
    for offset in range(days):
        day = last_day - timedelta(days=days - 1 - offset)
        rows.append(("weekly", day, int(WEEK[day.weekday()] + bump)))
        rows.append(("trend", day, int(5 + 0.4 * offset + rng.normal(0, 1))))
        rows.append(("zero", day, 0))
        if offset >= days - 10:
            rows.append(("new", day, 3))
    frame = pa.table(
        {
            "item_id": [r[0] for r in rows],
            "demand_date": [r[1] for r in rows],
            "units": [r[2] for r in rows],
        }
    )
    with warehouse.transaction() as session:
        session.execute("create schema if not exists marts")
        session.execute(
            "create table if not exists marts.fct_item_daily_demand (demand_date date, item_id varchar, units bigint)"
        )
        session.execute("delete from marts.fct_item_daily_demand")
        session.insert_arrow("marts.fct_item_daily_demand", frame)


def _materialize(
    asset: dg.AssetsDefinition, as_of: date, raise_on_error: bool = True, items_per_step: int | None = None
) -> dg.ExecuteInProcessResult:
    config = {} if items_per_step is None else {"items_per_step": items_per_step, "n_jobs": 1}
    return dg.materialize(
        [asset],
        partition_key=as_of.isoformat(),
        resources=pipeline_resources(),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
        run_config={"ops": {asset.node_def.name: {"config": config}}} if config else None,
    )


def _vintages(warehouse: Warehouse) -> dict[str, int]:
    rows = warehouse.query(
        "select as_of_date, count(*) as n from forecast.demand_forecasts group by as_of_date order by 1"
    ).to_pylist()
    return {str(r["as_of_date"]): r["n"] for r in rows}


def test_selection_and_forecast_assets_write_vintages(warehouse: Warehouse) -> None:
    _seed_demand(warehouse, AS_OF + timedelta(days=1))

    # Before any selection: every item gets a named fallback.
    early = _materialize(demand_forecasts, AS_OF - timedelta(days=1))
    metadata = early.asset_materializations_for_node("forecast__demand_forecasts")[0].metadata
    assert metadata["fallbacks"].value == 4 and metadata["selection_used"].value == "none yet"

    selection = _materialize(model_evaluations, AS_OF)
    evaluation_meta = selection.asset_materializations_for_node("forecast__model_evaluations")[0].metadata
    assert evaluation_meta["items_evaluated"].value == 2  # weekly, trend; zero and new are skipped
    assert evaluation_meta["items_skipped"].value == 2
    assert "mean_mase_seasonal_naive" in evaluation_meta
    chosen = warehouse.query(
        "select item_id, model from forecast.model_evaluations where selected order by item_id"
    ).to_pylist()
    assert [row["item_id"] for row in chosen] == ["trend", "weekly"]
    assert chosen[1]["model"] == "SeasonalNaive"

    _materialize(demand_forecasts, AS_OF)
    _materialize(demand_forecasts, AS_OF + timedelta(days=1))
    assert _vintages(warehouse) == {
        str(AS_OF - timedelta(days=1)): 4 * 28,
        str(AS_OF): 4 * 28,
        str(AS_OF + timedelta(days=1)): 4 * 28,
    }
    forecasts = warehouse.query(
        "select item_id, model, fallback_reason, min(horizon_days) as h1, max(horizon_days) as h28 "
        "from forecast.demand_forecasts where as_of_date = ? group by item_id, model, fallback_reason order by item_id",
        (AS_OF,),
    ).to_pylist()
    by_item = {row["item_id"]: row for row in forecasts}
    assert by_item["weekly"]["model"] == "SeasonalNaive" and by_item["weekly"]["fallback_reason"] is None
    assert by_item["zero"]["model"] == "ZeroDemand" and "no demand" in by_item["zero"]["fallback_reason"]
    assert by_item["new"]["model"] == "HistoricAverage"
    assert (by_item["trend"]["h1"], by_item["trend"]["h28"]) == (1, 28)

    # Re-running one as-of date replaces that vintage only.
    before = warehouse.query(
        "select item_id, forecast_date, yhat from forecast.demand_forecasts where as_of_date = ? order by 1, 2",
        (AS_OF + timedelta(days=1),),
    ).to_pylist()
    _seed_demand(warehouse, AS_OF + timedelta(days=1), bump=100)
    _materialize(demand_forecasts, AS_OF)
    assert _vintages(warehouse)[str(AS_OF)] == 4 * 28
    weekly_yhat = warehouse.scalar(
        "select min(yhat) from forecast.demand_forecasts where as_of_date = ? and item_id = 'weekly'", (AS_OF,)
    )
    assert weekly_yhat >= 100
    after = warehouse.query(
        "select item_id, forecast_date, yhat from forecast.demand_forecasts where as_of_date = ? order by 1, 2",
        (AS_OF + timedelta(days=1),),
    ).to_pylist()
    assert after == before


def _steps(result: dg.ExecuteInProcessResult, op: str) -> list[str]:
    return sorted(
        e.step_key for e in result.all_events if e.is_step_success and e.step_key.split(".")[-1].startswith(op)
    )


def test_items_fan_out_into_steps_that_write_what_one_step_writes(warehouse: Warehouse) -> None:
    """One step per range of items (Celery workers share them): the same selections and forecasts
    as one step over every item, and each vintage written once, whole."""
    _seed_demand(warehouse, AS_OF)
    scores = "select item_id, model, mase, rmse, selected, model_spec from forecast.model_evaluations order by 1, 2"
    forecasts = "select item_id, forecast_date, model, yhat, yhat_lo_95, yhat_hi_95 from forecast.demand_forecasts order by 1, 2"

    one = _materialize(model_evaluations, AS_OF)
    assert _steps(one, "evaluate_items") == ["forecast__model_evaluations.evaluate_items[20250630_0]"]
    _materialize(demand_forecasts, AS_OF)
    whole = warehouse.query(scores).to_pylist(), warehouse.query(forecasts).to_pylist()

    fanned = _materialize(model_evaluations, AS_OF, items_per_step=1)
    # four items with demand, one step each, in the warehouse's order of item ids
    assert _steps(fanned, "evaluate_items") == [
        f"forecast__model_evaluations.evaluate_items[20250630_{i}]" for i in range(4)
    ]
    metadata = fanned.asset_materializations_for_node("forecast__model_evaluations")[0].metadata
    assert metadata["item_steps"].value == 4 and metadata["items_evaluated"].value == 2
    forecast_run = _materialize(demand_forecasts, AS_OF, items_per_step=3)
    assert len(_steps(forecast_run, "forecast_items")) == 2
    assert (warehouse.query(scores).to_pylist(), warehouse.query(forecasts).to_pylist()) == whole
    assert (
        warehouse.scalar("select count(distinct item_id) from forecast.demand_forecasts where as_of_date = ?", (AS_OF,))
        == 4
    )


def test_a_forecast_without_its_days_demand_fails_clearly_and_keeps_vintages(warehouse: Warehouse) -> None:
    _seed_demand(warehouse, AS_OF)
    _materialize(demand_forecasts, AS_OF)
    result = _materialize(demand_forecasts, AS_OF + timedelta(days=3), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"No demand for {AS_OF + timedelta(days=3)}" in failure.step_failure_data.error.message
    assert _vintages(warehouse) == {str(AS_OF): 4 * 28}


# -- accuracy and reorder marts on hand-computed inputs --------------------------------------------


def _forecast_rows(
    as_of: date, item: str, model: str, days: list[tuple[int, float, float, float, float, float]]
) -> list[dict]:
    """(horizon, yhat, lo80, hi80, lo95, hi95) -> demand_forecasts rows."""
    return [
        {
            "item_id": item,
            "as_of_date": as_of,
            "forecast_date": as_of + timedelta(days=h),
            "horizon_days": h,
            "model": model,
            "yhat": y,
            "yhat_lo_80": lo80,
            "yhat_hi_80": hi80,
            "yhat_lo_95": lo95,
            "yhat_hi_95": hi95,
            "fallback_reason": None,
            "created_at": None,
        }
        for h, y, lo80, hi80, lo95, hi95 in days
    ]


def _flat(as_of: date, item: str, yhat: float, sigma: float) -> list[dict]:
    """28 days of a constant forecast whose 95% interval is ± 1.96 sigma."""
    return _forecast_rows(
        as_of,
        item,
        "AutoETS",
        [(h, yhat, yhat, yhat, max(yhat - 1.96 * sigma, 0), yhat + 1.96 * sigma) for h in range(1, 29)],
    )


def _write_forecasts(warehouse: Warehouse, rows: list[dict]) -> None:
    warehouse.ensure_ready(FORECAST_TABLES)
    table = pa.Table.from_pylist(rows).select(DEMAND_FORECASTS_TABLE.column_names)
    table = table.set_column(
        table.schema.get_field_index("created_at"), "created_at", pa.array([None] * len(rows), pa.timestamp("us"))
    )
    table = table.set_column(
        table.schema.get_field_index("fallback_reason"), "fallback_reason", pa.array([None] * len(rows), pa.string())
    )
    with warehouse.transaction() as session:
        session.insert_arrow("forecast.demand_forecasts", table)


FORECAST_MARTS = dg.AssetSelection.assets(["marts", "fct_forecast_accuracy"], ["marts", "mart_reorder_recommendations"])


def test_accuracy_and_reorder_marts_by_hand(warehouse: Warehouse, landing, monkeypatch: pytest.MonkeyPatch) -> None:
    # Completed demand (see test_commerce_kpis): I1 D1 10, D2 0, D3 0, D4 5, D5 3; I2 D1 2, D2 3, D3 0, D4 1, D5 4.
    # Stock: D3 (the last snapshot on or before D4) I1 26, I2 0, I3 5, nothing on order.
    write_history(landing)
    assert run_unpartitioned(dg.AssetSelection.assets(["raw", "items"])).success
    assert run_pipeline(D1, D5).success
    monkeypatch.setenv("ANALYTICS_REORDER_LEAD_TIME_DAYS", "3")

    v0, v1, v2 = D1 - timedelta(days=8), D2, D4
    rows = (
        # v0 (as of Dec 29): I1 on D1 (8 days ahead), exact
        _forecast_rows(v0, "I1", "SeasonalNaive", [(8, 10, 9, 11, 8, 12)])
        # v1 (as of D2): I1 on D3, D4, D5: forecasts 1, 4, 4 against actuals 0, 5, 3
        + _forecast_rows(v1, "I1", "SeasonalNaive", [(1, 1, 0, 2, 0, 3), (2, 4, 3, 6, 2, 8), (3, 4, 3.5, 4.5, 1, 5)])
        # v2 (as of D4), the latest vintage: I1 2/day sigma 1, I2 3/day sigma 2, I3 nothing,
        # I4 1/day although it was never in a snapshot
        + _flat(v2, "I1", 2, 1)
        + _flat(v2, "I2", 3, 2)
        + _flat(v2, "I3", 0, 0)
        + _flat(v2, "I4", 1, 0)
    )
    _write_forecasts(warehouse, rows)
    assert run_unpartitioned(FORECAST_MARTS).success

    accuracy = {
        (r["item_id"], r["model"], r["horizon_bucket"]): r
        for r in warehouse.query("select * from marts.fct_forecast_accuracy").to_pylist()
    }
    # I1 by seasonal naive, 1-7 days: errors +1, -1, +1
    near = accuracy[("I1", "SeasonalNaive", "01-07")]
    assert (near["forecasts"], near["vintages"]) == (3, 1)
    assert near["mae"] == pytest.approx(1.0)
    assert near["rmse"] == pytest.approx(1.0)
    assert near["bias"] == pytest.approx(1 / 3)
    assert near["wape"] == pytest.approx(3 / 8)
    assert near["smape"] == pytest.approx((1 / 1 + 1 / 9 + 1 / 7) / 3)
    assert near["coverage_80"] == pytest.approx(2 / 3)  # 3 is outside [3.5, 4.5]
    assert near["coverage_95"] == pytest.approx(1.0)
    # the 8-days-ahead forecast of v0 was exact
    far = accuracy[("I1", "SeasonalNaive", "08-14")]
    assert (far["forecasts"], far["mae"], far["coverage_80"]) == (1, 0, 1)
    # v2 scores only D5 (1 day ahead): I1 2 vs 3, I2 3 vs 4, I3 0 vs 0
    assert accuracy[("I1", "AutoETS", "01-07")]["bias"] == pytest.approx(-1)
    assert accuracy[("I2", "AutoETS", "01-07")]["mae"] == pytest.approx(1)
    assert accuracy[("I3", "AutoETS", "01-07")]["smape"] == pytest.approx(0)
    assert set(accuracy) == {
        ("I1", "SeasonalNaive", "01-07"),
        ("I1", "SeasonalNaive", "08-14"),
        ("I1", "AutoETS", "01-07"),
        ("I2", "AutoETS", "01-07"),
        ("I3", "AutoETS", "01-07"),
    }

    reorder = {r["item_id"]: r for r in warehouse.query("select * from marts.mart_reorder_recommendations").to_pylist()}
    assert set(reorder) == {"I1", "I2", "I3", "I4"}
    i1, i2, i3 = reorder["I1"], reorder["I2"], reorder["I3"]
    assert (i1["as_of_date"], i1["stock_date"], i1["lead_time_days"]) == (D4, D3, 3)
    assert i1["stock_status"] == "stale"  # D4 has no snapshot: the D3 one is used, and flagged
    # I1: 26 on hand, 2/day: 6 over 3 days, safety 1.645 * sqrt(3 * 1^2); cover 13 days; out on day 14
    assert (i1["on_hand"], i1["forecast_demand_lead_time"]) == (26, pytest.approx(6))
    assert i1["safety_stock"] == pytest.approx(1.645 * math.sqrt(3), rel=1e-6)
    assert i1["days_of_cover"] == pytest.approx(13)
    assert i1["projected_stockout_date"] == D4 + timedelta(days=14)
    assert (i1["suggested_reorder_qty"], i1["reorder_now"]) == (0, False)
    # I2: out of stock, 3/day: 9 + 1.645 * sqrt(3 * 2^2) = 14.70 -> order 15 now; out tomorrow
    assert i2["safety_stock"] == pytest.approx(1.645 * math.sqrt(12), rel=1e-6)
    assert (i2["suggested_reorder_qty"], i2["reorder_now"]) == (15, True)
    assert i2["days_of_cover"] == pytest.approx(0)
    assert i2["projected_stockout_date"] == D4 + timedelta(days=1)
    # I3: nothing forecast: no cover figure, no stockout, nothing to order
    assert (i3["days_of_cover"], i3["projected_stockout_date"], i3["suggested_reorder_qty"]) == (None, None, 0)
    assert i3["item_name"] == "Globe"
    # I4: never in a snapshot. Unknown stock is not zero stock: no figure derived from it, no order
    # advice, and a column that says why; the forecast itself is still there (1/day, 3 over 3 days).
    i4 = reorder["I4"]
    assert i4["stock_status"] == "no snapshot"
    assert {
        c: i4[c]
        for c in (
            "stock_date",
            "on_hand",
            "on_order",
            "days_of_cover",
            "projected_stockout_date",
            "suggested_reorder_qty",
            "reorder_now",
        )
    } == dict.fromkeys(
        (
            "stock_date",
            "on_hand",
            "on_order",
            "days_of_cover",
            "projected_stockout_date",
            "suggested_reorder_qty",
            "reorder_now",
        )
    )
    assert (i4["forecast_demand_lead_time"], i4["forecast_daily_demand"]) == (pytest.approx(3), pytest.approx(1))


def test_lead_time_beyond_the_horizon_is_refused(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_REORDER_LEAD_TIME_DAYS", "40")
    with pytest.raises(ValueError, match="ANALYTICS_REORDER_LEAD_TIME_DAYS=40"):
        get_settings()
