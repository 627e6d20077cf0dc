"""IPv6 in the lab network: addresses, routes and the home router's IPv6 firewall.

Real home and mobile IPv6 is global and not NATed: an ISP routes a prefix to the home
router (prefix delegation), and the router filters instead of translating. So a node
with IPv6 addresses gets them with its own default route (`gateway6`); a router gets a
route to every prefix delegated below it (the IPv6 networks behind a neighbour whose
IPv6 default route points at it); and a home router (role `nat`) gets the stateful
firewall home CPE run for IPv6 (RFC 6092): outbound and replies pass, unsolicited
inbound is dropped. Nodes without IPv6 addresses get nothing from here: they keep IPv6
disabled, as every node of an IPv4-only topology does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from lab.network.firewall import interface_set
from lab.topology import Interface, Node, Topology

#: A route: a delegated prefix and the neighbour's address it is reached through.
Route6 = tuple[ipaddress.IPv6Network, ipaddress.IPv6Address]


def has_ipv6(node: Node) -> bool:
    return any(i.addresses6 for i in node.interfaces)


def ipv6_sysctls(node: Node) -> dict[str, str]:
    """The sysctls an IPv6 node ends its set-up with (none for an IPv4-only node, which
    keeps the build's `disable_ipv6=1`)."""
    if not has_ipv6(node):
        return {}
    return {
        "net.ipv6.conf.all.disable_ipv6": "0",
        "net.ipv6.conf.default.disable_ipv6": "0",
        "net.ipv6.conf.all.forwarding": "1" if node.forwards else "0",
    }


def ipv6_commands(node: Node, routes: list[Route6]) -> list[str]:
    """Shell commands, run once the node's links are up: enable IPv6 in the node's own
    namespace, add its addresses (the lab's addresses are unique: no duplicate address
    detection), its default and delegated routes."""
    if not has_ipv6(node):
        return []
    # No duplicate address detection, link-local addresses included: a tentative
    # link-local address holds up neighbour discovery for a second or two, and ICE's
    # first checks would be lost to it. IPv6 is switched off and on again so the
    # link-local addresses come back without it.
    no_dad = " ".join(f"net.ipv6.conf.{name}.accept_dad=0" for name in _conf_names(node))
    commands = [
        f"sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 {no_dad}",
        "sysctl -q -w net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0",
    ]
    for interface in node.interfaces:
        for address in interface.addresses6:
            commands.append(f"ip -6 addr add {address} dev {interface.name} nodad")
    if node.gateway6 is not None:
        commands.append(f"ip -6 route add default via {node.gateway6}")
    commands += [f"ip -6 route add {network} via {via}" for network, via in routes]
    return commands


def _conf_names(node: Node) -> list[str]:
    return ["all", "default", *(i.name for i in node.interfaces)]


def uplink6(node: Node) -> Interface | None:
    """The interface towards the IPv6 default gateway."""
    return node.interface_towards6(node.gateway6) if node.gateway6 is not None else None


def delegated_routes(topology: Topology) -> dict[str, list[Route6]]:
    """Node -> routes to the IPv6 prefixes behind each neighbour that uses it as its IPv6
    default gateway (and behind those neighbours' own such neighbours)."""
    return {
        name: [
            (network, via)
            for network, via in _routes_below(topology, node, set())
            if not _connected(node, network)
        ]
        for name, node in topology.nodes.items()
        if has_ipv6(node)
    }


def _routes_below(topology: Topology, node: Node, seen: set[str]) -> Iterator[Route6]:
    seen.add(node.name)
    for child, via in _downstream(topology, node):
        if child.name in seen:
            continue
        child_up = uplink6(child)
        for interface in child.interfaces:
            if interface is not child_up:
                for address in interface.addresses6:
                    yield address.network, via
        yield from ((network, via) for network, _ in _routes_below(topology, child, seen))


def _downstream(topology: Topology, node: Node) -> Iterator[tuple[Node, ipaddress.IPv6Address]]:
    """Neighbours whose IPv6 default route is this node, with their address on the link."""
    for interface in node.interfaces:
        if not interface.addresses6:
            continue
        neighbour = topology.node(interface.peer_node)
        up = uplink6(neighbour)
        if up is None or up.peer_node != node.name:
            continue
        if any(neighbour.gateway6 == a.ip for a in interface.addresses6):
            yield neighbour, up.addresses6[0].ip


def _connected(node: Node, network: ipaddress.IPv6Network) -> bool:
    return any(a.network == network for i in node.interfaces for a in i.addresses6)


def cpe_firewall_interfaces(node: Node) -> tuple[str, list[str]] | None:
    """A home router's IPv6 uplink and inside interfaces, if it routes IPv6 at all."""
    if node.role != "nat":
        return None
    up = uplink6(node)
    inside = [i.name for i in node.interfaces if i.addresses6 and i is not up]
    if up is None or not inside:
        return None
    return up.name, inside


def render_cpe_firewall6(uplink: str, inside: list[str]) -> str:
    """The IPv6 firewall of a home router (RFC 6092): what the inside starts, and replies
    to it, pass; ICMPv6 errors pass (path MTU discovery needs Packet Too Big); anything
    else arriving from the internet is dropped. Two peers behind two such routers still
    connect directly: each one's outbound check opens the way for the other's."""
    inside_set = interface_set(inside)
    rules = [
        "ct state established,related accept",
        'ct state invalid drop comment "home router IPv6: invalid connection state"',
        f'iifname {inside_set} oifname "{uplink}" accept',
        f'iifname "{uplink}" icmpv6 type {{ destination-unreachable, packet-too-big, '
        "time-exceeded, parameter-problem, echo-request } accept",
        f'iifname "{uplink}" drop comment "home router IPv6: unsolicited inbound"',
    ]
    body = "\n".join(f"        {r}" for r in rules)
    return f"""table ip6 icelab_cpe6 {{
    chain forward {{
        type filter hook forward priority filter; policy accept;
{body}
    }}
}}
"""
