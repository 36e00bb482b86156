"""Weekly reports, their delivery by SMTP and on-demand custom reports, on a small hand-made history
whose numbers are worked out by hand below.

Schools (organizations dimension): A "Alder School", B "Birch Academy", C "Cedar College" (no activity).

Previous week, Mon 2025-01-06 .. Sun 01-12:
  01-06  u1@A login + view_content (s1), u2@A login (s2), u3@B login (s3)
  01-08  u1@A complete_lesson (s4)
Report week, Mon 2025-01-13 .. Sun 01-19:
  01-13  u1@A login + view_content (s5), u4@A login (s6, first ever), u3@B search (s7)
  01-15  u2@A login (s8), u4@A complete_lesson (s9), u5@B login + search (s10, first ever)
  01-19  u1@A logout (s11), u3@B view_content (no session)
  01-14  order O1 by A: 2 x 5.00 completed (revenue 10)

School A, report week: daily active 2 (01-13: u1 u4), 2 (01-15: u2 u4), 1 (01-19: u1) -> 5 user-days,
  avg DAU 5/7, peak 2; new 1 (u4); events 3 + 2 + 1 = 6; sessions 2 + 2 + 1 = 5; events per active user
  6/5 = 1.2; WAU on Sunday {u1 u2 u4} = 3; MAU {u1 u2 u4} = 3.
  previous week: active 2 + 1 = 3 user-days, peak 2, new 2, events 4, sessions 3, WAU {u1 u2} = 2, MAU 2.
  change: WAU +50%, events +50%, new users -50%, sessions +66.67%, avg DAU (5-3)/3 = +66.67%.
  activity: login 3 (prev 2, +50%), view_content 1, complete_lesson 1, logout 1 -> login 50% of 6.
School B: active 1 (u3), 1 (u5), 1 (u3) -> 3, peak 1, new 1 (u5), events 1 + 2 + 1 = 4, sessions 1 + 1 + 0 = 2,
  4/3 events per active user, WAU {u3 u5} = 2, MAU 2. previous: active 1, new 1, events 1, sessions 1, WAU 1.
  activity: search 2 (50%), login 1 (prev 1, 0%), view_content 1.
School C: all zeros, both weeks.
Platform: daily active 3 (u1 u4 u3), 3 (u2 u4 u5), 2 (u1 u3) -> 8, peak 3, new 2, events 10, sessions 7,
  WAU {u1..u5} = 5, MAU 5, active schools 2. previous: 3 + 1 = 4, new 3, events 5, sessions 4, WAU 3, MAU 3,
  active schools 2.
"""

import base64
import email
import email.policy
import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from conftest import ORDER_HEADER, Landing, definitions, event, pipeline_resources, run_pipeline, run_unpartitioned
from tests_support import free_port

from analytics_pipeline.defs.reporting.delivery import DELIVERY_KEY, TRANSIENT_RETRY_POLICY, deliver_week
from analytics_pipeline.defs.reporting.weekly import WEEKLY_REPORTS_KEY, build_weekly_reports
from analytics_pipeline.jobs import DAILY_ASSETS
from analytics_pipeline.lib.reporting.figures import Week
from analytics_pipeline.resources.reports import ReportDeliveryResource, ReportsResource
from analytics_pipeline.settings import get_settings

WEEK = Week(date(2025, 1, 13))
FIRST_DAY, LAST_DAY = date(2025, 1, 6), date(2025, 1, 19)
ORG_HEADER = ["org_id", "name", "plan", "region", "created_at", "updated_at"]
NAMES = {"A": "Alder School", "B": "Birch Academy", "C": "Cedar College"}


