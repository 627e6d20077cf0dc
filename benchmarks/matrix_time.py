"""How long does the matrix take, on reused networks and fresh? Prints figures measured
side by side in this run.

Runs `lab matrix` over the seven NAT presets (49 cells; `--full`: libwebrtc's twelve
configurations, 144 cells) twice, alternating: on reused networks (the default: one
network and servers per worker, rulesets swapped between cells) and `--fresh` (each cell
its own `lab run`). For each it prints the wall time, the cells that were reused, ran
fresh or did not connect, and agreement with libwebrtc; then the ratio fresh / reused
and whether the wall time meets the target (7x7 under 10 s, 12x12 under 30 s).
`--jobs 2,4,6` measures the reused matrix at each of those job counts (the choice of the
default). Every speed target side by side, with the profile: benchmarks/speed.py.

The machine may be shared: repeat (`--repeat`) and read the load average printed first.
Where cgroup v1's cpuacct exists, each matrix also prints the CPU time it and everything
it started used (peers, servers, namespaces' tools): the wall time on idle cores is at
least that divided by the cores.

Usage: sudo .venv/bin/python benchmarks/matrix_time.py [--full] [--jobs N[,N...]]
       [--repeat N] [--no-fresh] [--keep DIR] [--viewer AGENT] [--master AGENT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_S = {"nats": 10.0, "all": 30.0}


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def cpu_group(name: str) -> Path | None:
    """A cgroup (v1 cpuacct) that counts the CPU time of a command and all it starts,
    peers and servers included: on a shared machine, what the wall time would be bounded
    by on idle cores. None where there is no such hierarchy."""
    if not CPUACCT.is_dir():
        return None
    path = CPUACCT / f"ice-lab-bench-{os.getpid()}-{name}"
    path.mkdir(exist_ok=True)
    return path


def run_matrix(
    rows: str, fresh: bool, jobs: int, agents: list[str], keep: Path | None
) -> dict[str, Any]:
    """One `lab matrix`: its wall time and its document (kept in `keep`, if given)."""
    with tempfile.TemporaryDirectory() as directory:
        path = (keep or Path(directory)) / f"matrix-{'fresh' if fresh else 'reused'}-{jobs}.json"
        command = [sys.executable, "-m", "lab", "matrix", "--nat", rows, "--json", str(path)]
        command += (["--fresh"] if fresh else []) + (["-j", str(jobs)] if jobs else []) + agents
        group = cpu_group("reused" if not fresh else "fresh")

        def join_group() -> None:
            if group is not None:
                (group / "tasks").write_text(str(os.getpid()))

        started = time.perf_counter()
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=3600, preexec_fn=join_group
        )
        wall = time.perf_counter() - started
        cpu = None
        if group is not None:
            cpu = int((group / "cpuacct.usage").read_text()) / 1e9
            with contextlib.suppress(OSError):
                group.rmdir()
        if completed.returncode != 0 or not path.exists():
            sys.exit(f"lab matrix failed ({completed.returncode}): {completed.stderr[-800:]}")
        return {"wall": wall, "cpu": cpu, "document": json.loads(path.read_text())}


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
    cpu = f", CPU {run['cpu']:.1f} s" if run["cpu"] is not None else ""
    return (
        f"{label:<22} {run['wall']:>7.1f} s{cpu}  cells {len(cells)}: reused {reused}, fresh "
        f"{fresh}, not run {agreement['not_run']}, not connected {failed}; agree "
        f"{agreement['agree']}/{agreement['agree'] + agreement['differ']}"
    )


def outcomes(run: dict[str, Any]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Each cell's outcome and selected candidate types, to compare reused with fresh."""
    from lab.sweeps.matrix import selected_types

    return {
        (c["viewer"], c["master"]): ((c["result"] or {}).get("outcome"), selected_types(c))
        for c in run["document"]["cells"]
    }


def relay_protocols(run: dict[str, Any]) -> dict[tuple[str, str], str]:
    """How each relayed cell reached its TURN server (`relay/tls`...): a relay pair's
    protocol follows which allocation answered first, so it may vary from run to run."""
    from lab.sweeps.matrix import describe_cell

    return {(c["viewer"], c["master"]): describe_cell(c) for c in run["document"]["cells"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="12x12: --nat all")
    parser.add_argument("-j", "--jobs", default="0", help="reused jobs, comma-separated")
    parser.add_argument("--fresh-jobs", type=int, default=0, help="--fresh jobs (lab default)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-fresh", action="store_true", help="skip the --fresh matrix")
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
            fresh_outcomes, fresh_relays = outcomes(fresh), relay_protocols(fresh)
            differ = [c for c, seen in outcomes(reused).items() if fresh_outcomes[c] != seen]
            print(f"  cells whose outcome or selected types differ, reused vs fresh: {differ}")
            relays = [
                f"{v} x {m}: {text} vs {fresh_relays[(v, m)]}"
                for (v, m), text in relay_protocols(reused).items()
                if text != fresh_relays[(v, m)] and (v, m) not in differ
            ]
            print(f"  same types, relay reached over another protocol: {relays}")
        print(f"  (attempt {attempt + 1}, load average now {os.getloadavg()[0]:.1f})")
    best = min(reused_walls)
    print(f"reused: best {best:.1f} s (target under {TARGET_S[rows]:.0f} s)")
    if fresh_walls:
        ratio = statistics.median(fresh_walls) / statistics.median(reused_walls)
        print(f"fresh / reused, medians: {ratio:.2f}x")


if __name__ == "__main__":
    main()
