"""Demand models: the candidates, rolling-origin model selection and the forecast with intervals.

Pure functions over pandas frames in statsforecast's long format (``unique_id``, ``ds``, ``y``), no
Dagster and no warehouse, so the selection logic is tested on synthetic series directly.

Cost is what shapes the choices here (SPEC targets: 1,000 items x 2 years, selection in minutes,
forecast in under a minute on 2 cores):

- every series is cut to its last ``HISTORY_DAYS``: a year holds all the weekly and trend structure
  the candidates can use, and AutoETS/AutoARIMA cost grows with length;
- cross-validation fits the state-space candidates once per series and rolls the later origins
  forward with the fitted parameters (statsforecast's ``refit=False``); the intermittent-demand
  candidates are cheap enough to refit at every origin (and have no forward step);
- AutoARIMA searches a small, approximated space (orders up to 2, seasonal orders up to 1);
- the selection also records the structure of each selected automatic model (ETS components,
  ARIMA orders), so the forecast re-estimates only its parameters instead of searching again;
- the forecast fits one model per item, spread over worker processes.
"""

from __future__ import annotations

import json
import multiprocessing
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import (
    _TS,
    ADIDA,
    ARIMA,
    TSB,
    AutoARIMA,
    AutoETS,
    CrostonSBA,
    HistoricAverage,
    SeasonalNaive,
    SeasonalWindowAverage,
)
from statsforecast.utils import ConformalIntervals
from utilsforecast.losses import mase, rmse, smape

from analytics_pipeline.lib.forecasting.horizon import CV_STEP, CV_WINDOWS, HISTORY_DAYS, HORIZON, LEVELS, SEASON

MIN_TRAIN_DAYS = 8 * SEASON
# The shortest series cross-validation accepts: the training part before the first origin plus the
# windows' span.
MIN_CV_DAYS = MIN_TRAIN_DAYS + HORIZON + (CV_WINDOWS - 1) * CV_STEP
MIN_SEASONAL_DAYS = 2 * SEASON

SEASONAL_NAIVE = "SeasonalNaive"
FALLBACK_ZERO = "ZeroDemand"


class LinearTrendWeekday(_TS):
    """Least squares on a linear trend plus day-of-week effects, with the textbook OLS prediction
    intervals (they widen as the forecast leaves the fitted range).

    Positions stand for days (series are gap-free and daily), so ``t mod 7`` is the weekday up to a
    shift that is the same for fitting and forecasting.
    """

    def __init__(self, season_length: int = SEASON, alias: str = "LinearTrendWeekday"):
        self.season_length = season_length
        self.alias = alias
        self.prediction_intervals = None

    def _design(self, positions: np.ndarray) -> np.ndarray:
        weekday = positions % self.season_length
        dummies = (weekday[:, None] == np.arange(1, self.season_length)[None, :]).astype(float)
        return np.column_stack([np.ones(len(positions)), positions.astype(float), dummies])

    def fit(self, y: np.ndarray, X: np.ndarray | None = None) -> LinearTrendWeekday:
        y = np.asarray(y, dtype=float)
        design = self._design(np.arange(len(y)))
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        residuals = y - design @ coef
        dof = max(len(y) - design.shape[1], 1)
        self.model_ = {
            "coef": coef,
            "sigma": float(np.sqrt(residuals @ residuals / dof)),
            "xtx_inv": np.linalg.pinv(design.T @ design),
            "fitted": design @ coef,
        }
        return self

    def _predict_at(self, positions: np.ndarray, level: Sequence[int] | None) -> dict[str, np.ndarray]:
        design = self._design(positions)
        mean = design @ self.model_["coef"]
        result = {"mean": mean}
        if level:
            leverage = np.einsum("ij,jk,ik->i", design, self.model_["xtx_inv"], design)
            sigma_h = self.model_["sigma"] * np.sqrt(1.0 + leverage)
            for lv in sorted(level):
                z = _normal_quantile(lv)
                result[f"lo-{lv}"] = mean - z * sigma_h
                result[f"hi-{lv}"] = mean + z * sigma_h
        return result

    def predict(self, h: int, X: np.ndarray | None = None, level: Sequence[int] | None = None) -> dict:
        n = len(self.model_["fitted"])
        return self._predict_at(np.arange(n, n + h), level)

    def predict_in_sample(self, level: Sequence[int] | None = None) -> dict:
        return {"fitted": self.model_["fitted"]}

    def forecast(
        self,
        y: np.ndarray,
        h: int,
        X: np.ndarray | None = None,
        X_future: np.ndarray | None = None,
        level: Sequence[int] | None = None,
        fitted: bool = False,
    ) -> dict:
        self.fit(y)
        result = self.predict(h, level=level)
        if fitted:
            result["fitted"] = self.model_["fitted"]
        return result

    def forward(
        self,
        y: np.ndarray,
        h: int,
        X: np.ndarray | None = None,
        X_future: np.ndarray | None = None,
        level: Sequence[int] | None = None,
        fitted: bool = False,
    ) -> dict:
        """The fitted line and weekday effects, continued past the end of the longer ``y``."""
        n = len(y)
        result = self._predict_at(np.arange(n, n + h), level)
        if fitted:
            result["fitted"] = self._design(np.arange(n)) @ self.model_["coef"]
        return result


