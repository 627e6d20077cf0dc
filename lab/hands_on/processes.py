"""Which processes belong to a `lab up` network, and whether its daemon still lives.

A pid alone can be reused, so a process is identified by its pid and start time.
Everything the daemon and `lab exec` start carries `ICELAB_UP=<token>` in its
environment, so what a crashed daemon left is found by that mark, never by a pattern
over process names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MARK = "ICELAB_UP"


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


def daemon_alive(state: dict[str, Any]) -> bool:
    """Whether the daemon that wrote `state` is still running (else the state is stale)."""
    return is_same_process(int(state.get("pid") or 0), state.get("pid_start"))


def marked_processes(token: str | None) -> list[int]:
    """Pids whose environment carries `ICELAB_UP=<token>` (any token if None)."""
    wanted = f"{MARK}=".encode() + (token.encode() if token else b"")
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry.name}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(v == wanted if token else v.startswith(wanted) for v in environ):
            found.append(int(entry.name))
    return found
