"""Where reports are written and how the weekly ones are mailed, as Dagster resources."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from analytics_pipeline.lib.mail import MailServer
from analytics_pipeline.settings import Settings, resolved, secret


class ReportsResource(dg.ConfigurableResource):
    """The folder of the weekly reports (``<week start>/``) and custom ones (``custom/<run id>/``)."""

    reports_dir: str = Field(description="<ANALYTICS_OUTPUT_DIR>/reports, an absolute path.")

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportsResource:
        return cls(reports_dir=str(settings.output_dir / "reports"))

    @property
    def folder(self) -> Path:
        return Path(self.reports_dir)


class ReportDeliveryResource(dg.ConfigurableResource):
    """The mail server and recipients of the weekly reports; delivery is off while ``smtp_host`` is
    empty. Built from ``ANALYTICS_REPORT_*``; the SMTP password stays an environment variable."""

    smtp_host: str = Field(default="", description="Mail server; empty: delivery off (ANALYTICS_REPORT_SMTP_HOST).")
    smtp_port: int = Field(default=25, description="ANALYTICS_REPORT_SMTP_PORT.")
    smtp_user: str = Field(default="", description="Log in as this user when set (ANALYTICS_REPORT_SMTP_USER).")
    smtp_password: str = Field(default="", description="ANALYTICS_REPORT_SMTP_PASSWORD.")
    starttls: bool = Field(
        default=False, description="Upgrade the connection with STARTTLS (ANALYTICS_REPORT_SMTP_STARTTLS)."
    )
    email_from: str = Field(default="analytics-pipeline@localhost", description="ANALYTICS_REPORT_EMAIL_FROM.")
    recipients: dict[str, list[str]] = Field(
        default={},
        description="Recipients per school org_id, and 'platform' for the platform summary (ANALYTICS_REPORT_RECIPIENTS).",
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportDeliveryResource:
        return cls(
            smtp_host=settings.report_smtp_host,
            smtp_port=settings.report_smtp_port,
            smtp_user=settings.report_smtp_user,
            smtp_password=secret("ANALYTICS_REPORT_SMTP_PASSWORD", settings.report_smtp_password),
            starttls=settings.report_smtp_starttls,
            email_from=settings.report_email_from,
            recipients={target: list(emails) for target, emails in settings.report_recipients},
        )

    @property
    def enabled(self) -> bool:
        return bool(self.smtp_host)

    def recipients_for(self, target: str) -> list[str]:
        """Who receives the weekly report of ``target`` (a school's org_id, or ``platform``)."""
        return list(self.recipients.get(target, []))

    def mail_server(self) -> MailServer:
        return MailServer(
            self.smtp_host,
            self.smtp_port,
            self.smtp_user,
            resolved(self.smtp_password),
            self.starttls,
            settings_hint="ANALYTICS_REPORT_SMTP_STARTTLS / _USER",
        )
