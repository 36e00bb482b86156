"""KPI status as Dagster asset checks: one check per KPI with a threshold in the dbt seed
``kpi_thresholds``. A KPI in ``breach`` fails its check (error severity), one in ``warn`` fails with
warning severity, so the UI's asset health shows what an operator must look at. A KPI without a
value (``no_data``, e.g. no inventory snapshot) or without any period to judge yet fails with
warning severity and the reason in the metadata: an unknown KPI never reads as fine."""

import csv
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from analytics_pipeline.executors import WAREHOUSE_QUEUE, on_queue
from analytics_pipeline.metadata import markdown_table
from analytics_pipeline.resources.policies import TRANSIENT_RETRY_POLICY, WAREHOUSE_POOL
from analytics_pipeline.resources.warehouse import WarehouseResource
from analytics_pipeline.settings import DBT_PROJECT_DIR

KPI_SNAPSHOTS = dg.AssetKey(["marts", "kpi_snapshots"])
THRESHOLDS_CSV = DBT_PROJECT_DIR / "seeds" / "kpi_thresholds.csv"

# The latest period of each grain the KPI has a threshold for: days as they come, weeks and months
# once every day of them is loaded (a half-week compared with a threshold for a whole one would raise
# false alarms). Today (UTC, still in progress: the hourly refresh) counts only once it has a value:
# its end-of-day inventory snapshot is not missing yet.
LATEST_STATUS_SQL = """
    select kpi_name, grain, period_start, value, previous_value, trend, status, warn_threshold, breach_threshold
    from (
        select snapshots.*,
               row_number() over (partition by kpi_name, grain order by period_start desc) as recency
        from marts.kpi_snapshots as snapshots
        where warn_threshold is not null and is_complete_period
          and (grain <> 'day' or value is not null or period_start < ?)
    ) as latest
    where recency = 1
"""


# worst last: a KPI without a value is worse than one in its band, better than one in breach
STATUS_ORDER = ("ok", "no_data", "warn", "breach")
NO_DATA_REASONS = {
    "stockout_rate": "no inventory snapshot loaded for it",
    "inventory_value": "no inventory snapshot loaded for it",
    "inventory_turnover_30d": "no inventory snapshot in its 30 days",
    "gross_margin_pct": "no revenue",
    "avg_order_value": "no completed order",
    "repeat_customer_rate_30d": "no customer in its 30 days",
}


def _thresholds() -> list[dict[str, str]]:
    with THRESHOLDS_CSV.open() as handle:
        return list(csv.DictReader(handle))


def _kpis_with_thresholds() -> list[str]:
    return sorted({row["kpi_name"] for row in _thresholds()})


def _grains(kpi: str) -> set[str]:
    return {row["grain"] for row in _thresholds() if row["kpi_name"] == kpi}


def check_name(kpi: str) -> str:
    return f"kpi_{kpi}_within_threshold"


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            check_name(kpi),
            asset=KPI_SNAPSHOTS,
            description=f"{kpi}: latest period is not past its warn (warning) or breach (error) threshold.",
        )
        for kpi in _kpis_with_thresholds()
    ],
    can_subset=True,
    # reads the warehouse: takes its turn like a writer, and a file held too long is tried again
    retry_policy=TRANSIENT_RETRY_POLICY,
    pool=WAREHOUSE_POOL,
    op_tags=on_queue(WAREHOUSE_QUEUE),
)
def kpi_threshold_checks(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.AssetCheckResult]:
    rows = warehouse.get_client().query(LATEST_STATUS_SQL, (datetime.now(UTC).date(),)).to_pylist()
    by_kpi: dict[str, list[dict]] = {}
    for row in rows:
        by_kpi.setdefault(row["kpi_name"], []).append(row)
    for check_key in context.selected_asset_check_keys:
        kpi = check_key.name.removeprefix("kpi_").removesuffix("_within_threshold")
        periods = by_kpi.get(kpi, [])
        worst = max(periods, key=lambda r: STATUS_ORDER.index(r["status"]), default=None)
        if worst is None:
            yield dg.AssetCheckResult(
                check_name=check_key.name,
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "kpi": kpi,
                    "status": "no_data",
                    "reason": f"marts.kpi_snapshots has no {' or '.join(sorted(_grains(kpi)))} of {kpi} to judge "
                    "yet (weeks and months count once every day of them is loaded)",
                },
            )
            continue
        yield dg.AssetCheckResult(
            check_name=check_key.name,
            passed=worst["status"] == "ok",
            severity=dg.AssetCheckSeverity.ERROR if worst["status"] == "breach" else dg.AssetCheckSeverity.WARN,
            metadata={
                "kpi": kpi,
                "status": worst["status"],
                **(
                    {
                        "reason": f"{kpi} has no value for the {worst['grain']} of {worst['period_start']} "
                        f"({NO_DATA_REASONS.get(kpi, 'nothing to compute it from')})"
                    }
                    if worst["status"] == "no_data"
                    else {}
                ),
                "grain": worst["grain"],
                "period_start": str(worst["period_start"]),
                "value": float(worst["value"]) if worst["value"] is not None else None,
                "warn_threshold": float(worst["warn_threshold"]),
                "breach_threshold": float(worst["breach_threshold"]),
                "trend": worst["trend"],
                "periods": dg.MetadataValue.md(
                    markdown_table(
                        ["grain", "period", "value", "status"],
                        ((r["grain"], r["period_start"], r["value"], r["status"]) for r in periods),
                    )
                ),
            },
        )
