"""Topologies: the nodes (network namespaces) and links (veth pairs) of a lab network.

A topology is only shape and addresses; what the NATs and firewalls do is the
scenario's business (see `lab.scenario.scenario`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.core.documents import JsonObject, load_document
from lab.core.errors import LabInputError
from lab.network.nodes import ALLOWED_NETWORKS, ALLOWED_NETWORKS_6, Interface, Link, Node
from lab.network.tunnels import Tunnel, tunnels_from_document

REPO_ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY_DIR = REPO_ROOT / "topologies"


@dataclass
class Topology:
    name: str
    description: str
    nodes: dict[str, Node]
    links: list[Link]
    source: Path
    #: WireGuard tunnels from hosts to concentrators (lab.network.vpn).
    vpns: tuple[Tunnel, ...] = ()

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def resolved(self) -> JsonObject:
        """A plain document of the topology with every interface and address spelled out."""
        return {
            "name": self.name,
            "description": self.description,
            "nodes": {
                n.name: {
                    "role": n.role,
                    "gateway": str(n.gateway) if n.gateway else None,
                    **({"gateway6": str(n.gateway6)} if n.gateway6 else {}),
                    **(
                        {"other_gateways": [str(g) for g in n.other_gateways]}
                        if n.other_gateways
                        else {}
                    ),
                    "interfaces": {
                        i.name: {
                            "addresses": i.all_addresses,
                            "to": i.peer_node,
                        }
                        for i in n.interfaces
                    },
                }
                for n in self.nodes.values()
            },
            **({"vpns": [t.describe() for t in self.vpns]} if self.vpns else {}),
        }


def resolve_topology_path(reference: str, relative_to: Path | None = None) -> Path:
    """Map a bundled topology name or a file path to a file."""
    candidates = []
    if reference.endswith((".yaml", ".yml")) or "/" in reference:
        base = relative_to.parent if relative_to else Path.cwd()
        candidates += [Path(reference), base / reference]
    else:
        candidates.append(TOPOLOGY_DIR / f"{reference}.yaml")
    for path in candidates:
        if path.is_file():
            return path
    known = ", ".join(sorted(p.stem for p in TOPOLOGY_DIR.glob("*.yaml")))
    raise LabInputError(f"unknown topology '{reference}' (bundled: {known})")


def load_topology(reference: str, relative_to: Path | None = None) -> Topology:
    """Load, validate and cross-check a topology; errors name the file and field."""
    path = resolve_topology_path(reference, relative_to)
    document = load_document(path, "topology")
    return build_topology(document, path)


def build_topology(document: JsonObject, path: Path) -> Topology:
    """Turn a schema-valid topology document into a checked Topology."""
    nodes = {
        name: Node(
            name=name,
            role=spec["role"],
            gateway=_address(path, f"nodes.{name}.gateway", spec.get("gateway")),
            description=spec.get("description", ""),
            other_gateways=tuple(
                _address(path, f"nodes.{name}.other_gateways[{n}]", value)
                for n, value in enumerate(spec.get("other_gateways", []))
            ),
            gateway6=_address6(path, f"nodes.{name}.gateway6", spec.get("gateway6")),
        )
        for name, spec in document["nodes"].items()
    }
    links = [_build_link(path, index, spec, nodes) for index, spec in enumerate(document["links"])]
    for node in nodes.values():
        _check_node(path, node)
    vpns = tunnels_from_document(document, nodes, path)
    return Topology(document["name"], document.get("description", ""), nodes, links, path, vpns)


def _address(path: Path, where: str, value: str | None) -> ipaddress.IPv4Address | None:
    if value is None:
        return None
    address = ipaddress.IPv4Address(value)
    _check_allowed(path, where, address)
    return address


def _address6(path: Path, where: str, value: str | None) -> ipaddress.IPv6Address | None:
    if value is None:
        return None
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError as exc:
        raise LabInputError(f"{path}: {where}: {exc}") from None
    _check_allowed(path, where, address)
    return address


def _check_allowed(
    path: Path, where: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> None:
    if address.version == 6:
        if not any(address in network for network in ALLOWED_NETWORKS_6):
            raise LabInputError(
                f"{path}: {where}: {address} is outside the lab's IPv6 range (2001:db8::/32)"
            )
        return
    if not any(address in network for network in ALLOWED_NETWORKS):
        raise LabInputError(
            f"{path}: {where}: {address} is outside the lab's ranges "
            "(documentation ranges, 100.64.0.0/10, RFC 1918)"
        )


InterfaceAddresses = tuple[tuple[ipaddress.IPv4Interface, ...], tuple[ipaddress.IPv6Interface, ...]]


def _interface_addresses(path: Path, where: str, value: Any, on_switch: bool) -> InterfaceAddresses:
    """An end's IPv4 and IPv6 addresses (either may be empty, not both)."""
    if on_switch != (value is None):
        wanted = "null: a switch's end of a link has no address" if on_switch else "an address"
        raise LabInputError(f"{path}: {where}: expected {wanted}")
    if value is None:
        return (), ()
    values = value if isinstance(value, list) else [value]
    try:
        addresses = [ipaddress.ip_interface(v) for v in values]
    except ValueError as exc:
        raise LabInputError(f"{path}: {where}: {exc}") from None
    for address in addresses:
        _check_allowed(path, where, address.ip)
    return (
        tuple(a for a in addresses if isinstance(a, ipaddress.IPv4Interface)),
        tuple(a for a in addresses if isinstance(a, ipaddress.IPv6Interface)),
    )