def _normal_quantile(level: int) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 200))


@dataclass(frozen=True)
class Candidate:
    name: str
    family: str  # seasonal | smoothing | arima | trend | intermittent
    build: Callable[[], _TS]
    rolls_forward: bool  # has a forward step: fitted once per series in cross-validation


def _intermittent_intervals() -> ConformalIntervals:
    # Croston-type models have no error model of their own; conformal intervals from two
    # horizon-long windows of their own past errors give them one.
    return ConformalIntervals(h=HORIZON, n_windows=2)


# In order of simplicity: equal scores go to the simpler model.
CANDIDATES: tuple[Candidate, ...] = (
    Candidate(SEASONAL_NAIVE, "seasonal", lambda: SeasonalNaive(season_length=SEASON), True),
    Candidate("LinearTrendWeekday", "trend", lambda: LinearTrendWeekday(SEASON), True),
    Candidate("ADIDA", "intermittent", lambda: ADIDA(prediction_intervals=_intermittent_intervals()), False),
    Candidate("CrostonSBA", "intermittent", lambda: CrostonSBA(prediction_intervals=_intermittent_intervals()), False),
    Candidate(
        "TSB",
        "intermittent",
        lambda: TSB(alpha_d=0.1, alpha_p=0.1, prediction_intervals=_intermittent_intervals()),
        False,
    ),
    # Same-weekday averages over the last 4, 8 or 13 weeks: sparse demand that still follows the
    # school week (next to nothing at weekends), which Croston-type models flatten out.
    *(
        Candidate(
            f"SeasonalWindowAverage{weeks}w",
            "seasonal_average",
            lambda weeks=weeks: SeasonalWindowAverage(
                season_length=SEASON,
                window_size=weeks,
                alias=f"SeasonalWindowAverage{weeks}w",
                prediction_intervals=_intermittent_intervals(),
            ),
            False,
        )
        for weeks in (4, 8, 13)
    ),
    Candidate("AutoETS", "smoothing", lambda: AutoETS(season_length=SEASON), True),
    Candidate(
        "AutoARIMA",
        "arima",
        lambda: AutoARIMA(season_length=SEASON, approximation=True, max_p=2, max_q=2, max_P=1, max_Q=1, nmodels=20),
        True,
    ),
)
CANDIDATE_BY_NAME = {candidate.name: candidate for candidate in CANDIDATES}
SIMPLICITY = {candidate.name: rank for rank, candidate in enumerate(CANDIDATES)}
FAMILIES = {candidate.name: candidate.family for candidate in CANDIDATES} | {
    FALLBACK_ZERO: "fallback",
    "HistoricAverage": "fallback",
}

# Syntetos-Boylan-Croston: demand arriving on average less often than every 1.32 days is
# intermittent, and only Croston-type models and same-weekday averages (plus the seasonal-naive
# benchmark) compete for it; smooth demand gets the trend, smoothing and ARIMA models. Intermittent
# series are also where ARIMA is slowest and least useful.
INTERMITTENT_ADI = 1.32
CLASS_CANDIDATES = {
    "smooth": tuple(c for c in CANDIDATES if c.family in ("seasonal", "trend", "smoothing", "arima")),
    "intermittent": tuple(c for c in CANDIDATES if c.family in ("seasonal", "intermittent", "seasonal_average")),
}


