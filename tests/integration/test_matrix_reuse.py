"""Fast sweeps on real networks (root): a reused worker's cells give what fresh `lab run`s
give, the conntrack flush is what clears the previous cell's state, nothing outlives a
worker (torn down at the end, or on SIGTERM mid-cell), and `--fresh` still runs each
cell as its own `lab run`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from lab.core.processes import is_same_process
from lab.network.build import OWNER, PROCESS_RECORD
from lab.run.programs import preload_programs
from lab.sweeps.cell_worker import Worker
from lab.sweeps.matrix import run_cell, selected_types
from lab.sweeps.workers import Options

pytestmark = pytest.mark.root

#: Cells that differ: direct host pair, relay, a symmetric side against a port-restricted
#: one (relay), and one on another topology (the worker rebuilds for it).
CELLS = [
    ("full-cone", "full-cone"),
    ("symmetric", "symmetric"),
    ("port-restricted-cone", "symmetric"),
    ("open", "open"),
]


def conntrack_count(worker: Worker, node: str) -> int:
    assert worker.built is not None
    pid = str(worker.built.network.pid_of(node))
    listed = subprocess.run(
        ["mnexec", "-a", pid, "conntrack", "-L"], capture_output=True, text=True, check=True
    )
    return len([line for line in listed.stdout.splitlines() if line.strip()])


def recorded_pids(workdir: Path) -> list[tuple[int, int]]:
    """What the network started (not its owner: the worker, here the test itself)."""
    lines = (workdir / PROCESS_RECORD).read_text().splitlines()
    entries = [entry for entry in map(json.loads, lines) if entry["what"] != OWNER]
    return [(entry["pid"], entry["start"]) for entry in entries]


def alive(pids: list[tuple[int, int]]) -> list[int]:
    return [pid for pid, start in pids if is_same_process(pid, start)]


def fresh_entries() -> dict[tuple[str, str], dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        entries = pool.map(lambda cell: run_cell(*cell, []), CELLS)
        return {(e["viewer"], e["master"]): e for e in entries}


def test_reused_cells_equal_fresh_runs_and_the_flush_clears_the_last_cells_state() -> None:
    preload_programs()
    with ThreadPoolExecutor(max_workers=1) as background:
        fresh = background.submit(fresh_entries)
        reused: dict[tuple[str, str], dict[str, Any]] = {}
        with Worker(Options()) as worker:
            reused[CELLS[0]] = worker.run_cell(*CELLS[0])
            assert worker.built is not None
            workdir, pids = worker.built.workdir, recorded_pids(worker.built.workdir)
            # The cell left tracked connections (signaling over TCP, STUN/TURN, the pair)
            # in the NATs; swapping the rulesets alone keeps them, the flush does not.
            left = conntrack_count(worker, "viewer-home")
            assert left > 0
            worker.flush = False
            worker.prepare(*CELLS[1])
            assert conntrack_count(worker, "viewer-home") > 0
            worker.flush = True
            worker.prepare(*CELLS[1])
            assert conntrack_count(worker, "viewer-home") == 0
            assert conntrack_count(worker, "master-home") == 0
            for cell in CELLS[1:]:
                reused[cell] = worker.run_cell(*cell)
            pids += recorded_pids(worker.built.workdir)
        assert alive(pids) == [] and not workdir.exists()
        by_cell = fresh.result()
    for cell in CELLS:
        entry, expected = reused[cell], by_cell[cell]
        assert entry.get("reused") and "fallback" not in entry, entry.get("fallback")
        result = entry["result"]
        assert result["outcome"] == expected["result"]["outcome"] == "connected", cell
        assert selected_types(entry) == selected_types(expected), cell
        assert result["scenario"] == expected["result"]["scenario"]
        assert result["network"] == expected["result"]["network"]
        assert result["expectations_met"] == expected["result"]["expectations_met"]
        # The cell's own TURN requests, not the previous cells': every user names it.
        users = {r["user"] for r in result["servers"]["turn"]["requests"] if r["user"]}
        assert users and all(user.endswith(result["scenario"]) for user in users), cell
    assert selected_types(reused[("open", "open")]) == ("host", "host")
    assert "relay" in selected_types(reused[("symmetric", "symmetric")])  # type: ignore[operator]


def test_a_worker_tears_everything_down_on_sigterm_mid_cell(tmp_path: Path) -> None:
    stderr = tmp_path / "worker.stderr"
    with open(stderr, "w") as errors:
        worker = subprocess.Popen(
            [sys.executable, "-m", "lab.sweeps.cell_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True,
        )  # fmt: skip
    assert worker.stdin is not None and worker.stdout is not None
    try:
        worker.stdin.write(json.dumps({"viewer": "symmetric", "master": "full-cone"}) + "\n")
        worker.stdin.flush()
        entry = json.loads(worker.stdout.readline())
        assert entry["result"]["outcome"] == "connected" and entry["reused"]
        built = re.search(r"up in (\S+)", stderr.read_text())
        assert built is not None
        workdir = Path(built[1])
        pids = recorded_pids(workdir)
        worker.stdin.write(json.dumps({"viewer": "full-cone", "master": "symmetric"}) + "\n")
        worker.stdin.flush()
        deadline = time.monotonic() + 10
        while len(recorded_pids(workdir)) == len(pids) and time.monotonic() < deadline:
            time.sleep(0.02)  # until the second cell's peers are up
        pids = recorded_pids(workdir)
        assert len(pids) > 0
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 143  # 128 + SIGTERM
    finally:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGKILL)
    assert alive(pids) == []
    assert not workdir.exists()


def test_fresh_runs_each_cell_as_its_own_lab_run(tmp_path: Path) -> None:
    path = tmp_path / "matrix.json"
    completed = subprocess.run(
        [sys.executable, "-m", "lab", "matrix", "--nat", "open", "--fresh", "--json", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    (cell,) = json.loads(path.read_text())["cells"]
    assert "reused" not in cell and cell["result"]["outcome"] == "connected"
    assert selected_types(cell) == ("host", "host")
    # A fresh run's phases: the network and servers were built for this cell alone.
    assert cell["result"]["timings"]["phases"]["servers_s"] > 0