def write_history(landing: Landing) -> None:
    landing.csv(
        "organizations",
        None,
        "orgs.csv",
        ORG_HEADER,
        [[org, name, "pro", "eu", "2024-09-01T00:00:00Z", "2024-09-01T00:00:00Z"] for org, name in NAMES.items()],
    )
    days: dict[str, list[dict[str, Any]]] = {
        "2025-01-06": [
            event("e1", "T08:00", "u1", "A", "login", "s1"),
            event("e2", "T08:10", "u1", "A", "view_content", "s1"),
            event("e3", "T09:00", "u2", "A", "login", "s2"),
            event("e4", "T10:00", "u3", "B", "login", "s3"),
        ],
        "2025-01-08": [event("e5", "T08:00", "u1", "A", "complete_lesson", "s4")],
        "2025-01-13": [
            event("e6", "T08:00", "u1", "A", "login", "s5"),
            event("e7", "T08:10", "u1", "A", "view_content", "s5"),
            event("e8", "T09:00", "u4", "A", "login", "s6"),
            event("e9", "T10:00", "u3", "B", "search", "s7"),
        ],
        "2025-01-15": [
            event("e10", "T08:00", "u2", "A", "login", "s8"),
            event("e11", "T09:00", "u4", "A", "complete_lesson", "s9"),
            event("e12", "T10:00", "u5", "B", "login", "s10"),
            event("e13", "T10:05", "u5", "B", "search", "s10"),
        ],
        "2025-01-19": [
            event("e14", "T08:00", "u1", "A", "logout", "s11"),
            event("e15", "T10:00", "u3", "B", "view_content", None),
        ],
    }
    for day, events in days.items():
        for record in events:
            record["occurred_at"] = f"{day}{record['occurred_at']}:00Z"
        landing.jsonl("activity_events", date.fromisoformat(day), "part-1.jsonl", events)
    landing.csv(
        "order_lines",
        date(2025, 1, 14),
        "orders.csv",
        ORDER_HEADER,
        [["O1", 1, "2025-01-14T10:00:00Z", "A", "a-buyer", "I1", 2, "5.00", "3.00", "USD", "completed"]],
    )


def build_history(landing: Landing) -> None:
    write_history(landing)
    assert run_unpartitioned(dg.AssetSelection.assets(["raw", "organizations"])).success
    # the daily assets the weekly report reads, for both weeks, in one run
    assert run_pipeline(
        FIRST_DAY, LAST_DAY, selection=dg.AssetSelection.assets(WEEKLY_REPORTS_KEY).upstream() & DAILY_ASSETS
    ).success


def materialize_week(
    *keys: str, instance: dg.DagsterInstance | None = None, **kwargs: Any
) -> dg.ExecuteInProcessResult:
    defs = definitions()
    return dg.materialize(
        assets=[*defs.assets, *defs.asset_checks],
        resources=dict(defs.resources),
        selection=[dg.AssetKey(["reporting", key]) for key in keys or ("weekly_reports",)],
        partition_key=WEEK.start.isoformat(),
        instance=instance or dg.DagsterInstance.ephemeral(),
        **kwargs,
    )


def week_dir() -> Path:
    return get_settings().output_dir / "reports" / WEEK.start.isoformat()


def summary(folder: str) -> dict[str, tuple[Any, Any, Any]]:
    rows = pd.read_csv(week_dir() / folder / "summary.csv").to_dict("records")
    return {r["metric"]: (_value(r["this_week"]), _value(r["previous_week"]), _value(r["change_pct"])) for r in rows}


def _value(value: Any) -> Any:
    return None if pd.isna(value) else float(value)


# (metric, this week, previous week, change %): worked out in the module docstring
EXPECTED = {
    "A": {
        "weekly_active_users": (3, 2, 50.0),
        "avg_daily_active_users": (5 / 7, 3 / 7, 200 / 3),
        "peak_daily_active_users": (2, 2, 0.0),
        "new_users": (1, 2, -50.0),
        "events": (6, 4, 50.0),
        "sessions": (5, 3, 200 / 3),
        "events_per_active_user": (1.2, 4 / 3, -10.0),
        "monthly_active_users": (3, 2, 50.0),
    },
    "B": {
        "weekly_active_users": (2, 1, 100.0),
        "avg_daily_active_users": (3 / 7, 1 / 7, 200.0),
        "peak_daily_active_users": (1, 1, 0.0),
        "new_users": (1, 1, 0.0),
        "events": (4, 1, 300.0),
        "sessions": (2, 1, 100.0),
        "events_per_active_user": (4 / 3, 1.0, 100 / 3),
        "monthly_active_users": (2, 1, 100.0),
    },
    "C": {
        "weekly_active_users": (0, 0, None),
        "avg_daily_active_users": (0, 0, None),
        "peak_daily_active_users": (0, 0, None),
        "new_users": (0, 0, None),
        "events": (0, 0, None),
        "sessions": (0, 0, None),
        "events_per_active_user": (None, None, None),
        "monthly_active_users": (0, 0, None),
    },
    "platform": {
        "weekly_active_users": (5, 3, 200 / 3),
        "avg_daily_active_users": (8 / 7, 4 / 7, 100.0),
        "peak_daily_active_users": (3, 3, 0.0),
        "new_users": (2, 3, -100 / 3),
        "events": (10, 5, 100.0),
        "sessions": (7, 4, 75.0),
        "events_per_active_user": (1.25, 1.25, 0.0),
        "monthly_active_users": (5, 3, 200 / 3),
        "active_schools": (2, 2, 0.0),
    },
}


