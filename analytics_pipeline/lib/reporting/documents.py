"""Report files: CSV tables, one XLSX workbook and a self-contained HTML page with charts.

The HTML page needs nothing but itself: styles are inline and charts are PNG images embedded as
``data:`` URIs, so it can be mailed as an attachment or opened from a file share.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analytics_pipeline.lazy import LazyModule
from analytics_pipeline.lib.reporting import charts
from analytics_pipeline.lib.reporting.figures import TargetReport
from analytics_pipeline.lib.reporting.spreadsheets import neutralise_frame, text_not_formulas

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 60em;
       color: #1a202c; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #e2e8f0; }
.sub, .note { color: #4a5568; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #e2e8f0; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f7fafc; } .up { color: #2f855a; } .down { color: #c53030; }
img { max-width: 100%; display: block; margin: 0.6em 0; }
"""


# -- formatting ------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def cell(value: Any, column: str = "") -> str:
    """A table cell's text: thousands separators, 2 decimals, signed percentages, '—' for no value."""
    if _missing(value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M") if (value.hour or value.minute) else value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Number):
        if column.endswith("change_pct"):
            return f"{float(value):+,.1f}%"
        return f"{float(value):,.2f}"
    return str(value)


ACRONYMS = {"dau": "DAU", "wau": "WAU", "mau": "MAU", "org_id": "School ID", "kpi_name": "KPI"}


def label(name: str) -> str:
    return ACRONYMS.get(name) or name.replace("_pct", " %").replace("_", " ").capitalize()


def html_table(data: pd.DataFrame, columns: Mapping[str, str] | None = None) -> str:
    """``data`` as an HTML table; ``columns`` picks and names the columns (default: all, labelled)."""
    if data.empty:
        return '<p class="note">No rows.</p>'
    columns = dict(columns) if columns else {name: label(name) for name in data.columns}
    head = "".join(f"<th>{html.escape(title)}</th>" for title in columns.values())
    body = []
    for row in data.to_dict("records"):
        cells = []
        for name in columns:
            value = row.get(name)
            css = ""
            if name.endswith("change_pct") and not _missing(value):
                css = ' class="up"' if value > 0 else (' class="down"' if value < 0 else "")
            cells.append(f"<td{css}>{html.escape(cell(value, name))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def page(title: str, subtitle: str, sections: Iterable[tuple[str, str]], notes: Iterable[str] = ()) -> str:
    """A complete HTML document: a title, then (heading, HTML body) sections."""
    parts = [f"<h1>{html.escape(title)}</h1>", f'<p class="sub">{html.escape(subtitle)}</p>']
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in notes]
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{body}")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


# -- files -----------------------------------------------------------------------------------------


def write_csv(data: pd.DataFrame, path: Path) -> Path:
    """``data`` as CSV; text a spreadsheet would run as a formula is neutralised (``spreadsheets``).

    Lines end in CRLF (RFC 4180): Python's CSV writer quotes a value holding a carriage return only
    when the line terminator has one, and an unquoted one splits the row for every reader."""
    neutralise_frame(data).to_csv(path, index=False, lineterminator="\r\n")
    return path


def write_xlsx(sheets: Mapping[str, pd.DataFrame], path: Path, notes: Iterable[str] = ()) -> Path:
    """One sheet per table (and the notes); text cells stay text, never formulas (``spreadsheets``)."""
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, data in sheets.items():
            data.to_excel(writer, index=False, sheet_name=name[:31])
        notes = list(notes)
        if notes:
            pd.DataFrame({"note": notes}).to_excel(writer, index=False, sheet_name="notes")
        text_not_formulas(writer.book)
    return path


def report_tables(report: TargetReport) -> dict[str, pd.DataFrame]:
    """The report's tables by file / sheet name, in reading order; empty extras are left out."""
    tables = {"summary": report.summary, "daily": report.daily, "activity": report.activity}
    tables |= {name: data for name, data in report.extra.items() if not data.empty}
    return tables


def write_report(report: TargetReport, folder: Path) -> list[Path]:
    """Write ``<table>.csv`` per table, ``report.xlsx`` and ``report.html`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = report_tables(report)
    files = [write_csv(data, folder / f"{name}.csv") for name, data in tables.items()]
    files.append(write_xlsx(tables, folder / "report.xlsx", report.notes))
    html_path = folder / "report.html"
    html_path.write_text(report_html(report), encoding="utf-8")
    files.append(html_path)
    return files


# -- the weekly report page ------------------------------------------------------------------------


def _summary_section(report: TargetReport) -> str:
    return html_table(
        report.summary.assign(metric=[label(m) for m in report.summary["metric"]]),
        {
            "metric": "Metric",
            "this_week": "This week",
            "previous_week": "Previous week",
            "change_pct": "Change",
        },
    )


def _daily_section(report: TargetReport) -> str:
    daily = report.daily
    png = charts.daily_active_users(
        [f"{day:%a %d}" for day in daily["activity_date"]],
        [int(v) for v in daily["active_users"]],
        [int(v) for v in daily["active_users_previous_week"]],
    )
    return image(png, f"Daily active users, {report.name}") + html_table(daily)


def _activity_section(report: TargetReport) -> str:
    mix = report.activity[report.activity["events"] > 0]
    png = charts.activity_mix(list(mix["activity_type"]), [int(v) for v in mix["events"]])
    return image(png, f"Activity mix, {report.name}") + html_table(report.activity)


def _change_section(report: TargetReport) -> str:
    summary = report.summary
    png = charts.week_over_week([label(m) for m in summary["metric"]], list(summary["change_pct"]))
    return image(png, f"Week-over-week change, {report.name}")


def _schools_section(report: TargetReport) -> str:
    schools = report.extra["schools"]
    if schools.empty:
        return '<p class="note">No schools.</p>'
    top = schools.sort_values(["weekly_active_users", "school"], ascending=[False, True], na_position="last").head(25)
    png = charts.grouped_bars(
        list(top["school"]),
        [0 if _missing(v) else v for v in top["weekly_active_users"]],
        [0 if _missing(v) else v for v in top["weekly_active_users_previous_week"]],
        "Weekly active users by school (top 25)",
    )
    return image(png, "Weekly active users by school") + html_table(schools)


def _kpi_section(report: TargetReport) -> str:
    kpis = report.extra.get("kpis", pd.DataFrame())
    if kpis.empty:
        return '<p class="note">No KPI snapshot for this week yet (marts.kpi_snapshots).</p>'
    return html_table(kpis)


def _forecast_section(report: TargetReport) -> str:
    parts = []
    demand = report.extra.get("forecast", pd.DataFrame())
    reorder = report.extra.get("reorder", pd.DataFrame())
    if not demand.empty:
        parts.append("<p>Items with the highest forecast demand over the next 7 days:</p>" + html_table(demand))
    if not reorder.empty:
        parts.append("<p>Reorder recommendations:</p>" + html_table(reorder))
    if not parts:
        parts.append('<p class="note">No forecast yet.</p>')
    return "\n".join(parts)


def report_html(report: TargetReport) -> str:
    week = report.week
    sections = [
        ("Headline numbers", _summary_section(report)),
        ("Daily active users", _daily_section(report)),
        ("Activity mix", _activity_section(report)),
        ("Week-over-week change", _change_section(report)),
    ]
    if report.is_platform:
        sections += [
            ("Schools", _schools_section(report)),
            ("KPIs", _kpi_section(report)),
            ("Forecast highlights", _forecast_section(report)),
        ]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"Week {week.start:%a %Y-%m-%d} to {week.end:%a %Y-%m-%d} (UTC), compared with the week before. Generated {generated}."
    title = "Weekly platform report" if report.is_platform else f"Weekly report: {report.name}"
    return page(title, subtitle, sections, report.notes)
