"""analytics-pipeline: partitioned Dagster + dbt analytics for an education marketplace."""

import warnings

# Dagster flags `backfill_policy` as beta on every import of an asset that sets it; the policy is the
# documented way to get single-run backfills, and operators should not see this on every command.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` .* is currently in beta")
