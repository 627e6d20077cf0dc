"""Helpers for the root tests: run the real `lab` command, and list what the lab left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lab.core.lifecycle import RUN_ROOT
from lab.run.cleanup import lab_shells, live_runs

LAB = [sys.executable, "-m", "lab"]


def lab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LAB, *args], capture_output=True, text=True, timeout=timeout)


def run_scenario(tmp_path: Path, name: str, *args: str) -> tuple[int, dict[str, Any], str]:
    """`lab run NAME --json FILE ARGS`: exit status, result document, terminal output."""
    path = tmp_path / f"{name}.json"
    completed = lab("run", name, "--json", str(path), *args)
    result = json.loads(path.read_text()) if path.exists() else {}
    return completed.returncode, result, completed.stdout + completed.stderr


def run_dirs() -> set[str]:
    """Directories of runs in progress or crashed (kept ones are renamed kept-*)."""
    return {str(p) for p in RUN_ROOT.glob("run-*")} if RUN_ROOT.is_dir() else set()


#: Run directories a user kept (`--keep`) before the tests started are not the tests' doing.
KEPT_BEFORE = run_dirs()


def leftovers() -> dict[str, Any]:
    """What a finished run must not leave: namespace shells, their processes, run dirs.

    Runs still in progress elsewhere on the machine (their owner lives, and is not this
    test process) are not leftovers: several labs may run at once."""
    live = live_runs(RUN_ROOT, except_owner=os.getpid())
    shells = {p: ns for p, ns in lab_shells().items() if ns not in live.namespaces}
    runs = sorted(run_dirs() - KEPT_BEFORE - {str(d) for d in live.directories})
    turnservers = [
        pid
        for pid in _pids()
        if _command_name(pid) == "turnserver"
        and pid in _children_of_lab_namespaces(set(shells.values()))
    ]
    return {"shells": sorted(shells), "run_dirs": runs, "turnservers": turnservers}


def _command_name(pid: int) -> str | None:
    """A process's name, or None if it ended meanwhile."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def _children_of_lab_namespaces(namespaces: set[str]) -> set[int]:
    found = set()
    for pid in _pids():
        try:
            if os.readlink(f"/proc/{pid}/ns/net") in namespaces:
                found.add(pid)
        except OSError:
            continue
    return found
