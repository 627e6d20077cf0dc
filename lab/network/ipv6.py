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
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lab.core.errors import LabInputError, LabRunError
from lab.network.firewall import interface_set
from lab.network.topology import Interface, Node, Topology

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


# -- NAT64 (RFC 6146) and DNS64 (RFC 6147) --------------------------------------------------
#
# An IPv6-only mobile network reaches IPv4-only servers through its carrier's NAT64: the
# carrier's DNS64 answers a name that has only an IPv4 address with a synthesised IPv6
# one (a /96 NAT64 prefix followed by the IPv4 address), and the NAT64
# translates packets to that prefix into IPv4 from a pool, which the gateway then
# source-NATs out of its IPv4 uplink as any NAT does. The lab runs TAYGA (a userspace
# NAT64 on a TUN device in the gateway's namespace) and answers DNS64 itself: it knows
# every name of the run, so a resolver on the gateway gives each its synthesised AAAA.

#: The NAT64 prefix: a network-specific one from the lab's 2001:db8::/32 (RFC 6052 allows
#: a carrier its own). Not the well-known 64:ff9b::/96: RFC 6052 keeps that from
#: non-global IPv4 addresses, and TAYGA 0.9.2 (Debian 12) refuses to translate it to the
#: documentation ranges the lab's servers live in ("Destination unreachable: No route").
NAT64_PREFIX = ipaddress.IPv6Network("2001:db8:6464::/96")
#: TAYGA's IPv4 pool (RFC 1918): each IPv6 client gets one; the gateway NATs them out.
NAT64_POOL = ipaddress.IPv4Network("192.168.255.0/24")
#: TAYGA's own addresses, for the ICMP errors it sends.
NAT64_OWN_IPV4 = NAT64_POOL[1]
NAT64_OWN_IPV6 = ipaddress.IPv6Address("2001:db8:ff:64::1")
NAT64_TUN = "nat64"
#: How long TAYGA may take to bring its TUN device up.
NAT64_START_S = 5.0


def nat64_problem(node: Node) -> str | None:
    """Why `node` cannot be a NAT64 (None if it can): it needs an IPv4 uplink to translate
    to and IPv6 hosts inside to translate for."""
    if node.uplink() is None:
        return "a NAT64 needs an IPv4 uplink (the node's `gateway`)"
    if not any(i.addresses6 for i in node.interfaces if i is not node.uplink()):
        return "a NAT64 needs IPv6 addresses on an inside link"
    return None


def synthesized(ipv4: str) -> str:
    """The DNS64 answer for an IPv4 address: 203.0.113.20 -> 2001:db8:6464::cb00:7114."""
    return str(NAT64_PREFIX[int(ipaddress.IPv4Address(ipv4))])


def render_tayga_conf(data_dir: str) -> str:
    """TAYGA's configuration."""
    return (
        "\n".join(
            [
                f"tun-device {NAT64_TUN}",
                f"ipv4-addr {NAT64_OWN_IPV4}",
                f"ipv6-addr {NAT64_OWN_IPV6}",
                f"prefix {NAT64_PREFIX}",
                f"dynamic-pool {NAT64_POOL}",
                f"data-dir {data_dir}",
            ]
        )
        + "\n"
    )


def nat64_commands(conf: str) -> list[str]:
    """Create TAYGA's TUN device in the gateway's namespace and route the prefix and the
    pool through it (the gateway's NAT then treats the pool as any inside address)."""
    return [
        f"tayga --mktun -c {conf}",
        f"ip link set {NAT64_TUN} up",
        f"ip route add {NAT64_POOL} dev {NAT64_TUN}",
        f"ip -6 route add {NAT64_PREFIX} dev {NAT64_TUN}",
        f"ip -6 route add {NAT64_OWN_IPV6}/128 dev {NAT64_TUN}",
    ]


def dns64_resolvers(topology: Topology, nat64_nodes: Iterable[str]) -> dict[str, str]:
    """Host -> the IPv6 address of its NAT64 gateway, whose DNS64 it asks (a host whose
    IPv6 default route is a NAT64 node)."""
    gateways = set(nat64_nodes)
    resolvers = {}
    for node in topology.nodes.values():
        up = uplink6(node)
        if up is not None and up.peer_node in gateways and node.gateway6 is not None:
            resolvers[node.name] = str(node.gateway6)
    return resolvers


def dns64_listen(node: Node) -> list[str]:
    """Where a NAT64 gateway's DNS64 listens: its inside IPv6 addresses."""
    up = node.uplink()
    return [str(a.ip) for i in node.interfaces if i is not up for a in i.addresses6]


def start_nat64(network: Any, node: str, workdir: Path) -> subprocess.Popen[bytes]:
    """Bring up TAYGA in `node` (a lab process, killed at tear-down like the others);
    LabRunError if its TUN device or routes cannot be made, or it exits at once."""
    if shutil.which("tayga") is None:
        raise LabInputError(f"NAT64 on '{node}' needs tayga: run `make setup` (apt tayga)")
    directory = workdir / f"tayga-{node}"
    directory.mkdir(exist_ok=True)
    conf = directory / "tayga.conf"
    conf.write_text(render_tayga_conf(str(directory)))
    network.run_script(node, nat64_commands(str(conf)), f"NAT64 on '{node}'")
    log = directory / "tayga.log"
    with open(log, "wb") as output:
        process = network.popen(
            node, ["tayga", "-c", str(conf), "--nodetach"], stdout=output, stderr=output
        )
    try:
        process.wait(timeout=0.1)  # a bad configuration makes it exit at once
    except subprocess.TimeoutExpired:
        return process
    raise LabRunError(
        f"NAT64 on '{node}' (tayga) exited: {log.read_text(errors='replace').strip()}"
    )
