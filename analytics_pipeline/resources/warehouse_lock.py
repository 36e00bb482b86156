"""Readers and writers of one DuckDB file take turns instead of failing each other.

DuckDB lets one process open a file read-write, or any number of processes open it read-only, never
a mix, and it does not wait: the second process gets ``IO Error: Could not set lock``. On the
embedded default every ``export``, ``health`` call and metrics scrape is such a reader, and the dbt
step opens the file in a process of its own. So the processes of this package agree beside the
file, with ``flock`` on two small files next to it (advisory: DuckDB's own lock is untouched):

- ``<file>.lock``: a reader holds it shared for its short read, a writer exclusively for each
  connection it opens, or for a whole dbt invocation (dbt opens the file itself).
- ``<file>.lock.gate``: a writer takes it exclusively *before* waiting for the readers, and readers
  pass it (shared, for a moment) before they start; so readers that keep coming never starve a
  writer, they queue behind it. The gate file names the writer (pid and what it runs), which is
  what a waiting reader reports.

Locks are held per thread and are re-entrant: a step that holds the file for its dbt invocation
opens its own connections inside without waiting for itself. ``flock`` locks end with the process,
so a killed process never leaves the file locked. Processes outside this package (a BI tool, dbt
run by hand) do not take these locks; the warehouse handles them by retrying DuckDB's own lock
error for a bounded time.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

# How often a waiting process tries again, and how often it says it is still waiting.
POLL_SECONDS = 0.2
PROGRESS_EVERY_SECONDS = 5.0


class LockTimeout(TimeoutError):
    """The lock was not free within the wait; ``holder`` says who has it, as far as is known."""

    def __init__(self, holder: str, waited: float):
        super().__init__(f"held by {holder} for {waited:.0f} s")
        self.holder = holder
        self.waited = waited


# (what is being waited for, seconds waited so far): a progress line for a person or a log
Progress = Callable[[str, float], None]


@dataclass
class _Held:
    exclusive: bool
    depth: int
    main: int  # file descriptor of <file>.lock
    gate: int | None  # file descriptor of <file>.lock.gate (writers only)


_held = threading.local()


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class LockFileError(OSError):
    """A lock file beside the DuckDB file cannot be opened (a read-only folder, a link in its place)."""


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as error:
        raise LockFileError(
            f"Cannot open the lock file {path} beside the DuckDB file ({error.strerror}); "
            "every process that reads or writes the warehouse needs write access to its "
            "folder."
        ) from None


def describe_self(what: str = "") -> str:
    command = " ".join(Path(arg).name if i == 0 else arg for i, arg in enumerate(sys.argv))[:120]
    return f"pid {os.getpid()} ({what or command or 'python'})"


def _holder(gate_path: Path) -> str:
    try:
        text = gate_path.read_text(errors="replace").strip()
    except OSError:
        text = ""
    return text or "another process of this pipeline"


def _flock(
    fd: int,
    operation: int,
    deadline: float,
    waiting_for: str,
    gate_path: Path,
    progress: Progress | None,
    started: float,
) -> None:
    """``flock(fd, operation)``, trying again every :data:`POLL_SECONDS` until ``deadline``."""
    next_report = started + 1.0  # a lock held for less than a second goes unmentioned
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        now = time.monotonic()
        if now >= deadline:
            raise LockTimeout(_holder(gate_path) if waiting_for == "writer" else "readers", now - started)
        if progress is not None and now >= next_report:
            holder = _holder(gate_path) if waiting_for == "writer" else "readers of the file"
            progress(holder, now - started)
            next_report = now + PROGRESS_EVERY_SECONDS
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - now)))


@contextmanager
def hold(
    database: Path, exclusive: bool, wait_seconds: float, progress: Progress | None = None, what: str = ""
) -> Iterator[None]:
    """Hold the DuckDB file ``database`` shared (a reader) or exclusively (a writer) inside the block.

    Waits up to ``wait_seconds`` (``progress`` is told who it waits for, every few seconds), then
    raises :class:`LockTimeout`. Inside a block of the same thread that already holds it, nothing
    is waited for; a reader cannot become a writer (that would deadlock two such readers)."""
    held: dict[Path, _Held] = _held.__dict__.setdefault("locks", {})
    key = database.resolve()
    current = held.get(key)
    if current is not None:
        if exclusive and not current.exclusive:
            raise RuntimeError(f"a reader of {database} cannot start writing to it; open the writer first")
        current.depth += 1
        try:
            yield
        finally:
            current.depth -= 1
        return

    database.parent.mkdir(parents=True, exist_ok=True)
    main_path, gate_path = lock_path(database), lock_path(database).with_name(lock_path(database).name + ".gate")
    started = time.monotonic()
    deadline = started + wait_seconds
    main = _open(main_path)
    try:
        gate = _open(gate_path)
    except LockFileError:
        os.close(main)
        raise
    try:
        if exclusive:
            _flock(gate, fcntl.LOCK_EX, deadline, "writer", gate_path, progress, started)
            os.ftruncate(gate, 0)
            os.pwrite(gate, describe_self(what).encode(), 0)
            _flock(main, fcntl.LOCK_EX, deadline, "readers", gate_path, progress, started)
        else:
            _flock(gate, fcntl.LOCK_SH, deadline, "writer", gate_path, progress, started)
            try:
                _flock(main, fcntl.LOCK_SH, deadline, "writer", gate_path, progress, started)
            finally:
                fcntl.flock(gate, fcntl.LOCK_UN)
            os.close(gate)
            gate = None
    except BaseException:
        for fd in (main, gate):
            if fd is not None:
                os.close(fd)  # closing the descriptor drops any lock taken on it
        raise
    held[key] = _Held(exclusive, 1, main, gate)
    try:
        yield
    finally:
        del held[key]
        os.close(main)
        if gate is not None:
            with suppress(OSError):
                os.ftruncate(gate, 0)
            os.close(gate)


def holds(database: Path) -> bool:
    """Whether this thread holds ``database`` (shared or exclusive) right now."""
    return database.resolve() in _held.__dict__.get("locks", {})
