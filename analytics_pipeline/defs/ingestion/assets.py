"""Ingestion assets: landing zone -> ``raw.*``.

Daily datasets are partitioned by UTC day; a backfill covers its whole range in one run and loads
the range at once (``load_partitions``: one validation pass, one transaction per chunk of days).
Dimensions are full snapshots.
Each day's materialization reports that day's accounting of SPEC §4 (lines read = loaded +
rejected + duplicates, per file), also when a run loads a range. Two checks judge every day, once per run (see ``quality.py``):
``reject_rate_below_threshold`` fails while any loaded day's reject rate (from the file ledger) is
over ``ANALYTICS_MAX_REJECT_RATE`` beyond chance, and ``landing_files_present`` warns while a day
that other daily datasets have landing files for has none of this one.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from analytics_pipeline.executors import WAREHOUSE_QUEUE, on_queue
from analytics_pipeline.lib.ingestion.datasets import (
    DAILY_DATASETS,
    DIMENSIONS,
    INGESTED_FILES,
    RAW_TABLES,
    REJECTED_RECORDS,
    Dataset,
)
from analytics_pipeline.lib.ingestion.loader import LandingZoneMissing, LoadReport, load_partition, load_partitions
from analytics_pipeline.lib.ingestion.quality import days_with_rejects, days_without_files, reject_rate_fails
from analytics_pipeline.lib.log_context import get_logger
from analytics_pipeline.metadata import markdown_table
from analytics_pipeline.partition_metadata import add_partition_metadata
from analytics_pipeline.partitions import START_DATE, daily_partitions
from analytics_pipeline.resources.landing_zone import LandingZoneResource
from analytics_pipeline.resources.policies import TRANSIENT_RETRY_POLICY, WAREHOUSE_POOL, failures_are_final
from analytics_pipeline.resources.warehouse import (
    Warehouse,
    WarehouseResource,
)

# the step's log lines, prefixed with [run=… asset=… partition=…] (log_context.py)
log = get_logger("analytics_pipeline.ingestion")

REJECT_RATE_CHECK = "reject_rate_below_threshold"
FILES_PRESENT_CHECK = "landing_files_present"
# how many days a check's metadata names before it only counts the rest
DAYS_LISTED = 31


def _report_metadata(report: LoadReport) -> dict[str, Any]:
    return {
        "lines_read": report.lines_read,
        "rows_loaded": report.rows_loaded,
        "rows_rejected": report.rows_rejected,
        "duplicates_dropped": report.duplicates_dropped,
        "files": len(report.files) - report.files_skipped,
        "files_skipped": report.files_skipped,  # hidden, temporary, marker files and subfolders (in the ledger)
        "files_rejected": report.files_rejected,
        "reject_rate": round(report.reject_rate, 6),
        "seconds": round(report.seconds, 3),
    }


def _files_table(reports: list[LoadReport]) -> dg.MetadataValue:
    rows = [
        (f.file, f.lines_read, f.rows_loaded, f.rows_rejected, f.duplicates_dropped, f.file_error or "")
        for report in reports
        for f in report.files
    ]
    header = ["file", "lines read", "loaded", "rejected", "duplicates", "file error"]
    return dg.MetadataValue.md(markdown_table(header, rows))


def _reasons_table(reports: list[LoadReport]) -> dg.MetadataValue:
    totals: dict[str, int] = {}
    for report in reports:
        for reason, count in report.top_reasons:
            totals[reason] = totals.get(reason, 0) + count
    rows = sorted(totals.items(), key=lambda item: -item[1])[:10]
    return dg.MetadataValue.md(markdown_table(["reason", "records"], rows or [("(none)", 0)]))


def _load(client: Warehouse, landing: LandingZoneResource, dataset: Dataset, partition: date | None) -> LoadReport:
    with failures_are_final(f"Loading {dataset.name} {partition or 'snapshot'}", LandingZoneMissing):
        report = load_partition(client, landing.location, dataset, partition)
    _log_report(report)
    return report


def _load_days(client: Warehouse, landing: LandingZoneResource, dataset: Dataset, days: list[date]) -> list[LoadReport]:
    window = f"{days[0]}" if len(days) == 1 else f"{days[0]} .. {days[-1]}"
    with failures_are_final(f"Loading {dataset.name} {window}", LandingZoneMissing):
        reports = load_partitions(client, landing.location, dataset, days)
    for report in reports:
        _log_report(report)
    return reports


def _log_report(report: LoadReport) -> None:
    log.info(
        f"{report.dataset} {report.partition or 'snapshot'}: {report.lines_read} lines, {report.rows_loaded} loaded, "
        f"{report.rows_rejected} rejected, {report.duplicates_dropped} duplicates, "
        f"{report.files_rejected} unreadable files"
    )


def _ready_client(warehouse: WarehouseResource) -> Warehouse:
    """The warehouse, with the raw schema and tables created if this is its first load."""
    client = warehouse.get_client()
    with failures_are_final("Preparing the raw tables"):
        client.ensure_ready(RAW_TABLES)
    return client


def _analyze(client: Warehouse, dataset: Dataset) -> None:
    """Planner statistics of what the step wrote, once for all its partitions."""
    with failures_are_final("Refreshing the planner statistics"):
        client.analyze([dataset.table, REJECTED_RECORDS, INGESTED_FILES])


def _day_list(days: list[date]) -> str:
    named = ", ".join(str(day) for day in days[:DAYS_LISTED])
    return (named + (f" and {len(days) - DAYS_LISTED} more" if len(days) > DAYS_LISTED else "")) or "none"


def _snapshot_reject_check(landing: LandingZoneResource, report: LoadReport) -> dg.AssetCheckResult:
    """A dimension's check: its one snapshot, as just loaded."""
    rejected, lines = report.rows_rejected + report.files_rejected, report.lines_read + report.files_rejected
    failing = reject_rate_fails(rejected, lines, landing)
    return dg.AssetCheckResult(
        check_name=REJECT_RATE_CHECK,
        passed=not failing,
        metadata={
            "threshold": landing.max_reject_rate,
            "confidence": landing.reject_rate_confidence,
            "worst_reject_rate": round(report.reject_rate, 6),
            "worst_partition": "snapshot",
            "partitions_over_threshold": "snapshot" if failing else "none",
            "top_reasons": _reasons_table([report]),
        },
    )


