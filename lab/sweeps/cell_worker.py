"""One `lab matrix` worker process: cells through the run pipeline on one kept site.

`python -m lab.sweeps.cell_worker [--servers S] [--timing T] [--viewer A] [--master A]`
reads one JSON cell (`{"viewer": ..., "master": ...}`) per line on stdin and writes one
JSON entry per line on stdout. Each cell runs through lab/run/pipeline.py on a site that
lab/run/sites.py keeps from cell to cell while the topology stays the same; a cell the
kept site cannot serve comes back with `fallback` (why), and the caller
(lab/sweeps/workers.py) runs it fresh. SIGTERM, Ctrl-C or the end of stdin tear it all
down.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from lab.core.documents import JsonObject
from lab.core.errors import LabError
from lab.core.lifecycle import Stopwatch, Terminated, interrupted_status, sigterm_raises
from lab.run.pipeline import run_scenario
from lab.run.plan import RunOptions, prepare
from lab.run.preflight import require_root
from lab.run.programs import preload_programs
from lab.run.sites import Kept, ReusedSites, ReuseRefused
from lab.scenario.scenario import Scenario, load_scenario
from lab.sweeps.matrix_cells import write_cell_documents
from lab.sweeps.workers import Options

PR_SET_PDEATHSIG = 1


class Worker:
    """Runs cells one after another through the run pipeline on one kept site, rebuilt
    only when the topology changes. Use as a context manager: everything it built is torn
    down on exit."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.sites = ReusedSites()
        self.cell_number = 0

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def built(self) -> Kept | None:
        """The kept site (its network, servers and run directory), if one is up."""
        return self.sites.kept

    @property
    def flush(self) -> bool:
        return self.sites.flush

    @flush.setter
    def flush(self, value: bool) -> None:
        self.sites.flush = value

    def close(self) -> None:
        """Tear down the network and servers (processes by pid, then the namespaces)."""
        self.sites.close()

    def run_cell(self, viewer: str, master: str) -> JsonObject:
        """One cell on the kept site: the matrix entry with the cell's result, or with
        `fallback` (why the caller should run it fresh)."""
        entry: JsonObject = {"viewer": viewer, "master": master, "result": None}
        try:
            result = run_scenario(self._scenario(viewer, master), self.run_options(), self.sites)
            entry["result"] = result.to_json()  # an entry is a line of JSON to `lab matrix`
        except ReuseRefused as exc:
            entry["fallback"] = str(exc)
            return entry
        except (LabError, OSError, subprocess.SubprocessError) as exc:
            self.close()  # whatever state it is in, the next cell starts from scratch
            entry["fallback"] = f"preparing the reused network failed: {exc}"
            return entry
        entry["reused"] = True
        return entry

    def prepare(self, viewer: str, master: str) -> Kept:
        """The kept site, made ready for the cell (the build stage alone)."""
        plan = prepare(self._scenario(viewer, master), self.run_options())
        return self.sites.ready_for(plan, Stopwatch({}))

    def run_options(self) -> RunOptions:
        """What `lab run` would be given for a cell of this matrix."""
        return RunOptions(
            timing=self.options.timing,
            servers=self.options.servers,
            viewer_agent=self.options.viewer,
            master_agent=self.options.master,
        )

    def _scenario(self, viewer: str, master: str) -> Scenario:
        """The cell's scenario, loaded from its documents as `lab run` loads them."""
        self.cell_number += 1
        with tempfile.TemporaryDirectory(prefix="ice-lab-cell-") as directory:
            return load_scenario(str(write_cell_documents(viewer, master, Path(directory))))


# -- the caller's side: worker processes, chunks of cells ---------------------------------


# -- the worker process -------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab.sweeps.cell_worker", description=__doc__)
    for name in ("servers", "timing", "viewer", "master"):
        parser.add_argument(f"--{name}")
    return parser.parse_args(argv)


def serve(worker: Worker, requests: TextIO, replies: TextIO) -> None:
    """One entry on `replies` for each cell on `requests`, until the end of `requests`."""
    for line in iter(requests.readline, ""):
        cell = json.loads(line)
        try:
            entry = worker.run_cell(cell["viewer"], cell["master"])
        except Exception as exc:  # noqa: BLE001 (the caller runs the cell fresh, naming why)
            worker.close()
            entry = {"viewer": cell["viewer"], "master": cell["master"], "result": None}
            entry["fallback"] = f"the reused network failed: {type(exc).__name__}: {exc}"
        replies.write(json.dumps(entry) + "\n")
        replies.flush()


def _die_with_parent() -> None:
    """SIGTERM when `lab matrix` dies, so an orphaned worker still tears down."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _import_before_fork() -> None:
    """Import what cells and peers need before the zygote forks: every peer forked from
    it then finds it loaded (a peer importing jsonschema for the resolver's topology
    types itself spends about 0.2 s of CPU, a third of a cell's)."""
    # Lazy: imported before the zygote forks, on purpose (see the docstring).
    import lab.peers.agents
    import lab.peers.launch
    import lab.report.result
    import lab.run.pipeline
    import lab.scenario.scenario  # noqa: F401

    with contextlib.suppress(ImportError):  # the per-node resolver, where the lab has one
        importlib.import_module("lab.network.resolver")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _die_with_parent()
    require_root()
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints stay off the protocol
    _import_before_fork()
    preload_programs()
    options = Options(args.servers, args.timing, args.viewer, args.master)
    try:
        with sigterm_raises(), Worker(options) as worker:
            serve(worker, sys.stdin, replies)
    except (KeyboardInterrupt, Terminated) as interruption:
        return interrupted_status(interruption)
    return 0


if __name__ == "__main__":
    sys.exit(main())