def assert_numbers(
    actual: dict[str, tuple[Any, Any, Any]], expected: dict[str, tuple[Any, Any, Any]], where: str
) -> None:
    assert list(actual) == list(expected), where
    for metric, values in expected.items():
        for got, want in zip(actual[metric], values, strict=False):
            assert got == (None if want is None else pytest.approx(want, abs=1e-4)), (where, metric)


def test_weekly_reports_for_every_school_hold_the_hand_computed_numbers(env, warehouse, landing: Landing) -> None:
    build_history(landing)
    result = materialize_week()
    assert result.success

    folders = sorted(p.name for p in week_dir().iterdir())
    assert folders == ["A", "B", "C", "manifest.json", "platform"]
    for folder, expected in EXPECTED.items():
        assert_numbers(summary(folder), expected, folder)

    # daily rows: every day of the week, zero-filled
    daily = pd.read_csv(week_dir() / "A" / "daily.csv")
    assert list(daily["activity_date"]) == [d.isoformat() for d in WEEK.days]
    assert list(daily["active_users"]) == [2, 0, 2, 0, 0, 0, 1]
    assert list(daily["new_users"]) == [1, 0, 0, 0, 0, 0, 0]
    assert list(daily["events"]) == [3, 0, 2, 0, 0, 0, 1]
    assert list(daily["active_users_previous_week"]) == [2, 0, 1, 0, 0, 0, 0]
    assert list(daily["wau"]) == [2, 2, 3, 3, 3, 3, 3]  # 7 days ending each date: 01-07..01-13 holds u1 u4
    platform_daily = pd.read_csv(week_dir() / "platform" / "daily.csv")
    assert list(platform_daily["active_users"]) == [3, 0, 3, 0, 0, 0, 2]
    assert list(platform_daily["active_schools"]) == [2, 0, 2, 0, 0, 0, 2]

    activity = pd.read_csv(week_dir() / "A" / "activity.csv").to_dict("records")
    assert [(r["activity_type"], r["events"], r["previous_week_events"]) for r in activity] == [
        ("login", 3, 2),
        ("complete_lesson", 1, 1),
        ("logout", 1, 0),
        ("view_content", 1, 1),
    ]
    assert activity[0]["share_of_events_pct"] == pytest.approx(50.0)
    assert activity[0]["change_pct"] == pytest.approx(50.0)
    assert pd.isna(activity[2]["change_pct"])  # no logout the week before

    # the workbook holds the same numbers
    workbook = pd.read_excel(week_dir() / "B" / "report.xlsx", sheet_name=None)
    assert {"summary", "daily", "activity"} <= set(workbook)
    b = {r["metric"]: r["this_week"] for r in workbook["summary"].to_dict("records")}
    assert (b["weekly_active_users"], b["events"], b["sessions"]) == (2, 4, 2)
    assert [(r["activity_type"], r["events"]) for r in workbook["activity"].to_dict("records")] == [
        ("search", 2),
        ("login", 1),
        ("view_content", 1),
    ]

    # platform: every school's figures, the week's KPIs, no forecast yet
    schools = pd.read_csv(week_dir() / "platform" / "schools.csv").to_dict("records")
    assert [(s["org_id"], s["school"], s["weekly_active_users"], s["events"], s["new_users"]) for s in schools] == [
        ("A", "Alder School", 3, 6, 1),
        ("B", "Birch Academy", 2, 4, 1),
        ("C", "Cedar College", 0, 0, 0),
    ]
    kpis = pd.read_csv(week_dir() / "platform" / "kpis.csv").set_index("kpi_name")
    assert kpis.at["revenue", "value"] == pytest.approx(10.0) and kpis.at["orders", "value"] == 1

    # charts: self-contained HTML with embedded PNGs and every school's figures
    platform_html = (week_dir() / "platform" / "report.html").read_text()
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', platform_html)
    assert {alt for alt, _ in images} >= {
        "Daily active users, Platform",
        "Activity mix, Platform",
        "Week-over-week change, Platform",
        "Weekly active users by school",
    }
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for _, data in images)
    for org, name in NAMES.items():
        row = re.search(rf"<tr><td>{org}</td><td>{name}</td>(.*?)</tr>", platform_html)
        assert row, name
        wau, events = EXPECTED[org]["weekly_active_users"][0], EXPECTED[org]["events"][0]
        assert re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))[0] == str(wau)
        assert f"<td>{events}</td>" in row.group(1)
    assert "No forecast yet." in platform_html and 'src="http' not in platform_html and "<link" not in platform_html
    school_html = (week_dir() / "A" / "report.html").read_text()
    assert "Weekly report: Alder School" in school_html and school_html.count("data:image/png;base64,") == 3

    # metadata links the files and previews the headline numbers
    materialization = result.asset_materializations_for_node("reporting__weekly_reports")[0]
    assert materialization.metadata["platform_report"].value == str(week_dir() / "platform" / "report.html")
    assert "Alder School" in materialization.metadata["preview"].value
    assert materialization.metadata["weekly_active_users"].value == 5

    # re-running the week replaces its files
    stray = week_dir() / "A" / "stale.csv"
    stray.write_text("old")
    assert materialize_week().success
    assert not stray.exists() and (week_dir() / "A" / "summary.csv").exists()
    assert [p.name for p in week_dir().parent.iterdir()] == [WEEK.start.isoformat()]  # no temp folders left


