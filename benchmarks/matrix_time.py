"""How long does the matrix take, on reused networks and fresh? Prints figures measured
side by side in this run.

Runs `lab matrix` over the seven NAT presets (49 cells; `--full`: libwebrtc's twelve
configurations, 144 cells) twice, alternating: on reused networks (the default: one
network and servers per worker, rulesets swapped between cells) and `--fresh` (each cell
its own `lab run`). For each it prints the wall time, the cells that were reused, ran
fresh or did not connect, and agreement with libwebrtc; then the ratio fresh / reused
and whether the wall time meets the target (7x7 under 10 s, 12x12 under 30 s).
`--jobs 2,4,6` measures the reused matrix at each of those job counts (the choice of the
default). Last, the single-run ratio: a `lab run` of one scenario against two aiortc
peers over loopback in one process (`loopback_baseline.py`), target 2x.

The machine may be shared: repeat (`--repeat`) and read the load average printed first.

Usage: sudo .venv/bin/python benchmarks/matrix_time.py [--full] [--jobs N[,N...]]
       [--repeat N] [--no-fresh] [--no-single] [--keep DIR] [--viewer AGENT] [--master AGENT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_S = {"nats": 10.0, "all": 30.0}
SINGLE_SCENARIO = "home-nat-both"


def run_matrix(
    rows: str, fresh: bool, jobs: int, agents: list[str], keep: Path | None
) -> dict[str, Any]:
    """One `lab matrix`: its wall time and its document (kept in `keep`, if given)."""
    with tempfile.TemporaryDirectory() as directory:
        path = (keep or Path(directory)) / f"matrix-{'fresh' if fresh else 'reused'}-{jobs}.json"
        command = [sys.executable, "-m", "lab", "matrix", "--nat", rows, "--json", str(path)]
        command += (["--fresh"] if fresh else []) + (["-j", str(jobs)] if jobs else []) + agents
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - started
        if completed.returncode != 0 or not path.exists():
            sys.exit(f"lab matrix failed ({completed.returncode}): {completed.stderr[-800:]}")
        return {"wall": wall, "document": json.loads(path.read_text())}


def summary(label: str, run: dict[str, Any]) -> str:
    cells = run["document"]["cells"]
    agreement = run["document"]["agreement"]
    reused = sum(1 for c in cells if c.get("reused"))
    fresh = sum(1 for c in cells if c.get("fresh"))
    failed = sum(
        1
        for c in cells
        if not c.get("unsupported") and (c["result"] or {}).get("outcome") != "connected"
    )
    return (
        f"{label:<22} {run['wall']:>7.1f} s  cells {len(cells)}: reused {reused}, fresh "
        f"{fresh}, not run {agreement['not_run']}, not connected {failed}; agree "
        f"{agreement['agree']}/{agreement['agree'] + agreement['differ']}"
    )


def outcomes(run: dict[str, Any]) -> dict[tuple[str, str], str]:
    """Each cell's outcome and selected candidate types, to compare reused with fresh."""
    from lab.matrix import describe_cell

    return {(c["viewer"], c["master"]): describe_cell(c) for c in run["document"]["cells"]}


def single_run_ratio(repeat: int) -> None:
    """A `lab run` against the loopback baseline, medians of `repeat`, side by side."""
    baseline_cmd = [sys.executable, str(HERE / "loopback_baseline.py")]
    run_cmd = [sys.executable, "-m", "lab", "run", SINGLE_SCENARIO, "--quiet"]
    baselines, runs = [], []
    for _ in range(repeat):
        for command, times in ((baseline_cmd, baselines), (run_cmd, runs)):
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, timeout=300, check=True)
            times.append(time.perf_counter() - started)
    baseline, run = statistics.median(baselines), statistics.median(runs)
    print(
        f"single run: lab run {SINGLE_SCENARIO} {run:.2f} s, loopback baseline {baseline:.2f} s: "
        f"{run / baseline:.2f}x (target 2x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="12x12: --nat all")
    parser.add_argument("-j", "--jobs", default="0", help="reused jobs, comma-separated")
    parser.add_argument("--fresh-jobs", type=int, default=0, help="--fresh jobs (lab default)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-fresh", action="store_true", help="skip the --fresh matrix")
    parser.add_argument("--no-single", action="store_true", help="skip the single-run ratio")
    parser.add_argument("--keep", type=Path, help="keep each matrix document in this folder")
    parser.add_argument("--viewer", help="the viewer's ICE agent (lab default: aiortc)")
    parser.add_argument("--master", help="the master's ICE agent (lab default: aiortc)")
    args = parser.parse_args()
    rows = "all" if args.full else "nats"
    agents = [f"--{r}={getattr(args, r)}" for r in ("viewer", "master") if getattr(args, r)]
    jobs = [int(j) for j in args.jobs.split(",")]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; --nat {rows}")
    reused_walls: list[float] = []
    fresh_walls: list[float] = []
    for attempt in range(args.repeat):
        for job_count in jobs:
            reused = run_matrix(rows, False, job_count, agents, args.keep)
            reused_walls.append(reused["wall"])
            print(summary(f"reused -j {job_count or 'default'}", reused))
        if not args.no_fresh:
            fresh = run_matrix(rows, True, args.fresh_jobs, agents, args.keep)
            fresh_walls.append(fresh["wall"])
            print(summary(f"fresh -j {args.fresh_jobs or 'default'}", fresh))
            fresh_outcomes = outcomes(fresh)
            differ = [c for c, text in outcomes(reused).items() if fresh_outcomes[c] != text]
            print(f"  cells whose selected pair differs, reused vs fresh: {len(differ)} {differ}")
        print(f"  (attempt {attempt + 1}, load average now {os.getloadavg()[0]:.1f})")
    best = min(reused_walls)
    print(f"reused: best {best:.1f} s (target under {TARGET_S[rows]:.0f} s)")
    if fresh_walls:
        ratio = statistics.median(fresh_walls) / statistics.median(reused_walls)
        print(f"fresh / reused, medians: {ratio:.2f}x")
    if not args.no_single:
        single_run_ratio(max(args.repeat, 3))


if __name__ == "__main__":
    main()
