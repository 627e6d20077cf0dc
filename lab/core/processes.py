"""Process identity: a pid alone can be reused, so the lab names a process by its pid
and its start time, and only ever kills processes it can name that way."""

from __future__ import annotations

from pathlib import Path


def parse_start_time(stat: str) -> int | None:
    """Start time (clock ticks since boot) from /proc/PID/stat text; None for a zombie."""
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of the whole line


def start_time(pid: int) -> int | None:
    """When a live process started (to tell it from a later one with the same pid)."""
    if pid <= 0:
        return None
    try:
        return parse_start_time(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def is_same_process(pid: int, started: int | None) -> bool:
    """Whether `pid` is still the process that started at `started` (not a reuse)."""
    return started is not None and start_time(pid) == started


def has_exited(pid: int) -> bool:
    """Whether every thread of `pid` has exited, so its files (and sockets) are closed: a
    multi-threaded process's main thread can be a zombie while others still run."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return True
    for task in tasks:
        try:
            if parse_start_time((task / "stat").read_text()) is not None:
                return False
        except (OSError, ValueError, IndexError):
            continue
    return True
