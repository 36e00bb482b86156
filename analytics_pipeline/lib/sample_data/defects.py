"""The controlled share of malformed records each dataset carries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from analytics_pipeline.lib.ingestion.quality import reject_rate_fails
from analytics_pipeline.lib.sample_data.catalogue import (
    _DEFAULT_CHECK,
    EVENT_DEFECTS,
    INVENTORY_COLUMNS,
    INVENTORY_DEFECTS,
    ORDER_COLUMNS,
    ORDER_DEFECTS,
)

# --------------------------------------------------------------------------------------------
# Bad records
# --------------------------------------------------------------------------------------------


def _defect_positions(
    rng: np.random.Generator, rows: int, bad_rate: float, kinds: Sequence[str], defects_so_far: int
) -> tuple[np.ndarray, list[str]]:
    """About ``bad_rate`` of the rows, at least one on any day with 200+ rows, and at least one a
    day until every kind has appeared; the kinds take turns, so a short range (the demo's) holds
    every kind of bad record while each day stays one or two bad lines.

    With a bad rate within the default reject-rate threshold, no day gets more bad records than
    the reject-rate check allows at its default settings (``ANALYTICS_MAX_REJECT_RATE``,
    ``ANALYTICS_REJECT_RATE_CONFIDENCE``): a thin day (a weekend, the first days of a growing
    school) gets none rather than one bad line among four, so the sample data passes its own checks.
    """
    if bad_rate <= 0 or rows == 0:
        return np.zeros(0, dtype=np.int64), []
    count = int(rng.binomial(rows, bad_rate))
    if rows >= 200 or defects_so_far < len(kinds):
        count = max(count, 1)
    if bad_rate <= _DEFAULT_CHECK.max_reject_rate:
        while count and reject_rate_fails(count, rows, _DEFAULT_CHECK):
            count -= 1
    positions = np.sort(rng.choice(rows, size=min(count, rows), replace=False))
    return positions, [kinds[(defects_so_far + n) % len(kinds)] for n in range(len(positions))]


def _event_defect_patches(
    rng: np.random.Generator, lines: pa.Array, bad_rate: float, day: date, defects_so_far: int
) -> dict[int, list[str]]:
    """Replacement text per line position: the corrupted line, or for a duplicate the original
    line followed by an exact copy of an earlier clean line of the same day."""
    positions, kinds = _defect_positions(rng, len(lines), bad_rate, EVENT_DEFECTS, defects_so_far)
    chosen = set(positions.tolist())
    patches: dict[int, list[str]] = {}
    for position, kind in zip(positions.tolist(), kinds, strict=False):
        line = lines[position].as_py()
        if kind == "duplicate_event":
            source = _earlier_clean_position(rng, position, chosen)
            if source is not None:
                patches[position] = [line, lines[source].as_py()]
                continue
            kind = "missing_field"
        patches[position] = [_corrupt_event_line(rng, line, str(kind), day)]
    return patches


def _earlier_clean_position(rng: np.random.Generator, position: int, chosen: set[int]) -> int | None:
    for _ in range(8):
        if position == 0:
            return None
        source = int(rng.integers(0, position))
        if source not in chosen:
            return source
    return None


def _corrupt_event_line(rng: np.random.Generator, line: str, kind: str, day: date) -> str:
    if kind == "truncated_json":
        body = line.rstrip("\n")
        return body[: int(rng.integers(len(body) // 3, len(body) * 2 // 3))] + "\n"
    record = json.loads(line)
    if kind == "missing_field":
        del record[str(rng.choice(["user_id", "event_id", "occurred_at", "activity_type"]))]
    elif kind == "unparseable_timestamp":
        record["occurred_at"] = _unparseable_timestamp(rng, day)
    elif kind == "wrong_date":
        record["occurred_at"] = _shift_date(rng, record["occurred_at"], day)
    return json.dumps(record, separators=(",", ":")) + "\n"


def _unparseable_timestamp(rng: np.random.Generator, day: date) -> str:
    choices = (
        f"{day.isoformat()}T25:61:00Z",
        f"{day.year}-02-30T10:00:00.000Z",
        "not-a-timestamp",
        f"{day:%d/%m/%Y} 14:05",
    )
    return choices[int(rng.integers(len(choices)))]


def _shift_date(rng: np.random.Generator, timestamp: str, day: date) -> str:
    """A late or early arrival: same time of day, another UTC date."""
    shifted = day + timedelta(days=int(rng.choice([-3, -2, -1, 1])))
    return shifted.isoformat() + timestamp[10:]


def _inject_order_defects(
    rng: np.random.Generator, frame: pd.DataFrame, bad_rate: float, day: date, defects_so_far: int
) -> int:
    positions, kinds = _defect_positions(rng, len(frame), bad_rate, ORDER_DEFECTS, defects_so_far)
    column = {name: index for index, name in enumerate(ORDER_COLUMNS)}
    for position, kind in zip(positions.tolist(), kinds, strict=False):
        if kind == "missing_field":
            frame.iat[position, column[str(rng.choice(["order_id", "org_id", "item_id"]))]] = ""
        elif kind == "unparseable_timestamp":
            frame.iat[position, column["ordered_at"]] = _unparseable_timestamp(rng, day)
        elif kind == "wrong_date":
            original = frame.iat[position, column["ordered_at"]]
            frame.iat[position, column["ordered_at"]] = _shift_date(rng, original, day)
        elif kind == "non_positive_quantity":
            frame.iat[position, column["quantity"]] = str(-int(rng.integers(0, 5)))
        else:
            frame.iat[position, column["status"]] = str(rng.choice(["pending", "on_hold"]))
    return len(positions)


def _inject_inventory_defects(
    rng: np.random.Generator, frame: pd.DataFrame, bad_rate: float, day: date, defects_so_far: int
) -> int:
    positions, kinds = _defect_positions(rng, len(frame), bad_rate, INVENTORY_DEFECTS, defects_so_far)
    column = {name: index for index, name in enumerate(INVENTORY_COLUMNS)}
    for position, kind in zip(positions.tolist(), kinds, strict=False):
        if kind == "negative_on_hand":
            frame.iat[position, column["on_hand"]] = str(-int(rng.integers(1, 50)))
        elif kind == "missing_field":
            frame.iat[position, column["item_id"]] = ""
        else:
            frame.iat[position, column["snapshot_date"]] = f"{day:%d/%m/%Y}"
    return len(positions)
