"""Data-quality rules of the raw daily datasets, evaluated over the file ledger (``raw.ingested_files``).

Two rules, both judged on every loaded day rather than only on the days of the latest run, so a
bad day keeps failing until that day itself is reloaded clean:

* reject rate: a day fails when its share of rejected lines exceeds ``ANALYTICS_MAX_REJECT_RATE``
  *with confidence* ``ANALYTICS_REJECT_RATE_CONFIDENCE`` (default 0.95): that many rejects would be
  unlikely (probability below 1 - confidence) if the true reject rate were the threshold. One bad
  line among 56 (1.8%) is noise; 2 bad lines among 7, or 2,000 among 100,000, are not. A
  confidence of 0 fails any day over the threshold.
* missing files: a day on which another daily dataset has landing files and this one has none is
  missing data, not a quiet day.

Each check is evaluated once per run: one grouped query over the ledger, or one listing of the
landing folders, whatever the number of days. A per-partition check result would add one event per
day and dataset to every backfill (about 1,100 more events for a year of three datasets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from analytics_pipeline.lib.ingestion.landing_zone import LandingZone
from analytics_pipeline.lib.ingestion.readers import UNREADABLE_FILE_SQL
from analytics_pipeline.resources.warehouse import Warehouse


def binomial_upper_tail(rejected: int, lines: int, rate: float) -> float:
    """P(X >= rejected) for X ~ Binomial(lines, rate), exact (summed in log space)."""
    if rejected <= 0:
        return 1.0
    if rate <= 0:
        return 0.0
    if rate >= 1:
        return 1.0
    # far in the upper tail the sum below is pointless: a normal bound of 10 sigma is ~1e-23
    mean, sigma = lines * rate, math.sqrt(lines * rate * (1 - rate))
    if rejected > mean + 10 * sigma + 10:
        return 0.0
    log_odds = math.log(rate) - math.log1p(-rate)
    log_pmf = lines * math.log1p(-rate)  # P(X = 0)
    below = 0.0
    for k in range(rejected):
        below += math.exp(log_pmf)
        log_pmf += math.log(lines - k) - math.log(k + 1) + log_odds
    return max(0.0, 1.0 - below)


class RejectPolicy(Protocol):
    """The reject-rate check's threshold (the landing zone resource, or the settings)."""

    @property
    def max_reject_rate(self) -> float: ...
    @property
    def reject_rate_confidence(self) -> float: ...


def reject_rate_fails(rejected: int, lines: int, policy: RejectPolicy) -> bool:
    """The day's reject rate is over the threshold, beyond what chance explains at the confidence."""
    if lines <= 0 or rejected / lines <= policy.max_reject_rate:
        return False
    return binomial_upper_tail(rejected, lines, policy.max_reject_rate) < 1 - policy.reject_rate_confidence


@dataclass(frozen=True)
class DayRejects:
    day: date
    lines: int  # lines read, plus one per unreadable file
    rejected: int  # rejected lines, plus one per unreadable file

    @property
    def rate(self) -> float:
        return self.rejected / self.lines if self.lines else 0.0


def days_with_rejects(warehouse: Warehouse, dataset: str) -> tuple[int, list[DayRejects]]:
    """(days in the ledger, the days with any reject) of a daily dataset, as the ledger has them now."""
    rows = warehouse.query(
        "select partition_date, "
        f"sum(lines_read) + sum(case when {UNREADABLE_FILE_SQL} then 1 else 0 end) as lines, "
        f"sum(rows_rejected) + sum(case when {UNREADABLE_FILE_SQL} then 1 else 0 end) as rejected "
        "from raw.ingested_files where dataset = ? group by partition_date order by partition_date",
        (dataset,),
    ).to_pylist()
    rejects = [DayRejects(r["partition_date"], int(r["lines"]), int(r["rejected"])) for r in rows if r["rejected"]]
    return len(rows), rejects


def _days_with_files(zone: LandingZone, dataset: str) -> set[date]:
    """The days whose landing folder of ``dataset`` holds at least one file the loader reads or refuses
    (skipped markers and temporary files do not count)."""
    return {
        day
        for folder, day in zone.day_folders(dataset)
        if any(not entry.skipped for entry in zone.entries(folder))  # what the loader reads
    }


def days_without_files(
    landing: LandingZone | Path | str, dataset: str, others: tuple[str, ...], first: date, last: date
) -> list[tuple[date, list[str]]]:
    """Days from ``first`` to ``last`` on which one of ``others`` has landing files and ``dataset``
    has none, with the datasets that do have files.

    Read from the landing zone, not the ledger: a run loads its datasets one after another, so the
    ledger of a sibling may not have this run's days yet, and retention trims old days of the
    ledger but never landing files.
    """
    zone = LandingZone.at(landing)
    present = _days_with_files(zone, dataset)
    missing: dict[date, list[str]] = {}
    for other in sorted(others):
        for day in _days_with_files(zone, other):
            if first <= day <= last and day not in present:
                missing.setdefault(day, []).append(other)
    return sorted(missing.items())
