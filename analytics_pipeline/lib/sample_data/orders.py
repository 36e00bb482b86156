"""A day of order lines and the inventory snapshots that follow them."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from analytics_pipeline.lib.sample_data.catalogue import (
    INVENTORY_COLUMNS,
    MS_PER_HOUR,
    ORDER_COLUMNS,
    ORDER_STATUSES,
    ORDER_WEEKDAY_FACTORS,
    ORDERING_HOURS,
)
from analytics_pipeline.lib.sample_data.world import (
    _DayOrders,
    _epoch_ms,
    _iso_timestamps,
    _join_text,
    _Organizations,
    _World,
)

# --------------------------------------------------------------------------------------------
# Orders and inventory
# --------------------------------------------------------------------------------------------


def _item_weights_on(world: _World, day_index: int, rng: np.random.Generator) -> np.ndarray:
    """Today's relative demand per item: popularity x trend, zero for inactive items and for
    intermittent items on their (many) off days, boosted on their on days to keep the mean."""
    items = world.items
    occurs = rng.random(len(items.ids)) < items.occurrence_probability
    trend = np.exp(items.daily_trend * day_index)
    weight = items.base_weight * trend * occurs / items.occurrence_probability
    return np.where(items.active, weight, 0.0)


def _simulate_orders(world: _World, day: date, day_index: int, rng: np.random.Generator) -> _DayOrders:
    """Multi-line orders placed by schools in proportion to their size during office hours;
    each line is a distinct item drawn by today's demand weights."""
    orgs, items = world.organizations, world.items
    weights = _item_weights_on(world, day_index, rng)
    candidates = np.flatnonzero(weights > 0)
    order_count = int(rng.poisson(world.orders_per_weekday * ORDER_WEEKDAY_FACTORS[day.weekday()]))
    if order_count == 0 or len(candidates) == 0:
        return _DayOrders(pd.DataFrame(columns=ORDER_COLUMNS), np.zeros(len(items.ids)))

    org = rng.choice(len(orgs.ids), size=order_count, p=orgs.size_weight / orgs.size_weight.sum())
    ms_of_day = _ordering_times(rng, org, orgs)
    chronological = np.argsort(ms_of_day, kind="stable")
    org, ms_of_day = org[chronological], ms_of_day[chronological]
    status = rng.choice(len(ORDER_STATUSES), size=order_count, p=(0.9, 0.05, 0.05))
    buyer = _order_buyers(world, day, org, rng)

    lines_per_order = np.minimum(1 + rng.poisson(1.2, order_count), len(candidates))
    order_of_line, line_no, item = _distinct_lines(rng, weights, candidates, lines_per_order)
    quantity = 1 + rng.poisson(items.mean_quantity[item] - 1.0)
    price_cents = _discounted_prices(rng, items.list_price_cents[item])

    order_ids = np.char.add(f"ord-{day:%Y%m%d}-", np.char.zfill((np.arange(order_count) + 1).astype(str), 5))
    frame = pd.DataFrame(
        {
            "order_id": order_ids[order_of_line],
            "line_no": line_no.astype(str),
            "ordered_at": _iso_timestamps(_epoch_ms(day) + ms_of_day)[order_of_line],
            "org_id": orgs.ids[org][order_of_line],
            "user_id": buyer[order_of_line],
            "item_id": items.ids[item],
            "quantity": quantity.astype(str),
            "unit_price": _money(price_cents),
            "unit_cost": _money(items.unit_cost_cents[item]),
            "currency": "USD",
            "status": np.asarray(ORDER_STATUSES)[status][order_of_line],
        },
        columns=ORDER_COLUMNS,
    ).astype(object)
    completed = status[order_of_line] == ORDER_STATUSES.index("completed")
    units = np.bincount(item[completed], weights=quantity[completed], minlength=len(items.ids))
    return _DayOrders(frame, units)


def _ordering_times(rng: np.random.Generator, org: np.ndarray, orgs: _Organizations) -> np.ndarray:
    local_hour = rng.choice(24, size=len(org), p=np.asarray(ORDERING_HOURS) / sum(ORDERING_HOURS))
    utc_hour = (local_hour - orgs.utc_offset_hours[org]) % 24
    return utc_hour * MS_PER_HOUR + rng.integers(0, MS_PER_HOUR, len(org))


