"""VPN tunnels: a host whose traffic a real WireGuard tunnel carries to a concentrator,
which NATs it out to the internet (the scenario gives the concentrator its NAT type).

The machine's kernel has no WireGuard module, so each end is `wireguard-go` (userspace
WireGuard on a TUN device) started inside its node's namespace, configured with `wg`,
with keys made per run. wireguard-go's control socket lives in /var/run/wireguard/,
which every namespace shares: tunnel interfaces get run-unique names (TUNNEL_PREFIX, a
random token), each process is recorded and killed by pid like any other the lab
starts, and its socket is removed at tear-down; `lab clean` removes the sockets of
killed runs (no process answers on them any more).

The client's WireGuard UDP leaves through its physical uplink (a host route to the
concentrator via its gateway, through the home NAT); its default route (or only the
`routes` of a split tunnel) is the tunnel, as `wg-quick` sets it up.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lab.core.errors import LabRunError
from lab.core.slowdown import scaled
from lab.network.topology import Topology
from lab.network.tunnels import WIREGUARD_PORT, Tunnel

#: wireguard-go's control sockets (shared by every namespace of the machine).
SOCKET_DIR = Path("/var/run/wireguard")
#: Tunnel interfaces the lab creates are named TUNNEL_PREFIX + token + index + end, so
#: their sockets are the lab's and no one else's.
TUNNEL_PREFIX = "icewg"

#: How long wireguard-go may take to open its control socket, and the tunnel to carry
#: its first packet, before the build fails.
START_S = 5.0
HANDSHAKE_TRIES = 4


# -- one run's tunnels -------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedTunnel:
    """A tunnel with its run-unique interface names (one per end)."""

    tunnel: Tunnel
    client_interface: str
    server_interface: str


def plan_tunnels(tunnels: Sequence[Tunnel], token: str | None = None) -> list[PlannedTunnel]:
    """Interface names unique to this run: wireguard-go's sockets share one directory."""
    token = token or secrets.token_hex(3)
    return [
        PlannedTunnel(t, f"{TUNNEL_PREFIX}{token}{n}c", f"{TUNNEL_PREFIX}{token}{n}s")
        for n, t in enumerate(tunnels)
    ]


def concentrated_interfaces(node: str, tunnels: Sequence[PlannedTunnel]) -> list[str]:
    """The tunnel interfaces `node` concentrates: inside interfaces of its NAT."""
    return [p.server_interface for p in tunnels if p.tunnel.server == node]


def concentrator_ports(node: str, tunnels: Sequence[PlannedTunnel]) -> list[int]:
    """The UDP port `node`'s NAT must let in from the internet: WireGuard's."""
    return [WIREGUARD_PORT] if concentrated_interfaces(node, tunnels) else []


def server_commands(planned: PlannedTunnel, key: Path, client_public_key: str) -> list[str]:
    """Configure the concentrator's end (pure): it accepts the client's tunnel address."""
    t, name = planned.tunnel, planned.server_interface
    return [
        f"wg set {name} listen-port {WIREGUARD_PORT} private-key {key} "
        f"peer {client_public_key} allowed-ips {t.client_address.ip}/32",
        f"ip addr add {t.server_address} dev {name}",
        f"ip link set {name} mtu {t.mtu} up",
    ]


def client_commands(
    planned: PlannedTunnel, key: Path, server_public_key: str, gateway: ipaddress.IPv4Address
) -> list[str]:
    """Configure the client's end (pure): the concentrator stays reachable through the
    physical uplink, and the tunnel takes the default route (or the split routes)."""
    t, name = planned.tunnel, planned.client_interface
    allowed = ",".join(str(r) for r in _allowed_ips(t))
    commands = [
        f"wg set {name} private-key {key} peer {server_public_key} "
        f"endpoint {t.endpoint}:{WIREGUARD_PORT} allowed-ips {allowed} persistent-keepalive 25",
        f"ip addr add {t.client_address} dev {name}",
        f"ip link set {name} mtu {t.mtu} up",
        f"ip route add {t.endpoint}/32 via {gateway}",
    ]
    commands += [f"ip route replace {route} dev {name}" for route in t.routes]
    return commands


def _allowed_ips(tunnel: Tunnel) -> list[ipaddress.IPv4Network]:
    """What the client accepts from and sends to the server: its routes, and the server's
    tunnel address (a split tunnel's routes need not hold it)."""
    server = ipaddress.IPv4Network(tunnel.server_address.ip)
    routes = list(tunnel.routes)
    return routes if any(server.subnet_of(r) for r in routes) else [*routes, server]