def _build_link(path: Path, index: int, spec: JsonObject, nodes: dict[str, Node]) -> Link:
    ends = []
    names = [e.split(":")[0] for e in spec["endpoints"]]
    for side, endpoint in enumerate(spec["endpoints"]):
        node_name, interface_name = endpoint.split(":")
        where = f"links[{index}].endpoints[{side}]"
        node = nodes.get(node_name)
        if node is None:
            raise LabInputError(f"{path}: {where}: no node named '{node_name}'")
        if any(i.name == interface_name for i in node.interfaces):
            raise LabInputError(f"{path}: {where}: {endpoint} is already linked")
        addresses, addresses6 = _interface_addresses(
            path, f"links[{index}].addresses[{side}]", spec["addresses"][side], node.is_switch
        )
        interface = Interface(node_name, interface_name, addresses, names[1 - side], addresses6)
        node.interfaces.append(interface)
        ends.append(interface)
    if all(e.addresses for e in ends) and ends[0].primary.network != ends[1].primary.network:
        raise LabInputError(
            f"{path}: links[{index}].addresses: {ends[0].primary} and {ends[1].primary} "
            "are not in one subnet"
        )
    _check_one_subnet6(path, index, ends)
    return Link(ends[0], ends[1])


def _check_one_subnet6(path: Path, index: int, ends: list[Interface]) -> None:
    if all(e.addresses6 for e in ends):
        first = [e.addresses6[0] for e in ends]
        if first[0].network != first[1].network:
            raise LabInputError(
                f"{path}: links[{index}].addresses: {first[0]} and {first[1]} are not in one subnet"
            )


def _check_node(path: Path, node: Node) -> None:
    if not node.interfaces:
        raise LabInputError(f"{path}: nodes.{node.name}: the node has no link")
    if node.is_switch and node.gateway is not None:
        raise LabInputError(f"{path}: nodes.{node.name}.gateway: a switch has no gateway")
    if node.gateway is not None and node.uplink() is None:
        raise LabInputError(
            f"{path}: nodes.{node.name}.gateway: {node.gateway} is on none of its links"
        )
    for n, other in enumerate(node.other_gateways):
        where = f"{path}: nodes.{node.name}.other_gateways[{n}]"
        if node.gateway is None:
            raise LabInputError(f"{where}: set `gateway` (the default uplink) first")
        interface = node.interface_towards(other)
        if interface is None:
            raise LabInputError(f"{where}: {other} is on none of its links")
        if interface == node.uplink():
            raise LabInputError(f"{where}: {other} is on the default gateway's link")
    if node.gateway6 is not None and node.interface_towards6(node.gateway6) is None:
        raise LabInputError(
            f"{path}: nodes.{node.name}.gateway6: {node.gateway6} is on none of its links' "
            "IPv6 subnets"
        )
