"""Benchmarks of analytics-pipeline on this machine; writes bench/RESULTS.md (and RESULTS.json).

    python -m bench [--quick] [--engines duckdb,postgres] [--repeat N] [--sections 1,2,...]
                    [--output PATH] [--workdir DIR] [--keep]

Sample data comes from ``analytics_pipeline.lib.sample_data.generate`` (what
``analytics-pipeline generate`` runs) into a temporary landing zone. Every measured command runs in
a child process against a throw-away warehouse (a DuckDB file, or a PostgreSQL database of its own
on the server of ANALYTICS_PG_HOST/PORT/USER, default 127.0.0.1:5432 as postgres), so nothing the
user has is touched. Each figure is the median of ``--repeat`` runs. See README "Benchmarks".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path

from bench.environment import (
    DBT_PROJECT_DIR,
    PG_SERVER,
    PROJECT_ROOT,
    VENV_BIN,
    CeleryWorkers,
    ChildFailed,
    Measured,
    Site,
    create_database,
    drop_database,
    drop_databases,
    postgres_available,
)
from bench.report import ENGINE_NAMES, Report, Section, Target

BENCH_DIR = Path(__file__).resolve().parent
FIRST_DAY = date(2025, 3, 3)  # a Monday: generated volumes follow the school week
ENGINES = ("duckdb", "postgres")
SECTIONS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "where")
# the year section's histories end here (a year: 2025-01-01 .. 2025-12-31; three: from 2023-01-02)
YEAR_LAST = date(2025, 12, 31)
# The Python forecasting assets write forecast.*; a plain `dbt build` has nothing to read there.
PLAIN_DBT_EXCLUDE = "source:forecast+"

# The forecasting issue's targets (1,000 items x 2 years of daily history).
FORECAST_TARGETS = {
    "selection_seconds": Target(600, text="≤ 10 min"),
    "forecast_seconds": Target(60, text="≤ 60 s"),
    "mase_improvement_vs_naive_pct": Target(float("inf"), minimum=10, text="≥ 10%"),
    "coverage_80": Target(0.9, minimum=0.7, text="0.70 – 0.90"),
}


@dataclass(frozen=True)
class Plan:
    """Sizes of one benchmark run."""

    name: str
    repeat: int
    ingest_sizes: tuple[int, ...]
    backfill_days: int
    backfill_events: int
    growth_histories: tuple[int, int]
    growth_events: int
    export_days: int
    forecast_items: int
    forecast_days: int
    # section 8: (days, events per day) of each history backfilled at once
    years: tuple[tuple[int, int], ...] = ()

    @classmethod
    def choose(cls, quick: bool, repeat: int | None) -> Plan:
        if quick:
            return cls("quick", repeat or 1, (2_000,), 2, 2_000, (2, 4), 2_000, 2, 20, 60, ((3, 500),))
        return cls(
            "full",
            repeat or 3,
            (100_000, 1_000_000),
            30,
            200_000,
            (30, 365),
            20_000,
            7,
            1_000,
            730,
            ((365, 20_000), (3 * 365, 2_000)),
        )

    @property
    def backfill_range(self) -> tuple[date, date]:
        return FIRST_DAY, FIRST_DAY + timedelta(days=self.backfill_days - 1)

    @property
    def daily_day(self) -> date:
        """The partition the daily runs materialize: the day after the backfill."""
        return FIRST_DAY + timedelta(days=self.backfill_days)

    @property
    def growth_first_day(self) -> date:
        return FIRST_DAY - timedelta(days=max(self.growth_histories))


def _users_for(events_per_day: int) -> int:
    """Enough users for the volume (the generator's default of 2,000 would make every user hyperactive)."""
    return max(2_000, events_per_day // 40)


class Bench:
    def __init__(
        self, plan: Plan, engines: list[str], sections: list[str], root: Path, output: Path, keep: bool = False
    ):
        self.plan, self.engines, self.sections, self.root, self.output = plan, engines, sections, root, output
        self.keep = keep
        self.report = Report(engines)
        self.failures = 0
        self.started = datetime.now(UTC)
        self.load_before = _loadavg()

    # -- data -----------------------------------------------------------------------------------

    def generate(self, name: str, start: date, end: date, events_per_day: int) -> Path:
        from analytics_pipeline.lib.sample_data import generate

        landing = self.root / "landing" / name
        if not landing.exists():
            began = time.perf_counter()
            summary = generate(landing, start, end, events_per_day=events_per_day, users=_users_for(events_per_day))
            self.log(
                f"generated {name}: {summary.rows['activity_events']:,} events, {start} .. {end} "
                f"({time.perf_counter() - began:.1f}s)"
            )
        return landing

    def site(self, engine: str, name: str, landing: Path, start: date) -> Site:
        return Site(engine, f"{engine}-{name}", self.root / "sites", landing, start.isoformat())

    # -- helpers ----------------------------------------------------------------------------------

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)

    def wanted(self, section: str) -> bool:
        return section in self.sections

    def titles(self) -> dict[str, str]:
        plan = self.plan
        return {
            "1": "1. Ingestion throughput (one day of activity events)",
            "2": f"2. Backfill: {plan.backfill_days} days × {plan.backfill_events:,} events/day",
            "3": "3. One daily partition vs Dagster's fixed cost",
            "4": "4. Growth: the daily run at a short and a long history",
            "5": "5. Peak memory of ingesting one day",
            "6": f"6. Forecasting: {plan.forecast_items:,} items × {plan.forecast_days} days",
            "7": f"7. Export of a {plan.export_days}-day window",
            "8": "8. A year of history: "
            + ", ".join(f"{days} days × {events:,} events/day" for days, events in plan.years),
            "9": f"9. Forecasting on Celery workers: 1 vs 2, {plan.forecast_items:,} items × {plan.forecast_days} days",
            "where": "Where the time goes",
        }

    def section(self, key: str, intro: str = "") -> Section:
        section = self.report.section(key, self.titles()[key])
        section.intro = section.intro or intro
        return section

    def guarded(self, keys: tuple[str, ...], engine: str, measure: Callable[[], None]) -> None:
        """Run one part of the benchmark; a failing command is recorded and the rest carries on."""
        try:
            measure()
        except ChildFailed as error:
            self.failures += 1
            self.log(f"FAILED: {error}")
            for key in keys:
                first_line = str(error).splitlines()[0]
                self.section(key).notes.append(f"**{ENGINE_NAMES.get(engine, engine)}: FAILED** — {first_line}")

    def repeat(self, label: str, once: Callable[[int], None]) -> None:
        for attempt in range(self.plan.repeat):
            self.log(f"{label} ({attempt + 1}/{self.plan.repeat})")
            once(attempt)

    def dagster_job(self, site: Site, label: str, job: list[str], partition: date | None) -> Measured:
        command = [str(VENV_BIN / "dagster"), "job", "execute", *job]
        if partition:
            command += ["--tags", json.dumps({"dagster/partition": partition.isoformat()})]
        return site.run(label, command)

    def daily_run(self, site: Site, label: str, day: date, multiprocess: bool = False) -> Measured:
        """The daily_pipeline job for one partition; ``multiprocess``: the same steps, a process each."""
        if multiprocess:
            job = ["-f", str(BENCH_DIR / "multiprocess_job.py"), "-j", "daily_pipeline_multiprocess"]
        else:
            job = ["-m", "analytics_pipeline.definitions", "-j", "daily_pipeline"]
        return self.dagster_job(site, label, job, day)

    def dbt(
        self, site: Site, label: str, args: list[str], target: Path, extra_env: dict[str, str] | None = None
    ) -> Measured:
        command = [
            str(VENV_BIN / "dbt"),
            *args,
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
            "--log-path",
            str(target),
        ]
        return site.run(label, command, cwd=DBT_PROJECT_DIR, extra_env=extra_env)

    def prepare_dbt(self, site: Site) -> None:
        """dbt's saved parse for the site's warehouse, as `make install` leaves it for the real one."""
        site.task(f"{site.name}-prepare-dbt", "prepare-dbt")

    # -- sections ---------------------------------------------------------------------------------

    def ingestion(self, engine: str) -> None:
        """1. events/s of the loader (read + validate + write) vs the engine's plain bulk load; 5. peak RSS."""
        throughput = self.section(
            "1",
            (
                "The loader of the ingestion assets (read every file of the day, validate every record in "
                "one SQL statement, write rows, rejects and the file ledger in one transaction) against the "
                "floor: the engine's own bulk load of the same files without per-record validation "
                "(DuckDB `read_json`; PostgreSQL `COPY` into a staging table, then typed by plain SQL), "
                "keeping only what makes typed rows with unique keys (bench/floor/load_*.sql). Events/s = "
                "lines read / seconds of work in the child process (Python start-up excluded)."
            ),
        )
        memory = self.section(
            "5",
            (
                "Maximum resident set size of the child process that loads one day of events (the "
                "loader above): the high-water mark of its address space (`VmHWM`, reported by the child; "
                "`wait4` would also count the benchmark's own pages at the fork). With PostgreSQL the server's "
                "memory is not included."
            ),
        )
        largest = max(self.plan.ingest_sizes)
        for size in self.plan.ingest_sizes:
            day = FIRST_DAY + timedelta(days=1)
            landing = self.generate(f"ingest-{size}", day, day, size)
            site = self.site(engine, f"ingest-{size}", landing, day)
            label = f"{size:,} events/day"

            def once(attempt: int, site: Site = site, label: str = label, day: date = day, size: int = size) -> None:
                loaded = site.reset().task(f"{site.name}-ingest-{attempt}", "ingest", day.isoformat())
                lines = loaded.result["lines_read"]
                throughput.add(f"pipeline loader, {label}", engine, lines / loaded.result["seconds"], "events/s")
                if size == largest:
                    memory.add(
                        f"peak RSS, {label}",
                        engine,
                        loaded.max_rss_bytes / 2**20,
                        "MiB",
                        Target(1024, strict=True, text="< 1 GiB"),
                    )
                bulk = site.reset().task(f"{site.name}-bulk-{attempt}", "bulk-events", day.isoformat())
                throughput.add(f"floor (plain bulk load), {label}", engine, lines / bulk.result["seconds"], "events/s")
                if bulk.result.get("copy_seconds"):  # PostgreSQL: COPY of the raw lines alone, before typing
                    throughput.add(
                        f"floor, `COPY` of the raw lines only (before typing), {label}",
                        engine,
                        lines / bulk.result["copy_seconds"],
                        "events/s",
                    )

            self.repeat(f"{engine}: ingestion {label}", once)
            throughput.ratio(
                f"floor / pipeline loader, {label}", f"floor (plain bulk load), {label}", f"pipeline loader, {label}"
            )
            site.drop(self.keep)

    def backfill(self, engine: str, pipeline: Site) -> None:
        """2. `analytics-pipeline backfill` vs the floor script vs plain bulk load + `dbt build`."""
        first, last = self.plan.backfill_range
        section = self.section(
            "2",
            (
                f"`analytics-pipeline backfill --start {first} --end {last}` on an empty warehouse (whole "
                "command: start-up, dimensions, every daily asset for the range as one run, then the "
                "unpartitioned models built from days), against the floor (plain bulk load + "
                "bench/floor/marts.sql: the engagement and KPI marts in one SQL script, work in the child "
                "process) and against plain dbt (the same bulk load, then `dbt build --vars "
                f"'{{min_date: {first}, max_date: {last}}}' --exclude {PLAIN_DBT_EXCLUDE}`, whole dbt "
                "command). dbt's saved parse is in place for both, as on a machine that runs every day."
            ),
        )
        label_pipeline, label_floor, label_plain = (
            "pipeline: `analytics-pipeline backfill`",
            "floor: bulk load + one SQL script",
            "plain: bulk load + `dbt build`",
        )

        def once(attempt: int) -> None:
            run = pipeline.reset().run(
                f"{pipeline.name}-backfill-{attempt}",
                [
                    str(VENV_BIN / "analytics-pipeline"),
                    "backfill",
                    "--start",
                    first.isoformat(),
                    "--end",
                    last.isoformat(),
                ],
            )
            section.add(label_pipeline, engine, run.seconds, "s")

        self.repeat(f"{engine}: backfill", once)

        floor_site = self.site(engine, "floor", pipeline.landing, first)

        def floor_once(attempt: int) -> None:
            measured = floor_site.reset().task(
                f"{floor_site.name}-{attempt}", "floor", first.isoformat(), last.isoformat()
            )
            section.add(label_floor, engine, measured.result["seconds"], "s")
            section.add("floor: of which the bulk load", engine, measured.result["load_seconds"], "s")

        self.repeat(f"{engine}: floor", floor_once)
        floor_site.drop(self.keep)

        plain_site = self.site(engine, "plain", pipeline.landing, first)
        window = json.dumps({"min_date": first.isoformat(), "max_date": last.isoformat()})
        plain_args = ["build", "--vars", window, "--exclude", PLAIN_DBT_EXCLUDE]

        def plain_once(attempt: int) -> None:
            plain_site.reset()
            if attempt == 0:  # dbt's saved parse for these vars and this warehouse, as for the pipeline
                self.dbt(
                    plain_site, f"{plain_site.name}-parse", ["parse", "--vars", window], plain_site.dbt_target / "plain"
                )
            load = plain_site.task(
                f"{plain_site.name}-load-{attempt}", "plain-load", first.isoformat(), last.isoformat()
            )
            build = self.dbt(
                plain_site, f"{plain_site.name}-dbt-{attempt}", plain_args, plain_site.dbt_target / "plain"
            )
            section.add(label_plain, engine, load.result["seconds"] + build.seconds, "s")
            section.add("plain: of which `dbt build`", engine, build.seconds, "s")

        self.repeat(f"{engine}: plain dbt", plain_once)
        plain_site.drop(self.keep)
        section.ratio("pipeline / floor", label_pipeline, label_floor, Target(3, text="≤ 3×"))
        section.ratio("pipeline / plain", label_pipeline, label_plain, Target(1.3, text="≤ 1.3×"))

    def daily(self, engine: str, pipeline: Site) -> None:
        """3. One partition of the daily_pipeline job (as the daily schedule runs it) vs a trivial run."""
        day = self.plan.daily_day
        section = self.section(
            "3",
            (
                f"`dagster job execute -j daily_pipeline` for the partition {day} on the warehouse of "
                f"section 2 (its {self.plan.backfill_days} days loaded), as the daily schedule's run executes "
                "it: the job's own executor (in-process: every step in the run's process) on the embedded "
                "instance. The trivial run is a one-op job that does nothing (bench/trivial_job.py), "
                "run the same way. Whole commands."
            ),
        )
        trivial_job = ["-f", str(BENCH_DIR / "trivial_job.py"), "-j", "trivial"]

        def once(attempt: int) -> None:
            run = self.daily_run(pipeline, f"{pipeline.name}-daily-{attempt}", day)
            section.add("daily partition (`daily_pipeline`)", engine, run.seconds, "s")
            trivial = self.dagster_job(pipeline, f"{pipeline.name}-trivial-{attempt}", trivial_job, None)
            section.add("trivial run (one op, no work)", engine, trivial.seconds, "s")

        self.repeat(f"{engine}: daily partition", once)
        section.ratio(
            "daily / trivial",
            "daily partition (`daily_pipeline`)",
            "trivial run (one op, no work)",
            Target(2, text="≤ 2×"),
        )

    def growth(self, engine: str, pipeline: Site) -> None:
        """4. The same daily run with a short and a long history in the warehouse."""
        short, long = self.plan.growth_histories
        events = self.plan.growth_events
        day = FIRST_DAY
        section = self.section(
            "4",
            (
                f"The daily partition {day} (run as in section 3) on a warehouse holding the {short} and the "
                f"{long} days before it ({events:,} events/day). The history is put in place by the plain "
                "bulk load and a full `dbt build` (the tables a daily pipeline would have built; the Dagster "
                "instance starts empty)."
            ),
        )
        landing = self.generate(f"growth-{events}", self.plan.growth_first_day, day, events)
        labels = {h: f"daily partition, {h} days of history" for h in (short, long)}
        for history in (short, long):
            site = replace(pipeline, landing=landing, start_date=self.plan.growth_first_day.isoformat())
            site.reset()
            first, last = day - timedelta(days=history), day - timedelta(days=1)
            site.task(f"{site.name}-growth-{history}-load", "plain-load", first.isoformat(), last.isoformat())
            self.dbt(
                site,
                f"{site.name}-growth-{history}-dbt",
                ["build", "--exclude", PLAIN_DBT_EXCLUDE],
                site.dbt_target / "history",
            )

            def once(attempt: int, site: Site = site, history: int = history) -> None:
                run = self.daily_run(site, f"{site.name}-growth-{history}-{attempt}", day)
                section.add(labels[history], engine, run.seconds, "s")

            self.repeat(f"{engine}: growth, {history} days", once)
        section.ratio(f"{long} days / {short} days", labels[long], labels[short], Target(1.2, text="≤ 1.2×"))

    def export(self, engine: str, pipeline: Site) -> None:
        """7. export() of every allow-listed mart for a window of the backfilled days."""
        last = self.plan.backfill_range[1]
        first = last - timedelta(days=self.plan.export_days - 1)
        section = self.section(
            "7",
            (
                f"`export()` (what `analytics-pipeline export` calls) of each allow-listed mart for {first} .. "
                f"{last} to CSV, on the warehouse of section 2: the call itself (query + file). The last row "
                "is the whole `analytics-pipeline export` command, start-up included."
            ),
        )
        measured = pipeline.task(
            f"{pipeline.name}-export", "export", first.isoformat(), last.isoformat(), str(self.plan.repeat)
        )
        for name, runs in measured.result["seconds"].items():
            rows = measured.result["rows"][name]
            for seconds in runs:
                section.add(f"`{name}` ({rows:,} rows)", engine, seconds, "s", Target(0.5, strict=True, text="< 0.5 s"))

        def once(attempt: int) -> None:
            output = pipeline.output_dir / f"cli-export-{attempt}.csv"
            run = pipeline.run(
                f"{pipeline.name}-export-cli-{attempt}",
                [
                    str(VENV_BIN / "analytics-pipeline"),
                    "export",
                    "fct_daily_engagement",
                    "--start",
                    first.isoformat(),
                    "--end",
                    last.isoformat(),
                    "--format",
                    "csv",
                    "--output",
                    str(output),
                ],
            )
            section.add("whole command: `analytics-pipeline export fct_daily_engagement`", engine, run.seconds, "s")

        self.repeat(f"{engine}: export command", once)

    def forecasting(self, engine: str) -> None:
        """6. The forecasting domain's own benchmark, when it provides one."""
        items, days = self.plan.forecast_items, self.plan.forecast_days
        section = self.section(
            "6",
            (
                "`analytics_pipeline.lib.forecasting.bench.run(items, days, repeat)`, called in a child "
                "process whose environment points at an empty warehouse and an empty landing zone."
            ),
        )
        landing = self.root / "landing" / f"forecast-{engine}"
        landing.mkdir(parents=True, exist_ok=True)
        site = self.site(engine, "forecast", landing, FIRST_DAY).reset()
        self.log(f"{engine}: forecasting")
        measured = site.task(f"{site.name}-run", "forecasting", str(items), str(days), str(self.plan.repeat))
        site.drop(self.keep)
        if not measured.result.get("available"):
            if not any(note.startswith("forecasting: not available") for note in section.notes):
                section.notes.append("forecasting: not available (no module analytics_pipeline.lib.forecasting.bench)")
            print("forecasting: not available", flush=True)
            return
        for name, value in measured.result["figures"].items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                unit = "s" if name.endswith(("seconds", "_s")) else ""
                section.add(name, engine, float(value), unit, FORECAST_TARGETS.get(name))
            else:
                section.notes.append(f"{ENGINE_NAMES.get(engine, engine)}: {name}: {value}")

    def years(self, engine: str) -> None:
        """8. Backfills of long histories at once, against the floor, with where the time went."""
        section = self.section(
            "8",
            (
                "`analytics-pipeline backfill --start START --end END` over the whole history on an empty "
                "warehouse and instance (the embedded SQLite instance; whole command), against the floor "
                "(bench/floor: plain bulk load + the engagement and KPI marts in one SQL script, work in "
                "the child process). Once each (a year takes minutes). The split is read from the runs' "
                "event logs (`python -m bench.tasks split`): start-up and summary = the command's time "
                "outside its runs; planned events = Dagster writing a planned event per asset and day "
                "when it creates the run; a step's work ends at its first materialization, what follows "
                "is its event records (one materialization per asset and day, and the checks). Dagster's "
                "bookkeeping = planned events + event records. The UI-launched backfill is the same range "
                'launched as the job page\'s "Launch backfill" does (GraphQL `launchPartitionBackfill`) '
                "on `analytics-pipeline ui`, timed from the launch to the backfill's completion; Dagster's "
                "backfill daemon looks for new backfills every 30 s, so up to 30 s of it is that wait."
            ),
        )
        for days, events in self.plan.years:
            first, last = YEAR_LAST - timedelta(days=days - 1), YEAR_LAST
            case = f"{days} days × {events:,} events/day"
            landing = self.generate(f"year-{days}-{events}", first, last, events)
            site = self.site(engine, f"year-{days}", landing, first).reset()
            try:
                self.prepare_dbt(site)
                self.log(f"{engine}: {case}")
                run = site.run(
                    f"{site.name}-backfill",
                    [
                        str(VENV_BIN / "analytics-pipeline"),
                        "backfill",
                        "--start",
                        first.isoformat(),
                        "--end",
                        last.isoformat(),
                    ],
                )
                parts = site.task(f"{site.name}-split", "split").result
                rows = {
                    "pipeline: `analytics-pipeline backfill`": run.seconds,
                    "of which start-up and summary (outside the runs)": run.seconds - parts["runs"],
                    "of which runs without days (dimensions before, cohorts after)": parts["runs_without_days"],
                    "of which planned events": parts["planned"],
                    "of which ingestion work": parts["ingestion_work"],
                    "of which ingestion event records": parts["ingestion_events"],
                    "of which dbt work": parts["dbt_work"],
                    "of which dbt event records (and each model's preview query)": parts["dbt_events"],
                    "of which other run overhead (start, pool, checks, end)": parts["other"],
                }
                for label, value in rows.items():
                    section.add(f"{case}: {label}", engine, value, "s")
                bookkeeping = parts["planned"] + parts["ingestion_events"] + parts["dbt_events"]
                section.add(
                    f"{case}: Dagster's bookkeeping, share of the wall time",
                    engine,
                    100 * bookkeeping / run.seconds,
                    "%",
                    Target(20, strict=True, text="< 20%"),
                )
                section.add(f"{case}: event records written", engine, parts["events"], "")
                if self.plan.name != "quick":  # (the harness check skips it: the daemon's fixed waits are most of it)
                    self.ui_backfill(section, engine, case, site.reset(), first, last)
                floor_site = self.site(engine, f"year-{days}-floor", landing, first).reset()
                measured = floor_site.task(f"{floor_site.name}-floor", "floor", first.isoformat(), last.isoformat())
                section.add(f"{case}: floor: bulk load + one SQL script", engine, measured.result["seconds"], "s")
                floor_site.drop(self.keep)
                section.ratio(
                    f"{case}: pipeline / floor",
                    f"{case}: pipeline: `analytics-pipeline backfill`",
                    f"{case}: floor: bulk load + one SQL script",
                    Target(3, text="≤ 3×"),
                )
            finally:
                site.drop(self.keep)

    def forecast_workers(self, engine: str) -> None:
        """9. Model selection and the forecast of one as-of date, fanned out over Celery workers."""
        if engine != "postgres":  # workers on several hosts share a server warehouse, not a DuckDB file
            return
        items, days = self.plan.forecast_items, self.plan.forecast_days
        per_step = max(1, items // 8)
        pinned = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
        section = self.section(
            "9",
            (
                f"`model_evaluations` and `demand_forecasts` of one as-of date (`dagster asset materialize`, "
                f"whole command) with `ANALYTICS_EXECUTOR=celery` on a PostgreSQL warehouse and instance, "
                f"RabbitMQ broker: {items:,} items with {days} days of demand (as section 6), "
                f"`items_per_step` {per_step} ({-(-items // per_step)} range steps each), `n_jobs` 1. Each worker is "
                f"`analytics-pipeline worker --queue forecasting --concurrency 1`"
                + (", pinned to a core of its own (`taskset`), as a one-core host would be" if pinned else "")
                + "; the in-process run is the same command with the default executor, in one process."
            ),
        )
        landing = self.root / "landing" / "forecast-workers"
        landing.mkdir(parents=True, exist_ok=True)
        site = self.site(engine, "forecast-workers", landing, FIRST_DAY).reset()
        instance_db = f"{site.pg_database}_dagster"[:60]
        drop_database(instance_db)
        create_database(instance_db)
        shutil.copy(PROJECT_ROOT / "deploy" / "dagster.production.yaml", site.dagster_home / "dagster.yaml")
        instance_env = {
            "DAGSTER_POSTGRES_URL": f"postgresql+psycopg2://{PG_SERVER['user']}"
            + (f":{PG_SERVER['password']}" if PG_SERVER["password"] else "")
            + f"@{PG_SERVER['host']}:{PG_SERVER['port']}/{instance_db}"
        }
        try:
            self.log(f"{engine}: forecasting on workers (demand)")
            seeded = site.run(
                f"{site.name}-seed",
                [sys.executable, "-m", "bench.tasks", "seed-demand", str(items), str(days)],
                extra_env=instance_env,
            ).result
            config = {
                "ops": {
                    name: {"config": {"n_jobs": 1, "items_per_step": per_step}}
                    for name in ("forecast__model_evaluations", "forecast__demand_forecasts")
                }
            }
            command = [
                str(VENV_BIN / "dagster"),
                "asset",
                "materialize",
                "-m",
                "analytics_pipeline.definitions",
                "--select",
                "forecast/model_evaluations,forecast/demand_forecasts",
                "--partition",
                seeded["as_of"],
                "--config-json",
                json.dumps(config),
            ]
            labels = {0: "in process (one process, `n_jobs` 1)", 1: "1 worker", 2: "2 workers"}
            outcomes: dict[int, dict] = {}

            def once(attempt: int, workers: int) -> None:
                env = {**instance_env, "ANALYTICS_EXECUTOR": "celery" if workers else "in_process"}
                with CeleryWorkers(site, workers, env, pin=pinned):
                    run = site.run(f"{site.name}-{workers}-workers-{attempt}", command, extra_env=env)
                steps = site.run(
                    f"{site.name}-{workers}-steps-{attempt}",
                    [sys.executable, "-m", "bench.tasks", "celery-steps"],
                    extra_env=env,
                ).result
                section.add(labels[workers], engine, run.seconds, "s")
                outcomes[workers] = steps
                if steps["status"] != "SUCCESS" or len(steps["workers"]) != workers:
                    raise ChildFailed(f"{labels[workers]}: the run did not use every worker: {steps}")

            for workers in (0, 1, 2):
                self.repeat(
                    f"{engine}: forecasting, {labels[workers]}", lambda attempt, workers=workers: once(attempt, workers)
                )
            section.ratio("2 workers / 1 worker", labels[2], labels[1], Target(0.6, text="≈ ½ (≤ 0.6×)"))
            for workers in (1, 2):
                by_worker = ", ".join(f"{name} {count}" for name, count in sorted(outcomes[workers]["workers"].items()))
                section.notes.append(f"{labels[workers]}: steps per worker (last run): {by_worker}")
            same = all(outcomes[w]["selections"] == outcomes[0]["selections"] for w in (1, 2))
            section.notes.append(
                f"every run selected the same model for every item: {'yes' if same else '**no**'} "
                f"({len(outcomes[0]['selections']):,} items; {outcomes[0]['forecast_rows']:,} forecast rows)"
            )
        finally:
            site.drop(self.keep)
            drop_database(instance_db)

    def ui_backfill(self, section: Section, engine: str, case: str, site: Site, first: date, last: date) -> None:
        """The same range launched from the UI (the job page's "Launch backfill"), run by the daemon."""
        shown = site.task(f"{site.name}-ui-backfill", "ui-backfill", first.isoformat(), last.isoformat()).result
        if shown["status"] != "COMPLETED_SUCCESS" or shown["assets_with_every_day"] != shown["assets"]:
            raise ChildFailed(f"the UI-launched backfill did not materialize every day of every asset: {shown}")
        section.add(
            f"{case}: UI-launched backfill (daemon of `analytics-pipeline ui`), launch to completion",
            engine,
            shown["seconds"],
            "s",
        )
        section.add(f"{case}: UI-launched backfill: runs", engine, shown["runs"], "")
        section.add(
            f"{case}: UI-launched backfill: engagement days carrying their own numbers",
            engine,
            shown["engagement_days_with_their_numbers"],
            "",
        )

    def where_the_time_goes(self, engine: str, pipeline: Site) -> None:
        """The fixed costs of a run, measured one by one."""
        day = self.plan.daily_day
        section = self.section(
            "where",
            (
                "Fixed costs every run pays, measured one by one on the warehouse of section 2 (whole "
                "commands unless noted). They explain the gap between the daily run and the trivial run."
            ),
        )
        saved = sorted((pipeline.dbt_target / "partial_parse").glob("*.msgpack"))
        window = {"min_date": day.isoformat(), "max_date": day.isoformat()}
        dbt_args = ["build", "--select", "tag:daily", "--exclude", PLAIN_DBT_EXCLUDE]

        def fresh_target(name: str) -> Path:
            target = pipeline.dbt_target / name
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            if saved:
                shutil.copy(saved[-1], target / "partial_parse.msgpack")
            return target

        def once(attempt: int) -> None:
            python = [sys.executable, "-c", "import analytics_pipeline.definitions"]
            section.add(
                "load the code location (`import analytics_pipeline.definitions`), every process",
                engine,
                pipeline.run(f"{pipeline.name}-import-{attempt}", python).seconds,
                "s",
            )
            version = pipeline.run(f"{pipeline.name}-dbt-version-{attempt}", [str(VENV_BIN / "dbt"), "--version"])
            section.add(
                "`dbt --version` (stock dagster-dbt: once per run; now read from the package)",
                engine,
                version.seconds,
                "s",
            )
            adapter = pipeline.task(f"{pipeline.name}-adapter-{attempt}", "adapter-init")
            section.add(
                "stock dagster-dbt's in-process dbt adapter, per run (now skipped; work only)",
                engine,
                adapter.result["seconds"],
                "s",
            )
            with_vars = self.dbt(
                pipeline,
                f"{pipeline.name}-dbt-vars-{attempt}",
                [*dbt_args, "--vars", json.dumps(window)],
                fresh_target("bench-vars"),
            )
            section.add(
                "one partition's `dbt build`, window as `--vars` (full re-parse; before)",
                engine,
                with_vars.seconds,
                "s",
            )
            env = {"ANALYTICS_DBT_MIN_DATE": window["min_date"], "ANALYTICS_DBT_MAX_DATE": window["max_date"]}
            with_env = self.dbt(
                pipeline, f"{pipeline.name}-dbt-env-{attempt}", dbt_args, fresh_target("bench-env"), extra_env=env
            )
            section.add(
                "one partition's `dbt build`, window in the environment (saved parse; now)",
                engine,
                with_env.seconds,
                "s",
            )
            multiprocess = self.daily_run(
                pipeline, f"{pipeline.name}-daily-multiprocess-{attempt}", day, multiprocess=True
            )
            section.add(
                "daily partition, multiprocess executor, a process per step (`bench/multiprocess_job.py`; before)",
                engine,
                multiprocess.seconds,
                "s",
            )

        self.repeat(f"{engine}: where the time goes", once)
        in_process = self.report.sections.get("3", Section("", "")).rows.get("daily partition (`daily_pipeline`)")
        if in_process:
            label = "daily partition, the job's in-process executor (section 3; now)"
            section.rows[label] = replace(in_process, label=label)

    # -- the whole run ------------------------------------------------------------------------------

    def run(self) -> Report:
        parts: list[tuple[str, tuple[str, ...], Callable[[str], None]]] = [
            ("ingestion", ("1", "5"), self.ingestion),
            ("pipeline", ("2", "3", "4", "7", "where"), self.pipeline_sections),
            ("forecasting", ("6",), self.forecasting),
            ("years", ("8",), self.years),
            ("forecasting on workers", ("9",), self.forecast_workers),
        ]
        for engine in self.engines:
            self.log(f"== {engine}")
            for name, keys, measure in parts:
                if any(self.wanted(key) for key in keys):
                    self.guarded(keys, engine, lambda measure=measure, engine=engine: measure(engine))
                    self.finish(partial=f"{ENGINE_NAMES.get(engine, engine)} {name}")
        return self.finish()

    def finish(self, partial: str | None = None) -> Report:
        """The report as measured so far, written out: an interrupted run keeps what it measured."""
        self.report.sections = {key: self.report.sections[key] for key in SECTIONS if key in self.report.sections}
        self.report.header = self.header(partial)
        self.report.appendix = self.appendix()
        self.report.write(self.output)
        return self.report

    def pipeline_sections(self, engine: str) -> None:
        """Sections 2, 3, 7 and "where" share one warehouse (the backfilled days); 4 resets it."""
        first, last = FIRST_DAY, self.plan.daily_day
        landing = self.generate(f"backfill-{self.plan.backfill_events}", first, last, self.plan.backfill_events)
        pipeline = self.site(engine, "pipeline", landing, first).reset()
        try:
            self.prepare_dbt(pipeline)
            if any(self.wanted(s) for s in ("2", "3", "7", "where")):
                if self.wanted("2"):
                    self.guarded(("2",), engine, lambda: self.backfill(engine, pipeline))
                else:
                    self.log(f"{engine}: backfill (set-up)")
                    pipeline.run(
                        f"{pipeline.name}-setup",
                        [
                            str(VENV_BIN / "analytics-pipeline"),
                            "backfill",
                            "--start",
                            first.isoformat(),
                            "--end",
                            (last - timedelta(days=1)).isoformat(),
                        ],
                    )
                for key, measure in (("3", self.daily), ("7", self.export), ("where", self.where_the_time_goes)):
                    if self.wanted(key):
                        self.guarded((key,), engine, lambda measure=measure: measure(engine, pipeline))
            if self.wanted("4"):
                self.guarded(("4",), engine, lambda: self.growth(engine, pipeline))
        finally:
            pipeline.drop(self.keep)

    def header(self, partial: str | None = None) -> list[str]:
        finished = datetime.now(UTC)
        load_after = _loadavg()
        cores = os.cpu_count() or 1
        busy = self.load_before > 0.5 * cores  # "after" includes the benchmark's own load
        plan = self.plan
        lines = [
            f"Generated by `python -m bench{' --quick' if plan.name == 'quick' else ''} --engines "
            f"{','.join(self.engines)} --repeat {plan.repeat}` on {self.started:%Y-%m-%d %H:%M} UTC "
            f"({(finished - self.started).total_seconds() / 60:.0f} min). Each figure is the median of "
            f"{plan.repeat} run(s) [min – max]; every run is in `{self.output.with_suffix('.json').name}`.",
            "",
            "| machine | |",
            "|---|---|",
            f"| CPU | {_cpu_model()}, {cores} cores |",
            f"| RAM | {_ram_gib():.1f} GiB |",
            f"| load average (1 min) before / at the end (the benchmark's own load included) | "
            f"{self.load_before:.2f} / {load_after:.2f}"
            + (" — **the machine was busy before the start: figures are indicative only**" if busy else "")
            + " |",
            f"| OS | {platform.platform()} |",
            f"| Python | {platform.python_version()} |",
            *(
                f"| {package} | {_version(package)} |"
                for package in (
                    "dagster",
                    "dagster-dbt",
                    "dbt-core",
                    "dbt-duckdb",
                    "dbt-postgres",
                    "duckdb",
                    "psycopg2-binary",
                    "pyarrow",
                )
            ),
            f"| PostgreSQL server | {_postgres_version() if 'postgres' in self.engines else 'not measured'} |",
            "",
            f"Sizes ({plan.name}): ingestion {', '.join(f'{s:,}' for s in plan.ingest_sizes)} events/day; "
            f"backfill {plan.backfill_days} days × {plan.backfill_events:,} events/day; growth "
            f"{plan.growth_histories[0]} vs {plan.growth_histories[1]} days × {plan.growth_events:,} "
            f"events/day; export window {plan.export_days} days; forecasting {plan.forecast_items:,} items × "
            f"{plan.forecast_days} days. Sample data from `generate` (seed 7, bad-rate 0.2%, users = "
            "events per day / 40, at least 2,000).",
        ]
        if plan.name == "quick":
            lines += ["", "**`--quick`: tiny sizes to check that the harness works; the figures mean nothing.**"]
        if partial:
            lines += ["", f"**Partial: written after {partial}; the run was still going (or was stopped).**"]
        return lines

    def appendix(self) -> str:
        notes = BENCH_DIR / "before_after.md"
        return notes.read_text() if notes.exists() and self.wanted("where") else ""


def _loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _postgres_version() -> str:
    import psycopg2

    try:
        connection = psycopg2.connect(
            dbname="postgres",
            host=PG_SERVER["host"],
            port=PG_SERVER["port"],
            user=PG_SERVER["user"],
            password=PG_SERVER["password"] or None,
            connect_timeout=5,
        )
    except psycopg2.Error:
        return "unreachable"
    try:
        with connection.cursor() as cursor:
            cursor.execute("show server_version")
            return cursor.fetchone()[0]
    finally:
        connection.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run each: checks the harness works")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: duckdb,postgres")
    parser.add_argument("--repeat", type=int, help="runs per figure (default 3, or 1 with --quick)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of 1-9,where")
    parser.add_argument(
        "--output", default=str(BENCH_DIR / "RESULTS.md"), help="results file (default bench/RESULTS.md)"
    )
    parser.add_argument("--workdir", help="where data and warehouses go (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (logs of every command)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if unknown := [e for e in engines if e not in ENGINES] + [s for s in sections if s not in SECTIONS]:
        print(
            f"error: unknown engine or section {', '.join(unknown)}; engines: {', '.join(ENGINES)}; "
            f"sections: {', '.join(SECTIONS)}",
            file=sys.stderr,
        )
        return 2
    if args.repeat is not None and args.repeat < 1:
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2
    if "postgres" in engines and (problem := postgres_available()):
        print(f"error: {problem}; start it or leave it out with --engines duckdb", file=sys.stderr)
        return 2
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="analytics-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    output = Path(args.output).resolve()
    bench = Bench(Plan.choose(args.quick, args.repeat), engines, sections, root, output, args.keep)
    bench.log(f"working in {root}; results to {output}")
    try:
        bench.run()  # writes the results after every part, and in full at the end
    finally:
        drop_databases()  # the throw-away PostgreSQL databases of this run, even after a failure
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    bench.log(f"wrote {output}" + (f"; {bench.failures} part(s) FAILED, see the notes in it" if bench.failures else ""))
    return 1 if bench.failures else 0
