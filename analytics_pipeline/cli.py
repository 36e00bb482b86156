"""``analytics-pipeline``: the operator's command line. Thin: parses arguments, calls the package."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from analytics_pipeline.resources.warehouse import WarehouseError
from analytics_pipeline.settings import SettingsError, get_settings

if TYPE_CHECKING:
    from analytics_pipeline.lib.ingestion.landing_zone import LandingZone


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; use YYYY-MM-DD") from None


def _last_complete_days(days: int) -> tuple[date, date]:
    end = datetime.now(UTC).date() - timedelta(days=1)
    return end - timedelta(days=days - 1), end


def _cmd_generate(args: argparse.Namespace) -> int:
    from analytics_pipeline.lib.sample_data import generate

    if args.days is not None:
        if args.start or args.end:
            raise ValueError("Give either --days or --start/--end, not both.")
        args.start, args.end = _last_complete_days(args.days)
    elif not (args.start and args.end):
        raise ValueError("Give --days N, or both --start and --end (YYYY-MM-DD).")
    from analytics_pipeline.lib.ingestion.landing_zone import LandingZone, ObjectStoreLandingZone

    landing = LandingZone.at(args.landing_dir or get_settings().landing_dir)
    options = dict(
        events_per_day=args.events_per_day,
        orgs=args.orgs,
        users=args.users,
        items=args.items,
        seed=args.seed,
        bad_rate=args.bad_rate,
    )
    if isinstance(landing, ObjectStoreLandingZone):  # written locally, then uploaded as they are
        with tempfile.TemporaryDirectory(prefix="analytics-generate-") as folder:
            summary = generate(Path(folder), args.start, args.end, **options)
            landing.upload(Path(folder))
    else:
        summary = generate(landing.root, args.start, args.end, **options)
    print(f"wrote {summary.files_written} files to {landing.url} in {summary.seconds:.1f}s")
    for dataset, rows in summary.rows.items():
        print(f"  {dataset:<20} {rows:>10} records  ({summary.bad_records.get(dataset, 0)} deliberately bad)")
    _first_partition_advice(_first_landing_day(landing) or args.start, args.write_start_date)
    return 0


def _first_landing_day(landing: LandingZone) -> date | None:
    """The earliest ``date=`` folder of the daily datasets in the landing zone (the data's first day)."""
    from analytics_pipeline.lib.ingestion.datasets import DAILY_DATASETS

    return min((day for dataset in DAILY_DATASETS for _, day in landing.day_folders(dataset.name)), default=None)


def _first_partition_advice(first_day: date, write: bool) -> None:
    """Make the daily partitions start at the data's first day (``--write-start-date``), or say how.

    Without it, partitions start at ANALYTICS_START_DATE (2025-01-01 by default) and the UI shows
    hundreds of days that have no data. The value goes to the project's ``.env``, which the UI, the
    daemon, backfills and sensors all read; a value set in the environment still wins.
    """
    import os

    from dotenv import dotenv_values

    from analytics_pipeline.settings import ENV_FILE, write_env_setting

    name = "ANALYTICS_START_DATE"
    in_file = dotenv_values(ENV_FILE).get(name) if ENV_FILE.exists() else None
    from_environment = os.environ.get(name) if os.environ.get(name) != in_file else None
    if write:
        write_env_setting(name, first_day.isoformat())
        print(f"daily partitions start at the data's first day: {name}={first_day} written to {ENV_FILE}")
        if from_environment and from_environment != first_day.isoformat():
            print(f"  note: {name}={from_environment} is set in the environment and wins over {ENV_FILE.name}")
        return
    current = get_settings().start_date
    if current != first_day:
        print(
            f"daily partitions start at {name}={current}; to start them at this data's first day, "
            f"put {name}={first_day} in {ENV_FILE} (or run generate with --write-start-date)"
        )


def _cmd_backfill(args: argparse.Namespace) -> int:
    from analytics_pipeline.defs.operations.backfill import resolve_window, run_backfill

    start, end = resolve_window(args.days, args.start, args.end)
    started = time.perf_counter()
    outcome = run_backfill(start, end, args.select)
    seconds = time.perf_counter() - started
    days = (end - start).days + 1
    if outcome.success:
        warned = f", {len(outcome.warned_days)} with warnings" if outcome.warned_days else ""
        print(
            f"backfill {outcome.backfill_id} succeeded: {days} days{warned} in {seconds:.1f}s, runs {', '.join(outcome.run_ids)}"
        )
        for day, warnings in sorted(outcome.warned_days.items()):
            print(f"  warn {day}: {'; '.join(warnings)}")
        for check in outcome.failed_checks:
            print(f"  check failed: {check}")
        return 0
    print(
        f"backfill {outcome.backfill_id} FAILED after {seconds:.1f}s (runs {', '.join(outcome.run_ids)}):",
        file=sys.stderr,
    )
    for failure in outcome.failed_steps:
        print(f"  {failure}", file=sys.stderr)
    print("Open the run in the Dagster UI for its logs.", file=sys.stderr)
    return 1


def _cmd_ui(args: argparse.Namespace) -> int:
    import os

    from analytics_pipeline.instance import prepare_dagster_home
    from analytics_pipeline.settings import PROJECT_ROOT
    from analytics_pipeline.ui import dev_command, run_stack

    home = prepare_dagster_home()
    # Run from the instance directory: Dagster warns about a dagster.yaml in the current folder that
    # is not DAGSTER_HOME's (the project root's is, through the home's link or copy). The package is
    # found from there through the editable install, or the project root on PYTHONPATH.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    print(
        f"Dagster UI with the daemon: http://{args.host}:{args.port}  (instance: {home}; Ctrl-C stops both)", flush=True
    )
    return run_stack(dev_command(args.host, args.port), cwd=home, env=env)


