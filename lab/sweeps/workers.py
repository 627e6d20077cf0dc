"""Fast sweeps: one network per worker, reused from cell to cell of `lab matrix`.

A fresh cell (`lab matrix --fresh`) is a whole `lab run`: a Python process, the network,
coturn, the signaling service, the peers, the tear-down. Cells of one matrix whose
topology is the same differ only in their NAT and firewall rulesets, so a worker keeps
one network and its servers up and, between cells:

- loads each node's ruleset for the new cell (`flush ruleset` and the ruleset a fresh
  build renders, `render_node_setup`, in one `nft -f` transaction), with its conntrack
  sysctls;
- flushes conntrack in every namespace (`conntrack -F`): NAT bindings and "established"
  verdicts of the previous cell's flows would otherwise outlive its rulesets;
- waits until coturn holds no allocation and the signaling service no client or message
  held for an absent master, from the previous cell, and rebuilds if they still do after
  a few seconds (each cell's peers also get fresh TURN credentials: the REST username
  names the cell's scenario and a new expiry);
- runs the peers (forked from the zygote, the same launch path as `lab run`) and builds
  the cell's result exactly as `lab run` does, with the slice of the servers' logs the
  cell wrote.

A cell whose topology differs from the worker's network rebuilds the network and
servers first; a cell the worker cannot prepare (or a row that starts servers of its
own: the proxy rows) is run fresh by the caller, which says so in the cell.

Run as a worker process: `python -m lab.sweeps.workers [--servers S] [--timing T] [--viewer A]
[--master A]`, one JSON cell (`{"viewer": ..., "master": ...}`) per line on stdin, one
JSON entry per line on stdout. SIGTERM, Ctrl-C or the end of stdin tear it all down.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lab.sweeps.matrix_cells import PROXY_ROWS, cell_documents, write_cell_documents

#: How long the servers may take to let go of the previous cell's peers.
SERVER_IDLE_TIMEOUT_S = 3.0
PR_SET_PDEATHSIG = 1
#: The fewest cells worth a network build of their own.
MIN_CHUNK = 4


class PrepareError(Exception):
    """The worker could not make its network ready for a cell: run that cell fresh."""


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


COTURN_SESSION = re.compile(
    r"session (?P<session>\d+): "
    r"(?P<event>new,|delete:|closed \(2nd stage\)|refreshed,.*lifetime=0\b)"
)


def live_turn_sessions(log_text: str) -> set[str]:
    """coturn sessions (allocations) the log shows created and not yet released."""
    live: set[str] = set()
    for match in COTURN_SESSION.finditer(log_text):
        if match["event"] == "new,":
            live.add(match["session"])
        else:
            live.discard(match["session"])
    return live


def signaling_leftovers(log_lines: Iterable[str]) -> list[str]:
    """What the signaling service still holds from the events logged: clients connected,
    and viewer messages held for a master that never came (the next master would get them)."""
    connected: dict[str, int] = {}
    held = 0
    for line in log_lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written
        who = f"{event.get('role')} {event.get('client_id') or ''}".strip()
        if event.get("event") == "connect":
            connected[who] = connected.get(who, 0) + 1
            if event.get("role") == "master":
                held = 0  # delivered to the master that just connected
        elif event.get("event") == "disconnect":
            connected[who] = connected.get(who, 0) - 1
        elif event.get("event") == "message" and event.get("held"):
            held += 1
    left = [f"{who} connected" for who, count in connected.items() if count > 0]
    return left + ([f"{held} message(s) held for an absent master"] if held else [])


def cell_ruleset(ruleset: str) -> str:
    """A node's ruleset for the next cell: the old tables go (with their dynamic NAT maps)
    and the new ones load in the same transaction, so no packet meets half of either."""
    return "flush ruleset\n" + ruleset


#: Forget every tracked connection (quiet unless it fails).
FLUSH_CONNTRACK = "conntrack -F 2>/dev/null || conntrack -F"


def reload_script(ruleset_path: Path, after_ruleset: Sequence[str], flush: bool = True) -> str:
    """The shell script that gives a node the next cell's ruleset (`cell_ruleset`) and
    sysctls, then forgets every tracked connection of the previous cell."""
    lines = ["set -e", f"nft -f {ruleset_path}", *after_ruleset]
    return "\n".join([*lines, FLUSH_CONNTRACK] if flush else lines)


# -- the worker ---------------------------------------------------------------------------


@dataclass
class Options:
    """What every cell of the sweep shares: `lab matrix`'s options."""

    servers: str | None = None
    timing: str | None = None
    viewer: str | None = None
    master: str | None = None


