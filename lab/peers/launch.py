"""Start the master and the viewer in their hosts and collect what each observed."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from lab.core.documents import JsonObject
from lab.core.slowdown import scaled
from lab.network.build import LabNetwork, terminate_processes
from lab.network.resolver import node_directory
from lab.peers.agents import START_UP_S
from lab.peers.config import IceServerConfig, PeerConfig
from lab.peers.forked import fork_peer
from lab.peers.signaling_url import channel_url
from lab.peers.timing import TimingProfile
from lab.scenario.scenario import Scenario
from lab.servers.credentials import rest_credentials
from lab.servers.launch import RunningServers
from lab.servers.proxy import proxy_for

VIEWER_CLIENT_ID = "ice-lab-viewer-1"
MASTER_GRACE_S = 1.0


class DuringCall(Protocol):
    """What runs beside the peers once they connect (the scenario's network events)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def ice_server_configs(
    scenario: Scenario, servers: RunningServers, role: str
) -> list[IceServerConfig]:
    """The scenario's ICE servers with credentials filled in for this peer."""
    configs = []
    for server in scenario.ice_servers:
        username = password = None
        if server.credentials == "rest":
            credentials = rest_credentials(
                servers.turn_secret, f"{role}-{scenario.name}", ttl_s=server.ttl_s
            )
            username, password = credentials.username, credentials.password
        elif isinstance(server.credentials, dict):
            username, password = server.credentials["username"], server.credentials["password"]
        configs.append(IceServerConfig(list(server.urls), username, password))
    return configs


def peer_config(
    scenario: Scenario,
    servers: RunningServers,
    role: str,
    mode: str,
    profile: TimingProfile,
    workdir: Path,
    kvs_log: bool,
    agent: str | None = None,
    reveal_host_addresses: bool = False,
) -> PeerConfig:
    """What the peer process of `role` needs; `agent` overrides the scenario's."""
    placement = scenario.peers[role]
    client_id = VIEWER_CLIENT_ID if role == "viewer" else None
    return PeerConfig(
        role=role,
        host=placement.host,
        mode=mode,
        signaling_url=channel_url(servers.signaling_url, servers.channel_arn, client_id),
        service=servers.service_access(),
        client_id=VIEWER_CLIENT_ID,
        ca_file=str(servers.ca_file),
        ice_servers=ice_server_configs(scenario, servers, role),
        timing=profile.as_dict(),
        result_path=str(workdir / f"{role}.observations.json"),
        kvs_log=kvs_log,
        agent=agent or placement.agent,
        reveal_host_addresses=reveal_host_addresses or placement.reveal_host_addresses,
        proxy_server=_proxy_url(scenario, placement.host),
        resolver_dir=_resolver_dir(workdir, placement.host),
        call=scenario.call.as_dict() if scenario.call else None,
    )


def _resolver_dir(workdir: Path, host: str) -> str | None:
    directory = node_directory(workdir, host)
    return str(directory) if directory else None


def _proxy_url(scenario: Scenario, host: str) -> str | None:
    """The proxy the host's network forces its traffic through, if any."""
    proxy = proxy_for(scenario, host)
    return proxy.url if proxy else None


def start_up_allowance_s(agent: str) -> float:
    """How long `agent` may take to start (agents.START_UP_S), on this machine."""
    return scaled(START_UP_S.get(agent, 0.0))


def start_up_s(configs: dict[str, PeerConfig]) -> float:
    """The longest start-up allowance of the run's agents."""
    return max(start_up_allowance_s(config.agent) for config in configs.values())


def introduced(configs: dict[str, PeerConfig]) -> dict[str, PeerConfig]:
    """Each peer told the other's agent; its wait for the other's description grows by
    the other agent's start-up allowance: a Firefox that is still starting is not a peer
    that never came."""
    grown = {}
    for role, config in configs.items():
        other = configs["master" if role == "viewer" else "viewer"]
        extra = start_up_allowance_s(other.agent)
        timing = config.timing | {
            "signaling_timeout_s": config.timing["signaling_timeout_s"] + extra
        }
        grown[role] = replace(config, timing=timing, other_agent=other.agent)
    return grown


def run_peers(
    network: LabNetwork,
    configs: dict[str, PeerConfig],
    profile: TimingProfile,
    workdir: Path,
    call_events: DuringCall | None = None,
) -> dict[str, JsonObject]:
    """Run both peers to the end, and the call's events while they run; return each
    peer's observations (or its error)."""
    processes: JsonObject = {}
    configs = introduced(configs)
    for role in ("master", "viewer"):
        config = configs[role]
        path = workdir / f"{role}.config.json"
        config.write(path)
        processes[role] = start_peer(network, config, path, workdir / f"{role}.log")
    call = configs["viewer"].call
    # A call adds its duration, and a check budget for the goodbye after it.
    # (and a check budget for the goodbye, and another for closing through a dead path:
    # an agent deleting its TURN allocations waits for each to time out).
    call_s = call["duration_s"] + 2 * profile.as_dict()["check_timeout_s"] + 3 if call else 0.0
    if call_events is not None:
        call_events.start()
    try:
        _wait(processes["viewer"], profile.peer_deadline_s + call_s + start_up_s(configs))
        # A user's program as the viewer ends when it likes; the master may still be
        # driving its pairs to a verdict: give it its check budget to write them.
        grace = scaled(MASTER_GRACE_S)
        if configs["viewer"].agent == "command":
            grace += profile.as_dict()["check_timeout_s"]
        _wait(processes["master"], grace)
    finally:
        if call_events is not None:
            call_events.stop()
    return {role: _observations(configs[role], workdir) for role in processes}


def start_peer(network: LabNetwork, config: PeerConfig, path: Path, log: Path) -> Any:
    """Fork the peer from the zygote (aiortc already imported) into its node."""
    process = fork_peer(network.pid_of(config.host), log, path)
    network.adopt(process)
    return process


def _wait(process: Any, timeout: float) -> None:
    """Wait for a peer; SIGTERM lets it write what it saw, SIGKILL if it will not."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        terminate_processes([process], grace=2.0)


def _observations(config: PeerConfig, workdir: Path) -> JsonObject:
    path = Path(config.result_path)
    if path.exists():
        return json.loads(path.read_text())
    log = workdir / f"{config.role}.log"
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
    return {
        "role": config.role,
        "host": config.host,
        "mode": config.mode,
        "candidates": [],
        "pairs": [],
        "selected": None,
        "error": f"peer process wrote no observations ({tail[0] if tail else 'no log'})",
        "finished_at": time.time(),
    }