def _ledger_reject_check(
    client: Warehouse, landing: LandingZoneResource, dataset: Dataset, reports: list[LoadReport]
) -> dg.AssetCheckResult:
    """A daily dataset's check over every day in the ledger, not only this run's: a bad day keeps
    the check failing until that day is reloaded clean."""
    with failures_are_final("Reading the file ledger"):
        days_checked, with_rejects = days_with_rejects(client, dataset.name)
    failing = [d for d in with_rejects if reject_rate_fails(d.rejected, d.lines, landing)]
    worst = max(failing or with_rejects, key=lambda d: d.rate, default=None)
    run_days = {r.partition for r in reports}
    return dg.AssetCheckResult(
        check_name=REJECT_RATE_CHECK,
        passed=not failing,
        metadata={
            "threshold": landing.max_reject_rate,
            "confidence": landing.reject_rate_confidence,
            "days_checked": days_checked,
            "days_over_threshold": len(failing),
            "worst_reject_rate": round(worst.rate, 6) if worst else 0.0,
            "worst_partition": str(worst.day) if worst else "none",
            "partitions_over_threshold": _day_list([d.day for d in failing]),
            "failing_days": dg.MetadataValue.md(
                markdown_table(
                    ["day", "lines", "rejected", "reject rate", "in this run"],
                    [
                        (d.day, d.lines, d.rejected, f"{d.rate:.4%}", "yes" if d.day in run_days else "")
                        for d in failing[:DAYS_LISTED]
                    ]
                    or [("(none)", "", "", "", "")],
                )
            ),
            "top_reasons": _reasons_table(reports),
        },
    )


