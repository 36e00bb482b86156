"""Sending mail: the one SMTP sender of the project (alerts and weekly reports).

A send either returns the addresses the server accepted or raises :class:`MailError`, which says
whether a retry can help (the server could not be reached, or answered 4xx) or not (5xx: an unknown
recipient, bad credentials, STARTTLS or AUTH not offered).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage


@dataclass(frozen=True)
class MailServer:
    host: str
    port: int = 25
    user: str = ""
    password: str = ""
    starttls: bool = False
    timeout_seconds: float = 30.0
    # the settings to check when the server refuses STARTTLS or AUTH
    settings_hint: str = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class MailError(RuntimeError):
    def __init__(self, message: str, transient: bool, accepted: list[str] | None = None):
        super().__init__(message)
        self.transient = transient
        self.accepted = accepted or []


def _transient_code(code: int) -> bool:
    return 400 <= code < 500


def _text(reply: bytes | str) -> str:
    return (reply.decode(errors="replace") if isinstance(reply, bytes) else reply).strip()


def send_mail(server: MailServer, message: EmailMessage, to: Sequence[str]) -> list[str]:
    """Send ``message`` to ``to``; returns the accepted addresses or raises :class:`MailError`."""
    to = list(to)
    try:
        with smtplib.SMTP(server.host, server.port, timeout=server.timeout_seconds) as smtp:
            if server.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if server.user:
                smtp.login(server.user, server.password)
            refused = smtp.send_message(message, to_addrs=to)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        reasons = "; ".join(f"{address}: {code} {_text(reply)}" for address, (code, reply) in error.recipients.items())
        raise MailError(
            f"{server.address} refused every recipient ({reasons})", all(map(_transient_code, codes))
        ) from None
    except smtplib.SMTPResponseException as error:
        raise MailError(
            f"{server.address} answered {error.smtp_code} {_text(error.smtp_error)}", _transient_code(error.smtp_code)
        ) from None
    except smtplib.SMTPNotSupportedError as error:
        hint = f"; check {server.settings_hint}" if server.settings_hint else ""
        raise MailError(f"{server.address}: {error}{hint}", False) from None
    except (OSError, smtplib.SMTPException) as error:  # refused connection, timeout, dropped connection
        raise MailError(
            f"cannot reach the mail server {server.address}: {error or type(error).__name__}", True
        ) from None
    accepted = [address for address in to if address not in refused]
    if refused:
        reasons = "; ".join(f"{address}: {code} {_text(reply)}" for address, (code, reply) in refused.items())
        codes = [code for code, _ in refused.values()]
        raise MailError(f"{server.address} refused {reasons}", all(map(_transient_code, codes)), accepted)
    return accepted
