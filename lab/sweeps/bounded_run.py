"""Run one `lab run` as a child process, bounded in time (`lab matrix --fresh`, `lab
compare`): one that overstays gets SIGTERM, which it turns into a full teardown (a
SIGKILL would leave its namespaces to `lab clean`), and SIGKILL only if that hangs too."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass

from lab.core.slowdown import scaled

#: How long one `lab run` of a sweep may take (a cell of `lab matrix`, a run of `lab compare`).
CELL_TIMEOUT_S = 600
#: How long a child that was sent SIGTERM may take to tear down.
TEARDOWN_S = 30


@dataclass(frozen=True)
class BoundedRun:
    stderr: str
    returncode: int | None
    timed_out: bool
    limit_s: float  # the time it was given (stretched on a slow machine)

    def error(self) -> str | None:
        """Why the run left no result: it overstayed, or the last line it printed on
        stderr (None when it printed nothing)."""
        if self.timed_out:
            return f"timed out after {self.limit_s:g} s"
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else None


def run_bounded(command: list[str], timeout_s: float) -> BoundedRun:
    """Run `command` to its end, or SIGTERM it after `timeout_s` seconds (times the
    machine's slowdown: the child's own waits are stretched by it too)."""
    limit_s = scaled(timeout_s)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=limit_s)
        return BoundedRun(stderr, process.returncode, timed_out=False, limit_s=limit_s)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=scaled(TEARDOWN_S))
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        return BoundedRun(stderr or "", process.returncode, timed_out=True, limit_s=limit_s)