def _files_present_check(landing: LandingZoneResource, dataset: Dataset) -> dg.AssetCheckResult:
    """WARN while a day has landing files of other daily datasets and none of this one."""
    others = tuple(d.name for d in DAILY_DATASETS if d.name != dataset.name)
    # up to yesterday: today (UTC) is still in progress, its end-of-day files have not had their chance
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    missing = days_without_files(landing.location, dataset.name, others, START_DATE, yesterday)
    return dg.AssetCheckResult(
        check_name=FILES_PRESENT_CHECK,
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "days_without_files": len(missing),
            "missing_days": _day_list([day for day, _ in missing]),
            "reason": (
                f"no {dataset.name} landing files on {len(missing)} days that "
                f"{' / '.join(sorted({n for _, names in missing for n in names}))} have files"
                if missing
                else "every day with landing files of another dataset has some of this one"
            ),
            "days": dg.MetadataValue.md(
                markdown_table(
                    ["day", "datasets with files"],
                    [(day, ", ".join(names)) for day, names in missing[:DAYS_LISTED]] or [("(none)", "")],
                )
            ),
        },
    )


def _daily_ingestion_asset(dataset: Dataset) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", dataset.name])

    @dg.asset(
        key=key,
        group_name="ingestion",
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=TRANSIENT_RETRY_POLICY,
        pool=WAREHOUSE_POOL,
        op_tags=on_queue(WAREHOUSE_QUEUE),
        kinds={"python"},
        description=f"Validated {dataset.name} from the landing zone (one partition per UTC day); "
        "rejects go to raw.rejected_records.",
        check_specs=[
            dg.AssetCheckSpec(
                REJECT_RATE_CHECK,
                asset=key,
                description="No loaded day's share of rejected lines is over ANALYTICS_MAX_REJECT_RATE (default 1%) "
                "with ANALYTICS_REJECT_RATE_CONFIDENCE (default 95%); judged on every day in raw.ingested_files.",
            ),
            dg.AssetCheckSpec(
                FILES_PRESENT_CHECK,
                asset=key,
                description="Warns while a complete UTC day with landing files of another daily dataset has none "
                "of this one.",
            ),
        ],
    )
    def _asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, landing_zone: LandingZoneResource
    ) -> dg.MaterializeResult:
        client = _ready_client(warehouse)
        days = [date.fromisoformat(key) for key in context.partition_keys]
        reports = _load_days(client, landing_zone, dataset, days)
        # partition-scoped: on that day's materialization only, no event added
        add_partition_metadata(
            context,
            key,
            {
                partition_key: {**_report_metadata(report), "file_accounting": _files_table([report])}
                for partition_key, report in zip(context.partition_keys, reports, strict=True)
            },
        )
        _analyze(client, dataset)
        return dg.MaterializeResult(
            # copied onto every day of the run: kept to what the run as a whole says
            metadata={
                "run_window": f"{context.partition_keys[0]} .. {context.partition_keys[-1]}",
                "run_days": len(reports),
            },
            check_results=[
                _ledger_reject_check(client, landing_zone, dataset, reports),
                _files_present_check(landing_zone, dataset),
            ],
        )

    return _asset


def _dimension_asset(dataset: Dataset) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", dataset.name])

    @dg.asset(
        key=key,
        group_name="ingestion",
        retry_policy=TRANSIENT_RETRY_POLICY,
        pool=WAREHOUSE_POOL,
        op_tags=on_queue(WAREHOUSE_QUEUE),
        kinds={"python"},
        description=f"Latest version of every {dataset.name} key (full snapshot; latest updated_at wins).",
        check_specs=[dg.AssetCheckSpec(REJECT_RATE_CHECK, asset=key)],
    )
    def _asset(warehouse: WarehouseResource, landing_zone: LandingZoneResource) -> dg.MaterializeResult:
        client = _ready_client(warehouse)
        report = _load(client, landing_zone, dataset, None)
        _analyze(client, dataset)
        return dg.MaterializeResult(
            metadata={**_report_metadata(report), "file_accounting": _files_table([report])},
            check_results=[_snapshot_reject_check(landing_zone, report)],
        )

    return _asset


daily_ingestion_assets = [_daily_ingestion_asset(d) for d in DAILY_DATASETS]
ingestion_assets = daily_ingestion_assets + [_dimension_asset(d) for d in DIMENSIONS]
