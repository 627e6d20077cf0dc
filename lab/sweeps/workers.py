"""Fast sweeps, the caller's side: `lab matrix` cells in chunks over worker processes,
one network per worker, reused from cell to cell.

A fresh cell (`lab matrix --fresh`) is a whole `lab run`: a Python process, the network,
coturn, the signaling service, the peers, the tear-down. Cells of one matrix whose
topology is the same differ only in their NAT and firewall rulesets, so each worker
(lab/sweeps/cell_worker.py) keeps one site up and runs its cells through the run
pipeline on it (lab/run/sites.py ReusedSites): between cells each node gets the new
cell's ruleset and sysctls in one transaction, conntrack is flushed in every namespace,
and the servers must have let go of the previous cell's peers (or the site is rebuilt);
each cell's peers get fresh TURN credentials naming the cell's scenario.

Cells go to workers in chunks of one topology (`plan_chunks`); a cell a worker cannot
serve (or a row that starts servers of its own: the proxy rows) is run fresh by the
caller, which says so in the cell.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lab.core.documents import JsonObject
from lab.sweeps.matrix_cells import PROXY_ROWS, cell_documents

#: The fewest cells worth a network build of their own.
MIN_CHUNK = 4


# -- pure parts: which cells share a network, what the servers still hold ----------------


def not_reusable(viewer: str, master: str) -> str | None:
    """Why a cell cannot run on a reused network (None: it can)."""
    for role, row in (("viewer", viewer), ("master", master)):
        if row in PROXY_ROWS:
            return f"the {role}'s {row} row starts its own proxy server per run"
    return None


def topology_key(viewer: str, master: str) -> str:
    """Cells with the same key have the same topology document: one network serves them."""
    topology, _ = cell_documents(viewer, master)
    return json.dumps(topology, sort_keys=True)


def plan_chunks(combos: Sequence[tuple[str, str]], jobs: int) -> list[list[tuple[str, str]]]:
    """The cells in chunks, each run by one worker on one network, largest first.

    Cells of one topology go together (one network build each); a topology with more
    cells than a fair share (`cells / jobs`, at least MIN_CHUNK: a build costs about as
    much as two cells) is split so every worker has work.
    """
    groups: dict[str, list[tuple[str, str]]] = {}
    for combo in combos:
        groups.setdefault(topology_key(*combo), []).append(combo)
    share = max(MIN_CHUNK, -(-len(combos) // max(jobs, 1)))
    chunks = []
    for cells in groups.values():
        parts = -(-len(cells) // share)
        size = -(-len(cells) // parts)
        chunks += [cells[i : i + size] for i in range(0, len(cells), size)]
    return sorted(chunks, key=len, reverse=True)


# -- the worker ---------------------------------------------------------------------------


@dataclass
class Options:
    """What every cell of the sweep shares: `lab matrix`'s options."""

    servers: str | None = None
    timing: str | None = None
    viewer: str | None = None
    master: str | None = None


class WorkerProcess:
    """One `python -m lab.sweeps.cell_worker` process, started on its first cell; cells go
    one at a time over its stdin and stdout."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.process: subprocess.Popen[str] | None = None
        self.stderr: Any = None

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "lab.sweeps.cell_worker"]
        for name in ("servers", "timing", "viewer", "master"):
            value = getattr(self.options, name)
            args += [f"--{name}", value] if value else []
        return args

    def run(self, viewer: str, master: str) -> JsonObject:
        """The worker's entry for the cell; `fallback` says why if the worker could not."""
        if self.process is None or self.process.poll() is not None:
            self.stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in close())
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self.stderr, text=True,
            )  # fmt: skip
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps({"viewer": viewer, "master": master}) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except OSError:
            line = ""
        if line:
            return json.loads(line)
        return {"viewer": viewer, "master": master, "result": None, "fallback": self._died()}

    def _died(self) -> str:
        assert self.process is not None
        status = self.process.wait()
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().splitlines() if line.strip()]
        return f"the worker ended ({status}): {lines[-1] if lines else 'no output'}"

    def terminate(self) -> None:
        """SIGTERM: the worker tears its network and servers down."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def close(self, timeout: float = 60) -> None:
        """End of cells: the worker tears down and exits (SIGTERM, then SIGKILL, if not)."""
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()  # its namespaces are then `lab clean`'s
                self.process.wait()
        if self.stderr is not None:
            self.stderr.close()


class ReusedSweep:
    """Cells on `jobs` workers, each running whole chunks (`plan_chunks`) on one network.
    A cell the worker cannot run is run fresh by `fresh(viewer, master)`, and says why."""

    def __init__(
        self,
        options: Options,
        jobs: int,
        fresh: Callable[[str, str], JsonObject],
        started: Callable[[], None],
        finished: Callable[[JsonObject], None],
    ) -> None:
        self.options = options
        self.jobs = jobs
        self.fresh = fresh
        self.started = started
        self.finished = finished
        self.workers = [WorkerProcess(options) for _ in range(jobs)]
        self.chunks: list[list[tuple[str, str]]] = []
        self.lock = threading.Lock()
        self.stopping = False

    def run(self, combos: Sequence[tuple[str, str]]) -> None:
        """Every cell, `jobs` at once; `finished` is called with each entry as it ends."""
        self.chunks = plan_chunks(combos, self.jobs)
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(self._loop, worker) for worker in self.workers]
            try:
                for future in futures:
                    future.result()
            except KeyboardInterrupt:  # Ctrl-C reached the workers too: they tear down
                self.stopping = True
                raise
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        """Interrupted: no new cell starts, every worker tears down."""
        self.stopping = True
        for worker in self.workers:
            worker.terminate()

    def _next(self) -> list[tuple[str, str]] | None:
        with self.lock:
            return None if self.stopping or not self.chunks else self.chunks.pop(0)

    def _loop(self, worker: WorkerProcess) -> None:
        try:
            while (chunk := self._next()) is not None:
                for viewer, master in chunk:
                    if self.stopping:
                        return
                    self.started()
                    entry = self._cell(worker, viewer, master)
                    if self.stopping:  # interrupted mid-cell: no verdict on a torn-down cell
                        return
                    self.finished(entry)
        finally:
            worker.close()

    def _cell(self, worker: WorkerProcess, viewer: str, master: str) -> JsonObject:
        reason = not_reusable(viewer, master)
        entry = None if reason else worker.run(viewer, master)
        if entry is not None and "fallback" not in entry:
            return entry
        reason = reason or (entry or {}).get("fallback")
        if self.stopping:
            return entry or {"viewer": viewer, "master": master, "result": None}
        entry = self.fresh(viewer, master)
        entry["fresh"] = reason
        return entry
