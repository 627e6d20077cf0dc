"""A lab network's nodes (network namespaces), their interfaces and links (veth pairs),
and the address ranges every emulated address must come from."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

#: Every emulated address must be in one of these: documentation ranges for the
#: emulated internet, shared address space for carrier-grade NAT, RFC 1918 for LANs.
ALLOWED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "198.51.100.0/24",
        "203.0.113.0/24",
        "192.0.2.0/24",
        "100.64.0.0/10",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
    )
)
#: IPv6: the documentation prefix only (real home and mobile IPv6 is global, not NATed).
ALLOWED_NETWORKS_6 = (ipaddress.IPv6Network("2001:db8::/32"),)
FORWARDING_ROLES = frozenset({"nat", "firewall", "router"})


@dataclass(frozen=True)
class Interface:
    """One end of a link, inside a node's namespace."""

    node: str
    name: str
    addresses: tuple[ipaddress.IPv4Interface, ...]
    peer_node: str
    #: IPv6 addresses (lab.network.ipv6), apart so IPv4-only code never meets them.
    addresses6: tuple[ipaddress.IPv6Interface, ...] = ()

    @property
    def primary(self) -> ipaddress.IPv4Interface:
        return self.addresses[0]

    @property
    def all_addresses(self) -> list[str]:
        """IPv4 then IPv6, with prefix lengths: what a report draws on the link."""
        return [str(a) for a in (*self.addresses, *self.addresses6)]


@dataclass
class Node:
    """A host, router, NAT, firewall or server: one network namespace."""

    name: str
    role: str
    gateway: ipaddress.IPv4Address | None
    interfaces: list[Interface] = field(default_factory=list)
    description: str = ""
    #: Further uplinks of a multi-homed host (Wi-Fi and LTE): each has its own routing
    #: table, used for what leaves from that interface's addresses (source routing).
    other_gateways: tuple[ipaddress.IPv4Address, ...] = ()
    #: The IPv6 default route (a dual-stack or IPv6-only host).
    gateway6: ipaddress.IPv6Address | None = None

    @property
    def forwards(self) -> bool:
        return self.role in FORWARDING_ROLES

    @property
    def is_switch(self) -> bool:
        return self.role == "switch"

    @property
    def addresses(self) -> list[str]:
        """Every address of the node, primary interface first."""
        return [str(a.ip) for i in self.interfaces for a in i.addresses]

    @property
    def addresses6(self) -> list[str]:
        """Every IPv6 address of the node, primary interface first."""
        return [str(a.ip) for i in self.interfaces for a in i.addresses6]

    @property
    def all_addresses(self) -> list[str]:
        """IPv4 then IPv6: what a report shows (IPv4-only code uses `addresses`)."""
        return self.addresses + self.addresses6

    @property
    def primary_address(self) -> str:
        """The first address of the node (a switch has none: it works at layer 2)."""
        return self.addresses[0]

    def uplink(self) -> Interface | None:
        """The interface whose subnet holds the default gateway (a NAT's WAN side)."""
        if self.gateway is None:
            return None
        for interface in self.interfaces:
            if any(self.gateway in a.network for a in interface.addresses):
                return interface
        return None

    def interface_towards(self, address: ipaddress.IPv4Address) -> Interface | None:
        """The interface whose subnet holds `address`."""
        for interface in self.interfaces:
            if any(address in a.network for a in interface.addresses):
                return interface
        return None

    def interface_towards6(self, address: ipaddress.IPv6Address) -> Interface | None:
        """The interface whose IPv6 subnet holds `address`."""
        for interface in self.interfaces:
            if any(address in a.network for a in interface.addresses6):
                return interface
        return None

    def downlinks(self) -> list[Interface]:
        """Interfaces other than the uplink (a NAT's or firewall's inside)."""
        up = self.uplink()
        return [i for i in self.interfaces if i != up]


@dataclass(frozen=True)
class Link:
    a: Interface
    b: Interface
