"""Which processes belong to a `lab up` network, and whether its daemon still lives.

A pid alone can be reused, so a process is identified by its pid and start time.
Everything the daemon and `lab exec` start carries `ICELAB_UP=<token>` in its
environment, so what a crashed daemon left is found by that mark, never by a pattern
over process names.
"""

from __future__ import annotations

import os
from pathlib import Path

from lab.core.documents import JsonObject
from lab.core.processes import is_same_process

MARK = "ICELAB_UP"


def daemon_alive(state: JsonObject) -> bool:
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
