"""The networks of `lab matrix`: what each row means, and one cell's scenario documents.

A row is one side's way to the internet: a public address (`open`), one NAT, two NATs
in a row (the first is the peer's own, the second faces the internet), or a NAT with a
firewall (or, for the proxy rows, an edge that forwards nothing and runs a proxy).
The rows with libwebrtc's names build what libwebrtc's test builds; two more keep the
cascades the lab used to call double-cone and symmetric-then-cone under names that say
what they are. Rendering is pure, so the documents are unit-tested without root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from lab.core.documents import JsonObject


@dataclass(frozen=True)
class Row:
    """One side of a cell: its NATs from the peer outwards (`none`: a plain router), the
    firewall on the first."""

    what: str
    nats: tuple[str, ...] = ()
    firewall: str | None = None


ROWS: dict[str, Row] = {
    "open": Row("a public address, no NAT"),
    "full-cone": Row("one full-cone NAT", ("full-cone",)),
    "restricted-cone": Row("one restricted-cone NAT", ("restricted-cone",)),
    "port-restricted-cone": Row("one port-restricted-cone NAT", ("port-restricted-cone",)),
    "symmetric": Row("one symmetric NAT", ("symmetric",)),
    "double-cone": Row(
        "an open-cone (full-cone) NAT inside another open-cone NAT", ("full-cone", "full-cone")
    ),
    "symmetric-then-cone": Row(
        "a symmetric NAT facing the internet with an open-cone (full-cone) NAT inside it",
        ("full-cone", "symmetric"),
    ),
    "udp-blocked": Row(
        "a firewall dropping UDP (but DNS) on a port-restricted-cone NAT",
        ("port-restricted-cone",),
        "udp-blocked",
    ),
    "block-udp-and-incoming-tcp": Row(
        "a firewall dropping UDP and incoming TCP on a port-restricted-cone NAT",
        ("port-restricted-cone",),
        "block-udp-and-incoming-tcp",
    ),
    "tcp-web-only": Row(
        "a firewall letting out only TCP 80/443 (and DNS) on a port-restricted-cone NAT",
        ("port-restricted-cone",),
        "tcp-web-only",
    ),
    "https-proxy": Row(
        "an edge that forwards nothing and runs an HTTPS (CONNECT) proxy, squid",
        ("none",),
        "https-proxy",
    ),
    "socks5-proxy": Row(
        "an edge that forwards nothing and runs a SOCKS5 proxy, Dante",
        ("none",),
        "socks5-proxy",
    ),
    "double-port-restricted-cone": Row(
        "a port-restricted-cone home router behind a port-restricted-cone carrier NAT",
        ("port-restricted-cone", "port-restricted-cone"),
    ),
    "symmetric-then-port-restricted-cone": Row(
        "a symmetric carrier NAT with a port-restricted-cone home router inside it",
        ("port-restricted-cone", "symmetric"),
    ),
}
#: `lab matrix` without --nat: the seven NAT configurations of libwebrtc's matrix.
NAT_ROWS = (
    "open",
    "full-cone",
    "restricted-cone",
    "port-restricted-cone",
    "symmetric",
    "double-cone",
    "symmetric-then-cone",
)
#: The firewall configurations of libwebrtc's matrix.
FIREWALL_ROWS = ("udp-blocked", "block-udp-and-incoming-tcp", "tcp-web-only")
#: The proxy configurations of libwebrtc's matrix (its 2016 revision).
PROXY_ROWS = ("https-proxy", "socks5-proxy")
#: The lab's own variants (not in libwebrtc's matrix): the earlier double-cone and
#: symmetric-then-cone, whose inner NAT filters by address and port.
LAB_VARIANTS = ("double-port-restricted-cone", "symmetric-then-port-restricted-cone")
#: `--nat` group names and the rows they stand for.
GROUPS: dict[str, tuple[str, ...]] = {
    "nats": NAT_ROWS,
    "firewalls": FIREWALL_ROWS,
    "proxies": PROXY_ROWS,
    "all": NAT_ROWS + FIREWALL_ROWS + PROXY_ROWS,
}
SIDES = {"viewer": 2, "master": 1}  # subnet numbers: 192.168.N.0/24, 100.64.N.0/24, 10.N.0.0/24


class _Side:
    """Nodes, links and conditions of one side, added from the peer outwards."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.nodes: JsonObject = {}
        self.links: list[JsonObject] = []
        self.conditions: JsonObject = {}

    def link(self, a: str, b: str, a_address: str, b_address: str) -> None:
        self.links.append({"endpoints": [a, b], "addresses": [a_address, b_address]})