# -- marts written by hand: delivery and custom reports need numbers, not the whole pipeline ---------

# report week 2025-01-13: A active on Monday (u1 u4) and Tuesday (u1), B on Monday (u3); loaded up to Sunday
SEEDED = {
    "marts.fct_daily_engagement": (
        "activity_date date, org_id varchar, active_users bigint, new_users bigint, returning_users bigint, "
        "events bigint, sessions bigint, events_per_active_user double precision",
        [
            ("2025-01-13", "A", 2, 1, 1, 3, 2, 1.5),
            ("2025-01-13", "B", 1, 0, 1, 1, 1, 1.0),
            ("2025-01-14", "A", 1, 0, 1, 2, 1, 2.0),
        ],
    ),
    "marts.fct_engagement_rolling": (
        "activity_date date, org_id varchar, dau bigint, wau bigint, mau bigint, stickiness double precision",
        [
            ("2025-01-13", "A", 2, 2, 3, 2 / 3),
            ("2025-01-13", "B", 1, 1, 1, 1.0),
            ("2025-01-13", "__all__", 3, 3, 4, 0.75),
            ("2025-01-14", "A", 1, 2, 3, 1 / 3),
            ("2025-01-14", "B", 0, 1, 1, 0.0),
            ("2025-01-14", "__all__", 1, 3, 4, 0.25),
            ("2025-01-19", "A", 0, 2, 3, 0.0),
            ("2025-01-19", "B", 0, 1, 1, 0.0),
            ("2025-01-19", "__all__", 0, 3, 4, 0.0),
        ],
    ),
    "marts.fct_activity_summary": (
        "activity_date date, org_id varchar, activity_type varchar, events bigint, users bigint, share_of_events double precision",
        [
            ("2025-01-13", "A", "login", 2, 2, 200 / 3),
            ("2025-01-13", "A", "view_content", 1, 1, 100 / 3),
            ("2025-01-13", "B", "search", 1, 1, 100.0),
            ("2025-01-14", "A", "login", 2, 1, 100.0),
        ],
    ),
}


def seed_marts(warehouse) -> None:
    with warehouse.transaction() as session:
        for table, (columns, rows) in SEEDED.items():
            session.execute(f"create table {table} ({columns})")
            for row in rows:
                session.execute(f"insert into {table} values ({', '.join('?' for _ in row)})", row)
        for org, name in NAMES.items():
            session.execute(
                "insert into raw.organizations (org_id, name, updated_at) values (?, ?, ?)",
                (org, name, "2024-09-01 00:00:00"),
            )


