"""Engagement marts on a small hand-made history whose numbers are worked out by hand below.

History (UTC):
  2025-01-01  u1@A login 08:10, view_content 08:40 (session s1); u2@A login 09:05 (no session);
              u3@B VIEW_CONTENT 10:15+02:00 = 08:15Z (s3)
  2025-01-02  u1@A complete_lesson (s4); u4@A login + export_grades (s5, an uncatalogued type)
  2025-01-03  u2@A logout (s6); u3@B search (s7); u5@B search (s8)

Every load order must end with exactly these tables: in order, reversed, re-run, late file.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest
from conftest import Landing, event, run_pipeline, run_unpartitioned, table_rows

D1, D2, D3 = date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)


def write_history(landing: Landing) -> None:
    landing.jsonl(
        "activity_events",
        D1,
        "part-1.jsonl",
        [
            event("e1", "2025-01-01T08:10:00Z", "u1", "A", "login", "s1"),
            event("e2", "2025-01-01T08:40:00Z", "u1", "A", "view_content", "s1"),
            event("e3", "2025-01-01T09:05:00Z", "u2", "A", "login", None),
            event("e4", "2025-01-01T10:15:00+02:00", "u3", "B", "VIEW_CONTENT", "s3"),
        ],
    )
    landing.jsonl(
        "activity_events",
        D2,
        "part-1.jsonl",
        [
            event("e5", "2025-01-02T10:00:00Z", "u1", "A", "complete_lesson", "s4"),
            event("e6", "2025-01-02T11:00:00Z", "u4", "A", "login", "s5"),
            event("e7", "2025-01-02T11:30:00Z", "u4", "A", "export_grades", "s5"),
        ],
    )
    landing.jsonl(
        "activity_events",
        D3,
        "part-1.jsonl",
        [
            event("e8", "2025-01-03T12:00:00Z", "u2", "A", "logout", "s6"),
            event("e9", "2025-01-03T12:00:00Z", "u3", "B", "search", "s7"),
            event("e10", "2025-01-03T13:00:00Z", "u5", "B", "search", "s8"),
        ],
    )


# (activity_date, org_id, active, new, returning, events, sessions, events_per_active_user)
DAILY_ENGAGEMENT = [
    (D1, "A", 2, 2, 0, 3, 1, 1.5),
    (D1, "B", 1, 1, 0, 1, 1, 1.0),
    (D2, "A", 2, 1, 1, 3, 2, 1.5),
    (D3, "A", 1, 0, 1, 1, 1, 1.0),
    (D3, "B", 2, 1, 1, 2, 2, 1.0),
]

# (activity_date, org_id, dau, wau, mau, stickiness)
ROLLING = [
    (D1, "A", 2, 2, 2, 1.0),
    (D1, "B", 1, 1, 1, 1.0),
    (D1, "__all__", 3, 3, 3, 1.0),
    (D2, "A", 2, 3, 3, 2 / 3),
    (D2, "B", 0, 1, 1, 0.0),
    (D2, "__all__", 2, 4, 4, 0.5),
    (D3, "A", 1, 3, 3, 1 / 3),
    (D3, "B", 2, 2, 2, 1.0),
    (D3, "__all__", 3, 5, 5, 0.6),
]

# (activity_date, org_id, activity_type, events, users, share_of_events, is_catalogued_activity)
ACTIVITY_SUMMARY = [
    (D1, "A", "login", 2, 2, 200 / 3, True),
    (D1, "A", "view_content", 1, 1, 100 / 3, True),
    (D1, "B", "view_content", 1, 1, 100.0, True),
    (D2, "A", "complete_lesson", 1, 1, 100 / 3, True),
    (D2, "A", "export_grades", 1, 1, 100 / 3, False),
    (D2, "A", "login", 1, 1, 100 / 3, True),
    (D3, "A", "logout", 1, 1, 100.0, True),
    (D3, "B", "search", 2, 2, 100.0, True),
]


def daily_engagement(warehouse) -> list[tuple]:
    return [
        (
            r["activity_date"],
            r["org_id"],
            r["active_users"],
            r["new_users"],
            r["returning_users"],
            r["events"],
            r["sessions"],
            pytest.approx(r["events_per_active_user"]),
        )
        for r in table_rows(warehouse, "marts.fct_daily_engagement", "activity_date, org_id")
    ]


def rolling(warehouse) -> list[tuple]:
    return [
        (r["activity_date"], r["org_id"], r["dau"], r["wau"], r["mau"], r["stickiness"])
        for r in table_rows(warehouse, "marts.fct_engagement_rolling", "activity_date, org_id")
    ]


def assert_history_marts(warehouse) -> None:
    assert daily_engagement(warehouse) == DAILY_ENGAGEMENT
    assert rolling(warehouse) == [row[:5] + (pytest.approx(row[5]),) for row in ROLLING]
    summary = [
        (
            r["activity_date"],
            r["org_id"],
            r["activity_type"],
            r["events"],
            r["users"],
            pytest.approx(float(r["share_of_events"])),
            r["is_catalogued_activity"],
        )
        for r in table_rows(warehouse, "marts.fct_activity_summary", "activity_date, org_id, activity_type")
    ]
    assert summary == [row[:5] + (pytest.approx(row[5]),) + row[6:] for row in ACTIVITY_SUMMARY]


def test_marts_match_hand_computed_numbers(env, warehouse, landing: Landing) -> None:
    write_history(landing)
    result = run_pipeline(D1, D3)
    assert result.success

    assert_history_marts(warehouse)
    hourly = [
        (r["activity_hour"].isoformat(), r["activity_type"], r["events"], r["users"])
        for r in table_rows(warehouse, "marts.fct_hourly_usage", "activity_hour, activity_type")
    ]
    assert hourly[:3] == [
        ("2025-01-01T08:00:00", "login", 1, 1),
        ("2025-01-01T08:00:00", "view_content", 2, 2),
        ("2025-01-01T09:00:00", "login", 1, 1),
    ]
    assert len(hourly) == 3 + 3 + 3  # day 2: 10h lesson, 11h export + login; day 3: 12h logout + search, 13h search
    metadata = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    engagement = metadata["marts/fct_daily_engagement"]
    assert engagement["rows_in_window"].value == 5
    assert engagement["run_window"].value == "2025-01-01 .. 2025-01-03"
    assert "| 2025-01-02 | 1 | 2 | 1 | 1 | 3 | 2 |" in engagement["preview"].value  # day 2: one school
    assert metadata["intermediate/int_user_activity_daily"]["rows_in_window"].value == 8
    # each day's materialization carries that day's own numbers, so the UI plots a real series
    by_day = {
        (e.asset_key.to_user_string(), e.partition): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    day2 = by_day[("marts/fct_daily_engagement", "2025-01-02")]
    # the window is on every day, its preview table on the run's last day only (the latest materialization)
    assert day2["run_window"].value == "2025-01-01 .. 2025-01-03" and "preview" not in day2
    assert "preview" in by_day[("marts/fct_daily_engagement", "2025-01-03")]
    assert {
        name: day2[name].value
        for name in ("schools", "active_users", "new_users", "returning_users", "events", "sessions")
    } == {"schools": 1, "active_users": 2, "new_users": 1, "returning_users": 1, "events": 3, "sessions": 2}
    rows = [by_day[("intermediate/int_user_activity_daily", day.isoformat())]["rows"].value for day in (D1, D2, D3)]
    assert sum(rows) == 8 and len(set(rows)) > 1  # per day, not the window's total three times
    loaded = [by_day[("raw/activity_events", day.isoformat())]["rows_loaded"].value for day in (D1, D2, D3)]
    assert sum(loaded) == 10 and len(set(loaded)) > 1  # each day's own load, not the run's total
    # every dbt test ran as an asset check and passed; only activity events landed, so the other daily
    # datasets warn that their files are missing on those days, and the KPIs that they have no value
    checks = result.get_asset_check_evaluations()
    assert checks and [c.check_name for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR] == []
    assert sorted(
        (c.asset_key.to_user_string(), c.metadata["missing_days"].value)
        for c in checks
        if not c.passed and c.check_name == "landing_files_present"
    ) == [
        ("raw/inventory_snapshots", "2025-01-01, 2025-01-02, 2025-01-03"),
        ("raw/order_lines", "2025-01-01, 2025-01-02, 2025-01-03"),
    ]
    assert {c.metadata["status"].value for c in checks if not c.passed and c.check_name.startswith("kpi_")} == {
        "no_data"
    }
    assert {c.asset_key.to_user_string() for c in checks} >= {
        "marts/fct_daily_engagement",
        "marts/fct_engagement_rolling",
        "raw/activity_events",
    }


def test_any_load_order_and_reruns_end_with_the_same_tables(env, warehouse, landing: Landing) -> None:
    write_history(landing)
    for day in (D3, D1, D2):  # the last day first, then the first: history arrives out of order
        assert run_pipeline(day).success
    assert_history_marts(warehouse)

    raw_before = table_rows(warehouse, "raw.activity_events", "event_id")
    assert run_pipeline(D2).success  # re-running a day changes nothing
    assert_history_marts(warehouse)
    after = table_rows(warehouse, "raw.activity_events", "event_id")
    assert [r["event_id"] for r in after] == [r["event_id"] for r in raw_before]
    assert len(after) == 10


def test_a_late_file_for_an_old_day_updates_history_dependent_metrics(env, warehouse, landing: Landing) -> None:
    write_history(landing)
    assert run_pipeline(D1, D3).success
    # u5's first event turns out to be on day 1 (a late file): u5 is new on day 1, not on day 3
    landing.jsonl(
        "activity_events", D1, "late.jsonl", [event("e11", "2025-01-01T20:00:00Z", "u5", "B", "search", "s9")]
    )
    assert run_pipeline(D1).success

    engagement = {(r[0], r[1]): r[2:6] for r in daily_engagement(warehouse)}
    assert engagement[(D1, "B")] == (2, 2, 0, 2)  # active, new, returning, events
    assert engagement[(D3, "B")] == (2, 0, 2, 2)  # u5 no longer new on day 3
    rolled = {(r[0], r[1]): r[2:5] for r in rolling(warehouse)}
    assert rolled[(D1, "B")] == (2, 2, 2)
    assert rolled[(D2, "B")] == (0, 2, 2)
    assert rolled[(D3, "__all__")] == (3, 5, 5)
    assert rolled[(D1, "__all__")] == (4, 4, 4)


def test_retention_cohorts_follow_first_activity(env, warehouse, landing: Landing) -> None:
    write_history(landing)
    assert run_pipeline(D1, D3).success
    assert run_unpartitioned(dg.AssetSelection.assets(["marts", "fct_retention_cohorts"])).success
    rows = table_rows(warehouse, "marts.fct_retention_cohorts", "cohort_week, org_id, weeks_since_first_activity")
    # all five users first appear in the week starting Monday 2024-12-30; everyone is in week 0
    assert [
        (r["cohort_week"], r["org_id"], r["weeks_since_first_activity"], r["cohort_users"], r["retained_users"])
        for r in rows
    ] == [
        (date(2024, 12, 30), "A", 0, 3, 3),
        (date(2024, 12, 30), "B", 0, 2, 2),
        (date(2024, 12, 30), "__all__", 0, 5, 5),
    ]


def test_an_event_id_seen_on_another_day_fails_the_run_that_repeats_it(env, warehouse, landing: Landing) -> None:
    # the loader keeps event_id unique within a day; across days the dbt test does, reading only the
    # ids the run wrote (a daily run must not group every day of history)
    landing.jsonl("activity_events", D1, "a.jsonl", [event("same", "2025-01-01T10:00:00Z", "u1")])
    landing.jsonl(
        "activity_events",
        D2,
        "a.jsonl",
        [
            event("same", "2025-01-02T10:00:00Z", "u2"),
            event("other", "2025-01-02T11:00:00Z", "u2"),
        ],
    )
    landing.jsonl("activity_events", D3, "a.jsonl", [event("new", "2025-01-03T10:00:00Z", "u1")])
    assert run_pipeline(D1).success

    repeated = run_pipeline(D2, raise_on_error=False)
    failed = [
        c for c in repeated.get_asset_check_evaluations() if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert [c.check_name for c in failed] == ["unique_across_days_stg_product__activity_events_event_id__activity_date"]
    # bad data is not retried, and the failure names the test
    assert not repeated.success
    assert [e for e in repeated.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
    [step_failure] = [e for e in repeated.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "dbt tests failed: unique_across_days_stg_product__activity_events_event_id__activity_date" in (
        step_failure.step_failure_data.error.message
    )

    later = run_pipeline(D3)  # writes no id seen before: its check passes, the history is not grouped again
    assert [
        c.check_name
        for c in later.get_asset_check_evaluations()
        if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR
    ] == []


def test_a_window_checks_the_grain_of_every_day_from_its_start_on(env, warehouse, landing: Landing) -> None:
    # a window rewrites later days of some marts (first days after it, rolling windows), so their grain
    # tests read every day from the window's start on, not only the window; earlier days are not read
    d5 = date(2025, 1, 5)
    landing.jsonl("activity_events", D1, "a.jsonl", [event("e1", "2025-01-01T10:00:00Z", "u1")])
    landing.jsonl("activity_events", D3, "a.jsonl", [event("e3", "2025-01-03T10:00:00Z", "u1")])
    landing.jsonl("activity_events", d5, "a.jsonl", [event("e5", "2025-01-05T10:00:00Z", "u2")])
    assert run_pipeline(D1, d5).success
    # a second row for a day the run of D1 does not rewrite (u1's next day is D3; u2 is new on D5)
    warehouse.execute(
        "insert into marts.fct_daily_engagement select * from marts.fct_daily_engagement where activity_date = ?", [d5]
    )

    rerun = run_pipeline(D1, raise_on_error=False)
    failed = [
        c.check_name
        for c in rerun.get_asset_check_evaluations()
        if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert len(failed) == 1 and failed[0].startswith("unique_combination_of_columns_fct_daily_engagement_"), failed
    assert not rerun.success

    # days before the window are not read: a second row on D1 does not fail the run of D5 (which
    # rewrites D5, its duplicate included)
    warehouse.execute(
        "insert into marts.fct_daily_engagement select * from marts.fct_daily_engagement where activity_date = ?", [D1]
    )
    later = run_pipeline(d5)
    assert later.success
    grain = [c for c in later.get_asset_check_evaluations() if c.check_name.startswith("unique_combination")]
    assert grain and all(c.passed for c in grain)
