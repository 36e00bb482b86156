"""The one place that reads the environment.

Every other module asks :func:`get_settings` instead of ``os.environ`` so that the names of SPEC §3
stay in one file and relative paths are resolved the same way everywhere (against the project root,
whatever the current directory of the process is: webserver, daemon, run worker or test).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg
from dotenv import load_dotenv, set_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
ENV_FILE = PROJECT_ROOT / ".env"

WAREHOUSES = ("duckdb", "postgres")
EXECUTORS = ("in_process", "celery")
DEFAULT_CELERY_BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"


class SettingsError(ValueError):
    """A setting has a value the pipeline cannot use; the message names the variable to fix."""


def _resolve(path: str) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else (PROJECT_ROOT / candidate).resolve()


def _landing(value: str) -> Path | str:
    """A local landing folder (resolved like every path setting) or an object-store URL."""
    scheme, found, rest = value.partition("://")
    if not found:
        return _resolve(value)
    if scheme.lower() not in ("s3", "s3a") or not rest.strip("/"):
        raise SettingsError(
            f"ANALYTICS_LANDING_DIR={value!r}: an object-store landing zone is an S3 URL such as "
            "s3://bucket/prefix (other schemes are not supported)."
        )
    return f"s3://{rest.rstrip('/')}"


def _parse_executor(env: dict[str, str]) -> tuple[str, str, str]:
    """``ANALYTICS_EXECUTOR`` with the Celery broker and result backend it uses."""
    executor = env.get("ANALYTICS_EXECUTOR", "").strip().lower().replace("-", "_") or "in_process"
    if executor not in EXECUTORS:
        raise SettingsError(
            f"ANALYTICS_EXECUTOR={executor!r} is not supported; set it to 'in_process' (the default: "
            "each run's steps in the run's process) or 'celery' (steps on Celery workers by queue)."
        )
    broker = env.get("ANALYTICS_CELERY_BROKER", "").strip() or DEFAULT_CELERY_BROKER
    scheme = broker.partition("://")[0].lower()
    if scheme not in ("amqp", "pyamqp", "amqps", "redis", "rediss"):
        raise SettingsError(
            f"ANALYTICS_CELERY_BROKER={broker!r} is not a RabbitMQ (pyamqp://user:password@host:5672//) "
            "or Redis (redis://host:6379/0) URL."
        )
    # RabbitMQ carries the results back itself (rpc://); with Redis the broker keeps them
    backend = env.get("ANALYTICS_CELERY_BACKEND", "").strip() or ("rpc://" if "amqp" in scheme else broker)
    return executor, broker, backend


def _parse_date(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a date; use the form YYYY-MM-DD.") from None


def _parse_float(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a number.") from None


def _parse_days(name: str, env: dict[str, str], default: int) -> int:
    value = env.get(name, str(default)).strip()
    if not value.isdigit() or int(value) < 1:
        raise SettingsError(f"{name}={value!r} must be a whole number of days, at least 1.")
    return int(value)


def _parse_port(name: str, env: dict[str, str], default: int) -> int:
    value = env.get(name, "").strip() or str(default)
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SettingsError(f"{name}={value!r} is not a port number.")
    return int(value)


def _parse_recipients(value: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``org_id=a@x,b@y;platform=ops@z`` -> ((org_id, (a@x, b@y)), (platform, (ops@z,)))."""
    name = "ANALYTICS_REPORT_RECIPIENTS"
    recipients: dict[str, tuple[str, ...]] = {}
    for entry in (part.strip() for part in value.split(";")):
        if not entry:
            continue
        target, _, addresses = entry.partition("=")
        emails = tuple(a.strip() for a in addresses.split(",") if a.strip())
        if not target.strip() or not emails or not all("@" in email for email in emails):
            raise SettingsError(
                f"{name}: {entry!r} is not of the form school_id=a@example.org,b@example.org "
                "(entries separated by ';', 'platform' for the platform summary)."
            )
        recipients[target.strip()] = recipients.get(target.strip(), ()) + emails
    return tuple(recipients.items())


def _parse_lead_time(env: dict[str, str]) -> int:
    days = _parse_days("ANALYTICS_REORDER_LEAD_TIME_DAYS", env, 14)
    if days > 28:
        raise SettingsError(
            f"ANALYTICS_REORDER_LEAD_TIME_DAYS={days} is beyond the 28-day forecast horizon; use 1 to 28."
        )
    return days