def _order_buyers(world: _World, day: date, org: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A teacher, staff member or admin of the ordering school who has an account today; empty
    for a few orders (placed by phone) and for schools without such a user."""
    users = world.users
    ordinal = day.toordinal()
    can_order = users.is_staff & (users.signup_day <= ordinal) & (ordinal < users.churn_day)
    staff = np.flatnonzero(can_order)
    staff = staff[np.argsort(users.org[staff], kind="stable")]
    per_org = np.bincount(users.org[staff], minlength=len(world.organizations.ids))
    first = np.cumsum(per_org) - per_org
    pick = first[org] + (rng.random(len(org)) * per_org[org]).astype(np.int64)
    anonymous = (per_org[org] == 0) | (rng.random(len(org)) < 0.06)
    chosen = users.ids[staff[np.minimum(pick, max(len(staff) - 1, 0))]] if len(staff) else ""
    return np.where(anonymous, "", chosen)


def _distinct_lines(
    rng: np.random.Generator,
    weights: np.ndarray,
    candidates: np.ndarray,
    lines_per_order: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted sampling of distinct items per order without a per-order loop (Gumbel top-k)."""
    keys = np.log(weights[candidates]) + rng.gumbel(size=(len(lines_per_order), len(candidates)))
    widest = int(lines_per_order.max())
    ranked = np.argsort(-keys, axis=1, kind="stable")[:, :widest]
    slots = np.arange(widest)
    taken = slots[None, :] < lines_per_order[:, None]
    order_of_line = np.repeat(np.arange(len(lines_per_order)), lines_per_order)
    line_no = np.broadcast_to(slots + 1, taken.shape)[taken]
    return order_of_line, line_no, candidates[ranked[taken]]


def _discounted_prices(rng: np.random.Generator, list_cents: np.ndarray) -> np.ndarray:
    discounted = rng.random(len(list_cents)) < 0.2
    rate = rng.choice([0.05, 0.1, 0.15, 0.2], size=len(list_cents))
    price = np.round(list_cents * (1.0 - np.where(discounted, rate, 0.0)))
    return np.maximum(price, 1).astype(np.int64)


def _money(cents: np.ndarray) -> np.ndarray:
    """Cents as ``12.50``: decimal text, never binary floats, in the landing files."""
    cents = np.asarray(cents, dtype=np.int64)
    whole, fraction = np.divmod(cents, 100)
    return _join_text(whole.astype(str), ".", np.char.zfill(fraction.astype(str), 2))


class _InventorySimulation:
    """End-of-day stock per active item under a reorder-point policy with lead times.

    Reorder points cover the expected lead-time demand plus a buffer of a few typical order
    lines, thin for some items; demand trends and lumpy orders then make some items run dry for
    a few days until the replenishment arrives (stockouts), as in a real warehouse.
    """

    def __init__(self, rng: np.random.Generator, world: _World) -> None:
        items = world.items
        self.items = np.flatnonzero(items.active)
        expected = self._expected_daily_units(world)[self.items]
        line_size = items.mean_quantity[self.items]
        count = len(self.items)
        self.lead_time = rng.integers(3, 13, count)
        lead_time_demand = expected * self.lead_time * rng.uniform(1.0, 1.6, count)
        buffer = line_size * rng.uniform(0.0, 3.0, count)
        self.reorder_point = np.maximum(1, np.ceil(lead_time_demand + buffer)).astype(np.int64)
        cycle_units = np.ceil(expected * rng.uniform(7, 25, count))
        batch = np.maximum(cycle_units, np.ceil(line_size))
        self.order_up_to = self.reorder_point + batch.astype(np.int64)
        self.on_hand = rng.integers(self.reorder_point, self.order_up_to + 1)
        self.on_order = np.zeros(count, dtype=np.int64)
        self.arrivals = np.zeros((count, world.day_count + int(self.lead_time.max()) + 1), np.int64)
        self.item_ids = items.ids[self.items]

    @staticmethod
    def _expected_daily_units(world: _World) -> np.ndarray:
        items = world.items
        share = np.where(items.active, items.base_weight, 0.0)
        share = share / share.sum() if share.sum() > 0 else share
        lines_per_day = world.orders_per_weekday * np.mean(ORDER_WEEKDAY_FACTORS) * 2.2
        return lines_per_day * share * items.mean_quantity * 0.9

    def close_day(self, day: date, day_index: int, units_sold: np.ndarray) -> pd.DataFrame:
        """Receive today's arrivals, ship today's completed units (never below zero: unmet
        demand is lost), reorder what fell to the reorder point, and report the stock."""
        arriving = self.arrivals[:, day_index]
        self.on_hand += arriving
        self.on_order -= arriving
        sold = np.round(units_sold[self.items]).astype(np.int64)
        self.on_hand = np.maximum(self.on_hand - sold, 0)
        position = self.on_hand + self.on_order
        reorder = position <= self.reorder_point
        quantity = np.where(reorder, self.order_up_to - position, 0)
        self.arrivals[np.flatnonzero(reorder), day_index + self.lead_time[reorder]] += quantity[reorder]
        self.on_order += quantity
        return pd.DataFrame(
            {
                "snapshot_date": day.isoformat(),
                "item_id": self.item_ids,
                "on_hand": self.on_hand.astype(str),
                "on_order": self.on_order.astype(str),
                "reorder_point": self.reorder_point.astype(str),
            },
            columns=INVENTORY_COLUMNS,
        ).astype(object)
