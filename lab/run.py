"""One run, start to end: scenario -> topology -> network -> servers -> peers ->
observations -> report. Everything it creates is torn down on success, failure,
Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from lab.call_timeline import call_section
from lab.capture.capture import require_capture_tools, start_capture
from lab.errors import LabInputError
from lab.network.build import LabNetwork
from lab.network.events import CallEventRunner
from lab.peers.agents import require_agent, require_call_support
from lab.peers.command_peer import wire_seen
from lab.peers.launch import peer_config, run_peers
from lab.peers.timing import PROFILES, for_links
from lab.preflight import require_impairment_support, require_root, require_tools
from lab.report import build_result
from lab.scenario import Scenario
from lab.servers.dns import read_answers
from lab.servers.launch import start_servers
from lab.servers.requestlog import read_requests

RUN_ROOT = Path("/run/ice-lab")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so `finally` blocks tear the lab down."""


@dataclass
class RunOptions:
    timing: str | None = None
    servers: str | None = None
    mode: str | None = None
    viewer_mode: str | None = None
    master_mode: str | None = None
    keep_workdir: bool = False
    kvs_log: bool = False
    viewer_agent: str | None = None
    master_agent: str | None = None
    reveal_host_addresses: bool = False
    #: Capture every link and trace STUN verdicts (lab/capture); `pcap_dir` keeps the pcaps.
    capture: bool = False
    pcap_dir: Path | None = None
    #: A user's program as the peer (lab/peers/command_peer.py), as argv.
    viewer_command: list[str] | None = None
    master_command: list[str] | None = None


@contextmanager
def sigterm_raises() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def run_directory(keep: bool) -> Iterator[Path]:
    """A private directory for the run's configs, certificates and logs.

    A kept directory is renamed `kept-*` when the run ends, so `lab clean` (which
    removes `run-*` directories, the debris of crashed runs) leaves it alone.
    """
    RUN_ROOT.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="run-", dir=RUN_ROOT))
    try:
        yield path
    finally:
        if keep:
            kept = path.with_name("kept-" + path.name.removeprefix("run-"))
            path.rename(kept)
            print(f"run directory kept: {kept}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


class Stopwatch:
    """Records how long each phase of a run took, for `timings.phases` in the result."""

    def __init__(self, phases: dict[str, float]) -> None:
        self.phases = phases
        self.last = time.monotonic()

    def __call__(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(now - self.last, 3)
        self.last = now


def peer_modes(scenario: Scenario, options: RunOptions) -> dict[str, str]:
    modes = {}
    for role in ("viewer", "master"):
        override = getattr(options, f"{role}_mode") or options.mode
        modes[role] = override or scenario.peers[role].mode
    return modes


def peer_agents(scenario: Scenario, options: RunOptions) -> dict[str, str]:
    """The ICE agent of each peer: the command line's, else the scenario's; checked here so
    a missing browser is bad input (exit 2) before anything is built."""
    agents = {}
    for role in ("viewer", "master"):
        override = getattr(options, f"{role}_agent")
        if getattr(options, f"{role}_command"):
            agents[role], where = "command", f"--{role}-command"
        else:
            agents[role] = override or scenario.peers[role].agent
            where = f"--{role}" if override else f"{scenario.source}: peers.{role}.agent"
            require_agent(agents[role], where)
        if scenario.call is not None:
            require_call_support(agents[role], where)
    return agents


def run_scenario(scenario: Scenario, options: RunOptions) -> dict[str, Any]:
    """Build the network, run both peers, tear everything down; return the result."""
    require_root()
    software = options.servers or (scenario.stun_turn.software if scenario.stun_turn else "none")
    if scenario.stun_turn and scenario.stun_turn.faults and software != "mock":
        raise LabInputError(
            f"{scenario.source}: servers.stun_turn.faults: fault injection needs the mock "
            "server (software: mock or --servers mock)"
        )
    require_tools(need_coturn=software == "coturn")
    require_impairment_support(scenario)
    if options.capture:
        require_capture_tools(options.pcap_dir)
    agents = peer_agents(scenario, options)
    profile = for_links(
        PROFILES[options.timing or scenario.timing], scenario.added_rtt_ms, scenario.loss_percent
    )
    started = time.monotonic()
    phases: dict[str, float] = {}
    mark = Stopwatch(phases)
    with sigterm_raises(), run_directory(options.keep_workdir) as workdir:
        with LabNetwork(scenario.topology, scenario.conditions, workdir) as network:
            mark("network_s")
            capture = start_capture(network, workdir) if options.capture else None
            servers = start_servers(network, scenario, workdir, software)
            mark("servers_s")
            modes = peer_modes(scenario, options)
            configs = {
                role: peer_config(
                    scenario,
                    servers,
                    role,
                    modes[role],
                    profile,
                    workdir,
                    options.kvs_log,
                    agents[role],
                    options.reveal_host_addresses,
                )
                for role in ("viewer", "master")
            }
            for role, config in configs.items():
                if agents[role] == "command":
                    config.extra["command"] = getattr(options, f"{role}_command")
            if capture:
                capture.ready()
            call_events = (
                CallEventRunner(network, scenario.events, workdir, servers.restart_turn)
                if scenario.call
                else None
            )
            observations = run_peers(network, configs, profile, workdir, call_events)
            mark("peers_s")
            captured = capture.stop() if capture else None
        mark("teardown_s")
        total_s = time.monotonic() - started
        turn_log = servers.logs.get("stun_turn")
        server_facts = {
            "turn": {"software": software, "requests": read_requests(software, turn_log)},
            "dns": {"answers": read_answers(workdir)},  # what each host was told, by name
        }
        for role, observed in observations.items():
            if observed.get("agent") == "command" and "command" in observed:
                turn = server_facts["turn"]["requests"]
                observed["command"]["wire"] = wire_seen(role, servers.logs.get("signaling"), turn)
        call = (
            call_section(
                scenario.events,
                call_events.log,
                call_events.call_started_at,
                observations,
                scenario.call.pauses if scenario.call else (),
            )
            if call_events is not None
            else None
        )
        result = build_result(scenario, observations, profile.name, total_s, server_facts, call)
        result["timings"]["phases"] = phases
        if captured is not None:
            from lab.capture.evidence import attach_evidence

            attach_evidence(result, captured, options.pcap_dir)
        return result
