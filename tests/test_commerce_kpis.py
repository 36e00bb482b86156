"""Commerce marts (fct_kpi_daily, kpi_snapshots, fct_item_daily_demand) and the KPI asset checks on
small hand-made histories whose numbers are worked out by hand below.

Catalogue (items dimension): I1 workbook cost 4, I2 calculator cost 10, I3 globe cost 20 (active, never
sold), I4 slate cost 1 (inactive, never sold, never in a snapshot).

Main history, Mon 2025-01-06 .. Fri 2025-01-10 (D1..D5), schools A, B, C, D:
  D1  O1@A: I1 10 x 6.00 (cost 4), I2 2 x 15.00 (cost 10), I1 5 x 6.00 cancelled (counts nowhere)
      stock I1 30, I2 8, I3 5
  D2  O2@B: I2 3 x 16.00 (cost 10), I1 4 x 6.00 refunded        stock I1 26, I2 5, I3 5
  D3  no orders at all (zero-revenue day)                          stock I1 26, I2 0 (out of stock), I3 5
  D4  O3@A: I1 5 x 7.00 (cost 4), I2 1 x 15.00 (cost 10)            no snapshot
      O7@D: I3 1 x 30.00 refunded (D never becomes a customer)
  D5  O5@C: I2 4 x 12.50 (cost 10), I1 2 x 6.00 (cost 4)            stock I1 19, I2 0, I3 5
      O6@B: I1 1 x 6.00 (cost 4)
  A orders on D1 and D4 and B on D2 and D5 (repeat customers); C's first order is on D5.
Late file: O8@C on D2, I1 2 x 6.00 (cost 4): C's first order moves from D5 to D2.

Margin history (tests of kpi_snapshots and the KPI asset checks), one order a day by school A:
  Fri 01-10 revenue 100 cost 60, Sat 01-11 200/100, Sun 01-12 100/80, Mon 01-13 1000/799, Tue 01-14 100/90.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as M
from typing import Any

import dagster as dg
import pytest
from conftest import ORDER_HEADER, Landing, run_pipeline, run_unpartitioned, table_rows

D1, D2, D3, D4, D5 = (date(2025, 1, day) for day in range(6, 11))

SNAPSHOT_HEADER = ["snapshot_date", "item_id", "on_hand", "on_order", "reorder_point"]
ITEM_HEADER = ["item_id", "name", "category", "unit_cost", "list_price", "active", "updated_at"]


# -- writing the landing zone ---------------------------------------------------------------------


def line(
    order: str, no: int, day: date, org: str, item: str, quantity: int, price: str, cost: str, status: str = "completed"
) -> list[Any]:
    return [
        order,
        no,
        f"{day.isoformat()}T{9 + no:02d}:00:00Z",
        org,
        f"{org}-buyer",
        item,
        quantity,
        price,
        cost,
        "USD",
        status,
    ]


def write_orders(landing: Landing, day: date, lines: list[list[Any]], name: str = "orders.csv") -> None:
    landing.csv("order_lines", day, name, ORDER_HEADER, lines)


def write_stock(landing: Landing, day: date, on_hand: dict[str, int]) -> None:
    landing.csv(
        "inventory_snapshots",
        day,
        "stock.csv",
        SNAPSHOT_HEADER,
        [[day.isoformat(), item, units, 0, 5] for item, units in on_hand.items()],
    )


def write_catalogue(landing: Landing) -> None:
    updated = "2024-12-01T00:00:00Z"
    landing.csv(
        "items",
        None,
        "items.csv",
        ITEM_HEADER,
        [
            ["I1", "Workbook", "books", "4.00", "6.00", "true", updated],
            ["I2", "Calculator", "devices", "10.00", "15.00", "true", updated],
            ["I3", "Globe", "maps", "20.00", "30.00", "true", updated],
            ["I4", "Slate", "supplies", "1.00", "2.00", "false", updated],
        ],
    )


def write_history(landing: Landing) -> None:
    write_catalogue(landing)
    write_orders(
        landing,
        D1,
        [
            line("O1", 1, D1, "A", "I1", 10, "6.00", "4.00"),
            line("O1", 2, D1, "A", "I2", 2, "15.00", "10.00"),
            line("O1", 3, D1, "A", "I1", 5, "6.00", "4.00", "cancelled"),
        ],
    )
    write_orders(
        landing,
        D2,
        [
            line("O2", 1, D2, "B", "I2", 3, "16.00", "10.00"),
            line("O2", 2, D2, "B", "I1", 4, "6.00", "4.00", "refunded"),
        ],
    )
    write_orders(
        landing,
        D4,
        [
            line("O3", 1, D4, "A", "I1", 5, "7.00", "4.00"),
            line("O3", 2, D4, "A", "I2", 1, "15.00", "10.00"),
            line("O7", 1, D4, "D", "I3", 1, "30.00", "20.00", "refunded"),
        ],
    )
    write_orders(
        landing,
        D5,
        [
            line("O5", 1, D5, "C", "I2", 4, "12.50", "10.00"),
            line("O5", 2, D5, "C", "I1", 2, "6.00", "4.00"),
            line("O6", 1, D5, "B", "I1", 1, "6.00", "4.00"),
        ],
    )
    write_stock(landing, D1, {"I1": 30, "I2": 8, "I3": 5})
    write_stock(landing, D2, {"I1": 26, "I2": 5, "I3": 5})
    write_stock(landing, D3, {"I1": 26, "I2": 0, "I3": 5})
    write_stock(landing, D5, {"I1": 19, "I2": 0, "I3": 5})


def write_late_order(landing: Landing) -> None:
    write_orders(landing, D2, [line("O8", 1, D2, "C", "I1", 2, "6.00", "4.00")], name="late.csv")


def load_catalogue() -> None:
    assert run_unpartitioned(dg.AssetSelection.assets(["raw", "items"])).success


# -- expected fct_kpi_daily, by hand --------------------------------------------------------------

ORDER_COLUMNS = (
    "kpi_date",
    "revenue",
    "refunds",
    "net_revenue",
    "cogs",
    "gross_profit",
    "gross_margin_pct",
    "orders",
    "units",
    "avg_order_value",
)
CUSTOMER_COLUMNS = ("kpi_date", "new_customers", "active_customers_30d", "repeat_customer_rate_30d")
INVENTORY_COLUMNS = (
    "kpi_date",
    "has_inventory_snapshot",
    "snapshot_items",
    "stockout_items",
    "stockout_rate",
    "inventory_value",
    "inventory_turnover_30d",
)

ORDERS = [
    # D1 revenue 10*6 + 2*15 = 90, cogs 10*4 + 2*10 = 60, profit 30, margin 30/90 = 33.3%; 1 order, 12 units
    (D1, M("90"), M("0"), M("90"), M("60"), M("30"), 100 / 3, 1, 12, 90.0),
    # D2 revenue 3*16 = 48, refunds 4*6 = 24, net 24, cogs 3*10 = 30, profit 18, margin 18/48 = 37.5%
    (D2, M("48"), M("24"), M("24"), M("30"), M("18"), 37.5, 1, 3, 48.0),
    # D3 nothing: zeros, no margin, no average order value
    (D3, M("0"), M("0"), M("0"), M("0"), M("0"), None, 0, 0, None),
    # D4 revenue 5*7 + 1*15 = 50, refunds 30 (O7), net 20, cogs 5*4 + 10 = 30, profit 20, margin 40%; O7 no order
    (D4, M("50"), M("30"), M("20"), M("30"), M("20"), 40.0, 1, 6, 50.0),
    # D5 revenue 4*12.5 + 2*6 + 6 = 68, cogs 40 + 8 + 4 = 52, profit 16, margin 16/68 = 23.53%; aov 68/2 = 34
    (D5, M("68"), M("0"), M("68"), M("52"), M("16"), 1600 / 68, 2, 7, 34.0),
]

CUSTOMERS = [
    (D1, 1, 1, 0.0),  # A new; active {A}
    (D2, 1, 2, 0.0),  # B new; active {A, B}, nobody with 2 orders
    (D3, 0, 2, 0.0),  # no orders; A and B still within 30 days
    (D4, 0, 2, 0.5),  # A's second order: 1 of 2 repeat; D only refunded: not a customer
    (D5, 1, 3, 2 / 3),  # C new; A (O1, O3) and B (O2, O6) repeat, C not: 2 of 3
]

# stock value = on_hand * catalogue cost (I1 4, I2 10, I3 20); turnover = cogs of the 30 days / average
# value of the days with a snapshot. Cumulative cogs: D1 60, D2 90, D3 90, D4 120, D5 172.
INVENTORY = [
    (D1, True, 3, 0, 0.0, M("300"), 60 / 300),  # 30*4 + 8*10 + 5*20 = 300
    (D2, True, 3, 0, 0.0, M("254"), 90 / 277),  # 26*4 + 5*10 + 100 = 254; avg (300+254)/2 = 277
    (D3, True, 3, 1, 1 / 3, M("204"), 90 / (758 / 3)),  # 104 + 0 + 100 = 204; avg 758/3
    (D4, False, None, None, None, None, 120 / (758 / 3)),  # no snapshot: the average stays 758/3
    (D5, True, 3, 1, 1 / 3, M("176"), 172 / (934 / 4)),  # 19*4 + 0 + 100 = 176; avg 934/4 = 233.5
]

# After the late file O8@C on D2 (revenue 2*6 = 12, cogs 2*4 = 8); every other row as above.
ORDERS_LATE = [*ORDERS]
# D2 revenue 48 + 12 = 60, net 60 - 24 = 36, cogs 30 + 8 = 38, profit 22, margin 22/60 = 36.7%, aov 60/2 = 30
ORDERS_LATE[1] = (D2, M("60"), M("24"), M("36"), M("38"), M("22"), 2200 / 60, 2, 5, 30.0)

CUSTOMERS_LATE = [
    (D1, 1, 1, 0.0),  # A new
    (D2, 2, 3, 0.0),  # B and C new; active {A, B, C}
    (D3, 0, 3, 0.0),
    (D4, 0, 3, 1 / 3),  # only A has two orders
    (D5, 0, 3, 1.0),  # C no longer new; A, B and C (O8, O5) all repeat
]

# cumulative cogs now D1 60, D2 98, D3 98, D4 128, D5 180; stock untouched
INVENTORY_LATE = [
    INVENTORY[0],
    (D2, True, 3, 0, 0.0, M("254"), 98 / 277),
    (D3, True, 3, 1, 1 / 3, M("204"), 98 / (758 / 3)),
    (D4, False, None, None, None, None, 128 / (758 / 3)),
    (D5, True, 3, 1, 1 / 3, M("176"), 180 / (934 / 4)),
]


def approx_floats(rows: list[tuple]) -> list[tuple]:
    return [tuple(pytest.approx(v) if isinstance(v, float) else v for v in row) for row in rows]


def kpi_columns(warehouse, columns: tuple[str, ...]) -> list[tuple]:
    return [tuple(r[c] for c in columns) for r in table_rows(warehouse, "marts.fct_kpi_daily", "kpi_date")]


def assert_kpis(warehouse, orders: list[tuple], customers: list[tuple], inventory: list[tuple]) -> None:
    assert kpi_columns(warehouse, ORDER_COLUMNS) == approx_floats(orders)
    assert kpi_columns(warehouse, CUSTOMER_COLUMNS) == approx_floats(customers)
    assert kpi_columns(warehouse, INVENTORY_COLUMNS) == approx_floats(inventory)


# -- expected fct_item_daily_demand, by hand -------------------------------------------------------

# (demand_date, item_id, units, revenue, on_hand, stockout): completed lines only; I3 active but never
# sold, I4 inactive and absent; D4 has no snapshot, so no stock.
ITEM_DEMAND = [
    (D1, "I1", 10, M("60"), 30, False),  # the cancelled 5 x I1 does not count
    (D1, "I2", 2, M("30"), 8, False),
    (D1, "I3", 0, M("0"), 5, False),
    (D2, "I1", 0, M("0"), 26, False),  # the refunded 4 x I1 does not count
    (D2, "I2", 3, M("48"), 5, False),
    (D2, "I3", 0, M("0"), 5, False),
    (D3, "I1", 0, M("0"), 26, False),
    (D3, "I2", 0, M("0"), 0, True),
    (D3, "I3", 0, M("0"), 5, False),
    (D4, "I1", 5, M("35"), None, None),
    (D4, "I2", 1, M("15"), None, None),
    (D4, "I3", 0, M("0"), None, None),  # O7's refunded globe does not count
    (D5, "I1", 3, M("18"), 19, False),  # 2 x 6 (C) + 1 x 6 (B)
    (D5, "I2", 4, M("50"), 0, True),  # 4 x 12.50
    (D5, "I3", 0, M("0"), 5, False),
]


def item_demand(warehouse) -> list[tuple]:
    return [
        (r["demand_date"], r["item_id"], r["units"], r["revenue"], r["on_hand"], r["stockout"])
        for r in table_rows(warehouse, "marts.fct_item_daily_demand", "demand_date, item_id")
    ]


# -- margin history for kpi_snapshots and the checks ----------------------------------------------

FRI, SAT, SUN, MON, TUE = (date(2025, 1, day) for day in range(10, 15))
MARGIN_DAYS = {
    FRI: ("100.00", "60.00"),
    SAT: ("200.00", "100.00"),
    SUN: ("100.00", "80.00"),
    MON: ("1000.00", "799.00"),
    TUE: ("100.00", "90.00"),
}


def write_margin_history(landing: Landing) -> None:
    for n, (day, (price, cost)) in enumerate(MARGIN_DAYS.items(), start=1):
        write_orders(landing, day, [line(f"M{n}", 1, day, "A", "I1", 1, price, cost)])


def snapshot_rows(warehouse, kpi: str, grain: str) -> list[tuple]:
    rows = warehouse.query(
        "select period_start, value, previous_value, change_pct, trend, status from marts.kpi_snapshots "
        "where kpi_name = ? and grain = ? order by period_start",
        [kpi, grain],
    ).to_pylist()
    return [tuple(r.values()) for r in rows]


def margin_check(result: dg.ExecuteInProcessResult) -> Any:
    [evaluation] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "kpi_gross_margin_pct_within_threshold"
    ]
    assert evaluation.asset_key == dg.AssetKey(["marts", "kpi_snapshots"])
    return evaluation


# -- tests ----------------------------------------------------------------------------------------


def test_kpis_match_hand_computed_numbers_and_a_rerun_changes_nothing(env, warehouse, landing: Landing) -> None:
    write_history(landing)
    load_catalogue()
    result = run_pipeline(D1, D5)
    assert result.success

    assert_kpis(warehouse, ORDERS, CUSTOMERS, INVENTORY)
    rows = table_rows(warehouse, "marts.fct_kpi_daily", "kpi_date")
    money = ("revenue", "refunds", "net_revenue", "cogs", "gross_profit", "inventory_value")
    assert all(isinstance(r[c], M) for r in rows for c in money if r[c] is not None)
    # a ratio, not an amount: revenue / orders unrounded (not cut to 4 places), as a double
    assert all(isinstance(r["avg_order_value"], float) for r in rows if r["avg_order_value"] is not None)
    # the dbt tests of the commerce marts ran as asset checks and passed
    checks = result.get_asset_check_evaluations()
    assert {c.asset_key.to_user_string() for c in checks} >= {
        "marts/fct_kpi_daily",
        "marts/kpi_snapshots",
        "marts/fct_item_daily_demand",
    }
    failed = {
        (c.asset_key.to_user_string(), c.check_name): c
        for c in checks
        if not c.passed and not c.check_name.startswith("kpi_")
    }
    # ... except the warnings about days without landing files that other datasets have: no activity
    # events at all, no order file on D3 (stock has one), no snapshot file on D4 (orders have one)
    assert {key: (c.severity, c.metadata["missing_days"].value) for key, c in failed.items()} == {
        ("raw/activity_events", "landing_files_present"): (
            dg.AssetCheckSeverity.WARN,
            ", ".join(map(str, (D1, D2, D3, D4, D5))),
        ),
        ("raw/order_lines", "landing_files_present"): (dg.AssetCheckSeverity.WARN, str(D3)),
        ("raw/inventory_snapshots", "landing_files_present"): (dg.AssetCheckSeverity.WARN, str(D4)),
    }

    assert run_pipeline(D4).success  # re-running a day (and the days after it it recomputes) changes nothing
    assert_kpis(warehouse, ORDERS, CUSTOMERS, INVENTORY)


def test_out_of_order_loads_and_a_late_file_end_with_the_same_kpis(env, warehouse, landing: Landing) -> None:
    write_history(landing)
    load_catalogue()
    assert run_pipeline(D4, D5).success  # the last days first: A, B and C look new on D4/D5 for now
    assert run_pipeline(D1, D3).success  # then the first days: D4 and D5 are recomputed
    assert_kpis(warehouse, ORDERS, CUSTOMERS, INVENTORY)
    assert item_demand(warehouse) == ITEM_DEMAND

    write_late_order(landing)  # C's first order turns out to be on D2
    assert run_pipeline(D2).success
    assert_kpis(warehouse, ORDERS_LATE, CUSTOMERS_LATE, INVENTORY_LATE)


def test_item_daily_demand_is_zero_filled_per_active_item(env, warehouse, landing: Landing) -> None:
    write_history(landing)
    load_catalogue()
    assert run_pipeline(D1, D5).success

    assert item_demand(warehouse) == ITEM_DEMAND
    assert "I4" not in {row[1] for row in item_demand(warehouse)}  # inactive, no sales, no stock


def test_kpi_snapshots_trend_and_status(env, warehouse, landing: Landing) -> None:
    write_margin_history(landing)
    assert run_pipeline(FRI, TUE).success

    # (period_start, value, previous_value, change_pct, trend, status); thresholds: warn < 35, breach < 20,
    # flat band 1%
    assert snapshot_rows(warehouse, "gross_margin_pct", "day") == approx_floats(
        [
            (FRI, 40.0, None, None, "flat", "ok"),  # 40/100; nothing to compare with
            (SAT, 50.0, 40.0, 25.0, "up", "ok"),  # 100/200; (50-40)/40 = +25%
            (SUN, 20.0, 50.0, -60.0, "down", "warn"),  # 20/100; 20 is not below the breach threshold 20
            (MON, 20.1, 20.0, 0.5, "flat", "warn"),  # 201/1000; +0.5% is inside the 1% band
            (TUE, 10.0, 20.1, -10.1 * 100 / 20.1, "down", "breach"),  # 10/100; (10-20.1)/20.1 = -50.25%
        ]
    )
    # weeks start on Monday: Fri..Sun are in the week of 2025-01-06, Mon..Tue in the week of 01-13
    assert snapshot_rows(warehouse, "revenue", "week") == approx_floats(
        [
            (date(2025, 1, 6), 400.0, None, None, "flat", "ok"),  # 100 + 200 + 100
            (date(2025, 1, 13), 1100.0, 400.0, 175.0, "up", "ok"),  # 1000 + 100; (1100-400)/400 = +175%
        ]
    )
    # margin of the summed parts, not the mean of daily margins ((40+50+20)/3 = 36.7, (20.1+10)/2 = 15.05);
    # no week threshold for the margin, so always ok
    assert snapshot_rows(warehouse, "gross_margin_pct", "week") == approx_floats(
        [
            (date(2025, 1, 6), 40.0, None, None, "flat", "ok"),  # (400-240)/400
            (date(2025, 1, 13), 21100 / 1100, 40.0, (21100 / 1100 - 40) * 100 / 40, "down", "ok"),  # (1100-889)/1100
        ]
    )
    assert snapshot_rows(warehouse, "gross_margin_pct", "month") == approx_floats(
        [
            (date(2025, 1, 1), 37100 / 1500, None, None, "flat", "ok"),  # (1500-1129)/1500 = 24.73%
        ]
    )


def test_gross_margin_check_follows_the_latest_day(env, warehouse, landing: Landing) -> None:
    write_margin_history(landing)

    passing = margin_check(run_pipeline(FRI, SAT))  # latest day Sat: 50% >= 35
    assert passing.passed
    assert passing.metadata["value"].value == pytest.approx(50.0)

    warning = margin_check(run_pipeline(SUN, MON))  # latest day Mon: 20.1%, between 20 and 35
    assert not warning.passed
    assert warning.severity == dg.AssetCheckSeverity.WARN
    assert warning.metadata["value"].value == pytest.approx(20.1)

    breach = margin_check(run_pipeline(TUE))  # latest day Tue: 10% < 20
    assert not breach.passed
    assert breach.severity == dg.AssetCheckSeverity.ERROR
    assert {
        name: value.value
        for name, value in breach.metadata.items()
        if name in ("kpi", "value", "warn_threshold", "breach_threshold")
    } == {
        "kpi": "gross_margin_pct",
        "value": pytest.approx(10.0),
        "warn_threshold": 35.0,
        "breach_threshold": 20.0,
    }


# -- no inventory snapshots, a partial first week -------------------------------------------------

# One order a day by school A, revenue 100, cost 50, from Sat 2025-01-11 to Sun 2025-01-19, and no
# inventory snapshot at all. The week of Mon 2025-01-06 holds two of its days (the first loaded), the
# week of 2025-01-13 all seven; January holds 9 of its 31.
SAT11, SUN12, MON13, SUN19 = date(2025, 1, 11), date(2025, 1, 12), date(2025, 1, 13), date(2025, 1, 19)


def write_flat_history(landing: Landing) -> None:
    for n in range(9):
        day = date.fromordinal(SAT11.toordinal() + n)
        write_orders(landing, day, [line(f"F{n}", 1, day, "A", "I1", 1, "100.00", "50.00")])


def kpi_checks(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.check_name.startswith("kpi_")}


def snapshot_periods(warehouse, kpi: str) -> list[tuple]:
    rows = warehouse.query(
        "select grain, period_start, value, trend, status, loaded_days, is_complete_period from marts.kpi_snapshots "
        "where kpi_name = ? and grain in ('week', 'month') order by grain desc, period_start",
        [kpi],
    ).to_pylist()
    return [tuple(r.values()) for r in rows]


def test_kpis_without_data_and_a_partial_first_week_are_not_reported_as_fine(env, warehouse, landing: Landing) -> None:
    write_flat_history(landing)

    first = run_pipeline(SAT11, SUN12)  # the first two loaded days: a partial week
    assert first.success
    # week of 01-06: 2 of 7 days, not complete, so not judged against the weekly threshold
    assert snapshot_periods(warehouse, "net_revenue") == approx_floats(
        [
            ("week", date(2025, 1, 6), 200.0, "flat", "breach", 2, False),
            ("month", date(2025, 1, 1), 200.0, "flat", "ok", 2, False),  # no monthly threshold
        ]
    )
    checks = kpi_checks(first)
    net_revenue = checks["kpi_net_revenue_within_threshold"]
    assert (net_revenue.passed, net_revenue.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert net_revenue.metadata["status"].value == "no_data"
    assert "has no week of net_revenue to judge yet" in net_revenue.metadata["reason"].value

    # no snapshot: the stock KPIs have no value, no trend, status no_data, on every grain
    stock_rows = warehouse.query(
        "select kpi_name, grain, count(*) as n, count(value) as valued, count(trend) as trended, "
        "min(status) as lowest, max(status) as highest from marts.kpi_snapshots "
        "where kpi_name in ('stockout_rate', 'inventory_value', 'inventory_turnover_30d') "
        "group by kpi_name, grain order by kpi_name, grain"
    ).to_pylist()
    assert [tuple(r.values()) for r in stock_rows] == [
        (kpi, grain, n, 0, 0, "no_data", "no_data")
        for kpi in ("inventory_turnover_30d", "inventory_value", "stockout_rate")
        for grain, n in (("day", 2), ("month", 1), ("week", 1))
    ]
    stockout = checks["kpi_stockout_rate_within_threshold"]
    assert (stockout.passed, stockout.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert {k: stockout.metadata[k].value for k in ("status", "grain", "period_start", "value", "trend")} == {
        "status": "no_data",
        "grain": "day",
        "period_start": "2025-01-12",
        "value": None,
        "trend": None,
    }
    assert "no inventory snapshot loaded for it" in stockout.metadata["reason"].value
    # a KPI with a value is still judged as before: margin 50% >= 35
    assert checks["kpi_gross_margin_pct_within_threshold"].passed

    second = run_pipeline(MON13, SUN19)  # the first whole week
    assert second.success
    assert snapshot_periods(warehouse, "net_revenue") == approx_floats(
        [
            ("week", date(2025, 1, 6), 200.0, "flat", "breach", 2, False),
            ("week", date(2025, 1, 13), 700.0, "up", "breach", 7, True),  # (700-200)/200 = +250%
            ("month", date(2025, 1, 1), 900.0, "flat", "ok", 9, False),
        ]
    )
    net_revenue = kpi_checks(second)["kpi_net_revenue_within_threshold"]
    assert (net_revenue.passed, net_revenue.severity) == (False, dg.AssetCheckSeverity.ERROR)  # 700 < 1000
    assert (net_revenue.metadata["period_start"].value, net_revenue.metadata["value"].value) == ("2025-01-13", 700.0)