def _parse_wait(env: dict[str, str]) -> float:
    name = "ANALYTICS_READ_WAIT_SECONDS"
    seconds = _parse_float(name, env.get(name, "300").strip() or "300")
    if not seconds >= 0:
        raise SettingsError(f"{name}={seconds!r} must be a number of seconds, 0 or more.")
    return seconds


@dataclass(frozen=True)
class Settings:
    warehouse: str = "duckdb"
    duckdb_path: Path = field(default_factory=lambda: _resolve("data/warehouse.duckdb"))
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "postgres"
    pg_password: str = ""
    pg_database: str = "analytics"
    # a local folder, or an object-store URL (``s3://bucket/prefix``) kept as text
    landing_dir: Path | str = field(default_factory=lambda: _resolve("data/landing"))
    output_dir: Path = field(default_factory=lambda: _resolve("data/output"))
    start_date: date = date(2025, 1, 1)
    dagster_home: Path = field(default_factory=lambda: _resolve("data/dagster_home"))
    max_reject_rate: float = 0.01
    # a day fails the reject-rate check only when its rate is over max_reject_rate with this
    # confidence (one-sided binomial test); 0 fails any day over the threshold
    reject_rate_confidence: float = 0.95
    retention_activity_days: int = 90
    retention_ops_days: int = 30
    retention_report_days: int = 180
    alert_webhook_url: str = ""
    alert_smtp_host: str = ""
    alert_smtp_port: int = 25
    alert_email_from: str = "analytics-pipeline@localhost"
    alert_email_to: tuple[str, ...] = ()
    # weekly report delivery by e-mail: off while report_smtp_host is empty
    report_smtp_host: str = ""
    report_smtp_port: int = 25
    report_smtp_user: str = ""
    report_smtp_password: str = ""
    report_smtp_starttls: bool = False
    report_email_from: str = "analytics-pipeline@localhost"
    report_recipients: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # days between placing a reorder and receiving it (mart_reorder_recommendations); at most the
    # 28-day forecast horizon
    reorder_lead_time_days: int = 14
    # how long a reader of the DuckDB file (export, ...) waits for a writing step before giving up
    read_wait_seconds: float = 300.0
    # where a run's steps execute: "in_process" (the run's own process) or "celery" (workers by queue)
    executor: str = "in_process"
    celery_broker: str = DEFAULT_CELERY_BROKER
    celery_backend: str = "rpc://"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: the process environment plus the project's ``.env``)."""
        if env is None:
            load_dotenv(ENV_FILE, override=False)
            env = dict(os.environ)
        warehouse = env.get("ANALYTICS_WAREHOUSE", "duckdb").strip().lower()
        if warehouse not in WAREHOUSES:
            raise SettingsError(
                f"ANALYTICS_WAREHOUSE={warehouse!r} is not supported; set it to 'duckdb' or 'postgres'."
            )
        max_reject_rate = _parse_float("ANALYTICS_MAX_REJECT_RATE", env.get("ANALYTICS_MAX_REJECT_RATE", "0.01"))
        if not 0 <= max_reject_rate <= 1:
            raise SettingsError("ANALYTICS_MAX_REJECT_RATE must be a share between 0 and 1.")
        reject_rate_confidence = _parse_float(
            "ANALYTICS_REJECT_RATE_CONFIDENCE", env.get("ANALYTICS_REJECT_RATE_CONFIDENCE", "0.95")
        )
        if not 0 <= reject_rate_confidence < 1:
            raise SettingsError(
                "ANALYTICS_REJECT_RATE_CONFIDENCE must be at least 0 and below 1 (e.g. 0.95; 0 fails any day "
                "over ANALYTICS_MAX_REJECT_RATE)."
            )
        executor, celery_broker, celery_backend = _parse_executor(env)
        return cls(
            warehouse=warehouse,
            duckdb_path=_resolve(env.get("ANALYTICS_DUCKDB_PATH", "data/warehouse.duckdb")),
            pg_host=env.get("ANALYTICS_PG_HOST", "127.0.0.1"),
            pg_port=_parse_port("ANALYTICS_PG_PORT", env, 5432),
            pg_user=env.get("ANALYTICS_PG_USER", "postgres"),
            pg_password=env.get("ANALYTICS_PG_PASSWORD", ""),
            pg_database=env.get("ANALYTICS_PG_DATABASE", "analytics"),
            landing_dir=_landing(env.get("ANALYTICS_LANDING_DIR", "data/landing")),
            output_dir=_resolve(env.get("ANALYTICS_OUTPUT_DIR", "data/output")),
            start_date=_parse_date("ANALYTICS_START_DATE", env.get("ANALYTICS_START_DATE", "2025-01-01")),
            dagster_home=_resolve(env.get("DAGSTER_HOME", "data/dagster_home")),
            max_reject_rate=max_reject_rate,
            reject_rate_confidence=reject_rate_confidence,
            retention_activity_days=_parse_days("ANALYTICS_RETENTION_ACTIVITY_DAYS", env, 90),
            retention_ops_days=_parse_days("ANALYTICS_RETENTION_OPS_DAYS", env, 30),
            retention_report_days=_parse_days("ANALYTICS_RETENTION_REPORT_DAYS", env, 180),
            alert_webhook_url=env.get("ANALYTICS_ALERT_WEBHOOK_URL", ""),
            alert_smtp_host=env.get("ANALYTICS_ALERT_SMTP_HOST", ""),
            alert_smtp_port=_parse_port("ANALYTICS_ALERT_SMTP_PORT", env, 25),
            alert_email_from=env.get("ANALYTICS_ALERT_EMAIL_FROM", "analytics-pipeline@localhost"),
            alert_email_to=tuple(a.strip() for a in env.get("ANALYTICS_ALERT_EMAIL_TO", "").split(",") if a.strip()),
            report_smtp_host=env.get("ANALYTICS_REPORT_SMTP_HOST", "").strip(),
            report_smtp_port=_parse_port("ANALYTICS_REPORT_SMTP_PORT", env, 25),
            report_smtp_user=env.get("ANALYTICS_REPORT_SMTP_USER", ""),
            report_smtp_password=env.get("ANALYTICS_REPORT_SMTP_PASSWORD", ""),
            report_smtp_starttls=env.get("ANALYTICS_REPORT_SMTP_STARTTLS", "").strip().lower()
            in ("1", "true", "yes", "on"),
            report_email_from=env.get("ANALYTICS_REPORT_EMAIL_FROM", "analytics-pipeline@localhost"),
            report_recipients=_parse_recipients(env.get("ANALYTICS_REPORT_RECIPIENTS", "")),
            reorder_lead_time_days=_parse_lead_time(env),
            read_wait_seconds=_parse_wait(env),
            executor=executor,
            celery_broker=celery_broker,
            celery_backend=celery_backend,
        )

    @property
    def engine(self) -> str:
        """The warehouse engine, under the name :class:`~analytics_pipeline.resources.warehouse.Warehouse` reads."""
        return self.warehouse


