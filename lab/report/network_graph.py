"""The network a saved result was observed on, as a graph: nodes, links, and which NAT or
firewall stands on each peer's side of the internet.

A result written since the HTML report carries the topology's nodes and links
(`network.nodes`, `network.links`); an older one only names its topology, which is
loaded from the bundled topologies when it is still there.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections import deque
from dataclasses import dataclass, field

from lab.core.documents import JsonObject
from lab.core.errors import LabError
from lab.core.roles import ROLES
from lab.network.topology import load_topology
from lab.report.result import PeerResult, RunResult


@dataclass
class NetworkGraph:
    """Nodes (name -> role, description, addresses) and undirected links between them."""

    nodes: dict[str, JsonObject] = field(default_factory=dict)
    links: list[JsonObject] = field(default_factory=list)

    def neighbours(self, name: str) -> list[str]:
        found = []
        for link in self.links:
            a, b = (e.split(":")[0] for e in link["endpoints"])
            if a == name:
                found.append(b)
            elif b == name:
                found.append(a)
        return found

    def path(self, start: str, end: str) -> list[str]:
        """The shortest chain of nodes from start to end (empty if none)."""
        if start not in self.nodes or end not in self.nodes:
            return []
        previous: dict[str, str | None] = {start: None}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            if here == end:
                break
            for there in self.neighbours(here):
                if there not in previous:
                    previous[there] = here
                    queue.append(there)
        if end not in previous:
            return []
        chain: list[str] = []
        step: str | None = end
        while step is not None:
            chain.append(step)
            step = previous[step]
        return chain[::-1]

    def owner_of(self, address: str) -> str | None:
        """The node that holds an address (a relay candidate's TURN server)."""
        for name, node in self.nodes.items():
            if address in node.get("addresses", []):
                return name
        return None


def network_graph(result: RunResult) -> NetworkGraph:
    """The result's own nodes and links, else its bundled topology's, else an empty graph."""
    network = result.network or {}
    if network.get("nodes"):
        return NetworkGraph(dict(network["nodes"]), list(network.get("links") or []))
    name = network.get("topology")
    if not isinstance(name, str):
        return NetworkGraph()
    with contextlib.suppress(LabError, OSError):
        topology = load_topology(name)
        nodes = {
            n.name: {"role": n.role, "description": n.description, "addresses": n.all_addresses}
            for n in topology.nodes.values()
        }
        links = [
            {
                "endpoints": [f"{e.node}:{e.name}" for e in (link.a, link.b)],
                "addresses": [e.all_addresses for e in (link.a, link.b)],
            }
            for link in topology.links
        ]
        return NetworkGraph(nodes, links)
    return NetworkGraph()


def peer_of(result: RunResult, role: str) -> PeerResult:
    """The role's peer; one that observed nothing when a partial result lacks it."""
    return result.peers.get(role) or PeerResult([])


def peer_host(result: RunResult, role: str) -> str | None:
    return peer_of(result, role).host


def sides(result: RunResult, graph: NetworkGraph) -> dict[str, list[str]]:
    """Per peer, the nodes with conditions (NAT, firewall) between it and the internet, the
    nearest first: the path from viewer to master, cut at its router."""
    conditions = conditions_of(result)
    viewer, master = peer_host(result, "viewer"), peer_host(result, "master")
    # A full-tunnel VPN client reaches the internet from its concentrator, not its home.
    ends = [_exit(result, viewer), _exit(result, master)]
    chain = graph.path(*ends) if viewer and master else []
    if not chain:
        return {role: [] for role in ROLES}
    routers = [i for i, n in enumerate(chain) if graph.nodes[n].get("role") == "router"]
    middle = routers[len(routers) // 2] if routers else len(chain) // 2
    viewer_side = [n for n in chain[:middle] if n in conditions]
    master_side = [n for n in reversed(chain[middle + 1 :]) if n in conditions]
    return {"viewer": viewer_side, "master": master_side}


def conditions_of(result: RunResult) -> JsonObject:
    """Each node's NAT, firewall and impairments as the scenario set them (`conditions`)."""
    return (result.network or {}).get("conditions") or {}


def nat_of(result: RunResult, node: str) -> JsonObject | None:
    condition = conditions_of(result).get(node)
    return condition.get("nat") if isinstance(condition, dict) else None


def firewall_of(result: RunResult, node: str) -> JsonObject | None:
    condition = conditions_of(result).get(node)
    return condition.get("firewall") if isinstance(condition, dict) else None


def vpns_of(result: RunResult) -> list[JsonObject]:
    """The network's VPN tunnels (`network.vpns`, lab.network.vpn)."""
    return (result.network or {}).get("vpns") or []


def vpn_of(result: RunResult, host: str | None) -> JsonObject | None:
    """The VPN tunnel whose client `host` is (`network.vpns`, lab.network.vpn), if any."""
    for vpn in vpns_of(result):
        if vpn.get("client") == host:
            return dict(vpn)
    return None


def _exit(result: RunResult, host: str | None) -> str | None:
    vpn = vpn_of(result, host)
    return vpn["server"] if vpn and "0.0.0.0/0" in vpn.get("routes", []) else host


def tunnelled(vpn: JsonObject, address: str) -> bool:
    """Whether the client's routes send packets for `address` into the tunnel."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(route) for route in vpn.get("routes", []))
