"""Run one `lab run` as a child process, bounded in time (`lab matrix --fresh`, `lab
compare`): one that overstays gets SIGTERM, which it turns into a full teardown (a
SIGKILL would leave its namespaces to `lab clean`), and SIGKILL only if that hangs too."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass

#: How long a child that was sent SIGTERM may take to tear down.
TEARDOWN_S = 30


@dataclass(frozen=True)
class BoundedRun:
    stderr: str
    returncode: int | None
    timed_out: bool


def run_bounded(command: list[str], timeout_s: float) -> BoundedRun:
    """Run `command` to its end, or SIGTERM it after `timeout_s` seconds."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=timeout_s)
        return BoundedRun(stderr, process.returncode, timed_out=False)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=TEARDOWN_S)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        return BoundedRun(stderr or "", process.returncode, timed_out=True)