def write_env_setting(name: str, value: str, env_file: Path | None = None) -> None:
    """Set ``name=value`` in ``env_file`` (default: the project's ``.env``; created if missing),
    keeping every other line as it is.

    Every process of the project (CLI, webserver, daemon, run workers, sensors) reads the project's
    ``.env``, so a value written here is seen by all of them the next time they start; a variable
    set in a process's environment still wins.
    """
    set_key(env_file or ENV_FILE, name, value, quote_mode="never", follow_symlinks=True)  # a linked .env stays linked


def secret(name: str, value: str) -> str | dg.EnvVar:
    """A secret setting for a resource field: ``dg.EnvVar(name)`` when the environment holds it (the
    UI's resource page then shows the variable's name, never its value; Dagster reads it when the
    resource is built for a run), else ``value`` as given (empty, or from an explicit ``env``)."""
    return dg.EnvVar(name) if value and os.environ.get(name) == value else value


def resolved(value: str | dg.EnvVar) -> str:
    """A :func:`secret`'s value: a resource used outside a run (CLI, tests) still holds the
    ``dg.EnvVar`` itself, whose text is the variable's name."""
    return (value.get_value() or "") if isinstance(value, dg.EnvVar) else value


def get_settings() -> Settings:
    """Current settings, read afresh so a changed environment (tests, CLI flags) is always seen."""
    return Settings.from_env()
