"""How long does the matrix take? Prints figures measured in this run.

Runs `lab matrix` over the seven NAT presets (49 cells, each a real `lab run`; `--nat all`
for libwebrtc's twelve configurations, 144 cells) and prints the wall time, the sum of
the cells' own run times (what running them one after another would cost), the speed-up
from running cells in parallel (`-j`), how many cells agree with libwebrtc on direct
versus relay, and which combinations needed a relay. With --json, the matrix document is
kept there.

With --viewer/--master chromium, the cells run a browser on that side (two at a time
unless -j says otherwise).

Usage: sudo .venv/bin/python benchmarks/matrix_time.py [-j N] [--nat a,b,...|all] [--json FILE]
       [--viewer AGENT] [--master AGENT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRESETS = "nats"  # lab matrix's group of the seven NAT configurations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-j", "--jobs", type=int, default=0, help="cells at once (lab default)")
    parser.add_argument("--nat", default=PRESETS)
    parser.add_argument("--json", type=Path, help="keep the matrix document here")
    parser.add_argument("--viewer", help="the viewer's ICE agent (lab default: aiortc)")
    parser.add_argument("--master", help="the master's ICE agent (lab default: aiortc)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        document_path = args.json or Path(directory) / "matrix.json"
        command = [sys.executable, "-m", "lab", "matrix", "--nat", args.nat]
        command += ["--json", str(document_path)]
        if args.jobs:
            command += ["-j", str(args.jobs)]
        for role in ("viewer", "master"):
            if getattr(args, role):
                command += [f"--{role}", getattr(args, role)]
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - started
        if completed.returncode != 0 or not document_path.exists():
            sys.exit(f"lab matrix failed ({completed.returncode}): {completed.stderr[-500:]}")
        document = json.loads(document_path.read_text())
        cells = document["cells"]
    print(completed.stdout)
    run_times = [c["result"]["timings"]["total_s"] for c in cells if c.get("result")]
    sequential = sum(run_times)
    relayed = [c for c in cells if _relayed(c)]
    skipped = [c for c in cells if c.get("unsupported")]
    failed = [
        c
        for c in cells
        if not c.get("unsupported") and (not c["result"] or c["result"]["outcome"] != "connected")
    ]
    agents = document.get("agents", {})
    agreement = document.get("agreement", {})
    print(f"cells: {len(cells)} on {os.cpu_count()} cores (jobs: {args.jobs or 'default'})")
    print(
        f"agree with libwebrtc on direct versus relay: {agreement.get('agree')} of "
        f"{agreement.get('agree', 0) + agreement.get('differ', 0)} "
        f"({agreement.get('no_expectation')} without an expectation; "
        f"{len(skipped)} not run: the agent cannot use that network)"
    )
    print(f"agents: viewer {agents.get('viewer', '?')}, master {agents.get('master', '?')}")
    ran = max(len(cells) - len(skipped), 1)
    print(f"wall time: {wall:.1f} s ({wall / ran:.2f} s per cell run)")
    print(f"sum of cell run times (in-process): {sequential:.1f} s")
    print(f"parallel speed-up over the in-process sum: {sequential / wall:.2f}x")
    print(f"relayed: {len(relayed)} cells; not connected: {len(failed)}")
    for cell in relayed:
        print(f"  relay needed: viewer {cell['viewer']} x master {cell['master']}")


def _relayed(cell: dict) -> bool:
    result = cell.get("result") or {}
    pair = (result.get("selected") or {}).get("viewer")
    if not pair:
        return False
    return "relay" in (pair["local"]["type"], pair["remote"]["type"])


if __name__ == "__main__":
    main()
