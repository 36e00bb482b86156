"""Ingestion assets: landing zone -> ``raw.*``.

Daily datasets are partitioned by UTC day; a backfill covers its whole range in one run and loads
the days one after another (each day is still its own transaction). Dimensions are full snapshots.
Each materialization reports the accounting of SPEC §4 (lines read = loaded + rejected +
duplicates, per file) and a check fails when a day's reject rate exceeds
``ANALYTICS_MAX_REJECT_RATE``.
"""


from datetime import date
from typing import Any

import dagster as dg

from analytics_pipeline.defs.ingestion.datasets import (
    DAILY_DATASETS,
    DIMENSIONS,
    INGESTED_FILES,
    RAW_TABLES,
    REJECTED_RECORDS,
    Dataset,
)
from analytics_pipeline.defs.ingestion.loader import LandingZoneMissing, LoadReport, load_partition
from analytics_pipeline.defs.operations.freshness import freshness_policy_for
from analytics_pipeline.defs.operations.log_context import get_logger
from analytics_pipeline.metadata import markdown_table
from analytics_pipeline.partitions import daily_partitions
from analytics_pipeline.resources.policies import WAREHOUSE_POOL, WAREHOUSE_RETRY_POLICY, failures_are_final
from analytics_pipeline.resources.warehouse import (
    Warehouse,
    WarehouseResource,
)
from analytics_pipeline.settings import get_settings

# the step's log lines, prefixed with [run=… asset=… partition=…] (log_context.py)
log = get_logger("analytics_pipeline.ingestion")

REJECT_RATE_CHECK = "reject_rate_below_threshold"


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
    lines = ["| file | lines read | loaded | rejected | duplicates | file error |", "|---|---|---|---|---|---|"]
    for report in reports:
        for f in report.files:
            lines.append(
                f"| {f.file} | {f.lines_read} | {f.rows_loaded} | {f.rows_rejected} | "
                f"{f.duplicates_dropped} | {f.file_error or ''} |"
            )
    return dg.MetadataValue.md("\n".join(lines))


def _reasons_table(reports: list[LoadReport]) -> dg.MetadataValue:
    totals: dict[str, int] = {}
    for report in reports:
        for reason, count in report.top_reasons:
            totals[reason] = totals.get(reason, 0) + count
    rows = sorted(totals.items(), key=lambda item: -item[1])[:10]
    return dg.MetadataValue.md(markdown_table(["reason", "records"], rows or [("(none)", 0)]))


def _load(context: dg.AssetExecutionContext, client: Warehouse, dataset: Dataset,
          partition: date | None) -> LoadReport:  # fmt: skip
    with failures_are_final(f"Loading {dataset.name} {partition or 'snapshot'}", LandingZoneMissing):
        report = load_partition(client, get_settings().landing_dir, dataset, partition)
    log.info(
        f"{dataset.name} {partition or 'snapshot'}: {report.lines_read} lines, {report.rows_loaded} loaded, "
        f"{report.rows_rejected} rejected, {report.duplicates_dropped} duplicates, "
        f"{report.files_rejected} unreadable files"
    )
    return report


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


def _reject_rate_check(reports: list[LoadReport]) -> dg.AssetCheckResult:
    threshold = get_settings().max_reject_rate
    worst = max(reports, key=lambda r: r.reject_rate)
    failing = [r for r in reports if r.reject_rate > threshold]
    return dg.AssetCheckResult(
        check_name=REJECT_RATE_CHECK,
        passed=not failing,
        metadata={
            "threshold": threshold,
            "worst_reject_rate": round(worst.reject_rate, 6),
            "worst_partition": str(worst.partition or "snapshot"),
            "partitions_over_threshold": ", ".join(str(r.partition) for r in failing) or "none",
            "top_reasons": _reasons_table(reports),
        },
    )


def _daily_ingestion_asset(dataset: Dataset) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", dataset.name])

    @dg.asset(
        key=key,
        group_name="ingestion",
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=WAREHOUSE_RETRY_POLICY,
        pool=WAREHOUSE_POOL,
        kinds={"python"},
        freshness_policy=freshness_policy_for(key),
        description=f"Validated {dataset.name} from the landing zone (one partition per UTC day); "
        "rejects go to raw.rejected_records.",
        check_specs=[
            dg.AssetCheckSpec(
                REJECT_RATE_CHECK,
                asset=key,
                description="Share of rejected lines per day is at most ANALYTICS_MAX_REJECT_RATE (default 1%).",
            )
        ],
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        client, reports = _ready_client(warehouse), []
        for partition_key in context.partition_keys:
            report = _load(context, client, dataset, date.fromisoformat(partition_key))
            reports.append(report)
            context.log_event(
                dg.AssetObservation(asset_key=key, partition=partition_key, metadata=_report_metadata(report))
            )
        _analyze(client, dataset)
        totals = LoadReport(dataset=dataset.name, partition=None,
                            files=[f for r in reports for f in r.files],
                            seconds=sum(r.seconds for r in reports))  # fmt: skip
        return dg.MaterializeResult(
            metadata={
                **_report_metadata(totals),
                "partitions": len(reports),
                "partition_window": f"{context.partition_keys[0]} .. {context.partition_keys[-1]}",
                "file_accounting": _files_table(reports),
            },
            check_results=[_reject_rate_check(reports)],
        )

    return _asset


def _dimension_asset(dataset: Dataset) -> dg.AssetsDefinition:
    key = dg.AssetKey(["raw", dataset.name])

    @dg.asset(
        key=key,
        group_name="ingestion",
        retry_policy=WAREHOUSE_RETRY_POLICY,
        pool=WAREHOUSE_POOL,
        kinds={"python"},
        description=f"Latest version of every {dataset.name} key (full snapshot; latest updated_at wins).",
        check_specs=[dg.AssetCheckSpec(REJECT_RATE_CHECK, asset=key)],
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        client = _ready_client(warehouse)
        report = _load(context, client, dataset, None)
        _analyze(client, dataset)
        return dg.MaterializeResult(
            metadata={**_report_metadata(report), "file_accounting": _files_table([report])},
            check_results=[_reject_rate_check([report])],
        )

    return _asset


daily_ingestion_assets = [_daily_ingestion_asset(d) for d in DAILY_DATASETS]
ingestion_assets = daily_ingestion_assets + [_dimension_asset(d) for d in DIMENSIONS]
