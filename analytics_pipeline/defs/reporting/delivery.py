"""Delivery of the weekly reports by e-mail, a step after (and apart from) writing them.

Off unless ``ANALYTICS_REPORT_SMTP_HOST`` is set. Each school's report (and the platform summary)
goes to its recipients in ``ANALYTICS_REPORT_RECIPIENTS`` (``org_id=a@x,b@y;platform=ops@z``) with
every file of the report attached. Delivery is its own asset downstream of ``weekly_reports``: when
the mail server is down the delivery fails and is retried (``TRANSIENT_RETRY_POLICY``), while the
generated reports stay materialized and on disk.

What was sent is recorded in ``<week folder>/delivery.json``. A retry of the same run sends only
what has not been accepted yet; a new run of the delivery sends everything again.
"""

import csv
import json
import mimetypes
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dagster as dg

from analytics_pipeline.defs.reporting.weekly import MANIFEST, WEEKLY_REPORTS_KEY, week_folder
from analytics_pipeline.executors import REPORTS_QUEUE, on_queue
from analytics_pipeline.lib.log_context import get_logger
from analytics_pipeline.lib.mail import MailError, send_mail
from analytics_pipeline.lib.reporting.documents import cell, label
from analytics_pipeline.lib.reporting.figures import Week
from analytics_pipeline.metadata import markdown_table
from analytics_pipeline.partitions import weekly_partitions
from analytics_pipeline.resources.policies import TRANSIENT_RETRY_POLICY
from analytics_pipeline.resources.reports import ReportDeliveryResource, ReportsResource

DELIVERY_KEY = dg.AssetKey(["reporting", "weekly_report_delivery"])
DELIVERY_LOG = "delivery.json"

# A mail server that is down or answers 4xx is retried under TRANSIENT_RETRY_POLICY (2, 6 and 14 s,
# each ± 2 s); a permanent refusal (5xx: unknown recipient, bad credentials) is not.

# the step's log lines, prefixed with [run=… asset=… partition=…] (log_context.py)
logger = get_logger("analytics_pipeline.reporting")


@dataclass
class Delivery:
    target: str
    name: str
    recipients: list[str]
    sent_to: list[str] = field(default_factory=list)
    status: str = "pending"  # sent | failed | no recipients
    error: str = ""
    transient: bool = False
    at: str = ""

    @property
    def pending(self) -> list[str]:
        return [address for address in self.recipients if address not in self.sent_to]


# -- sending ---------------------------------------------------------------------------------------


def _headline_lines(folder: Path) -> list[str]:
    summary = folder / "summary.csv"
    if not summary.exists():
        return []
    lines = []
    with summary.open(newline="") as handle:
        for row in csv.DictReader(handle):
            change = f", {cell(float(row['change_pct']), 'change_pct')}" if row["change_pct"] else ""
            previous = row["previous_week"] or "—"
            lines.append(f"  {label(row['metric'])}: {row['this_week'] or '—'} (previous week {previous}{change})")
    return lines


def build_message(sender: str, entry: dict[str, Any], week: Week, folder: Path, to: list[str]) -> EmailMessage:
    """The e-mail for one report: headline numbers in the body, every file of the report attached."""
    message = EmailMessage()
    message["Subject"] = f"Weekly report {week.start} to {week.end}: {entry['name']}"
    message["From"] = sender
    message["To"] = ", ".join(to)
    files = [folder / name for name in entry["files"]]
    message.set_content(
        "\n".join(
            [
                f"Weekly report for {entry['name']}, {week.start:%a %Y-%m-%d} to {week.end:%a %Y-%m-%d} (UTC).",
                "",
                *_headline_lines(folder),
                "",
                "Attached: "
                + ", ".join(path.name for path in files)
                + " (open report.html in a browser for the charts).",
            ]
        )
    )
    for path in files:
        kind, _ = mimetypes.guess_type(path.name)
        maintype, subtype = (kind or "application/octet-stream").split("/", 1)
        message.add_attachment(
            path.read_bytes(),
            maintype=maintype,
            subtype=subtype,
            filename=f"{entry['folder']}-{week.start.isoformat()}-{path.name}",
        )
    return message


# -- one week --------------------------------------------------------------------------------------


def _load_log(folder: Path, run_id: str) -> dict[str, Delivery]:
    """What this run already delivered (a retried step resumes; a new run starts afresh)."""
    path = folder / DELIVERY_LOG
    if not path.exists():
        return {}
    log = json.loads(path.read_text())
    if log.get("run_id") != run_id:
        return {}
    return {target: Delivery(**entry) for target, entry in log["deliveries"].items()}


def _save_log(folder: Path, run_id: str, deliveries: list[Delivery]) -> None:
    path = folder / DELIVERY_LOG
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(
        json.dumps({"run_id": run_id, "deliveries": {d.target: asdict(d) for d in deliveries}}, indent=2)
    )
    partial.replace(path)


