"""The landing-file sensor: what "polling for new data" did under beat.

Every tick lists the landing zone (a local folder, or an object-store prefix in paginated listings)
and compares it with a high-water mark kept in the cursor: the newest modification time
already handled and the files at exactly that time. A file newer than the mark is new or changed,
including a late file written into an old day folder. Its day (and only its day) is re-run, for its
dataset and every daily model downstream, once per file version: the run key is a digest of the
files' (path, size, version) triples -- the version is a local file's mtime, an object's ETag -- so a
tick that is retried never launches the same run twice.

On its very first tick the sensor treats files of days Dagster has already materialized as handled,
and dimension files older than their dimension's last materialization too, so turning it on after a
backfill does not redo the backfill or reload the dimensions it has just loaded.

Dimensions go first: when changed dimension files and changed days arrive in the same tick, the tick
requests the dimension run alone and the days wait (the cursor stays) until that run has ended,
succeeded or not; a day's KPIs join the items and schools, and two runs started together would
otherwise race for them.
"""

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from analytics_pipeline.defs.ingestion.assets import daily_ingestion_assets
from analytics_pipeline.jobs import DAILY_DBT_KEYS, daily_pipeline_job
from analytics_pipeline.lib.ingestion.datasets import DAILY_DATASETS, DIMENSIONS
from analytics_pipeline.lib.ingestion.landing_zone import LandingZone
from analytics_pipeline.resources.landing_zone import LandingZoneResource

# A file modified more recently than this may still be being written; the next tick takes it.
SETTLE_SECONDS = 10
DIMENSION_JOB = dg.define_asset_job(
    "dimension_refresh",
    selection=dg.AssetSelection.assets(*[["raw", d.name] for d in DIMENSIONS]),
    description="Reload the dimension snapshots (organizations, users, items) from the landing zone.",
)


@dataclass(frozen=True)
class LandingVersion:
    path: str  # relative to the landing root
    dataset: str
    day: date | None  # None for dimension snapshots
    size: int
    mtime_ns: int
    version: str  # the mtime in ns of a local file, the ETag (or VersionId) of an object

    @property
    def token(self) -> str:
        return f"{self.path}:{self.size}:{self.version}"


def scan_landing(landing: LandingZone | Path | str) -> list[LandingVersion]:
    """Every landing file with its version; unknown folders and malformed day folders are skipped.

    Only files the loader reads wake the sensor: files it skips (and records as skipped) or whose
    type it does not read never start a run of their own, so a marker file cannot make the sensor
    re-run a day.
    """
    zone = LandingZone.at(landing)
    return [
        LandingVersion(entry.relative, dataset, day, entry.size_bytes, entry.modified_ns, entry.version)
        for dataset, day, entry in zone.files([d.name for d in DAILY_DATASETS], [d.name for d in DIMENSIONS])
        if entry.skipped is None and entry.format is not None
    ]


@dataclass(frozen=True)
class Cursor:
    """The newest modification time already handled.

    Only settled files (older than ``SETTLE_SECONDS`` at the tick) are handled, so the mark is
    always in the past: anything written after a tick is newer than it, however many files share
    one timestamp. A file copied in with an older, preserved mtime would be missed.
    """

    high_water_ns: int = 0

    @classmethod
    def parse(cls, text: str | None) -> "Cursor | None":
        return cls(int(json.loads(text)["high_water_ns"])) if text else None

    def dump(self) -> str:
        return json.dumps({"high_water_ns": self.high_water_ns})

    def is_new(self, version: LandingVersion) -> bool:
        return version.mtime_ns > self.high_water_ns

    def advanced(self, handled: list[LandingVersion]) -> "Cursor":
        return Cursor(max([self.high_water_ns, *(v.mtime_ns for v in handled)]))


