"""Every speed target of the lab, measured side by side in one run, with the profile that
says where the time goes.

1. The floor: two aiortc peers connecting over loopback in one Python process
   (`loopback_baseline.py`), wall time as a process. Against it, `lab run home-nat-both`
   (target: within 2x), and a Chromium run against the aiortc run (target: within 1.5x).
2. The profile of those runs, per stage, medians: the command's start (interpreter,
   imports, the scenario read) and end, the network, the servers, the peers (until data
   flowed, and after: every pair driven to its verdict), the tear-down; the CPU time of
   the run and of everything it started (a cpuacct cgroup, where cgroup v1 has one).
3. `lab matrix` over the 7 NAT presets with aiortc peers (target: under 10 s) and with
   Chromium peers (target: under 20 s); `--full` adds the 12x12 (target: under 30 s);
   each with its CPU time and its mean cell profile.

`--priority` runs everything it measures at the top of the CPU scheduler's weights (cgroup
v1 cpu.shares): on a machine shared with other work it measures the lab rather than the
neighbours; on an idle machine it changes nothing. The load average is printed first.

Usage: sudo .venv/bin/python benchmarks/speed.py [--repeat N] [--full] [--no-chromium]
       [--no-matrix] [--priority] [--json FILE]
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCENARIO = "home-nat-both"
CGROUP_V1 = Path("/sys/fs/cgroup")
TOP_SHARES = 262144  # cgroup v1's largest cpu.shares
TARGETS = {"run_x_floor": 2.0, "chromium_x_aiortc": 1.5, "nats": 10.0, "chromium_nats": 20.0}
TARGETS["all"] = 30.0


class Groups:
    """The cgroups a measured command joins: cpuacct to count its CPU time (and its
    children's), and with --priority cpu.shares at the top."""

    def __init__(self, priority: bool) -> None:
        self.priority = priority
        self.made: list[Path] = []

    @contextlib.contextmanager
    def joined(self, name: str) -> Iterator[dict[str, float | None]]:
        counted: dict[str, float | None] = {"cpu_s": None}
        tag = f"ice-lab-bench-{os.getpid()}-{name}"
        account = self._make(CGROUP_V1 / "cpuacct" / tag)
        weight = self._make(CGROUP_V1 / "cpu" / tag) if self.priority else None
        if weight is not None:
            (weight / "cpu.shares").write_text(str(TOP_SHARES))
        self.tasks = [g / "tasks" for g in (account, weight) if g is not None]
        try:
            yield counted
        finally:
            if account is not None:
                counted["cpu_s"] = int((account / "cpuacct.usage").read_text()) / 1e9
            for group in (account, weight):
                if group is not None:
                    with contextlib.suppress(OSError):
                        group.rmdir()

    def join(self) -> None:
        """In the child, before exec: join the groups (so do all it starts)."""
        for tasks in self.tasks:
            tasks.write_text(str(os.getpid()))

    @staticmethod
    def _make(path: Path) -> Path | None:
        if not path.parent.is_dir():
            return None
        path.mkdir(exist_ok=True)
        return path


def timed(command: list[str], groups: Groups, name: str) -> tuple[float, float | None]:
    """Wall and CPU seconds of one command (and everything it started)."""
    with groups.joined(name) as counted:
        started = time.perf_counter()
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=3600, preexec_fn=groups.join
        )
        wall = time.perf_counter() - started
    if completed.returncode not in (0, 1):
        what = " ".join(command[2:])
        sys.exit(f"{what} failed ({completed.returncode}): {completed.stderr[-800:]}")
    return wall, counted["cpu_s"]


def run_command(viewer: str, master: str, result: Path) -> list[str]:
    return [
        sys.executable, "-m", "lab", "run", SCENARIO, "--quiet", "--json", str(result),
        "--viewer", viewer, "--master", master,
    ]  # fmt: skip


def single_runs(repeat: int, chromium: bool, groups: Groups) -> dict[str, Any]:
    """The floor and the runs, alternating, `repeat` times; each run's stage profile."""
    combos = [("aiortc", "aiortc")] + ([("chromium", "chromium")] if chromium else [])
    floor: list[float] = []
    runs: dict[str, list[dict[str, Any]]] = {f"{v}/{m}": [] for v, m in combos}
    with tempfile.TemporaryDirectory() as directory:
        result = Path(directory) / "result.json"
        for attempt in range(repeat):
            wall, _ = timed([sys.executable, str(HERE / "loopback_baseline.py")], groups, "floor")
            floor.append(wall)
            for viewer, master in combos:
                wall, cpu = timed(run_command(viewer, master, result), groups, f"run{attempt}")
                document = json.loads(result.read_text())
                runs[f"{viewer}/{master}"].append(stage_profile(document, wall, cpu))
    return {"floor_s": floor, "runs": runs}


