"""A topology's `vpns` block: which host tunnels to which concentrator, with which
addresses and routes (lab/network/vpn.py runs the tunnels with WireGuard)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError
from lab.network.nodes import ALLOWED_NETWORKS, Node

WIREGUARD_PORT = 51820
#: WireGuard's default: 1500 less 80 bytes of outer IPv6/UDP and WireGuard headers.
TUNNEL_MTU = 1420
FULL_TUNNEL = ipaddress.IPv4Network("0.0.0.0/0")


@dataclass(frozen=True)
class Tunnel:
    """A topology's `vpns` entry: `client` sends `routes` through `server`."""

    client: str
    server: str
    #: The concentrator's public address (its uplink's), where the client connects.
    endpoint: ipaddress.IPv4Address
    #: Tunnel addresses: the server takes the first host, the client the second.
    network: ipaddress.IPv4Network
    routes: tuple[ipaddress.IPv4Network, ...] = (FULL_TUNNEL,)
    mtu: int = TUNNEL_MTU

    @property
    def server_address(self) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{self.network[1]}/{self.network.prefixlen}")

    @property
    def client_address(self) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{self.network[2]}/{self.network.prefixlen}")

    @property
    def full(self) -> bool:
        """Whether everything the client sends goes through (not a split tunnel)."""
        return FULL_TUNNEL in self.routes

    def describe(self) -> JsonObject:
        return {
            "client": self.client,
            "server": self.server,
            "endpoint": f"{self.endpoint}:{WIREGUARD_PORT}",
            "client_address": str(self.client_address),
            "server_address": str(self.server_address),
            "routes": [str(r) for r in self.routes],
            "mtu": self.mtu,
        }


# -- the topology's `vpns` block ---------------------------------------------------------


def tunnels_from_document(
    document: JsonObject, nodes: dict[str, Node], path: Path
) -> tuple[Tunnel, ...]:
    """Check a topology's `vpns` entries against its nodes; errors name file and field."""
    specs = document.get("vpns", [])
    tunnels = tuple(_tunnel(spec, nodes, f"{path}: vpns[{n}]") for n, spec in enumerate(specs))
    seen: set[str] = set()
    for n, tunnel in enumerate(tunnels):
        if tunnel.client in seen:
            raise LabInputError(f"{path}: vpns[{n}].client: '{tunnel.client}' has a VPN already")
        seen.add(tunnel.client)
    return tunnels


def _tunnel(spec: JsonObject, nodes: dict[str, Node], where: str) -> Tunnel:
    client = _node(spec, "client", nodes, where)
    server = _node(spec, "server", nodes, where)
    _check_ends(client, server, where)
    uplink = server.uplink()
    assert uplink is not None  # checked above
    routes = tuple(
        _lab_network(value, f"{where}.routes[{n}]", FULL_TUNNEL)
        for n, value in enumerate(spec.get("routes", []))
    )
    return Tunnel(
        client=client.name,
        server=server.name,
        endpoint=uplink.primary.ip,
        network=_tunnel_network(spec.get("addresses", "10.200.0.0/24"), f"{where}.addresses"),
        routes=routes or (FULL_TUNNEL,),
        mtu=spec.get("mtu", TUNNEL_MTU),
    )


def _check_ends(client: Node, server: Node, where: str) -> None:
    """A host tunnels to a NAT (which NATs the tunnel out); both need an uplink."""
    if client.name == server.name:
        raise LabInputError(f"{where}.server: the client cannot be its own concentrator")
    if client.forwards or client.is_switch:
        raise LabInputError(f"{where}.client: '{client.name}' is a {client.role}, not a host")
    if server.role != "nat":
        raise LabInputError(
            f"{where}.server: '{server.name}' is a {server.role}; a concentrator is a `nat` "
            "node (it NATs the tunnel out)"
        )
    for end, node in (("client", client), ("server", server)):
        if node.uplink() is None:
            raise LabInputError(f"{where}.{end}: '{node.name}' needs a `gateway` (its uplink)")


def _tunnel_network(value: str, where: str) -> ipaddress.IPv4Network:
    network = _lab_network(value, where)
    if network.prefixlen > 30:
        raise LabInputError(f"{where}: {network} has no room for two hosts")
    return network


def _lab_network(
    value: str, where: str, also: ipaddress.IPv4Network | None = None
) -> ipaddress.IPv4Network:
    """A subnet in the lab's ranges (or `also`), so no tunnel routes real traffic."""
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError as exc:
        raise LabInputError(f"{where}: {exc}") from None
    if network != also and not any(network.subnet_of(n) for n in ALLOWED_NETWORKS):
        raise LabInputError(
            f"{where}: {network} is outside the lab's ranges (documentation ranges, "
            "100.64.0.0/10, RFC 1918" + ("; 0.0.0.0/0 for everything)" if also else ")")
        )
    return network


def _node(spec: JsonObject, key: str, nodes: dict[str, Node], where: str) -> Node:
    node = nodes.get(spec[key])
    if node is None:
        raise LabInputError(f"{where}.{key}: no node named '{spec[key]}'")
    return node
