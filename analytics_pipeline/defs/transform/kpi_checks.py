"""KPI status as Dagster asset checks: one check per KPI with a threshold in the dbt seed
``kpi_thresholds``. A KPI in ``breach`` fails its check (error severity), one in ``warn`` fails with
warning severity, so the UI's asset health shows what an operator must look at."""

import csv
from collections.abc import Iterator

import dagster as dg

from analytics_pipeline.resources.policies import WAREHOUSE_POOL, WAREHOUSE_RETRY_POLICY
from analytics_pipeline.resources.warehouse import WarehouseResource
from analytics_pipeline.settings import DBT_PROJECT_DIR

KPI_SNAPSHOTS = dg.AssetKey(["marts", "kpi_snapshots"])
THRESHOLDS_CSV = DBT_PROJECT_DIR / "seeds" / "kpi_thresholds.csv"

# The latest period of each grain the KPI has a threshold for: days as they come, weeks and months
# once complete (a half-week compared with a threshold for a whole one would raise false alarms).
LATEST_STATUS_SQL = """
    select kpi_name, grain, period_start, value, previous_value, trend, status, warn_threshold, breach_threshold
    from (
        select snapshots.*,
               row_number() over (partition by kpi_name, grain order by period_start desc) as recency
        from marts.kpi_snapshots as snapshots
        where warn_threshold is not null and (grain = 'day' or is_complete_period)
    ) as latest
    where recency = 1
"""


def _kpis_with_thresholds() -> list[str]:
    with THRESHOLDS_CSV.open() as handle:
        return sorted({row["kpi_name"] for row in csv.DictReader(handle)})


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
    retry_policy=WAREHOUSE_RETRY_POLICY,
    pool=WAREHOUSE_POOL,
)
def kpi_threshold_checks(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.AssetCheckResult]:
    rows = warehouse.get_client().query(LATEST_STATUS_SQL).to_pylist()
    by_kpi: dict[str, list[dict]] = {}
    for row in rows:
        by_kpi.setdefault(row["kpi_name"], []).append(row)
    for check_key in context.selected_asset_check_keys:
        kpi = check_key.name.removeprefix("kpi_").removesuffix("_within_threshold")
        periods = by_kpi.get(kpi, [])
        worst = max(periods, key=lambda r: ("ok", "warn", "breach").index(r["status"]), default=None)
        if worst is None:
            yield dg.AssetCheckResult(check_name=check_key.name, passed=True,
                                      metadata={"kpi": kpi, "status": "no data yet"})  # fmt: skip
            continue
        yield dg.AssetCheckResult(
            check_name=check_key.name,
            passed=worst["status"] == "ok",
            severity=dg.AssetCheckSeverity.ERROR if worst["status"] == "breach" else dg.AssetCheckSeverity.WARN,
            metadata={
                "kpi": kpi,
                "status": worst["status"],
                "grain": worst["grain"],
                "period_start": str(worst["period_start"]),
                "value": float(worst["value"]) if worst["value"] is not None else None,
                "warn_threshold": float(worst["warn_threshold"]),
                "breach_threshold": float(worst["breach_threshold"]),
                "trend": worst["trend"],
                "periods": dg.MetadataValue.md(
                    "| grain | period | value | status |\n|---|---|---|---|\n"
                    + "\n".join(f"| {r['grain']} | {r['period_start']} | {r['value']} | {r['status']} |" for r in periods)
                ),
            },
        )