def demand_classes(series: pd.DataFrame) -> pd.Series:
    """``unique_id`` -> ``smooth`` or ``intermittent`` by the average inter-demand interval."""
    stats = series.assign(nonzero=series["y"] > 0).groupby("unique_id")["nonzero"].agg(["size", "sum"])
    adi = stats["size"] / stats["sum"].where(stats["sum"] > 0)
    return pd.Series(np.where(adi > INTERMITTENT_ADI, "intermittent", "smooth"), index=stats.index, name="demand_class")


def prepare_series(demand: pd.DataFrame, as_of: pd.Timestamp, history_days: int = HISTORY_DAYS) -> pd.DataFrame:
    """Daily demand (``item_id``, ``demand_date``, ``units``) -> gap-free series ending on ``as_of``.

    Each item's series starts on its first day in the window and runs to ``as_of``; days without a
    row (an inactive item with no demand that day) are zero demand.
    """
    window_start = as_of - pd.Timedelta(days=history_days - 1)
    frame = demand.rename(columns={"item_id": "unique_id", "demand_date": "ds", "units": "y"})
    frame = frame.assign(ds=pd.to_datetime(frame["ds"]), y=frame["y"].astype(float))
    frame = frame[(frame["ds"] >= window_start) & (frame["ds"] <= as_of)]
    if frame.empty:
        return pd.DataFrame({"unique_id": pd.Series(dtype=str), "ds": pd.Series(dtype="datetime64[ns]"), "y": 0.0})
    first = frame.groupby("unique_id")["ds"].min()
    lengths = ((as_of - first).dt.days + 1).to_numpy()
    ids = np.repeat(first.index.to_numpy(), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    dates = np.repeat(first.to_numpy(), lengths) + pd.to_timedelta(offsets, unit="D")
    grid = pd.DataFrame({"unique_id": ids, "ds": dates})
    series = grid.merge(frame[["unique_id", "ds", "y"]], on=["unique_id", "ds"], how="left")
    return series.fillna({"y": 0.0}).sort_values(["unique_id", "ds"], ignore_index=True)


@dataclass
class Selection:
    scores: pd.DataFrame  # SCORE_COLUMNS
    skipped: dict[str, str]  # item_id -> why it was not evaluated

    @property
    def selected(self) -> dict[str, Choice]:
        chosen = self.scores[self.scores["selected"]]
        return {
            item: Choice(model, spec or None)
            for item, model, spec in zip(chosen["item_id"], chosen["model"], chosen["model_spec"], strict=True)
        }


@dataclass(frozen=True)
class Choice:
    """An item's model, and for the automatic ones the structure found at selection (JSON), so the
    forecast only re-estimates parameters instead of searching again."""

    model: str
    spec: str | None = None


SCORE_COLUMNS = ["item_id", "demand_class", "model", "family", "mase", "smape", "rmse", "selected", "model_spec"]


def _cross_validate(series: pd.DataFrame, candidates: Sequence[Candidate], refit: bool, n_jobs: int) -> pd.DataFrame:
    models = [candidate.build() for candidate in candidates]
    engine = StatsForecast(models=models, freq="D", n_jobs=n_jobs, fallback_model=SeasonalNaive(SEASON))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return engine.cross_validation(df=series, h=HORIZON, step_size=CV_STEP, n_windows=CV_WINDOWS, refit=refit)


def _score(series: pd.DataFrame, candidates: Sequence[Candidate], n_jobs: int) -> pd.DataFrame:
    """MASE, sMAPE and RMSE of each candidate over every window, per series."""
    rolling = [c for c in candidates if c.rolls_forward]
    refitted = [c for c in candidates if not c.rolls_forward]
    parts = []
    if rolling:
        parts.append(_cross_validate(series, rolling, refit=False, n_jobs=n_jobs))
    if refitted:
        part = _cross_validate(series, refitted, refit=True, n_jobs=n_jobs)
        parts.append(part.drop(columns=["y"]) if parts else part)
    cv = parts[0] if len(parts) == 1 else parts[0].merge(parts[1], on=["unique_id", "ds", "cutoff"])
    names = [c.name for c in candidates]
    cv[names] = cv[names].clip(lower=0).fillna(0.0)
    # Each window is scored on its own (MASE scaled by the seasonal-naive error of the history
    # before its origin), then the windows are averaged.
    per_window = {
        "mase": mase(cv, names, seasonality=SEASON, train_df=series),
        "smape": smape(cv, names),
        "rmse": rmse(cv, names),
    }
    long = [
        frame.melt(id_vars=["unique_id", "cutoff"], var_name="model", value_name=metric)
        .replace([np.inf, -np.inf], np.nan)
        .groupby(["unique_id", "model"])[metric]
        .mean()
        for metric, frame in per_window.items()
    ]
    return pd.concat(long, axis=1).reset_index()


def select_models(series: pd.DataFrame, n_jobs: int = 2) -> Selection:
    """Rolling-origin cross-validation of the candidates for each series' demand class.

    ``CV_WINDOWS`` origins one week apart, each forecasting ``HORIZON`` days; MASE (scaled by the
    in-sample seasonal-naive error before the first origin), sMAPE and RMSE pooled over the windows.
    The lowest MASE is selected (the lowest RMSE for intermittent demand); RMSE, then simplicity,
    break ties.
    """
    lengths = series.groupby("unique_id").size()
    totals = series.groupby("unique_id")["y"].sum()
    skipped = {
        item: f"{n} days of history; cross-validation needs {MIN_CV_DAYS}"
        for item, n in lengths.items()
        if n < MIN_CV_DAYS
    }
    skipped |= {
        item: "no demand in the history window" for item, total in totals.items() if total == 0 and item not in skipped
    }
    usable = series[~series["unique_id"].isin(list(skipped))]
    classes = demand_classes(usable) if not usable.empty else pd.Series(dtype=str)
    frames = []
    for demand_class, members in classes.groupby(classes):
        scores = _score(usable[usable["unique_id"].isin(members.index)], CLASS_CANDIDATES[demand_class], n_jobs)
        frames.append(scores.assign(demand_class=demand_class))
    if not frames:
        empty = pd.DataFrame(columns=SCORE_COLUMNS).astype(
            {"selected": bool, "mase": float, "smape": float, "rmse": float}
        )
        return Selection(empty, skipped)
    scores = pd.concat(frames, ignore_index=True).rename(columns={"unique_id": "item_id"})
    # A flat history before the first origin has no seasonal-naive error to scale by: MASE is
    # undefined there and RMSE decides.
    scores["family"] = scores["model"].map(FAMILIES)
    # MAE-based scores reward forecasting zero on intermittent demand (most days are zero), which is
    # useless for stocking; intermittent series are ranked by squared error instead, which rewards
    # the right mean rate (Kolassa, 2016).
    primary = np.where(scores["demand_class"] == "intermittent", scores["rmse"], scores["mase"])
    ranked = scores.assign(
        _primary=pd.Series(primary, index=scores.index).round(9),
        _rmse=scores["rmse"].round(9),
        _simplicity=scores["model"].map(SIMPLICITY),
    ).sort_values(["item_id", "_primary", "_rmse", "_simplicity"], na_position="last")
    scores["selected"] = scores.index.isin(ranked.groupby("item_id").head(1).index)
    scores["model_spec"] = None
    searched = scores[scores["selected"] & scores["model"].isin(list(_SPEC_OF))]
    if not searched.empty:
        ys = _arrays(usable, searched["item_id"])
        tasks = [(item, model, ys[item]) for item, model in zip(searched["item_id"], searched["model"], strict=True)]
        scores.loc[searched.index, "model_spec"] = _map(_spec_task, tasks, n_jobs)
    return Selection(scores[SCORE_COLUMNS].sort_values(["item_id", "model"], ignore_index=True), skipped)


# -- model structures found at selection, reused by the forecast --------------------------------------


def _ets_spec(model: Any) -> str:
    components = model.model_["components"]  # error, trend, season, damped: e.g. ['A', 'A', 'N', 'N']
    return json.dumps({"model": "".join(components[:3]), "damped": components[3] == "D"})


def _arima_spec(model: Any) -> str:
    p, q, seasonal_p, seasonal_q, _, d, seasonal_d = (int(v) for v in model.model_["arma"])
    coefficients = model.model_["coef"]
    return json.dumps(
        {
            "order": [p, d, q],
            "seasonal_order": [seasonal_p, seasonal_d, seasonal_q],
            "include_mean": "intercept" in coefficients,
            "include_drift": "drift" in coefficients,
        }
    )


_SPEC_OF: dict[str, Callable[[Any], str]] = {"AutoETS": _ets_spec, "AutoARIMA": _arima_spec}


def _spec_task(task: tuple[str, str, np.ndarray]) -> str | None:
    _, model_name, y = task
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _SPEC_OF[model_name](CANDIDATE_BY_NAME[model_name].build().fit(y))
    except Exception:  # the forecast then searches again; one odd series must not stop the rest
        return None


def _from_spec(model_name: str, spec: str) -> _TS:
    values = json.loads(spec)
    if model_name == "AutoETS":
        return AutoETS(season_length=SEASON, model=values["model"], damped=values["damped"])
    return ARIMA(
        order=tuple(values["order"]),
        season_length=SEASON,
        seasonal_order=tuple(values["seasonal_order"]),
        include_mean=values["include_mean"],
        include_drift=values["include_drift"],
    )


def _arrays(series: pd.DataFrame, items: Iterable[str]) -> dict[str, np.ndarray]:
    wanted = set(items)
    subset = series[series["unique_id"].isin(wanted)]
    return {item: group["y"].to_numpy(dtype=float) for item, group in subset.groupby("unique_id", sort=False)}


def _map(function: Callable[[Any], Any], tasks: list[Any], n_jobs: int) -> list[Any]:
    """``function`` over ``tasks`` in ``n_jobs`` processes (in order), in-process for one job.

    Forked, like statsforecast's own workers: nothing is re-imported, and the workers only compute.
    """
    if n_jobs <= 1 or len(tasks) < 8:
        return [function(task) for task in tasks]
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(function, tasks, chunksize=max(1, len(tasks) // (n_jobs * 8))))


@dataclass
class ForecastResult:
    forecasts: pd.DataFrame  # item_id, forecast_date, model, yhat, yhat_lo_80, ... yhat_hi_95
    fallbacks: dict[str, str]  # item_id -> why it did not get its selected model


def fallback_model_for(series_length: int, total_demand: float) -> tuple[str, str]:
    """The model used without a selection, and why."""
    if total_demand == 0:
        return FALLBACK_ZERO, "no demand in the history window: zero forecast"
    if series_length < MIN_SEASONAL_DAYS:
        return "HistoricAverage", f"only {series_length} days of history: mean demand"
    return SEASONAL_NAIVE, "no model selected yet: seasonal naive"


def _interval_columns() -> list[str]:
    return [f"yhat_{side}_{lv}" for lv in LEVELS for side in ("lo", "hi")]


def _predict(model_name: str, spec: str | None, y: np.ndarray) -> dict[str, np.ndarray]:
    if model_name == FALLBACK_ZERO:
        return {key: np.zeros(HORIZON) for key in ["mean", *(f"{side}-{lv}" for lv in LEVELS for side in ("lo", "hi"))]}
    if model_name == "HistoricAverage":
        model: _TS = HistoricAverage()
    elif spec:
        model = _from_spec(model_name, spec)
    else:
        model = CANDIDATE_BY_NAME[model_name].build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.forecast(y=y, h=HORIZON, level=list(LEVELS))
    values = {key: np.asarray(result[key], dtype=float) for key in result if key == "mean" or key[:3] in ("lo-", "hi-")}
    if not all(np.isfinite(v).all() for v in values.values()):
        raise ValueError("no finite forecast")
    return values


def _forecast_task(task: tuple[str, str, str | None, np.ndarray]) -> tuple[str, dict[str, np.ndarray], str | None]:
    """One item's forecast; a model that fails or gives non-finite values falls back to seasonal naive."""
    item, model_name, spec, y = task
    try:
        return model_name, _predict(model_name, spec, y), None
    except Exception as error:
        fallback = SEASONAL_NAIVE if len(y) >= MIN_SEASONAL_DAYS else "HistoricAverage"
        return fallback, _predict(fallback, None, y), f"{model_name} failed ({error}): {fallback}"


def forecast(series: pd.DataFrame, selected: Mapping[str, Choice | str], n_jobs: int = 2) -> ForecastResult:
    """``HORIZON`` days of point forecasts with 80% and 95% intervals for every series.

    Each item gets its selected model (re-estimated on the latest history, in the structure found at
    selection); items without one get :func:`fallback_model_for`'s. Demand is never negative, so
    forecasts and bounds are clipped at zero, and an interval never narrows further ahead: its
    width (upper minus lower bound, after clipping) is the running maximum over the horizon.
    """
    ys = _arrays(series, series["unique_id"].unique())
    last_day = series.groupby("unique_id")["ds"].max()
    fallbacks: dict[str, str] = {}
    tasks = []
    for item, y in ys.items():
        choice = selected.get(item)
        choice = Choice(choice) if isinstance(choice, str) else choice
        if choice is not None and choice.model in CANDIDATE_BY_NAME and y.sum() > 0 and len(y) >= MIN_SEASONAL_DAYS:
            tasks.append((item, choice.model, choice.spec, y))
            continue
        model_name, reason = fallback_model_for(len(y), float(y.sum()))
        if choice is not None and choice.model not in CANDIDATE_BY_NAME:
            reason = f"selected model {choice.model!r} is unknown; {reason}"
        fallbacks[item] = reason
        tasks.append((item, model_name, None, y))
    if not tasks:
        return ForecastResult(
            pd.DataFrame(columns=["item_id", "forecast_date", "model", "yhat", *_interval_columns()]), fallbacks
        )

    outcomes = _map(_forecast_task, tasks, n_jobs)
    items = [task[0] for task in tasks]
    for item, (_, _, failure) in zip(items, outcomes, strict=True):
        if failure:
            fallbacks[item] = failure
    steps = np.arange(1, HORIZON + 1)
    frame = pd.DataFrame(
        {
            "item_id": np.repeat(items, HORIZON),
            "forecast_date": np.repeat(last_day[items].to_numpy(), HORIZON)
            + pd.to_timedelta(np.tile(steps, len(items)), unit="D"),
            "model": np.repeat([outcome[0] for outcome in outcomes], HORIZON),
            "yhat": np.concatenate([outcome[1]["mean"] for outcome in outcomes]),
        }
    )
    for lv in LEVELS:
        for side in ("lo", "hi"):
            frame[f"yhat_{side}_{lv}"] = np.concatenate([outcome[1][f"{side}-{lv}"] for outcome in outcomes])
    frame = _tidy_intervals(frame)
    columns = ["item_id", "forecast_date", "model", "yhat", *_interval_columns()]
    return ForecastResult(frame[columns].sort_values(["item_id", "forecast_date"], ignore_index=True), fallbacks)


def _tidy_intervals(result: pd.DataFrame) -> pd.DataFrame:
    result = result.sort_values(["item_id", "forecast_date"], ignore_index=True)
    for lv in LEVELS:
        half = (result[f"yhat_hi_{lv}"] - result[f"yhat_lo_{lv}"]).abs() / 2
        half = half.groupby(result["item_id"], sort=False).cummax()
        centre = (result[f"yhat_hi_{lv}"] + result[f"yhat_lo_{lv}"]) / 2
        result[f"yhat_lo_{lv}"] = (centre - half).clip(lower=0)
        result[f"yhat_hi_{lv}"] = (centre + half).clip(lower=0)
    result["yhat"] = result["yhat"].clip(lower=0)
    # The point forecast stays inside its interval after clipping (and the 80% inside the 95%).
    result["yhat_lo_95"] = np.minimum(result["yhat_lo_95"], np.minimum(result["yhat_lo_80"], result["yhat"]))
    result["yhat_hi_95"] = np.maximum(result["yhat_hi_95"], np.maximum(result["yhat_hi_80"], result["yhat"]))
    result["yhat_lo_80"] = np.minimum(result["yhat_lo_80"], result["yhat"])
    result["yhat_hi_80"] = np.maximum(result["yhat_hi_80"], result["yhat"])
    # Clipping at zero cuts the lower half of a wide interval, so a later day's width could be less
    # than an earlier day's; the upper bound takes up what the floor cut, so widths never shrink.
    # The 80% interval first, then the 95% one, which is raised to contain it before its own pass.
    items = result["item_id"]
    for lv in LEVELS:
        if lv == 95:
            result["yhat_hi_95"] = np.maximum(result["yhat_hi_95"], result["yhat_hi_80"])
        width = (result[f"yhat_hi_{lv}"] - result[f"yhat_lo_{lv}"]).groupby(items, sort=False).cummax()
        result[f"yhat_hi_{lv}"] = result[f"yhat_lo_{lv}"] + width
    return result
