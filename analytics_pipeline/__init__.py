"""analytics-pipeline: partitioned Dagster + dbt analytics for an education marketplace."""

import warnings

# Dagster flags `backfill_policy` as beta on every import of an asset that sets it; the policy is the
# documented way to get single-run backfills, and operators should not see this on every command.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` .* is currently in beta")
# The same for `allow_nonexistent_upstream_partitions`: history-reading partition mappings need it,
# since the first days of a history have no earlier partitions to read.
warnings.filterwarnings("ignore", message=r"Parameter `allow_nonexistent_upstream_partitions` .* is currently in beta")
# And for `include_sources`, which Dagster's own parser of a selection string (`--select 'group:x'`)
# passes to AssetSelection.groups: not the user's doing, nothing the user can change.
warnings.filterwarnings("ignore", message=r"Parameter `include_sources` .* is currently in beta")