def contiguous_ranges(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days grouped into inclusive runs of consecutive dates."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def _run_key(kind: str, versions: list[LandingVersion]) -> str:
    digest = hashlib.sha1("\n".join(sorted(v.token for v in versions)).encode()).hexdigest()[:16]
    return f"{kind}:{digest}"


def run_requests(new: list[LandingVersion]) -> list[dg.RunRequest]:
    """One run per contiguous range of affected days, plus one for changed dimensions."""
    requests: list[dg.RunRequest] = []
    daily = [v for v in new if v.day is not None]
    for start, end in contiguous_ranges([v.day for v in daily if v.day is not None]):
        in_range = [v for v in daily if v.day is not None and start <= v.day <= end]
        datasets = {v.dataset for v in in_range}
        tags = {"analytics/trigger": "landing_file_sensor", "analytics/files": str(len(in_range))}
        # the affected raw datasets and every daily dbt model: the models recompute the later days
        # whose windows (rolling, first-seen) the new files change
        selection = [dg.AssetKey(["raw", name]) for name in sorted(datasets)] + DAILY_DBT_KEYS
        if start == end:
            request = dg.RunRequest(
                run_key=_run_key(f"{start}", in_range),
                job_name=daily_pipeline_job.name,
                partition_key=start.isoformat(),
                asset_selection=selection,
                tags=tags,
            )
        else:
            tags |= {
                "dagster/asset_partition_range_start": start.isoformat(),
                "dagster/asset_partition_range_end": end.isoformat(),
            }
            request = dg.RunRequest(
                run_key=_run_key(f"{start}..{end}", in_range),
                job_name=daily_pipeline_job.name,
                asset_selection=selection,
                tags=tags,
            )
        requests.append(request)
    dimensions = [v for v in new if v.day is None]
    if dimensions:
        requests.append(
            dg.RunRequest(
                run_key=_run_key("dimensions", dimensions),
                job_name=DIMENSION_JOB.name,
                asset_selection=[dg.AssetKey(["raw", name]) for name in sorted({v.dataset for v in dimensions})],
                tags={"analytics/trigger": "landing_file_sensor"},
            )
        )
    return requests


def _already_materialized(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    return {asset.key.path[-1]: instance.get_materialized_partitions(asset.key) for asset in daily_ingestion_assets}


def _dimensions_loaded_at(instance: dg.DagsterInstance) -> dict[str, int]:
    """When each dimension was last materialized (ns since the epoch); a file older than that was loaded."""
    loaded: dict[str, int] = {}
    for dimension in DIMENSIONS:
        event = instance.get_latest_materialization_event(dg.AssetKey(["raw", dimension.name]))
        if event is not None:
            loaded[dimension.name] = int(event.timestamp * 1_000_000_000)
    return loaded


# the tag Dagster puts on a run a sensor's RunRequest created (its run key)
_RUN_KEY_TAG = "dagster/run_key"


def _days_wait_for_dimensions(instance: dg.DagsterInstance, new: list[LandingVersion]) -> list[dg.RunRequest]:
    """When changed dimension files and changed days arrive together, the dimension run alone (the
    days wait), until that run has ended: then nothing (the days go ahead). A dimension file loaded
    since it was written counts as handled."""
    if not any(v.day is None for v in new) or not any(v.day is not None for v in new):
        return []  # (most ticks: no instance query)
    loaded_at = _dimensions_loaded_at(instance)
    dimensions = [v for v in new if v.day is None and v.mtime_ns > loaded_at.get(v.dataset, -1)]
    if not dimensions:
        return []
    [request] = run_requests(dimensions)
    runs = instance.get_runs(dg.RunsFilter(tags={_RUN_KEY_TAG: request.run_key}), limit=1)
    return [] if runs and runs[0].is_finished else [request]


@dg.sensor(
    name="landing_file_sensor",
    description="New or changed landing files -> a run of exactly the affected days (raw dataset and the daily "
    "dbt models), once per file version.",
    jobs=[daily_pipeline_job, DIMENSION_JOB],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def landing_file_sensor(context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource) -> dg.SensorResult:
    zone = LandingZone.at(landing_zone.location)
    if not zone.exists():
        return dg.SensorResult(skip_reason=f"landing directory {zone.url} does not exist (ANALYTICS_LANDING_DIR)")
    settled_before = time.time_ns() - SETTLE_SECONDS * 1_000_000_000
    versions = [v for v in scan_landing(zone) if v.mtime_ns <= settled_before]
    cursor = Cursor.parse(context.cursor)
    if cursor is None:
        done, loaded_at = _already_materialized(context.instance), _dimensions_loaded_at(context.instance)
        new = [
            v
            for v in versions
            if (v.day is None and v.mtime_ns > loaded_at.get(v.dataset, -1))
            or (v.day is not None and v.day.isoformat() not in done.get(v.dataset, set()))
        ]
        cursor = Cursor().advanced(versions)
    else:
        new = [v for v in versions if cursor.is_new(v)]
        cursor = cursor.advanced(new)
    if not new:
        return dg.SensorResult(skip_reason="no new or changed landing files", cursor=cursor.dump())
    if waiting := _days_wait_for_dimensions(context.instance, new):
        # Dimensions first: a day's KPIs join the items and schools of its day, so the days of this
        # tick run once the dimension run has ended. The cursor stays where it was: the next ticks
        # see the same files again (the dimension request keeps its run key, so it runs once).
        return dg.SensorResult(run_requests=waiting, cursor=context.cursor)
    requests = run_requests(new)
    context.log.info(f"{len(new)} new or changed files -> {len(requests)} runs")
    return dg.SensorResult(run_requests=requests, cursor=cursor.dump())
