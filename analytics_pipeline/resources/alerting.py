"""Where run-failure alerts go, as a Dagster resource (``defs/operations/alerts.py`` raises them)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from analytics_pipeline.lib.mail import MailServer
from analytics_pipeline.settings import Settings


class AlertingResource(dg.ConfigurableResource):
    """An alert is always a file under ``alerts_dir`` and a log line; optionally it is also POSTed
    to a webhook and mailed. Built from ``ANALYTICS_OUTPUT_DIR`` and ``ANALYTICS_ALERT_*``."""

    alerts_dir: str = Field(description="Open and resolved alerts, one JSON file each (<ANALYTICS_OUTPUT_DIR>/alerts).")
    webhook_url: str = Field(default="", description="POST each alert as JSON here (ANALYTICS_ALERT_WEBHOOK_URL).")
    smtp_host: str = Field(default="", description="Mail alerts through this server (ANALYTICS_ALERT_SMTP_HOST).")
    smtp_port: int = Field(default=25, description="ANALYTICS_ALERT_SMTP_PORT.")
    email_from: str = Field(default="analytics-pipeline@localhost", description="ANALYTICS_ALERT_EMAIL_FROM.")
    email_to: list[str] = Field(default=[], description="Alert recipients (ANALYTICS_ALERT_EMAIL_TO).")

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertingResource:
        return cls(
            alerts_dir=str(settings.output_dir / "alerts"),
            webhook_url=settings.alert_webhook_url,
            smtp_host=settings.alert_smtp_host,
            smtp_port=settings.alert_smtp_port,
            email_from=settings.alert_email_from,
            email_to=list(settings.alert_email_to),
        )

    @property
    def folder(self) -> Path:
        return Path(self.alerts_dir)

    def mail_server(self) -> MailServer | None:
        """The server to mail alerts through, or None when alerts are not mailed."""
        if not (self.smtp_host and self.email_to):
            return None
        return MailServer(self.smtp_host, self.smtp_port, timeout_seconds=10.0)
