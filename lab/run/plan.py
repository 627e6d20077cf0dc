"""The first stage of a run: the options given, checked against the scenario and the
machine before anything is built, become the plan every later stage follows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.core import slowdown
from lab.core.errors import LabInputError
from lab.observations.capture.capture import require_capture_tools
from lab.peers.agents import require_agent, require_call_support
from lab.peers.timing import PROFILES, TimingProfile, for_host, for_links
from lab.run.preflight import require_impairment_support, require_root, require_tools
from lab.scenario.scenario import ROLES, Scenario


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


@dataclass(frozen=True)
class Plan:
    """A run decided and checked, before anything is built."""

    scenario: Scenario
    options: RunOptions
    software: str  # the STUN/TURN server: coturn, mock or none
    agents: dict[str, str]
    modes: dict[str, str]
    profile: TimingProfile


def prepare(scenario: Scenario, options: RunOptions, with_peers: bool = True) -> Plan:
    """Check everything a run needs before it builds anything (bad input: exit 2);
    `with_peers=False` for a network without peers (`lab up`): no agent is checked."""
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
    agents = peer_agents(scenario, options) if with_peers else {}
    profile = for_links(
        PROFILES[options.timing or scenario.timing], scenario.added_rtt_ms, scenario.loss_percent
    )
    profile = for_host(profile, slowdown.factor())
    return Plan(scenario, options, software, agents, peer_modes(scenario, options), profile)


def peer_modes(scenario: Scenario, options: RunOptions) -> dict[str, str]:
    modes = {}
    for role in ROLES:
        override = getattr(options, f"{role}_mode") or options.mode
        modes[role] = override or scenario.peers[role].mode
    return modes


def peer_agents(scenario: Scenario, options: RunOptions) -> dict[str, str]:
    """The ICE agent of each peer: the command line's, else the scenario's; checked here so
    a missing browser is bad input (exit 2) before anything is built."""
    agents = {}
    for role in ROLES:
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
