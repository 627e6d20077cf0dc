"""What IPv4 and IPv6 did in a run, in words: for the report, `lab explain` and HTML.

ICE pairs only candidates of one address family, and the service's STUN, TURN and
signaling servers are IPv4-only. So a dual-stack peer's IPv6 candidates pair with
nothing unless the other peer has IPv6 too, and an IPv6-only peer without NAT64 reaches
none of the service at all. An IPv4-only run has nothing to say here (no lines).
"""

from __future__ import annotations

from lab.core.addresses import family
from lab.core.documents import JsonObject
from lab.core.roles import ROLES, other_role
from lab.observations.ice import Candidate
from lab.report.network_graph import peer_of
from lab.report.result import RunResult

SERVER_ROLES = {"signaling": "the signaling server", "stun-turn": "the STUN/TURN server"}


def family_lines(result: RunResult) -> list[str]:
    """Sentences on the address families of the run; none for an IPv4-only network."""
    nodes = (result.network or {}).get("nodes") or {}
    if not any(family(a) == "ipv6" for n in nodes.values() for a in n.get("addresses") or []):
        return []
    lines = [_ipv6_only_line(result, role, nodes) for role in ROLES]
    lines += [_unpaired_line(result, role) for role in ROLES]
    lines.append(_selected_line(result))
    return [line for line in lines if line]


def _host_addresses(result: RunResult, role: str, nodes: JsonObject) -> list[str]:
    host = peer_of(result, role).host
    return list((nodes.get(host) or {}).get("addresses") or [])


def _ipv6_only_line(result: RunResult, role: str, nodes: JsonObject) -> str | None:
    addresses = _host_addresses(result, role, nodes)
    if not addresses or any(family(a) == "ipv4" for a in addresses):
        return None
    servers = [
        f"{SERVER_ROLES[n['role']]} ({', '.join(n.get('addresses') or [])})"
        for n in nodes.values()
        if n.get("role") in SERVER_ROLES
    ]
    if not servers or any(
        family(a) == "ipv6"
        for n in nodes.values()
        if n.get("role") in SERVER_ROLES
        for a in n.get("addresses") or []
    ):
        return None
    translators = _nat64_nodes(result)
    if translators:
        return (
            f"The {role}'s host has IPv6 only ({', '.join(addresses)}), and "
            f"{' and '.join(servers)} have IPv4 addresses only; "
            f"{', '.join(translators)} runs NAT64 and DNS64 (RFC 6146/6147), as IPv6-only "
            "mobile networks do: the servers' names resolve to synthesised IPv6 addresses "
            "that the NAT64 translates to IPv4. Relay candidates the "
            f"{role} allocates through it are IPv4 addresses, which can pair with an "
            "IPv4-only peer."
        )
    failed = result.outcome == "failed"
    error = peer_of(result, role).error
    return (
        f"The {role}'s host has IPv6 only ({', '.join(addresses)}): no IPv4 address, no IPv4 "
        f"route. {_first_upper(' and '.join(servers))} have IPv4 addresses only, as the "
        "service's do, and nothing in this network translates (no NAT64/DNS64, RFC 6146/6147, "
        "which IPv6-only mobile networks run for this): the "
        f"{role} reaches neither them nor the DNS server that names them"
        + (f", so it failed before ICE began ({error})." if failed and error else ".")
    )


def _nat64_nodes(result: RunResult) -> list[str]:
    conditions = (result.network or {}).get("conditions") or {}
    return sorted(n for n, c in conditions.items() if isinstance(c, dict) and c.get("nat64"))


def _unpaired_line(result: RunResult, role: str) -> str | None:
    other = other_role(role)
    mine = [c for c in peer_of(result, role).candidates if _is_ipv6(c)]
    gathered_there = peer_of(result, other).candidates
    theirs = [c for c in gathered_there if _is_ipv6(c)]
    if not mine or theirs or not gathered_there:
        return None
    listed = ", ".join(c.endpoint for c in mine)
    return (
        f"The {role}'s IPv6 candidate(s) {listed} had nothing to pair with: ICE pairs only "
        f"candidates of one address family, and the {other} gathered none with IPv6 (an "
        "IPv4-only STUN/TURN server gives no IPv6 server-reflexive or relay candidate "
        "either). The call could only use IPv4."
    )


def _selected_line(result: RunResult) -> str | None:
    pair = result.selected.get("viewer")
    if not pair or not (_is_ipv6(pair.local) and _is_ipv6(pair.remote)):
        return None
    return (
        "The selected pair is IPv6: global addresses routed end to end, no NAT and no STUN "
        "server needed to learn them. The home routers' stateful IPv6 firewalls drop "
        "unsolicited inbound packets, but each side's own outbound check opened its "
        "firewall for the other's (as a NAT's filtering is opened)."
    )


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _is_ipv6(candidate: Candidate) -> bool:
    """An IPv6 candidate with an address (a browser's `::` placeholder does not count)."""
    address = str(candidate.address)
    return family(address) == "ipv6" and address != "::"