def seed_forecast(warehouse) -> None:
    """Forecast tables as SPEC §5 describes them (built by the forecasting assets in real runs)."""
    with warehouse.transaction() as session:
        session.execute(
            "create table forecast.demand_forecasts (item_id varchar, as_of_date date, forecast_date date, "
            "model varchar, yhat double precision, yhat_lo_80 double precision, yhat_hi_80 double precision, "
            "yhat_lo_95 double precision, yhat_hi_95 double precision)"
        )
        vintages = [("2025-01-19", {"I1": 2.0, "I2": 1.0}), ("2025-01-12", {"I2": 9.0})]  # the older vintage is ignored
        for as_of, per_day in vintages:
            for item, yhat in per_day.items():
                for day in (1, 2, 3, 8):  # day 8 is past the 7-day highlight window
                    forecast_date = date.fromisoformat(as_of).toordinal() + day
                    session.execute(
                        "insert into forecast.demand_forecasts values (?, ?, ?, 'ets', ?, ?, ?, ?, ?)",
                        (item, as_of, date.fromordinal(forecast_date), yhat, yhat - 1, yhat + 1, yhat - 2, yhat + 2),
                    )
        session.execute(
            "create table marts.mart_reorder_recommendations (item_id varchar, on_hand bigint, "
            "days_of_cover double precision, projected_stockout_date date, suggested_reorder_qty bigint)"
        )
        session.execute(
            "insert into marts.mart_reorder_recommendations values ('I2', 3, 3.0, '2025-01-22', 10), "
            "('I1', 40, 20.0, '2025-02-08', 0)"
        )


