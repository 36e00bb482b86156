"""Run-failure alerting: an alert is raised when a job's run fails and cleared when the same job
later succeeds.

An alert is always a structured log line and a JSON file under ``<ANALYTICS_OUTPUT_DIR>/alerts/open/``
(one per job, holding the latest failure); clearing moves it to ``alerts/resolved/``. Optionally it
is also POSTed to ``ANALYTICS_ALERT_WEBHOOK_URL`` and mailed through ``ANALYTICS_ALERT_SMTP_HOST`` to
``ANALYTICS_ALERT_EMAIL_TO``. A delivery that fails is logged; the alert file is written regardless.
"""

import json
import urllib.request
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dagster as dg

from analytics_pipeline.lib.log_context import get_logger
from analytics_pipeline.lib.mail import MailError, send_mail
from analytics_pipeline.resources.alerting import AlertingResource

log = get_logger("analytics_pipeline.alerts")


def _safe_name(job_name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in job_name)


def _deliver(alerting: AlertingResource, alert: dict[str, Any]) -> list[str]:
    """Send the alert to the configured channels; returns the delivery errors (never raises)."""
    errors: list[str] = []
    subject = f"[analytics-pipeline] {alert['state']}: {alert['job_name']}"
    if alerting.webhook_url:
        request = urllib.request.Request(
            alerting.webhook_url, data=json.dumps(alert).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except OSError as error:
            errors.append(f"webhook {alerting.webhook_url}: {error}")
    server = alerting.mail_server()
    if server is not None:
        message = EmailMessage()
        message["Subject"], message["From"] = subject, alerting.email_from
        message["To"] = ", ".join(alerting.email_to)
        message.set_content(json.dumps(alert, indent=2))
        try:
            send_mail(server, message, alerting.email_to)
        except MailError as error:
            errors.append(f"smtp {server.address}: {error}")
    return errors


def raise_alert(
    alerting: AlertingResource, job_name: str, run_id: str, error: str, tags: dict[str, str] | None = None
) -> Path:
    alert = {
        "state": "open",
        "job_name": job_name,
        "run_id": run_id,
        "error": error,
        "partition": (tags or {}).get("dagster/partition") or (tags or {}).get("dagster/asset_partition_range_start"),
        "raised_at": datetime.now(UTC).isoformat(),
    }
    path = alerting.folder / "open" / f"{_safe_name(job_name)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    alert["delivery_errors"] = _deliver(alerting, alert)
    path.write_text(json.dumps(alert, indent=2))
    log.error("ALERT %s", json.dumps(alert), extra={"run_id": run_id, "partition": alert["partition"]})
    return path


def clear_alert(alerting: AlertingResource, job_name: str, run_id: str) -> Path | None:
    """Resolve the job's open alert, if any; returns where the resolved alert was filed."""
    path = alerting.folder / "open" / f"{_safe_name(job_name)}.json"
    if not path.exists():
        return None
    alert = json.loads(path.read_text())
    alert |= {"state": "resolved", "resolved_by_run_id": run_id, "resolved_at": datetime.now(UTC).isoformat()}
    resolved = (
        alerting.folder / "resolved" / f"{_safe_name(job_name)}-{alert['resolved_at'][:19].replace(':', '')}.json"
    )
    resolved.parent.mkdir(parents=True, exist_ok=True)
    alert["delivery_errors"] = _deliver(alerting, alert)
    resolved.write_text(json.dumps(alert, indent=2))
    path.unlink()
    log.warning(
        "ALERT CLEARED %s", json.dumps(alert), extra={"run_id": alert["run_id"], "partition": alert.get("partition")}
    )
    return resolved


# Not Dagster's make_email_on_run_failure_sensor: an alert here is a file that stays open until the
# job succeeds again (run_success_clears_alert), one per job, with an optional webhook; that sensor
# only sends a mail per failure. The mail itself goes through the project's one sender (lib/mail.py).
@dg.run_failure_sensor(
    name="run_failure_alert",
    description="A failed run raises an alert (log line, file under the output dir, optional webhook / SMTP).",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def run_failure_alert(context: dg.RunFailureSensorContext, alerting: AlertingResource) -> None:
    error = context.failure_event.message or "run failed"
    path = raise_alert(
        alerting, context.dagster_run.job_name, context.dagster_run.run_id, error, dict(context.dagster_run.tags)
    )
    context.log.info(f"alert raised: {path}")


@dg.run_status_sensor(
    name="run_success_clears_alert",
    run_status=dg.DagsterRunStatus.SUCCESS,
    description="A successful run of a job clears that job's open alert.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def run_success_clears_alert(context: dg.RunStatusSensorContext, alerting: AlertingResource) -> None:
    resolved = clear_alert(alerting, context.dagster_run.job_name, context.dagster_run.run_id)
    if resolved:
        context.log.info(f"alert cleared: {resolved}")