def deliver_week(delivery: ReportDeliveryResource, folder: Path, week: Week, run_id: str) -> list[Delivery]:
    """Mail every report of ``week`` (in ``folder``) that has recipients; never raises for a delivery
    failure."""
    sender, server = delivery.email_from, delivery.mail_server()
    manifest = json.loads((folder / MANIFEST).read_text())
    earlier = _load_log(folder, run_id)
    deliveries = []
    for entry in manifest["reports"]:
        recipients = delivery.recipients_for(entry["target"])
        report = Delivery(entry["target"], entry["name"], recipients)
        previous = earlier.get(entry["target"])
        if previous and previous.recipients == recipients:
            report.sent_to = previous.sent_to
        deliveries.append(report)
        if not recipients:
            report.status = "no recipients"
            continue
        pending = report.pending
        if pending:
            message = build_message(sender, entry, week, folder / entry["folder"], pending)
            try:
                report.sent_to += send_mail(server, message, pending)
            except MailError as error:
                report.sent_to += error.accepted
                report.error, report.transient = str(error), error.transient
            report.at = datetime.now(UTC).isoformat(timespec="seconds")
        report.status = "sent" if not report.pending else "failed"
    _save_log(folder, run_id, deliveries)
    return deliveries


def unknown_targets(delivery: ReportDeliveryResource, deliveries: list[Delivery]) -> list[str]:
    """Targets in ANALYTICS_REPORT_RECIPIENTS that have no report this week (a typo, or a new school)."""
    known = {report.target for report in deliveries}
    return sorted(target for target in delivery.recipients if target not in known)


# -- the asset -------------------------------------------------------------------------------------


def _table(deliveries: list[Delivery]) -> dg.MetadataValue:
    rows = [(d.name, d.status, ", ".join(d.recipients) or "-", d.error) for d in deliveries]
    return dg.MetadataValue.md(markdown_table(["report", "status", "recipients", "error"], rows))


@dg.asset(
    key=DELIVERY_KEY,
    group_name="reporting",
    partitions_def=weekly_partitions,
    deps=[WEEKLY_REPORTS_KEY],
    retry_policy=TRANSIENT_RETRY_POLICY,
    op_tags=on_queue(REPORTS_QUEUE),
    kinds={"email"},
    description="Mails each school's weekly report (files attached) to its recipients in "
    "ANALYTICS_REPORT_RECIPIENTS; off unless ANALYTICS_REPORT_SMTP_HOST is set.",
)
def weekly_report_delivery(
    context: dg.AssetExecutionContext, reports: ReportsResource, report_delivery: ReportDeliveryResource
) -> dg.MaterializeResult:
    week = Week.from_key(context.partition_key)
    if not report_delivery.enabled:
        return dg.MaterializeResult(
            metadata={
                "delivery": "off: set ANALYTICS_REPORT_SMTP_HOST and ANALYTICS_REPORT_RECIPIENTS to mail the reports",
            }
        )
    folder = week_folder(reports.folder, week)
    if not (folder / MANIFEST).exists():
        raise dg.Failure(
            description=f"No reports for the week {week} in {folder}; materialize reporting/weekly_reports "
            "for this week first.",
            allow_retries=False,
        )
    deliveries = deliver_week(report_delivery, folder, week, context.run_id)
    metadata: dict[str, Any] = {
        "week": str(week),
        "deliveries": _table(deliveries),
        "sent": sum(d.status == "sent" for d in deliveries),
        "failed": sum(d.status == "failed" for d in deliveries),
        "delivery_log": dg.MetadataValue.path(str(folder / DELIVERY_LOG)),
    }
    unknown = unknown_targets(report_delivery, deliveries)
    if unknown:
        metadata["recipients_without_report"] = ", ".join(unknown)
        logger.warning(f"ANALYTICS_REPORT_RECIPIENTS names {', '.join(unknown)}, which have no report this week")
    failed = [d for d in deliveries if d.status == "failed"]
    if failed:
        transient = any(d.transient for d in failed)
        raise dg.Failure(
            description=(
                f"Weekly report delivery failed for {len(failed)} of {len(deliveries)} reports: "
                + "; ".join(f"{d.name} ({d.target}): {d.error}" for d in failed)
                + f". The report files are kept in {folder}"
                + (
                    "; the step is retried."
                    if transient and context.retry_number < TRANSIENT_RETRY_POLICY.max_retries
                    else "; fix the mail settings or recipients and materialize this delivery again."
                )
            ),
            metadata=metadata,
            allow_retries=transient,
        )
    logger.info(f"weekly reports for {week} mailed: {metadata['sent']} sent")
    return dg.MaterializeResult(metadata=metadata)
