"""Wires: where the delay line carries an impairment, its link gets a node of its own.

A wire is a network namespace spliced into a topology link beside the impaired
interface, with two interfaces that have no address:

    viewer:eth0 <-> near [wire.viewer.eth0] far <-> viewer-gw:eth0

A delay line (lab.network.delay_line_run) joins `near` and `far` through packet sockets.
The impaired interface keeps its name, address and MAC, and its neighbour still sees it
on the same Ethernet, so addresses, routes, ARP and the NAT and firewall rules that
name interfaces are as the topology says. Frames from the node (`out`) cross
near -> far, frames to it (`in`) far -> near. A link whose two ends are both impaired
this way gets two wires in a row.

Pure: the plan, the veth segments and each wire's set-up are rendered here and applied
by lab.network.build.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lab.network.delay_line import LineSpec
from lab.network.impairments import Impairments
from lab.network.topology import Link

#: Wire names cannot clash with node names, which have no dots (topology schema).
WIRE_PREFIX = "wire."
NEAR, FAR = "near", "far"
#: nftables table that keeps every frame away from the wire's own IP stack: the packet
#: sockets have already read it (taps run before the ingress hook).
TABLE = "icelab_wire"
DELAY_LINE_MODULE = "lab.network.delay_line_run"

Endpoint = tuple[str, str]  # (node or wire name, interface)


@dataclass(frozen=True)
class Wire:
    """The delay line of one impaired interface, one spec per direction it delays."""

    node: str
    interface: str
    out: LineSpec | None = None  # frames leaving the node
    into: LineSpec | None = None  # frames arriving at it

    @property
    def name(self) -> str:
        return f"{WIRE_PREFIX}{self.node}.{self.interface}"


def plan_wires(impairments: Mapping[str, Sequence[Impairments]]) -> list[Wire]:
    """One wire per interface with an impairment the delay line carries (node order)."""
    specs: dict[tuple[str, str], dict[str, LineSpec]] = {}
    for node, entries in impairments.items():
        for entry in entries:
            if entry.carrier != "delay-line":
                continue
            directions = specs.setdefault((node, entry.interface), {})
            for direction in entry.directions:
                directions[direction] = entry.line_spec()
    return [
        Wire(node, interface, directions.get("out"), directions.get("in"))
        for (node, interface), directions in specs.items()
    ]


def link_segments(link: Link, wires: Sequence[Wire]) -> list[tuple[Endpoint, Endpoint]]:
    """The veth pairs that make one topology link: one, plus one per wire on it."""
    by_end = {(w.node, w.interface): w for w in wires}
    ends: list[Endpoint] = [(link.a.node, link.a.name)]
    near_a = by_end.get((link.a.node, link.a.name))
    if near_a is not None:
        ends += [(near_a.name, NEAR), (near_a.name, FAR)]
    near_b = by_end.get((link.b.node, link.b.name))
    if near_b is not None:
        ends += [(near_b.name, FAR), (near_b.name, NEAR)]
    ends.append((link.b.node, link.b.name))
    return list(zip(ends[0::2], ends[1::2], strict=True))


def render_wire_commands(wire: Wire) -> list[str]:
    """Shell commands in the wire's namespace: no IPv6 (so it sends nothing), links up."""
    return [
        "sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
        f"ip link set {NEAR} up",
        f"ip link set {FAR} up",
    ]


def render_wire_ruleset(wire: Wire) -> str:
    """Drop every frame at ingress of both interfaces, after the delay line read it."""
    chains = "\n".join(
        f"    chain {name} {{\n"
        f'        type filter hook ingress device "{name}" priority 0; policy drop;\n'
        "    }"
        for name in (NEAR, FAR)
    )
    return f"# {wire.node}:{wire.interface}: the delay line reads every frame first\n" + (
        f"table netdev {TABLE} {{\n{chains}\n}}\n"
    )


def delay_line_command(wire: Wire, python: str, parent: int) -> list[str]:
    """The delay line's command line (run in the wire's namespace)."""
    command = [python, "-m", DELAY_LINE_MODULE, "--near", NEAR, "--far", FAR]
    for flag, spec in (("--out", wire.out), ("--in", wire.into)):
        if spec is not None:
            command += [flag, json.dumps(spec.as_dict(), separators=(",", ":"))]
    return [*command, "--parent", str(parent)]
