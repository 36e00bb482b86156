"""Report charts as PNG bytes, drawn headless.

Figures are built with ``matplotlib.figure.Figure`` directly (the Agg canvas, no pyplot), so nothing
needs a display and no global pyplot state is shared between reports or threads. matplotlib is
imported on first use, not when the code location loads (every Dagster process loads it).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

THIS_WEEK = "#2b6cb0"
PREVIOUS_WEEK = "#a0aec0"
UP, DOWN = "#2f855a", "#c53030"


def _figure(**options: Any) -> Figure:
    from matplotlib.figure import Figure

    return Figure(**options)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=96)
    return buffer.getvalue()


def daily_active_users(labels: Sequence[str], this_week: Sequence[int], previous_week: Sequence[int]) -> bytes:
    figure = _figure(figsize=(7, 3))
    axes = figure.subplots()
    axes.bar(labels, this_week, color=THIS_WEEK, label="this week")
    axes.plot(labels, previous_week, color=PREVIOUS_WEEK, marker="o", label="previous week")
    axes.set_ylabel("active users")
    axes.set_title("Daily active users")
    axes.legend(loc="upper right", fontsize="small")
    axes.yaxis.get_major_locator().set_params(integer=True)
    return _png(figure)


def activity_mix(activity_types: Sequence[str], events: Sequence[int]) -> bytes:
    figure = _figure(figsize=(7, max(2.0, 0.35 * len(activity_types) + 1)))
    axes = figure.subplots()
    axes.barh(list(activity_types)[::-1], list(events)[::-1], color=THIS_WEEK)
    axes.set_xlabel("events this week")
    axes.set_title("Activity mix")
    if not activity_types:
        axes.text(0.5, 0.5, "no activity this week", ha="center", va="center", transform=axes.transAxes)
    return _png(figure)


def week_over_week(metrics: Sequence[str], changes: Sequence[float | None]) -> bytes:
    """Change in percent per headline metric; a metric without a previous value is drawn as n/a."""
    figure = _figure(figsize=(7, max(2.0, 0.35 * len(metrics) + 1)))
    axes = figure.subplots()
    values = [0.0 if change is None else change for change in changes]
    colors = [UP if value >= 0 else DOWN for value in values]
    axes.barh(list(metrics)[::-1], values[::-1], color=colors[::-1])
    for position, change in enumerate(list(changes)[::-1]):
        axes.annotate(
            "n/a" if change is None else f"{change:+.1f}%",
            (0, position),
            xytext=(4, -3),
            textcoords="offset points",
            fontsize="small",
        )
    axes.axvline(0, color="black", linewidth=0.8)
    if not any(values):
        axes.set_xlim(-10, 10)  # nothing to compare yet: a readable axis instead of ±0.04
    axes.set_xlabel("change vs previous week (%)")
    axes.set_title("Week-over-week change")
    return _png(figure)


def grouped_bars(
    labels: Sequence[str], this_week: Sequence[float], previous_week: Sequence[float], title: str
) -> bytes:
    figure = _figure(figsize=(7, max(2.0, 0.4 * len(labels) + 1)))
    axes = figure.subplots()
    positions = range(len(labels))
    axes.barh([p + 0.2 for p in positions], list(this_week), height=0.4, color=THIS_WEEK, label="this week")
    axes.barh([p - 0.2 for p in positions], list(previous_week), height=0.4, color=PREVIOUS_WEEK, label="previous week")
    axes.set_yticks(list(positions), list(labels))
    axes.invert_yaxis()
    axes.set_title(title)
    axes.legend(loc="lower right", fontsize="small")
    return _png(figure)


def lines(dates: Sequence[str], series: dict[str, Sequence[float | None]], title: str) -> bytes:
    """One line per series (e.g. per school) over ``dates``; the legend shows at most 12 series."""
    figure = _figure(figsize=(7, 3))
    axes = figure.subplots()
    for index, (name, values) in enumerate(series.items()):
        axes.plot(
            list(dates),
            [float("nan") if v is None else v for v in values],
            marker=".",
            label=name if index < 12 else None,
        )
    axes.set_title(title)
    axes.tick_params(axis="x", labelrotation=45, labelsize="small")
    if series:
        axes.legend(loc="upper left", fontsize="x-small")
    return _png(figure)
