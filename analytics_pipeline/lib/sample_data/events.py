"""A day of activity events: who is active when, what they do, and the JSON lines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analytics_pipeline.lib.sample_data.catalogue import (
    ACTIVITY_TYPES,
    EVENT_FILES,
    EVENT_WEEKDAY_FACTORS,
    HEX_DIGITS,
    MEDIAN_DURATION_MS,
    MIXED_CASE_SHARE,
    MS_PER_HOUR,
    NULL_DURATION_SHARE,
    NULL_SESSION_SHARE,
    SALT_EVENT_ID,
    SALT_REQUEST_ID,
    SALT_SESSION_ID,
    SCHOOL_DAY_HOURS,
    SCORED_ACTIVITIES,
    STAFF_ACTIVITY_WEIGHTS,
    STUDENT_ACTIVITY_WEIGHTS,
    UNCATALOGUED_ACTIVITY_TYPES,
    UNCATALOGUED_SHARE,
    UPPER_CASE_SHARE,
    WEEKEND_ACTIVITY_FACTOR,
    WEEKEND_HOURS,
)
from analytics_pipeline.lib.sample_data.defects import _event_defect_patches
from analytics_pipeline.lib.sample_data.files import _partition, _write_lines
from analytics_pipeline.lib.sample_data.world import _DayEvents, _Users, _World

# --------------------------------------------------------------------------------------------
# Activity events
# --------------------------------------------------------------------------------------------


def _write_activity_events(
    world: _World,
    day: date,
    rng: np.random.Generator,
    defects_rng: np.random.Generator,
    landing_dir: Path,
    defects_so_far: int,
) -> tuple[int, int]:
    """Writes the day as two files (plain and gzip) split at the middle of the chronologically
    ordered lines; returns (lines written, bad lines). A day without events gets empty files."""
    events = _simulate_events(world, day, rng)
    lines = _event_lines(world, day, events)
    patches = _event_defect_patches(defects_rng, lines, world.bad_rate, day, defects_so_far)
    folder = _partition(landing_dir, "activity_events", day)
    middle = len(lines) // 2
    written = _write_lines(folder / EVENT_FILES[0], lines, 0, middle, patches)
    written += _write_lines(folder / EVENT_FILES[1], lines, middle, len(lines), patches)
    return written, len(patches)


def _simulate_events(world: _World, day: date, rng: np.random.Generator) -> _DayEvents:
    """The day's events: a volume set by the weekday, spread over the users active that day with
    heavy-tailed per-user counts, at school-hour-shaped local times, grouped into sessions."""
    users = world.users
    weekday = day.weekday()
    school_day = weekday < 5
    target = world.events_per_day * EVENT_WEEKDAY_FACTORS[weekday] * rng.lognormal(0.0, 0.05)
    active = _active_users(users, day.toordinal(), school_day, rng)
    total = int(rng.poisson(target)) if len(active) else 0
    weights = users.intensity[active] * rng.gamma(2.0, 0.5, len(active))
    counts = rng.multinomial(total, weights / weights.sum()) if len(active) else np.zeros(0, int)
    user = np.repeat(active, counts)

    hours = SCHOOL_DAY_HOURS if school_day else WEEKEND_HOURS
    local_hour = rng.choice(24, size=total, p=np.asarray(hours) / sum(hours))
    offset = world.organizations.utc_offset_hours[users.org[user]]
    utc_hour = (local_hour - offset) % 24
    ms_of_day = utc_hour * MS_PER_HOUR + rng.integers(0, MS_PER_HOUR, total)
    session_no = _session_numbers(rng, counts, ms_of_day)

    activity, base_activity = _activity_codes(rng, users.is_staff[user])
    median = np.append(MEDIAN_DURATION_MS, 3_000)[base_activity]
    duration = np.round(median * rng.lognormal(0.0, 0.8, total)).astype(np.int64)
    scored = np.isin(base_activity, [ACTIVITY_TYPES.index(a) for a in SCORED_ACTIVITIES])
    score = np.clip(np.round(rng.normal(78.0, 12.0, total)), 0, 100).astype(np.int64)
    at_school = school_day & (local_hour >= 7) & (local_hour <= 15) & (rng.random(total) < 0.9)
    session_missing = rng.random(total) < NULL_SESSION_SHARE
    duration_missing = rng.random(total) < NULL_DURATION_SHARE

    order = np.argsort(ms_of_day, kind="stable")
    return _DayEvents(
        user=user[order],
        ms_of_day=ms_of_day[order],
        activity=activity[order],
        session_no=session_no[order],
        session_missing=session_missing[order],
        at_school=at_school[order],
        duration_ms=duration[order],
        duration_missing=duration_missing[order],
        line_ending=np.where(scored, score, 101)[order],
    )


def _active_users(users: _Users, ordinal: int, school_day: bool, rng: np.random.Generator) -> np.ndarray:
    """Users who signed up before today, have not churned, and feel like it today (each has a
    personal propensity; weekends dampen it). Falls back to all eligible users on a quiet day."""
    eligible = (users.signup_day < ordinal) & (ordinal < users.churn_day)
    propensity = users.propensity * (1.0 if school_day else WEEKEND_ACTIVITY_FACTOR)
    active = np.flatnonzero(eligible & (rng.random(len(eligible)) < propensity))
    return active if len(active) else np.flatnonzero(eligible)


def _session_numbers(rng: np.random.Generator, counts: np.ndarray, ms_of_day: np.ndarray) -> np.ndarray:
    """Split each user's day, in time order, into a few consecutive sessions. Events arrive
    grouped by user (from ``np.repeat``), so the group of an event is known without a sort."""
    total = int(counts.sum())
    group = np.repeat(np.arange(len(counts)), counts)
    group_start = np.cumsum(counts) - counts
    sessions = np.minimum(counts, 1 + rng.poisson(counts / 15.0))
    by_time = np.lexsort((ms_of_day, group))
    rank = np.empty(total, dtype=np.int64)
    rank[by_time] = np.arange(total) - group_start[group[by_time]]
    safe_counts = np.maximum(counts, 1)
    return rank * sessions[group] // safe_counts[group]


def _activity_codes(rng: np.random.Generator, is_staff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Catalogue activity by role, then the casing noise and the rare uncatalogued type that a
    real client fleet produces. Returns (code into the variant vocabulary, catalogue index)."""
    total = len(is_staff)
    draw = rng.random(total)
    base = np.where(
        is_staff,
        np.searchsorted(_cumulative(STAFF_ACTIVITY_WEIGHTS), draw, side="right"),
        np.searchsorted(_cumulative(STUDENT_ACTIVITY_WEIGHTS), draw, side="right"),
    ).clip(0, len(ACTIVITY_TYPES) - 1)
    casing = rng.random(total)
    code = base.copy()
    code[casing < UPPER_CASE_SHARE] += len(ACTIVITY_TYPES)
    mixed = (casing >= UPPER_CASE_SHARE) & (casing < UPPER_CASE_SHARE + MIXED_CASE_SHARE)
    code[mixed] += 2 * len(ACTIVITY_TYPES)
    uncatalogued = rng.random(total) < UNCATALOGUED_SHARE
    which = rng.integers(0, len(UNCATALOGUED_ACTIVITY_TYPES), total)
    code[uncatalogued] = 3 * len(ACTIVITY_TYPES) + which[uncatalogued]
    base[uncatalogued] = len(ACTIVITY_TYPES)
    return code, base