def _cmd_worker(args: argparse.Namespace) -> int:
    """Become a Celery worker (exec, so a supervisor's SIGTERM reaches Celery's warm shutdown)."""
    import os
    import socket
    import sysconfig

    from analytics_pipeline.executors import QUEUES
    from analytics_pipeline.instance import prepare_dagster_home
    from analytics_pipeline.settings import PROJECT_ROOT

    settings = get_settings()
    queues = list(dict.fromkeys(args.queue))
    unknown = [queue for queue in queues if queue not in QUEUES]
    if unknown:
        raise ValueError(f"unknown queue {', '.join(unknown)}; the queues are {', '.join(QUEUES)}")
    if settings.executor != "celery":
        print(
            "note: ANALYTICS_EXECUTOR is not 'celery' here; runs send steps to workers only where the code "
            "location runs with ANALYTICS_EXECUTOR=celery.",
            file=sys.stderr,
        )
    prepare_dagster_home()
    name = args.name or "+".join(queues)
    command = [
        str(Path(sysconfig.get_path("scripts")) / "celery"),
        "-A",
        "analytics_pipeline.celery_app",
        "worker",
        "--queues",
        ",".join(queues),
        "--hostname",
        f"{name}@{socket.gethostname()}",
        # one task per process at a time, as dagster-celery's own worker command does: a step can run for
        # minutes, and a prefetched one would wait behind it while another worker is idle
        "--prefetch-multiplier",
        "1",
        "--loglevel",
        args.loglevel,
        "--without-gossip",
        "--without-mingle",
    ]
    if args.concurrency:
        command += ["--concurrency", str(args.concurrency)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    print(
        f"Celery worker {name} on queue(s) {', '.join(queues)} (broker {_redacted(settings.celery_broker)})", flush=True
    )
    os.execve(command[0], command, env)
    return 0  # not reached


def _redacted(url: str) -> str:
    """A broker URL without its password."""
    scheme, found, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not (found and at and ":" in credentials):
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def _cmd_export(args: argparse.Namespace) -> int:
    from analytics_pipeline.defs.reporting.exports import default_output, export, resolve
    from analytics_pipeline.resources.warehouse import Warehouse

    settings = get_settings()
    mart = resolve(args.table)  # refuse a table off the allow-list before touching the warehouse
    output = (
        Path(args.output)
        if args.output
        else default_output(settings.output_dir, mart, args.start, args.end, args.org, args.format)
    )
    written = 0

    def progress(rows: int) -> None:
        nonlocal written
        written += rows
        print(f"\r  {written:,} rows written", end="", file=sys.stderr, flush=True)

    def waiting(holder: str, seconds: float) -> None:
        print(
            f"waiting for the warehouse: {holder} is writing to it ({seconds:.0f} s of at most "
            f"{settings.read_wait_seconds:.0f} s, ANALYTICS_READ_WAIT_SECONDS)",
            file=sys.stderr,
            flush=True,
        )

    rows = export(
        Warehouse(settings), mart.table, args.start, args.end, args.format, output, args.org, progress, waiting
    )
    print(file=sys.stderr)
    print(f"exported {rows} rows of {mart.table} ({args.start} .. {args.end}) to {output}")
    return 0


def _cmd_health(args: argparse.Namespace) -> int:
    from analytics_pipeline.defs.operations.health import evaluate

    report = evaluate(get_settings())
    print(report.to_json() if args.json else report.to_text())
    return report.exit_code


def _cmd_metrics(args: argparse.Namespace) -> int:
    from analytics_pipeline.defs.operations.metrics import render, serve

    get_settings()  # a bad setting is refused here, not on the first scrape
    if args.window_days < 1:
        raise ValueError("--window-days must be at least 1.")
    if args.serve is None:
        print(render(args.window_days), end="")
        return 0
    try:
        server, _ = serve(args.serve, args.host, args.window_days)
    except OSError as error:
        raise ValueError(
            f"Cannot serve metrics on {args.host}:{args.serve} ({error}); pick another --serve port."
        ) from None
    stop = threading.Event()
    # SIGTERM (kill, systemd, Kubernetes) always stops the server, even where the parent left it ignored:
    # SIG_IGN is inherited across exec, and a server that outlives its supervisor's stop is a leak.
    signal.signal(signal.SIGTERM, lambda _signo, _frame: stop.set())
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job's ignored Ctrl-C stays ignored
        signal.signal(signal.SIGINT, lambda _signo, _frame: stop.set())
    print(
        f"Prometheus metrics on http://{args.host}:{args.serve}/metrics (measured at every scrape; Ctrl-C stops)",
        flush=True,
    )
    stop.wait()
    server.shutdown()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="analytics-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write realistic sample data into the landing zone")
    generate.add_argument("--start", type=_date)
    generate.add_argument("--end", type=_date, help="inclusive")
    generate.add_argument("--days", type=int, help="instead of --start/--end: the last N complete UTC days")
    generate.add_argument("--events-per-day", type=int, default=20_000)
    generate.add_argument("--orgs", type=int, default=12)
    generate.add_argument("--users", type=int, default=2_000)
    generate.add_argument("--items", type=int, default=60)
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--bad-rate", type=float, default=0.002)
    generate.add_argument("--landing-dir", help="default: ANALYTICS_LANDING_DIR")
    generate.add_argument(
        "--write-start-date",
        action="store_true",
        help="set ANALYTICS_START_DATE in the project's .env to the data's first day (make demo does)",
    )
    generate.set_defaults(handler=_cmd_generate)

    backfill = commands.add_parser("backfill", help="materialize daily partitions for a range of days")
    backfill.add_argument("--days", type=int, help="the last N complete UTC days")
    backfill.add_argument("--start", type=_date)
    backfill.add_argument("--end", type=_date, help="inclusive")
    backfill.add_argument("--select", help="Dagster asset selection (default: every daily-partitioned asset)")
    backfill.set_defaults(handler=_cmd_backfill)

    export = commands.add_parser("export", help="export a mart for a window to CSV, Parquet, XLSX or JSON")
    export.add_argument("table", help="e.g. fct_daily_engagement or marts.fct_kpi_daily")
    export.add_argument("--start", type=_date, required=True)
    export.add_argument("--end", type=_date, required=True, help="inclusive")
    export.add_argument("--org", help="one school (org_id)")
    export.add_argument("--format", choices=["csv", "parquet", "xlsx", "json"], default="csv")
    export.add_argument("--output", help="file to write (default: ANALYTICS_OUTPUT_DIR/exports/...)")
    export.set_defaults(handler=_cmd_export)

    ui = commands.add_parser("ui", help="start the Dagster UI with the daemon (schedules, sensors, backfills)")
    ui.add_argument("--port", type=int, default=3000)
    ui.add_argument("--host", default="127.0.0.1")
    ui.set_defaults(handler=_cmd_ui)

    worker = commands.add_parser(
        "worker", help="a Celery worker for steps of the given queues (with ANALYTICS_EXECUTOR=celery)"
    )
    worker.add_argument(
        "--queue",
        "-q",
        action="append",
        required=True,
        metavar="QUEUE",
        help="warehouse, forecasting or reports; repeat to serve several",
    )
    worker.add_argument("--concurrency", "-c", type=int, help="steps at once (default: Celery's, one per core)")
    worker.add_argument("--name", help="worker name shown on each step it runs (default: its queues)")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(handler=_cmd_worker)

    health = commands.add_parser(
        "health", help="check warehouse, instance, daemon, freshness, runs and checks (exit 0/1/2)"
    )
    health.add_argument("--json", action="store_true", help="print a machine-readable document")
    health.set_defaults(handler=_cmd_health)

    metrics = commands.add_parser("metrics", help="Prometheus metrics: print one scrape, or serve /metrics")
    metrics.add_argument("--serve", type=int, metavar="PORT", help="serve /metrics on this port until Ctrl-C")
    metrics.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0 for every interface)")
    metrics.add_argument("--window-days", type=int, default=7, help="days of runs the run metrics cover")
    metrics.set_defaults(handler=_cmd_metrics)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (SettingsError, ValueError, FileNotFoundError, WarehouseError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