@dataclass
class _Built:
    """The worker's network, its servers and where their logs stand."""

    key: str
    stack: ExitStack
    workdir: Path
    network: Any
    servers: Any
    software: str
    offsets: dict[str, int] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)
    cells: int = 0


class Worker:
    """Runs cells one after another on one network, rebuilt only when the topology changes.
    Use as a context manager: everything it built is torn down on exit."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.built: _Built | None = None
        self.cell_number = 0
        self.flush = True  # tests turn it off to show what a flush removes

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Tear down the network and servers (processes by pid, then the namespaces)."""
        built, self.built = self.built, None
        if built is not None:
            built.stack.close()

    def run_cell(self, viewer: str, master: str) -> dict[str, Any]:
        """One cell on the worker's network: the matrix entry with the cell's result, or
        with `fallback` (why the caller should run it fresh)."""
        entry: dict[str, Any] = {"viewer": viewer, "master": master, "result": None}
        started = time.monotonic()
        try:
            scenario = self.prepare(viewer, master)
        except PrepareError as exc:
            self.close()  # whatever state it is in, the next cell starts from scratch
            entry["fallback"] = str(exc)
            return entry
        phases = {"network_s": round(time.monotonic() - started, 3)}
        entry["result"] = self._run_peers(scenario, started, phases)
        entry["reused"] = True
        return entry

    def prepare(self, viewer: str, master: str) -> Any:
        """The cell's scenario, with the network and servers ready for it."""
        from lab.core.errors import LabError

        reason = not_reusable(viewer, master)
        if reason:
            raise PrepareError(reason)
        key = topology_key(viewer, master)
        try:
            scenario = self._scenario(viewer, master)
            if self.built is not None and (
                self.built.key != key
                or not _intact(self.built)
                or not self._servers_idle(self.built)
            ):
                self.close()
            if self.built is None:
                self.built = self._build(key, scenario)
                return scenario
            self._reload(self.built, scenario)
            return scenario
        except (LabError, OSError, subprocess.SubprocessError) as exc:
            raise PrepareError(f"preparing the reused network failed: {exc}") from exc

    def _scenario(self, viewer: str, master: str) -> Any:
        """The cell's scenario, loaded from its documents as `lab run` loads them."""
        from lab.scenario.scenario import load_scenario

        self.cell_number += 1
        with tempfile.TemporaryDirectory(prefix="ice-lab-cell-") as directory:
            return load_scenario(str(write_cell_documents(viewer, master, Path(directory))))

    def _build(self, key: str, scenario: Any) -> _Built:
        """A fresh network and servers for the cell's topology, as `lab run` builds them."""
        from lab.core.lifecycle import run_directory
        from lab.network.build import LabNetwork
        from lab.run.preflight import require_impairment_support, require_tools
        from lab.servers.launch import start_servers

        software = self.options.servers or (
            scenario.stun_turn.software if scenario.stun_turn else "none"
        )
        require_tools(need_coturn=software == "coturn")
        require_impairment_support(scenario)
        stack = ExitStack()
        try:
            workdir = stack.enter_context(run_directory(keep=False))
            network = stack.enter_context(
                LabNetwork(scenario.topology, scenario.conditions, workdir)
            )
            servers = start_servers(network, scenario, workdir, software)
        except BaseException:
            stack.close()
            raise
        print(f"sweep worker {os.getpid()}: network and servers up in {workdir}", file=sys.stderr)
        built = _Built(key, stack, workdir, network, servers, software)
        built.conditions = dict(scenario.conditions)
        built.offsets = _log_sizes(servers.logs)
        return built

    def _servers_idle(self, built: _Built) -> bool:
        """Whether coturn holds no allocation and the signaling service nothing of the
        cells before, within SERVER_IDLE_TIMEOUT_S. If not (a peer that died without
        releasing its allocation), the worker rebuilds: a stale allocation could answer
        the next cell's 5-tuple, a held message reach its master."""
        deadline = time.monotonic() + SERVER_IDLE_TIMEOUT_S
        while left := self._leftovers(built):
            if time.monotonic() > deadline:
                print(f"sweep worker {os.getpid()}: rebuilding, the servers still hold the "
                      f"previous cell's {left[0]}", file=sys.stderr)  # fmt: skip
                return False
            time.sleep(0.02)
        return True

    @staticmethod
    def _leftovers(built: _Built) -> list[str]:
        logs = built.servers.logs
        left = []
        if built.software == "coturn" and logs.get("stun_turn"):
            text = _read(logs["stun_turn"])
            sessions = live_turn_sessions(text)
            left += [f"TURN allocation (session {s})" for s in sorted(sessions)]
        if logs.get("signaling"):
            left += signaling_leftovers(_read(logs["signaling"]).splitlines())
        return left

    def _reload(self, built: _Built, scenario: Any) -> None:
        """Every node gets the cell's ruleset and sysctls, and forgets its connections."""
        from lab.network.build import render_node_setup
        from lab.network.impairments import arrival_losses

        if any(c.impairments for c in scenario.conditions.values()):
            raise PrepareError("impaired links need their delay lines built per run")
        losses = arrival_losses(scenario.topology, {})
        running = {}
        for name, node in scenario.topology.nodes.items():
            before = render_node_setup(node, built.conditions.get(name), losses.get(name, ()))
            setup = render_node_setup(node, scenario.conditions.get(name), losses.get(name, ()))
            if before.after_ruleset and not setup.after_ruleset:
                raise PrepareError(f"{name}: no NAT any more, and its sysctls stay changed")
            path = built.workdir / f"{name}.cell.nft"
            path.write_text(cell_ruleset(setup.ruleset))
            script = reload_script(path, setup.after_ruleset, self.flush)
            pid = str(built.network.pid_of(name))
            running[name] = subprocess.Popen(
                ["mnexec", "-a", pid, "sh", "-c", script],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        for name, process in running.items():
            _, stderr = process.communicate(timeout=20)
            if process.returncode != 0:
                raise PrepareError(f"reloading node '{name}' failed: {stderr.decode().strip()}")
        built.conditions = dict(scenario.conditions)

    def _run_peers(self, scenario: Any, started: float, phases: dict[str, float]) -> dict[str, Any]:
        """Both peers, then the result exactly as `lab run` builds it."""
        from lab.core.lifecycle import Stopwatch
        from lab.peers.launch import peer_config, run_peers
        from lab.peers.timing import PROFILES, for_links
        from lab.report.result import build_result
        from lab.run.pipeline import RunOptions, peer_agents, peer_modes
        from lab.servers.requestlog import read_requests

        assert self.built is not None
        built = self.built
        options = RunOptions(
            timing=self.options.timing,
            servers=self.options.servers,
            viewer_agent=self.options.viewer,
            master_agent=self.options.master,
        )
        agents = peer_agents(scenario, options)
        profile = for_links(
            PROFILES[options.timing or scenario.timing],
            scenario.added_rtt_ms,
            scenario.loss_percent,
        )
        mark = Stopwatch(phases)
        mark.last = time.monotonic()
        phases["servers_s"] = 0.0
        for role in ("viewer", "master"):  # a peer that writes nothing must not leave the last
            for suffix in ("observations.json", "config.json", "log"):
                (built.workdir / f"{role}.{suffix}").unlink(missing_ok=True)
        modes = peer_modes(scenario, options)
        configs = {
            role: peer_config(
                scenario, built.servers, role, modes[role], profile, built.workdir, False,
                agents[role], False,
            )
            for role in ("viewer", "master")
        }  # fmt: skip
        observations = run_peers(built.network, configs, profile, built.workdir)
        mark("peers_s")
        phases["teardown_s"] = 0.0
        turn_log = _log_slice(built, "stun_turn", f"cell-{self.cell_number}")
        built.offsets = _log_sizes(built.servers.logs)
        built.cells += 1
        facts = {
            "turn": {
                "software": built.software,
                "requests": read_requests(built.software, turn_log),
            }
        }
        total_s = time.monotonic() - started
        result = build_result(scenario, observations, profile.name, total_s, facts)
        result["timings"]["phases"] = phases
        return result


def _intact(built: _Built) -> bool:
    """Whether the network and servers are all still there (`lab clean` elsewhere on the
    machine kills every lab namespace and removes run directories)."""
    network = built.network
    servers = [p for p in network.processes if isinstance(p, subprocess.Popen)]
    shells = [host.shell for host in network.hosts.values()]
    return (
        built.workdir.is_dir()
        and all(p.poll() is None for p in servers)
        and all(shell is not None and shell.poll() is None for shell in shells)
    )


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _log_sizes(logs: dict[str, Path]) -> dict[str, int]:
    return {name: path.stat().st_size if path.exists() else 0 for name, path in logs.items()}


def _log_slice(built: _Built, name: str, tag: str) -> Path | None:
    """What a server logged during this cell, as a file of its own (the same parser then
    reads it as it reads a fresh run's whole log)."""
    path = built.servers.logs.get(name)
    if path is None or not path.exists():
        return None
    with open(path, "rb") as log:
        log.seek(built.offsets.get(name, 0))
        text = log.read()
    piece = built.workdir / f"{tag}.{path.name}"
    piece.write_bytes(text)
    return piece


# -- the caller's side: worker processes, chunks of cells ---------------------------------


class WorkerProcess:
    """One `python -m lab.sweeps.workers` process, started on its first cell; cells go one at a time
    over its stdin and stdout."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.process: subprocess.Popen[str] | None = None
        self.stderr: Any = None

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "lab.sweeps.workers"]
        for name in ("servers", "timing", "viewer", "master"):
            value = getattr(self.options, name)
            args += [f"--{name}", value] if value else []
        return args

    def run(self, viewer: str, master: str) -> dict[str, Any]:
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
        fresh: Callable[[str, str], dict[str, Any]],
        started: Callable[[], None],
        finished: Callable[[dict[str, Any]], None],
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

    def _cell(self, worker: WorkerProcess, viewer: str, master: str) -> dict[str, Any]:
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


# -- the worker process -------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab.sweeps.workers", description=__doc__)
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
    import lab.peers.agents
    import lab.peers.launch
    import lab.report.result
    import lab.run.pipeline
    import lab.scenario.scenario  # noqa: F401

    with contextlib.suppress(ImportError):  # the per-node resolver, where the lab has one
        importlib.import_module("lab.network.resolver")


def main(argv: Sequence[str] | None = None) -> int:
    from lab.core.lifecycle import Terminated, sigterm_raises
    from lab.peers.forked import preload_peer_code
    from lab.run.preflight import require_root

    args = parse_args(argv)
    _die_with_parent()
    require_root()
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints stay off the protocol
    _import_before_fork()
    preload_peer_code()
    options = Options(args.servers, args.timing, args.viewer, args.master)
    try:
        with sigterm_raises(), Worker(options) as worker:
            serve(worker, sys.stdin, replies)
    except (KeyboardInterrupt, Terminated):
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