def _cumulative(weights: Sequence[float]) -> np.ndarray:
    cumulative = np.cumsum(weights, dtype=np.float64)
    return cumulative / cumulative[-1]


def _event_lines(world: _World, day: date, events: _DayEvents) -> pa.Array:
    """One JSON object per line, built column-wise: fixed-width parts as byte matrices, the rest
    by ``take`` from pre-rendered fragments, all joined by one Arrow kernel."""
    text = world.event_text
    total = len(events.user)
    ordinal = day.toordinal()
    position = np.arange(total, dtype=np.uint64)
    day_key = np.uint64(ordinal) << np.uint64(32)
    event_hash = _mix64((day_key | position) ^ _seed_salt(world.seed, SALT_EVENT_ID))
    request_hash = _mix64((day_key | position) ^ _seed_salt(world.seed, SALT_REQUEST_ID))
    head = _concat_columns(
        total,
        b'{"event_id":"ev-',
        _hex_bytes(event_hash),
        b'","occurred_at":"' + day.isoformat().encode() + b"T",
        _time_of_day_bytes(events.ms_of_day),
        b'Z","user_id":"',
        text.user_id_bytes[events.user],
        b'","org_id":"',
        text.org_id_bytes[events.user],
        b'","activity_type":"',
    )
    request = _concat_columns(total, b',"request_id":"req-', _hex_bytes(request_hash), b'","ip_address":"')
    parts = [
        _strings_from_bytes(head),
        _take(text.activity_fragments, events.activity),
        _session_json(world.seed, ordinal, events),
        _strings_from_bytes(request),
        _take(text.ip_and_agent_fragments, events.user * 2 + events.at_school),
        _duration_json(events),
        _take(text.properties_fragments, events.user),
        _take(text.line_endings, events.line_ending),
    ]
    return pc.binary_join_element_wise(*parts, pa.scalar("", pa.large_string()))


