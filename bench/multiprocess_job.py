"""The daily pipeline under Dagster's multiprocess executor (a process per step), the executor the
``daily_pipeline`` job had before it moved to the in-process executor; "where the time goes" runs
both on the same partition to keep that choice measured.
"""

import dagster as dg

from analytics_pipeline import definitions
from analytics_pipeline.jobs import DAILY_ASSETS
from analytics_pipeline.partitions import daily_partitions

daily_pipeline_multiprocess = dg.define_asset_job(
    name="daily_pipeline_multiprocess",
    selection=DAILY_ASSETS,
    partitions_def=daily_partitions,
    executor_def=dg.multiprocess_executor,
)

defs = dg.Definitions.merge(definitions.defs, dg.Definitions(jobs=[daily_pipeline_multiprocess]))