class Network(Protocol):
    """What starting tunnels needs of a LabNetwork."""

    workdir: Path

    def popen(
        self, node: str, args: Iterable[str], **kwargs: object
    ) -> subprocess.Popen[bytes]: ...

    def run(
        self, node: str, args: Iterable[str], timeout: float = 30, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]: ...

    def run_script(self, node: str, commands: Sequence[str], what: str) -> None: ...


def start_tunnels(
    network: Network, tunnels: Sequence[PlannedTunnel], topology: Topology
) -> list[subprocess.Popen[bytes]]:
    """Start and configure every tunnel, and check each carries a packet; returns the
    wireguard-go processes (the network tears them down with its others)."""
    processes = []
    for planned in tunnels:
        t = planned.tunnel
        ends = ((t.server, planned.server_interface), (t.client, planned.client_interface))
        for node, interface in ends:
            processes.append(_start_wireguard(network, node, interface))
        server_key, server_public = _key_pair(network.workdir, planned.server_interface)
        client_key, client_public = _key_pair(network.workdir, planned.client_interface)
        # The server first: the client's first handshake must find it ready.
        _configure(network, t.server, server_commands(planned, server_key, client_public))
        gateway = topology.node(t.client).gateway
        assert gateway is not None  # checked when the topology was loaded
        commands = client_commands(planned, client_key, server_public, gateway)
        _configure(network, t.client, commands)
        _check_carries(network, planned)
    return processes


def _start_wireguard(network: Network, node: str, interface: str) -> subprocess.Popen[bytes]:
    """wireguard-go in the foreground (so its pid is the tunnel's), logging to the run."""
    env = {**os.environ, "WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error"}
    with open(network.workdir / f"{interface}.log", "wb") as log_file:
        process = network.popen(
            node, ["wireguard-go", interface], env=env, stdout=log_file, stderr=log_file
        )
    deadline = time.monotonic() + scaled(START_S)
    while not socket_path(interface).exists():
        if process.poll() is not None or time.monotonic() > deadline:
            output = (network.workdir / f"{interface}.log").read_text(errors="replace").strip()
            raise LabRunError(
                f"wireguard-go did not start in '{node}': {output.splitlines()[-1:] or 'no output'}"
            )
        time.sleep(0.02)
    return process


def _key_pair(workdir: Path, interface: str) -> tuple[Path, str]:
    """A fresh private key (a file only root reads) and its public key."""
    private = subprocess.run(["wg", "genkey"], capture_output=True, check=True).stdout
    public = subprocess.run(["wg", "pubkey"], input=private, capture_output=True, check=True)
    path = workdir / f"{interface}.key"
    path.touch(mode=0o600)
    path.write_bytes(private)
    return path, public.stdout.decode().strip()


def _configure(network: Network, node: str, commands: list[str]) -> None:
    network.run_script(node, commands, f"configuring the VPN tunnel in '{node}' failed")


def _check_carries(network: Network, planned: PlannedTunnel) -> None:
    """Ping the concentrator's tunnel address: a tunnel that does not carry packets would
    leave the client without any network, and the run would blame ICE."""
    t = planned.tunnel
    ping = ["ping", "-c", "1", "-W", "1", str(t.server_address.ip)]
    for _ in range(HANDSHAKE_TRIES):
        if network.run(t.client, ping).returncode == 0:
            return
    raise LabRunError(
        f"the WireGuard tunnel from '{t.client}' to '{t.server}' ({t.endpoint}:"
        f"{WIREGUARD_PORT}) carried nothing: is UDP to it blocked on the way?"
    )


# -- tear-down and `lab clean` -----------------------------------------------------------


def socket_path(interface: str) -> Path:
    return SOCKET_DIR / f"{interface}.sock"


def remove_sockets(tunnels: Sequence[PlannedTunnel]) -> None:
    """wireguard-go removes its socket on SIGTERM; not after a SIGKILL."""
    for planned in tunnels:
        for interface in (planned.client_interface, planned.server_interface):
            with contextlib.suppress(FileNotFoundError):
                socket_path(interface).unlink()


def remove_stale_sockets() -> list[str]:
    """The lab's sockets no wireguard-go answers on (a killed run's); live runs keep theirs."""
    removed = []
    for path in SOCKET_DIR.glob(f"{TUNNEL_PREFIX}*.sock"):
        if not _answers(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(str(path))
    return removed


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True