def _session_json(seed: int, ordinal: int, events: _DayEvents) -> pa.Array:
    user_key = _mix64(
        (np.uint64(ordinal) << np.uint64(32)) ^ events.user.astype(np.uint64) ^ _seed_salt(seed, SALT_SESSION_ID)
    )
    session_hash = _mix64(user_key + events.session_no.astype(np.uint64))
    quoted = _concat_columns(len(events.user), b'"ses-', _hex_bytes(session_hash), b'"')
    null = pa.scalar("null", pa.large_string())
    return pc.if_else(pa.array(events.session_missing), null, _strings_from_bytes(quoted))


def _duration_json(events: _DayEvents) -> pa.Array:
    durations = pa.array(events.duration_ms, mask=events.duration_missing)
    return pc.fill_null(pc.cast(durations, pa.large_string()), "null")


def _take(fragments: pa.Array, indices: np.ndarray) -> pa.Array:
    return pc.take(fragments, pa.array(indices.astype(np.int64, copy=False)))


def _seed_salt(seed: int, stream: int) -> np.uint64:
    mixed = _mix64(np.array([(seed * 0x9E3779B97F4A7C15 + stream) & (2**64 - 1)], np.uint64))
    return mixed[0]


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on 64-bit integers, so distinct keys (day, position)
    always give distinct event ids while looking random."""
    x = values.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _hex_bytes(values: np.ndarray) -> np.ndarray:
    """(n, 16) ASCII hex digits of 64-bit values."""
    octets = values.astype(">u8").view(np.uint8).reshape(-1, 8)
    out = np.empty((len(values), 16), dtype=np.uint8)
    out[:, 0::2] = HEX_DIGITS[octets >> 4]
    out[:, 1::2] = HEX_DIGITS[octets & 15]
    return out


def _time_of_day_bytes(ms_of_day: np.ndarray) -> np.ndarray:
    """(n, 12) ASCII ``HH:MM:SS.mmm``; about 20x faster than ``datetime_as_string``."""
    ms = ms_of_day.astype(np.int32)
    seconds, millis = np.divmod(ms, 1000)
    minutes, second = np.divmod(seconds, 60)
    hour, minute = np.divmod(minutes, 60)
    out = np.full((len(ms), 12), ord(":"), dtype=np.uint8)
    out[:, 8] = ord(".")
    for column, value in ((0, hour), (3, minute), (6, second)):
        out[:, column] = 48 + value // 10
        out[:, column + 1] = 48 + value % 10
    out[:, 9] = 48 + millis // 100
    out[:, 10] = 48 + millis // 10 % 10
    out[:, 11] = 48 + millis % 10
    return out


def _concat_columns(rows: int, *parts: bytes | np.ndarray) -> np.ndarray:
    """Place constant byte strings and (rows, w) byte matrices side by side in one matrix."""
    widths = [len(part) if isinstance(part, bytes) else part.shape[1] for part in parts]
    out = np.empty((rows, sum(widths)), dtype=np.uint8)
    column = 0
    for part, width in zip(parts, widths, strict=False):
        if isinstance(part, bytes):
            out[:, column : column + width] = np.frombuffer(part, dtype=np.uint8)
        else:
            out[:, column : column + width] = part
        column += width
    return out


def _strings_from_bytes(matrix: np.ndarray) -> pa.Array:
    """Zero-copy Arrow strings over the rows of a byte matrix (every row is one string)."""
    rows, width = matrix.shape
    offsets = np.arange(0, rows * width + 1, width, dtype=np.int64)
    data = np.ascontiguousarray(matrix)
    return pa.Array.from_buffers(pa.large_string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
