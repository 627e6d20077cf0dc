"""What does `lab run --capture` cost? A successful run's wall time with and without it,
side by side: runs alternate (plain, captured, plain, ...) so both meet the same machine
load. The target is at most +20 % with capture on; off, capture starts nothing.

The captured time includes everything the feature adds: loading the trace tables, one
dumpcap per link and one `nft monitor trace` per forwarding node, stopping them, and
decoding the pcaps with tshark into the result's hop trails.

Usage: sudo .venv/bin/python benchmarks/capture_cost.py [--repeat N] [SCENARIO ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

DEFAULT_SCENARIOS = ["home-nat-both", "symmetric-both", "enterprise-firewall"]
TARGET = 1.20


def wall_time(command: list[str]) -> float:
    """Seconds the whole `lab run` command took; a failed run stops the benchmark."""
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if completed.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{completed.stdout}{completed.stderr}")
    return time.perf_counter() - started


def measure(scenario: str, repeat: int) -> tuple[list[float], list[float]]:
    """Alternating plain and captured runs of `scenario`: (plain times, captured times)."""
    run = [sys.executable, "-m", "lab", "run", scenario, "--quiet"]
    plain, captured = [], []
    for _ in range(repeat):
        plain.append(wall_time(run))
        captured.append(wall_time([*run, "--capture"]))
    return plain, captured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=DEFAULT_SCENARIOS)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'scenario':<22} {'plain s':>8} {'capture s':>10} {'ratio':>6}  (medians of "
          f"{args.repeat}; target <= {TARGET:.2f})")  # fmt: skip
    worst = 0.0
    for scenario in args.scenarios:
        plain, captured = measure(scenario, args.repeat)
        ratio = statistics.median(captured) / statistics.median(plain)
        worst = max(worst, ratio)
        print(
            f"{scenario:<22} {statistics.median(plain):8.2f} {statistics.median(captured):10.2f} "
            f"{ratio:6.2f}  plain {[round(t, 2) for t in plain]} "
            f"captured {[round(t, 2) for t in captured]}"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"worst ratio {worst:.2f}: {'within' if worst <= TARGET else 'OVER'} the target")


if __name__ == "__main__":
    main()