class Inbox:
    """An aiosmtpd handler: keeps what it accepts, refuses some addresses, can fail the first DATA."""

    def __init__(self, refuse: tuple[str, ...] = (), fail_first_data: int = 0):
        self.messages: list[email.message.EmailMessage] = []
        self.refuse, self.fail_first_data, self.data_attempts = set(refuse), fail_first_data, 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.data_attempts += 1
        if self.data_attempts <= self.fail_first_data:
            return "451 4.3.0 Try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Starts a real SMTP server on a free port; ``smtp(inbox)`` points the report settings at it."""
    controllers = []

    def start(inbox: Inbox, recipients: str) -> Inbox:
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
        controller.start()
        controllers.append(controller)
        monkeypatch.setenv("ANALYTICS_REPORT_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("ANALYTICS_REPORT_SMTP_PORT", str(controller.port))
        monkeypatch.setenv("ANALYTICS_REPORT_EMAIL_FROM", "reports@analytics.example")
        monkeypatch.setenv("ANALYTICS_REPORT_RECIPIENTS", recipients)
        return inbox

    yield start
    for controller in controllers:
        controller.stop()


def attachments(message: email.message.EmailMessage) -> dict[str, bytes]:
    return {part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()}


def delivery_log() -> dict[str, Any]:
    return json.loads((week_dir() / "delivery.json").read_text())["deliveries"]


def test_delivery_mails_each_school_its_report_with_the_files_attached(env, warehouse, smtp, monkeypatch) -> None:
    seed_marts(warehouse)
    seed_forecast(warehouse)
    # off by default: the delivery step records that and sends nothing
    monkeypatch.setenv("ANALYTICS_REPORT_SMTP_HOST", "")
    off = materialize_week("weekly_reports", "weekly_report_delivery")
    assert off.success
    metadata = off.asset_materializations_for_node("reporting__weekly_report_delivery")[0].metadata
    assert metadata["delivery"].value.startswith("off") and not (week_dir() / "delivery.json").exists()

    inbox = smtp(Inbox(), "A=head@alder.example, office@alder.example; platform=ops@analytics.example")
    result = materialize_week("weekly_report_delivery")
    assert result.success

    by_subject = {m["Subject"]: m for m in inbox.messages}
    assert sorted(by_subject) == [
        "Weekly report 2025-01-13 to 2025-01-19: Alder School",
        "Weekly report 2025-01-13 to 2025-01-19: Platform",
    ]
    alder = by_subject["Weekly report 2025-01-13 to 2025-01-19: Alder School"]
    assert alder["X-Envelope-To"] == "head@alder.example, office@alder.example"
    assert alder["From"] == "reports@analytics.example"
    files = attachments(alder)
    assert sorted(files) == [
        f"A-2025-01-13-{name}" for name in ("activity.csv", "daily.csv", "report.html", "report.xlsx", "summary.csv")
    ]
    for name, content in files.items():
        assert content == (week_dir() / "A" / name.removeprefix("A-2025-01-13-")).read_bytes(), name
    body = alder.get_body(("plain",)).get_content()
    assert "Weekly active users: 2" in body and "Events: 5" in body  # A: u1 u4 active; 3 + 2 events
    platform_files = attachments(by_subject["Weekly report 2025-01-13 to 2025-01-19: Platform"])
    assert {"platform-2025-01-13-schools.csv", "platform-2025-01-13-forecast.csv"} <= set(platform_files)

    # forecast highlights: the latest vintage's next 7 days per item (2 x 3 days and 1 x 3 days), reorders first
    forecast = pd.read_csv(week_dir() / "platform" / "forecast.csv").to_dict("records")
    assert [(r["item_id"], r["forecast_units_7d"], r["lo_80"], r["hi_80"]) for r in forecast] == [
        ("I1", 6.0, 3.0, 9.0),
        ("I2", 3.0, 0.0, 6.0),
    ]
    assert list(pd.read_csv(week_dir() / "platform" / "reorder.csv")["item_id"]) == ["I2", "I1"]
    assert "No forecast yet." not in (week_dir() / "platform" / "report.html").read_text()

    log = delivery_log()
    assert (log["A"]["status"], log["platform"]["status"]) == ("sent", "sent")
    assert log["B"]["status"] == log["C"]["status"] == "no recipients"
    metadata = result.asset_materializations_for_node("reporting__weekly_report_delivery")[0].metadata
    assert metadata["sent"].value == 2 and metadata["failed"].value == 0


def test_delivery_failures_are_reported_retried_and_keep_the_files(env, warehouse, smtp, monkeypatch) -> None:
    seed_marts(warehouse)
    instance = dg.DagsterInstance.ephemeral()
    # a refused mailbox (5xx) fails the delivery at once and names the school; the others are delivered
    inbox = smtp(Inbox(refuse=("nobody@birch.example",)), "A=head@alder.example;B=nobody@birch.example")
    result = materialize_week("weekly_reports", "weekly_report_delivery", instance=instance, raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("reporting__weekly_report_delivery")
    assert "Birch Academy (B)" in failure.user_failure_data.description
    assert "550" in failure.user_failure_data.description
    assert [m["Subject"][-12:] for m in inbox.messages] == ["Alder School"]
    assert [e.event_type_value for e in result.all_events].count("STEP_RESTARTED") == 0  # permanent: no retry
    assert delivery_log()["B"]["status"] == "failed" and delivery_log()["A"]["status"] == "sent"
    assert instance.get_latest_materialization_event(dg.AssetKey(["reporting", "weekly_reports"])) is not None
    assert (week_dir() / "B" / "report.xlsx").exists()

    # the mail server is down: a transient failure (the asset's retry policy retries it), the files stay
    monkeypatch.setenv("ANALYTICS_REPORT_SMTP_PORT", str(free_port()))
    down = {
        d.target: d
        for d in deliver_week(ReportDeliveryResource.from_settings(get_settings()), week_dir(), WEEK, "run-while-down")
    }
    assert down["A"].status == down["B"].status == "failed" and down["A"].transient
    assert "cannot reach the mail server 127.0.0.1" in down["A"].error
    assert delivery_log()["A"]["status"] == "failed"
    assert sorted(p.name for p in (week_dir() / "A").iterdir()) == [
        "activity.csv",
        "daily.csv",
        "report.html",
        "report.xlsx",
        "summary.csv",
    ]
    assert definitions().resolve_assets_def(DELIVERY_KEY).op.retry_policy == TRANSIENT_RETRY_POLICY

    # a temporary refusal (4xx) is retried by the retry policy; what was accepted is not sent twice
    inbox = smtp(Inbox(fail_first_data=1), "platform=ops@analytics.example;A=head@alder.example")
    retried = materialize_week("weekly_report_delivery", instance=instance)
    assert retried.success
    assert [e.event_type_value for e in retried.all_events].count("STEP_RESTARTED") == 1
    assert inbox.data_attempts == 3  # platform refused, A sent; then platform again
    assert sorted(m["X-Envelope-To"] for m in inbox.messages) == ["head@alder.example", "ops@analytics.example"]


def run_custom_report(config: dict[str, Any]) -> dg.ExecuteInProcessResult:
    job = definitions().resolve_job_def("custom_report")
    return job.execute_in_process(
        run_config={"ops": {"write_custom_report": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def custom_dir(result: dg.ExecuteInProcessResult) -> Path:
    return get_settings().output_dir / "reports" / "custom" / result.run_id


def test_custom_report_job_from_run_config(env, warehouse) -> None:
    seed_marts(warehouse)
    # the launchpad scaffolds a config from the defaults: every field has one
    from analytics_pipeline.defs.reporting.custom import write_custom_report

    fields = write_custom_report.config_schema.config_type.fields
    assert {name: field.is_required for name, field in fields.items()} == {
        "start_date": False,
        "end_date": False,
        "schools": False,
        "metrics": False,
        "format": False,
    }

    csv = run_custom_report(
        {
            "start_date": "2025-01-13",
            "end_date": "2025-01-14",
            "schools": ["A"],
            "metrics": ["active_users", "events", "wau", "activity_mix"],
            "format": "csv",
        }
    )
    assert csv.success
    assert sorted(p.name for p in custom_dir(csv).iterdir()) == [
        "activity_mix.csv",
        "daily_metrics.csv",
        "request.json",
    ]
    daily = pd.read_csv(custom_dir(csv) / "daily_metrics.csv").to_dict("records")
    assert daily == [
        {
            "activity_date": "2025-01-13",
            "org_id": "A",
            "school": "Alder School",
            "active_users": 2,
            "events": 3,
            "wau": 2,
        },
        {
            "activity_date": "2025-01-14",
            "org_id": "A",
            "school": "Alder School",
            "active_users": 1,
            "events": 2,
            "wau": 2,
        },
    ]
    mix = pd.read_csv(custom_dir(csv) / "activity_mix.csv").to_dict("records")
    assert [(r["org_id"], r["activity_type"], r["events"]) for r in mix] == [
        ("A", "login", 4),
        ("A", "view_content", 1),
    ]
    assert [r["share_of_events_pct"] for r in mix] == [pytest.approx(80.0), pytest.approx(20.0)]

    xlsx = run_custom_report(
        {"start_date": "2025-01-13", "end_date": "2025-01-14", "metrics": ["events", "mau"], "format": "xlsx"}
    )
    assert xlsx.success
    rows = pd.read_excel(custom_dir(xlsx) / "custom_report.xlsx", sheet_name="daily_metrics").to_dict("records")
    # every school; B has no engagement row on the 14th but is in the rolling window: 0 events, MAU 1
    assert [(r["org_id"], r["events"], r["mau"]) for r in rows] == [("A", 3, 3), ("B", 1, 1), ("A", 2, 3), ("B", 0, 1)]

    page = run_custom_report(
        {
            "start_date": "2025-01-13",
            "end_date": "2025-01-14",
            "format": "html",
            "metrics": ["active_users", "activity_mix"],
        }
    )
    assert page.success
    text = (custom_dir(page) / "custom_report.html").read_text()
    assert text.count("data:image/png;base64,") == 2 and "Alder School" in text and "Birch Academy" in text

    bad_metric = run_custom_report({"metrics": ["revenue"]})
    assert not bad_metric.success
    message = bad_metric.failure_data_for_node("write_custom_report").user_failure_data.description
    assert "Unknown metric(s) 'revenue'" in message and "active_users" in message
    unknown_school = run_custom_report({"start_date": "2025-01-13", "end_date": "2025-01-14", "schools": ["Z"]})
    assert (
        "Unknown school(s): Z"
        in unknown_school.failure_data_for_node("write_custom_report").user_failure_data.description
    )

    # the retention job deletes old week folders and leaves custom reports (not a date) alone
    from analytics_pipeline.defs.operations.retention import apply_retention

    build_weekly_reports(warehouse, ReportsResource.from_settings(get_settings()).folder, WEEK)
    resources = pipeline_resources()
    report = apply_retention(
        warehouse, resources["retention"], resources["alerting"], resources["reports"], date(2026, 1, 1)
    )
    assert f"reports/{WEEK.start.isoformat()}/" in report.files_deleted
    assert custom_dir(csv).exists() and not week_dir().exists()


def test_weekly_schedule_asks_for_the_last_complete_week() -> None:
    from analytics_pipeline.defs.reporting.schedules import weekly_report_schedule

    assert weekly_report_schedule.cron_schedule == "0 9 * * 1"
    monday = dg.build_schedule_context(
        scheduled_execution_time=pd.Timestamp("2025-01-20 09:00", tz="UTC").to_pydatetime()
    )
    request = weekly_report_schedule(monday)
    assert request.partition_key == "2025-01-13" and request.run_key == "weekly-report:2025-01-13"
    too_early = dg.build_schedule_context(
        scheduled_execution_time=pd.Timestamp("2024-12-30 09:00", tz="UTC").to_pydatetime()
    )
    assert isinstance(weekly_report_schedule(too_early), dg.SkipReason)  # the first week starts 2024-12-30


def test_recipients_setting_is_checked() -> None:
    from analytics_pipeline.settings import Settings, SettingsError

    settings = Settings.from_env({"ANALYTICS_REPORT_RECIPIENTS": "A=a@x.org, b@x.org; platform=ops@x.org"})
    assert dict(settings.report_recipients).get("A") == ("a@x.org", "b@x.org")
    assert dict(settings.report_recipients).get("C", ()) == ()
    assert not Settings.from_env({}).report_smtp_host  # delivery is off by default
    with pytest.raises(SettingsError, match="ANALYTICS_REPORT_RECIPIENTS"):
        Settings.from_env({"ANALYTICS_REPORT_RECIPIENTS": "A=not-an-address"})


def test_reporting_is_registered_with_weekly_partitions_mapped_to_days() -> None:
    defs = definitions()
    graph = defs.resolve_asset_graph()
    for key in (WEEKLY_REPORTS_KEY, DELIVERY_KEY):
        node = graph.get(key)
        assert node.group_name == "reporting"
        assert isinstance(node.partitions_def, dg.WeeklyPartitionsDefinition)
        assert (
            node.partitions_def.get_first_partition_key() == "2024-12-30"
        )  # the Monday of ANALYTICS_START_DATE's week
    assert DELIVERY_KEY in graph.get(WEEKLY_REPORTS_KEY).child_keys
    reports = defs.resolve_assets_def(WEEKLY_REPORTS_KEY)
    engagement = dg.AssetKey(["marts", "fct_daily_engagement"])
    daily = graph.get(engagement).partitions_def
    upstream = (
        reports.get_partition_mapping(engagement)
        .get_upstream_mapped_partitions_result_for_partitions(
            reports.partitions_def.subset_with_partition_keys(["2025-01-13"]),
            reports.partitions_def,
            daily,
        )
        .partitions_subset
    )
    # the week and the week before (compared with it)
    assert sorted(upstream.get_partition_keys()) == [
        date.fromordinal(date(2025, 1, 6).toordinal() + d).isoformat() for d in range(14)
    ]
    assert defs.resolve_job_def("weekly_report") and defs.resolve_job_def("custom_report")
    assert defs.resolve_schedule_def("weekly_report_schedule").cron_schedule == "0 9 * * 1"


def test_report_folders_are_staged_in_new_folders_of_their_own(tmp_path: Path) -> None:
    """The week's files are written aside and swapped in; the folder written aside is always a new one,
    so a folder or link someone planted beside the reports is never written through."""
    from analytics_pipeline.defs.reporting.weekly import staging_folder, swap_in

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    final = tmp_path / "reports" / "2025-01-13"
    final.parent.mkdir()
    (final.parent / ".2025-01-13.partial").symlink_to(victim)  # a guessable staging name, planted
    staging, other = staging_folder(final), staging_folder(final)
    assert staging != other and not staging.is_symlink() and list(staging.iterdir()) == []
    assert staging.parent == final.parent and staging.name.startswith(".2025-01-13.partial-")
    assert staging.stat().st_mode & 0o777 == 0o777 & ~_umask()  # an ordinary folder, not a private one
    (staging / "report.html").write_text("new")
    final.symlink_to(victim)  # a link where the week's folder goes is replaced, never emptied
    swap_in(staging, final)
    assert (final / "report.html").read_text() == "new" and not final.is_symlink()
    assert [p.name for p in victim.iterdir()] == ["keep.txt"] and (victim / "keep.txt").read_text() == "precious"


def _umask() -> int:
    import os

    umask = os.umask(0)
    os.umask(umask)
    return umask
