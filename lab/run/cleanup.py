"""`lab clean`: remove what a crashed run left behind, and only the lab's own.

The lab's namespaces are recognised by their Mininet shells, tagged
`mininet:icelab.<node>`; every process inside those namespaces is the lab's.
Nothing is matched by a pattern over other processes' names. A run whose owner (the
process that built its network, first in its record) still lives is in progress, not
crashed: its namespaces, processes and directory are left alone, so that cleaning up
after one crashed run never kills another user's (or another test's) live one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.core.processes import has_exited, is_same_process
from lab.network.build import (
    HOST_PREFIX,
    OWNER,
    PROCESS_RECORD,
    namespace_members,
    namespace_of,
    sigkill,
)
from lab.network.vpn import remove_stale_sockets
from lab.run.hands_on.teardown import clean_up_state

SHELL_TAG = ("mininet:" + HOST_PREFIX).encode()


@dataclass
class CleanReport:
    shells: list[int] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)
    live_runs: list[str] = field(default_factory=list)  # in progress: left alone
    up: str = ""  # what happened to a `lab up` network (lab.run.hands_on), if there was one
    sockets: list[str] = field(default_factory=list)  # killed wireguard-go's (lab.network.vpn)

    @property
    def anything(self) -> bool:
        return bool(self.shells or self.processes or self.directories or self.up or self.sockets)


def lab_shells() -> dict[int, str]:
    """Pid -> network namespace of every Mininet shell the lab started."""
    shells = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not any(arg.startswith(SHELL_TAG) for arg in argv):
            continue
        # A shell being started is, until mnexec unshares, in the machine's own namespace:
        # its namespace's members would be every process on the machine.
        namespace = namespace_of(int(entry.name))
        if namespace is not None:
            shells[int(entry.name)] = namespace
    return shells


@dataclass
class LiveRuns:
    """Runs in progress: their directories, recorded processes and namespaces."""

    directories: set[Path] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)
    namespaces: set[str] = field(default_factory=set)


def _records(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def live_runs(run_root: Path, except_owner: int | None = None) -> LiveRuns:
    """The runs whose owner still lives (other than `except_owner`)."""
    live = LiveRuns()
    for record in run_root.glob(f"run-*/{PROCESS_RECORD}"):
        entries = _records(record)
        owners = [e for e in entries if e.get("what") == OWNER]
        if not owners or owners[0]["pid"] == except_owner:
            continue
        if not is_same_process(owners[0]["pid"], owners[0]["start"]):
            continue
        live.directories.add(record.parent)
        for entry in entries:
            if entry.get("what") != OWNER and is_same_process(entry["pid"], entry["start"]):
                live.pids.add(entry["pid"])
                namespace = namespace_of(entry["pid"])
                if namespace is not None:
                    live.namespaces.add(namespace)
    return live


def recorded_processes(run_root: Path) -> dict[int, str]:
    """Pid -> network namespace of every process a crashed run recorded and that still
    runs (same pid and start time). After a SIGKILL the Mininet shells exit with their
    stdin, so servers may be left in namespaces no shell marks any more."""
    found = {}
    for record in run_root.glob(f"run-*/{PROCESS_RECORD}"):
        for entry in _records(record):
            if entry.get("what") == OWNER:
                continue
            namespace = namespace_of(entry["pid"])
            if namespace is not None and is_same_process(entry["pid"], entry["start"]):
                found[entry["pid"]] = namespace
    return found


def _wait_gone(pids: list[int], timeout: float = 1.0) -> None:
    """Wait (briefly) until killed processes have exited: their sockets close then."""
    deadline = time.monotonic() + timeout
    while not all(map(has_exited, pids)) and time.monotonic() < deadline:
        time.sleep(0.01)


def clean(run_root: Path) -> CleanReport:
    """Kill every process in the lab's namespaces, then the namespaces' shells."""
    report = CleanReport()
    report.up = clean_up_state()  # first: a live `lab up` daemon is stopped, not orphaned
    live = live_runs(run_root)
    report.live_runs = sorted(str(path) for path in live.directories)
    shells = {p: ns for p, ns in lab_shells().items() if ns not in live.namespaces}
    recorded = {p: ns for p, ns in recorded_processes(run_root).items() if p not in live.pids}
    namespaces = set(shells.values()) | set(recorded.values())
    members = set(namespace_members(namespaces)) | set(recorded)
    report.processes = sigkill(sorted(members - set(shells) - live.pids - {os.getpid()}))
    report.shells = sigkill(list(shells))
    time.sleep(0.05 if report.shells else 0)
    _wait_gone(report.processes)
    report.sockets = remove_stale_sockets()
    if run_root.is_dir():
        for path in run_root.glob("run-*"):
            if path in live.directories:
                continue
            shutil.rmtree(path, ignore_errors=True)
            report.directories.append(str(path))
    return report
