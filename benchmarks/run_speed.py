"""How fast is a lab run? Prints figures measured side by side in this run.

Baseline: a Python process that connects two aiortc peers over loopback and echoes
one data channel message (`loopback_baseline.py`), wall time including interpreter
start and imports — the same costs a `lab run` process pays. Each lab run is timed
as the whole `lab run` command: network build, servers, both peers, tear-down.
The target is a successful run within 2x the baseline.

Each scenario is also run with Chromium peers (both, and a Chromium viewer meeting an
aiortc master), timed the same way and printed as a ratio to the aiortc run measured
beside it: the target is within 1.5x.

Usage: sudo .venv/bin/python benchmarks/run_speed.py [--repeat N] [--no-chromium] [SCENARIO ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SCENARIOS = ["home-nat-both", "enterprise-firewall"]


def wall_time(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    return time.perf_counter() - started, completed


def measure(command: list[str], repeat: int) -> tuple[float, list[float], int]:
    times, status = [], 0
    for _ in range(repeat):
        elapsed, completed = wall_time(command)
        times.append(elapsed)
        status = status or completed.returncode
    return statistics.median(times), times, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=DEFAULT_SCENARIOS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timing", default="fast")
    parser.add_argument("--no-chromium", action="store_true", help="aiortc peers only")
    args = parser.parse_args()
    combos = [("aiortc", "aiortc")]
    if not args.no_chromium:
        combos += [("chromium", "chromium"), ("chromium", "aiortc")]

    baseline_cmd = [sys.executable, str(HERE / "loopback_baseline.py")]
    baseline, runs, _ = measure(baseline_cmd, args.repeat)
    _, inner = wall_time(baseline_cmd)
    print(
        f"baseline  two aiortc peers over loopback, one process: {baseline:.3f} s wall "
        f"(connect+echo inside: {inner.stdout.strip()} s)"
    )
    print(
        f"{'scenario':<24} {'viewer/master':<18} {'median s':>9} {'x baseline':>11} "
        f"{'x aiortc':>9}  status  runs"
    )
    for scenario in args.scenarios:
        aiortc_median = None
        for viewer, master in combos:
            command = [sys.executable, "-m", "lab", "run", scenario, "--quiet"]
            command += ["--timing", args.timing, "--viewer", viewer, "--master", master]
            median, times, status = measure(command, args.repeat)
            aiortc_median = aiortc_median or median
            rendered = " ".join(f"{t:.2f}" for t in times)
            print(
                f"{scenario:<24} {viewer + '/' + master:<18} {median:>9.3f} "
                f"{median / baseline:>10.2f}x {median / aiortc_median:>8.2f}x  {status:>6}  "
                f"{rendered}"
            )


if __name__ == "__main__":
    main()