def stage_profile(document: dict[str, Any], wall: float, cpu: float | None) -> dict[str, Any]:
    """Where a run's wall time went, from its result's timings."""
    timings = document["timings"]
    phases = timings.get("phases") or {}
    connected = timings.get("connected_s")
    peers = phases.get("peers_s", 0.0)
    return {
        "outcome": document["outcome"],
        "wall_s": wall,
        "cpu_s": cpu,
        "start_and_exit_s": wall - timings["total_s"],
        "network_s": phases.get("network_s"),
        "servers_s": phases.get("servers_s"),
        "peers_until_data_s": connected,
        "peers_after_data_s": peers - connected if connected is not None else None,
        "teardown_s": phases.get("teardown_s"),
        "result_s": timings["total_s"] - sum(v for v in phases.values() if v is not None),
    }


def median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def print_single(measured: dict[str, Any]) -> None:
    floor = statistics.median(measured["floor_s"])
    print(f"floor: two aiortc peers over loopback in one process: {floor:.3f} s (median)")
    aiortc_wall = None
    for combo, profiles in measured["runs"].items():
        wall = statistics.median(p["wall_s"] for p in profiles)
        aiortc_wall = aiortc_wall or wall
        outcomes = ",".join(sorted({p["outcome"] for p in profiles}))
        versus = f"{wall / aiortc_wall:.2f}x the aiortc run" if combo != "aiortc/aiortc" else ""
        walls = " ".join(f"{p['wall_s']:.2f}" for p in profiles)
        print(
            f"lab run {SCENARIO} {combo:<18} {wall:.3f} s  {wall / floor:.2f}x the floor  "
            f"{versus}  ({outcomes}; runs {walls})"
        )
        stages = {
            key.removesuffix("_s"): median([p[key] for p in profiles])
            for key in profiles[0]
            if key.endswith("_s") and key != "wall_s"
        }
        shown = ", ".join(f"{k} {v:.3f}" for k, v in stages.items() if v is not None)
        print(f"  profile (medians, s): {shown}")
    run_ratio = (statistics.median(p["wall_s"] for p in measured["runs"]["aiortc/aiortc"])) / floor
    print(f"  target: within {TARGETS['run_x_floor']:.0f}x the floor: {run_ratio:.2f}x")


def matrix(rows: str, agent: str, groups: Groups) -> dict[str, Any]:
    """One `lab matrix` (reused networks, the lab's default jobs): wall, CPU, cells."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "matrix.json"
        command = [sys.executable, "-m", "lab", "matrix", "--nat", rows, "--json", str(path)]
        command += ["--viewer", agent, "--master", agent]
        wall, cpu = timed(command, groups, f"matrix-{rows}-{agent}")
        document = json.loads(path.read_text())
    cells = [c for c in document["cells"] if c.get("result")]
    mean_phase = {
        key: statistics.mean(
            (c["result"]["timings"].get("phases") or {}).get(key, 0.0) for c in cells
        )
        for key in ("network_s", "peers_s")
    }
    connected = [c["result"]["timings"].get("connected_s") for c in cells]
    return {
        "rows": rows,
        "agent": agent,
        "wall_s": wall,
        "cpu_s": cpu,
        "cells": len(document["cells"]),
        "connected": sum(1 for c in cells if c["result"]["outcome"] == "connected"),
        "agreement": document["agreement"],
        "mean_cell": mean_phase | {"until_data_s": median(connected)},
    }


def print_matrix(measured: dict[str, Any]) -> None:
    key = measured["rows"] if measured["agent"] == "aiortc" else f"{measured['agent']}_nats"
    cpu = f", {measured['cpu_s']:.1f} s of CPU" if measured["cpu_s"] is not None else ""
    per_cell = f" ({measured['cpu_s'] / measured['cells']:.2f} s per cell)" if cpu else ""
    agreement = measured["agreement"]
    cell = measured["mean_cell"]
    print(
        f"lab matrix --nat {measured['rows']} {measured['agent']}: {measured['wall_s']:.1f} s"
        f"{cpu}{per_cell}; {measured['connected']}/{measured['cells']} connected, "
        f"agree with libwebrtc {agreement['agree']}/{agreement['agree'] + agreement['differ']}; "
        f"target under {TARGETS[key]:.0f} s"
    )
    print(
        f"  mean cell: network (reconfigure) {cell['network_s']:.3f} s, peers "
        f"{cell['peers_s']:.3f} s, of which until data flowed {cell['until_data_s']:.3f} s "
        "(median)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="also the 12x12 matrix")
    parser.add_argument("--no-chromium", action="store_true")
    parser.add_argument("--no-matrix", action="store_true")
    parser.add_argument("--priority", action="store_true", help="top CPU weight (cgroup v1)")
    parser.add_argument("--json", type=Path, help="save every figure")
    args = parser.parse_args()
    groups = Groups(args.priority)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores; priority {'top' if args.priority else 'normal'}"
    )
    figures: dict[str, Any] = {"single": single_runs(args.repeat, not args.no_chromium, groups)}
    print_single(figures["single"])
    if not args.no_matrix:
        agents = ["aiortc"] + ([] if args.no_chromium else ["chromium"])
        figures["matrices"] = [matrix("nats", agent, groups) for agent in agents]
        if args.full:
            figures["matrices"].append(matrix("all", "aiortc", groups))
        for measured in figures["matrices"]:
            print_matrix(measured)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