def _inside_subnets(role: str, row: Row) -> list[str]:
    """The /24 behind each NAT, peer outwards: a firewall's office LAN or a home LAN, then
    the carrier's shared address space (100.64.0.0/10) between two NATs."""
    n = SIDES[role]
    first = f"10.{n}.0" if row.firewall else f"192.168.{n}"
    return [first, f"100.64.{n}"][: len(row.nats)]


def _node_names(role: str, row: Row) -> list[str]:
    if row.firewall:
        return [f"{role}-fw"]
    return [f"{role}-home", f"{role}-cgn"][: len(row.nats)]


def side_documents(role: str, preset: str, uplink: str, wan: str, gateway: str) -> _Side:
    """One peer's side, from the peer up to the internet router's `uplink` interface,
    whose address on the link is `gateway` (the side's outermost node gets `wan`)."""
    row = ROWS[preset]
    side = _Side(role)
    names = _node_names(role, row)
    subnets = _inside_subnets(role, row)
    # The peer, then each NAT: the node's inside is the subnet, its gateway the next hop.
    inner = role
    for index, (name, subnet) in enumerate(zip(names, subnets, strict=True)):
        side.nodes[inner] = {"role": "peer" if inner == role else "nat", "gateway": f"{subnet}.1"}
        port = "eth0" if inner == role else "eth1"
        side.link(f"{inner}:{port}", f"{name}:eth0", f"{subnet}.10/24", f"{subnet}.1/24")
        side.conditions[name] = {"nat": row.nats[index]}
        inner = name
    side.nodes[inner] = {"role": "peer" if inner == role else "nat", "gateway": gateway}
    side.link(f"{inner}:{'eth0' if inner == role else 'eth1'}", uplink, wan, f"{gateway}/28")
    if row.firewall:
        side.conditions[names[0]]["firewall"] = row.firewall
    return side


def cell_documents(viewer: str, master: str) -> tuple[JsonObject, JsonObject]:
    """The topology and scenario documents of one matrix cell."""
    sides = [
        side_documents("viewer", viewer, "internet:eth0", "198.51.100.2/28", "198.51.100.1"),
        side_documents("master", master, "internet:eth1", "198.51.100.18/28", "198.51.100.17"),
    ]
    nodes: JsonObject = {"internet": {"role": "router"}}
    links: list[JsonObject] = []
    conditions: JsonObject = {}
    for side in sides:
        nodes |= side.nodes
        links += side.links
        conditions |= side.conditions
    nodes["turn"] = {"role": "stun-turn", "gateway": "203.0.113.1"}
    nodes["signaling"] = {"role": "signaling", "gateway": "203.0.113.17"}
    links += [
        {"endpoints": ["turn:eth0", "internet:eth2"],
         "addresses": [["203.0.113.10/28", "203.0.113.11/28"], "203.0.113.1/28"]},
        {"endpoints": ["signaling:eth0", "internet:eth3"],
         "addresses": ["203.0.113.20/28", "203.0.113.17/28"]},
    ]  # fmt: skip
    topology = {"name": "matrix", "nodes": nodes, "links": links}
    scenario = {
        "name": f"matrix-{viewer}-vs-{master}",
        "description": f"Matrix cell: the viewer on {ROWS[viewer].what}, "
        f"the master on {ROWS[master].what}.",
        "topology": "topology.yaml",
        "conditions": conditions,
        "peers": {"viewer": {"host": "viewer"}, "master": {"host": "master"}},
        "expect": {"outcome": "connected"},
    }
    return topology, scenario


def write_cell_documents(viewer: str, master: str, folder: Path) -> Path:
    """Write the cell's topology and scenario into `folder` (libyaml's dumper where PyYAML
    has it: a matrix writes two documents per cell); returns the scenario's path."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    topology, scenario = cell_documents(viewer, master)
    for name, document in (("topology.yaml", topology), ("scenario.yaml", scenario)):
        (folder / name).write_text(yaml.dump(document, Dumper=dumper, sort_keys=False))
    return folder / "scenario.yaml"
