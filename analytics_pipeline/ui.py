"""``analytics-pipeline ui``: the Dagster webserver and daemon as one stack that stops as one.

``dg dev`` (or ``dagster dev``) starts the webserver and the daemon, and they start code servers
and run workers. A supervisor (systemd, ``docker stop``, ``make``, a terminal that closes) signals
only the process it started. So the stack runs in a session and process group of its own, and a
SIGTERM or SIGINT to this process is forwarded to the whole group as SIGINT (what Ctrl-C in a
terminal sends, and what every Dagster process shuts down cleanly on). Whatever is still running
after a grace period is killed, so the port is free once this process has exited.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from analytics_pipeline.settings import PROJECT_ROOT

# Dagster's own shutdown waits up to 60 s per service; a supervisor's stop should not (systemd's
# default is 90 s before its own SIGKILL, docker's 10 s). The total stays under 30 s.
GRACE_SECONDS = 20.0
_POLL_SECONDS = 0.25
_TRACK_SECONDS = 2.0


def dev_command(host: str, port: int) -> list[str]:
    """``dg dev`` on the project's workspace: the same services as ``dagster dev``, without its
    deprecation warning (Dagster recommends ``dg`` since 1.12). ``dagster dev`` when ``dg`` is
    missing (an environment installed before the dependency was added)."""
    bin_dir = Path(sys.executable).parent
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    options = ["-w", workspace, "--host", host, "--port", str(port)]
    if (bin_dir / "dg").exists():
        return [str(bin_dir / "dg"), "dev", *options]
    return [str(bin_dir / "dagster") if (bin_dir / "dagster").exists() else "dagster", "dev", *options]


def _stack(leader: psutil.Process | None, pgid: int) -> list[psutil.Process]:
    """Every live process of the stack: the group's members and the leader's descendants (a
    process that left the group is still the stack's)."""
    members: dict[int, psutil.Process] = {}
    if leader is not None:
        with contextlib.suppress(psutil.NoSuchProcess):
            members.update((child.pid, child) for child in leader.children(recursive=True))
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members[process.pid] = process
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return list(members.values())


def _stop(process: subprocess.Popen, known: Sequence[psutil.Process], grace: float) -> None:
    """SIGINT to the group, then SIGKILL to whatever of the stack outlives ``grace`` seconds."""
    pgid = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the leader, or it stays in the group as a zombie
        if not [p for p in [*known, *_stack(None, pgid)] if _alive(p)]:
            return
        time.sleep(_POLL_SECONDS)
    for survivor in [p for p in [*known, *_stack(None, pgid)] if _alive(p)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            survivor.kill()
    process.wait()


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def run_stack(
    command: Sequence[str], cwd: Path, env: dict[str, str] | None = None, grace: float = GRACE_SECONDS
) -> int:
    """Run ``command`` in a process group of its own until it ends or this process is asked to stop.

    Returns the command's exit code, or 0 when the stop was asked for (by SIGTERM or SIGINT) and done.
    """
    asked: list[int] = []

    def forward(signo: int, _frame: object) -> None:
        asked.append(signo)

    # A Python handler (unlike an inherited SIG_IGN) is reset to the default on exec, so Dagster's
    # processes can always be interrupted, even when this one was started with SIGINT ignored
    # (a background job of a shell script); such an ignored Ctrl-C stays ignored here afterwards.
    sigint_ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    previous = {signo: signal.signal(signo, forward) for signo in (signal.SIGTERM, signal.SIGINT)}
    try:
        process = subprocess.Popen(list(command), cwd=cwd, env=env, start_new_session=True)
        if sigint_ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        leader = psutil.Process(process.pid)
        known: dict[int, psutil.Process] = {}
        next_look = 0.0
        while process.poll() is None and not asked:
            if time.monotonic() >= next_look:
                # remember the descendants as they start, so one that leaves the group is stopped too
                known = {p.pid: p for p in [*known.values(), *_stack(leader, process.pid)] if _alive(p)}
                next_look = time.monotonic() + _TRACK_SECONDS
            time.sleep(_POLL_SECONDS)
        _stop(process, [*known.values(), *_stack(leader, process.pid)], grace if asked else min(grace, 5.0))
        return 0 if asked else process.returncode
    finally:
        for signo, handler in previous.items():
            signal.signal(signo, handler)
