"""One run, start to end: scenario -> topology -> network -> servers -> peers ->
observations -> report. Everything it creates is torn down on success, failure,
Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.core.errors import LabInputError
from lab.core.lifecycle import Stopwatch, run_directory, sigterm_raises
from lab.network.build import LabNetwork
from lab.observations.call_timeline import call_section
from lab.observations.capture.capture import require_capture_tools, start_capture
from lab.peers.agents import require_agent, require_call_support
from lab.peers.command_peer import wire_seen
from lab.peers.launch import peer_config, run_peers
from lab.peers.timing import PROFILES, for_links
from lab.report.result import build_result
from lab.run.events import CallEventRunner
from lab.run.preflight import require_impairment_support, require_root, require_tools
from lab.scenario.scenario import Scenario
from lab.servers.dns import read_answers
from lab.servers.launch import start_servers
from lab.servers.requestlog import read_requests


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
    #: Capture every link and trace STUN verdicts (observations/capture); `pcap_dir` keeps pcaps.
    capture: bool = False
    pcap_dir: Path | None = None
    #: A user's program as the peer (lab/peers/command_peer.py), as argv.
    viewer_command: list[str] | None = None
    master_command: list[str] | None = None


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
            from lab.observations.capture.evidence import attach_evidence

            attach_evidence(result, captured, options.pcap_dir)
        return result
