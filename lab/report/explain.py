"""`lab explain`: the lesson a result teaches, in plain words, derived from the result.

Why each candidate exists, why each failed pair failed (the NAT's mapping and filtering
in RFC 4787 terms, a firewall's rule, the hop that dropped the check when the run was
captured, a TURN refusal) and why the selected pair won. Nothing here is written per
scenario: every sentence is built from the candidates, pairs and network conditions.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from lab.core.addresses import family
from lab.core.documents import JsonObject
from lab.core.roles import ROLES, other_role
from lab.observations.ice import Candidate, CandidatePair
from lab.report.address_families import family_lines
from lab.report.network_graph import (
    NetworkGraph,
    conditions_of,
    firewall_of,
    nat_of,
    network_graph,
    peer_host,
    peer_of,
    sides,
    tunnelled,
    vpn_of,
    vpns_of,
)
from lab.report.result import PeerResult, RunResult, SelectedPair

MAPPING = {
    "endpoint-independent": "keeps one public port per inside socket, whatever the destination",
    "address-dependent": "gives each new destination address its own public port",
    "address-and-port-dependent": "gives each new destination address and port its own "
    "public port (symmetric mapping)",
}
FILTERING = {
    "endpoint-independent": ("full-cone", "lets in packets from anyone to a mapped port"),
    "address-dependent": (
        "address-restricted",
        "lets in only packets from an address the inside host has sent to",
    ),
    "address-and-port-dependent": (
        "port-restricted",
        "lets in only packets from an address and port the inside host has sent to",
    ),
}
#: RFC 8445 type preferences: why a relay only wins when nothing direct worked.
TYPE_PREFERENCE = {"host": 126, "prflx": 110, "srflx": 100, "relay": 0}


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)


def explain(result: RunResult) -> list[Section]:
    """The walk-through: outcome, the network, candidates, failed pairs, the selected pairs."""
    graph = network_graph(result)
    sections = [
        Section("Outcome", [outcome_line(result)]),
        Section("The network", network_lines(result, graph)),
        Section("Why each candidate exists", candidate_lines(result, graph)),
        Section("Why pairs failed", failure_lines(result, graph)),
        Section("Why the selected pair won", selected_lines(result)),
    ]
    families = family_lines(result)  # only where the network has IPv6
    if families:
        sections.insert(2, Section("IPv4 and IPv6", families))
    return sections


def explain_text(result: RunResult) -> str:
    """The walk-through as plain text (what `lab explain` prints)."""
    blocks = []
    for section in explain(result):
        body = "\n".join(f"  - {line}" for line in section.lines) or "  (nothing to say)"
        blocks.append(f"{section.title}\n{body}")
    return "\n\n".join(blocks)


def nat_label(nat: JsonObject) -> str:
    """`symmetric (mapping address-and-port-dependent, filtering address-and-port-dependent)`."""
    words = f"mapping {nat.get('mapping')}, filtering {nat.get('filtering')}"
    return f"{nat['preset']} ({words})" if nat.get("preset") else words


def outcome_line(result: RunResult) -> str:
    selected = result.selected.get("viewer")
    if result.outcome != "connected":
        return "The peers did not connect: no data channel message came back."
    if not selected:
        return "The peers connected, but the viewer reported no selected pair."
    how = "through a TURN relay" if _relayed(selected) else "directly, peer to peer"
    return (
        f"The peers connected {how}: the viewer's {selected.local.text()} -> "
        f"the master's {selected.remote.text()}."
    )


def _relayed(pair: SelectedPair | CandidatePair) -> bool:
    return "relay" in (pair.local.type, pair.remote.type)


def network_lines(result: RunResult, graph: NetworkGraph) -> list[str]:
    """Each NAT's mapping and filtering, each firewall's rules, on whose side they stand."""
    lines = []
    side_of = {node: role for role, nodes in sides(result, graph).items() for node in nodes}
    for node in conditions_of(result):
        whose = f" (the {side_of[node]}'s side)" if node in side_of else ""
        nat = nat_of(result, node)
        if nat:
            filter_name, filter_does = FILTERING.get(nat.get("filtering"), ("", "filters"))
            lines.append(
                f"{node}{whose} is a {nat_label(nat)} NAT: it "
                f"{MAPPING.get(nat.get('mapping'), 'maps')}, and its {filter_name} filter "
                f"{filter_does}."
            )
        firewall = firewall_of(result, node)
        if firewall:
            lines.append(f"{node}{whose} has a firewall: {firewall_summary(firewall)}.")
    lines += [vpn_line(vpn) for vpn in vpns_of(result)]
    if not lines:
        lines.append("No NAT and no firewall: every address is reachable as it is.")
    return lines


def vpn_line(vpn: JsonObject) -> str:
    """What a VPN tunnel does to its client's traffic."""
    client, server = vpn.get("client"), vpn.get("server")
    routes = vpn.get("routes") or []
    tunnel = str(vpn.get("client_address", "")).split("/")[0]
    if "0.0.0.0/0" in routes:
        what = (
            f"everything it sends goes through the tunnel to {server} ({vpn.get('endpoint')}), "
            f"which sends it on from its own public address, so the internet sees {client} there"
        )
    else:
        what = (
            f"what it sends to {', '.join(routes)} goes through the tunnel to {server} "
            f"({vpn.get('endpoint')}), everything else through its own gateway (a split tunnel)"
        )
    return (
        f"{client} has a WireGuard VPN up: {what}. Only {client}'s tunnel address ({tunnel}) "
        "is accepted through it: packets from its other addresses that its routes send into "
        f"the tunnel are dropped by {server}."
    )


def firewall_summary(firewall: JsonObject) -> str:
    """`tcp-web-only: outbound deny by default, allows udp 53, tcp 80,443; inbound allow`."""
    parts = []
    for direction in ("outbound", "inbound"):
        policy = firewall.get(direction) or {}
        allowed = [
            f"{r.get('protocol') or 'any'} {','.join(r.get('ports') or []) or 'any port'}"
            + (f" to {','.join(r['addresses'])}" if r.get("addresses") else "")
            + (f" to {','.join(r['names'])}" if r.get("names") else "")
            for r in policy.get("rules") or []
            if r.get("action") == "allow"
        ]
        text = f"{direction} {policy.get('default', 'allow')} by default"
        if allowed:
            text += ", allows " + "; ".join(allowed)
        parts.append(text)
    preset = f"{firewall['preset']}: " if firewall.get("preset") else ""
    return preset + "; ".join(parts)


def _locals(result: RunResult, role: str) -> list[Candidate]:
    """The peer's gathered candidates, then the peer-reflexive ones its checks revealed."""
    found = list(peer_of(result, role).candidates)
    for pair in result.pairs_of(role):
        local = pair.local
        if local.type == "prflx" and not any(local.same_as(c) for c in found):
            found.append(local)
    return found


def candidate_lines(result: RunResult, graph: NetworkGraph) -> list[str]:
    lines = []
    by_side = sides(result, graph)
    for role in ROLES:
        peer = peer_of(result, role)
        host = peer_host(result, role) or role
        nats = [n for n in by_side.get(role, []) if nat_of(result, n)]
        reasons: dict[str, list[str]] = {}
        for candidate in _locals(result, role):
            reasons.setdefault(_why(candidate, host, nats, result), []).append(candidate.text())
        for why, described in reasons.items():
            lines.append(f"{role} {', '.join(described)}: {why}")
        for error in peer.extra.get("gathering_errors") or []:
            lines.append(f"{role} gathered nothing from {error.get('url')}: {error.get('reason')}.")
        for skipped in peer.extra.get("skipped_servers") or []:
            lines.append(f"{role} skipped {skipped.get('url')}: {skipped.get('reason')}.")
        if not peer.candidates and not peer.error:
            lines.append(f"{role}: no candidates were observed.")
    return lines


def _why(candidate: Candidate, host: str, nats: list[str], result: RunResult) -> str:
    kind = candidate.type
    outer = nats[-1] if nats else None
    if kind == "host":
        if not candidate.address:
            return f"an address of {host} that its browser reports without the address itself."
        if str(candidate.address).endswith(".local"):
            return (
                f"{host}'s own address, hidden behind an mDNS name as browsers do; the other "
                "side can only use it if it resolves the name on the same LAN."
            )
        vpn = vpn_of(result, host)
        if vpn and str(vpn.get("client_address", "")).startswith(f"{candidate.address}/"):
            return f"the address of {host}'s VPN tunnel interface, private behind {vpn['server']}."
        if vpn and "0.0.0.0/0" in vpn.get("routes", []):
            return f"the address of {host}'s own interface on its LAN, behind the VPN."
        if family(str(candidate.address)) == "ipv6":
            guard = f"; {outer}'s IPv6 firewall decides what reaches it" if outer else ""
            return (
                f"{host}'s own global IPv6 address: routed, not translated, so the other side "
                f"sees it as it is{guard}."
            )
        where = f", private behind {outer}" if outer else ""
        return f"the address of {host}'s own interface{where}."
    if kind == "srflx":
        via = f" by {outer}" if outer else ""
        return (
            f"server-reflexive: the public address and port {host}'s STUN request to "
            f"{candidate.server or 'the STUN server'} came from, as mapped{via}."
        )
    if kind == "relay":
        return (
            f"an allocation on the TURN server ({candidate.server or 'its server'}), "
            f"requested over {candidate.relay_protocol or 'udp'}: packets the other "
            f"peer sends to it are relayed to {host}."
        )
    if kind == "prflx":
        mapping = [n for n in nats if (nat_of(result, n) or {}).get("mapping") != MAPPING_EI]
        because = (
            f": {mapping[-1]}'s {nat_of(result, mapping[-1]).get('mapping')} mapping gave "
            "the check's destination a public port of its own, one no STUN server had seen"
            if mapping
            else ""
        )
        return (
            "peer-reflexive: the other peer saw a check arrive from this address, which was "
            f"among none of {host}'s candidates{because}."
        )
    return "a candidate of a type the lab does not explain."


MAPPING_EI = "endpoint-independent"


def _failure_key(pair: CandidatePair) -> tuple[object, ...]:
    failure = pair.failure or {}
    dropped = failure.get("dropped_at") or {}
    return (
        pair.agent,
        pair.local.type == "relay",
        pair.remote.type,
        failure.get("reason"),
        failure.get("code"),
        dropped.get("node"),
        dropped.get("rule"),
        dropped.get("direction"),
    )


def failure_lines(result: RunResult, graph: NetworkGraph) -> list[str]:
    """One line per kind of failure: which pairs, and the behaviour that failed them."""
    pairs = result.pairs
    failed = [p for p in pairs if p.state == "failed"]
    groups: dict[tuple[object, ...], list[CandidatePair]] = {}
    for pair in failed:
        lost = _lost_in_tunnel(pair, result) is not None
        groups.setdefault((*_failure_key(pair), lost), []).append(pair)
    by_side = sides(result, graph)
    lines = []
    for group in groups.values():
        first = group[0]
        locals_ = sorted({p.local.type for p in group})
        what = (
            f"{first.agent}: {'/'.join(locals_)} -> the other's {first.remote.type} "
            f"({len(group)} pair{'s' if len(group) > 1 else ''})"
        )
        lines.append(f"{what} failed: {failure_reason(first, result, by_side)}")
    waiting = [p for p in pairs if p.state not in ("failed", "succeeded")]
    if waiting:
        states = sorted({str(p.state) for p in waiting})
        lines.append(
            f"{len(waiting)} pair(s) were still {', '.join(states)} when the run ended: "
            "the agent had not finished checking them."
        )
    if not failed and not waiting:
        lines.append("No pair failed.")
    return lines


def failure_reason(pair: CandidatePair, result: RunResult, by_side: dict[str, list[str]]) -> str:
    """Why one failed pair failed, naming the behaviour responsible."""
    failure = pair.failure or {}
    reason = failure.get("reason")
    dropped = failure.get("dropped_at")
    lost = _lost_in_tunnel(pair, result)
    if lost and reason == "timeout":
        return lost
    if reason == "turn_error":
        code = failure.get("code")
        return f"the TURN server refused it with {code} {failure.get('message') or ''}".rstrip() + (
            " (403 Forbidden: the server will not relay to that peer address)."
            if code == 403
            else "."
        )
    if dropped:
        return _dropped(pair, dropped, result, by_side)
    if reason == "timeout":
        return _timeout(pair, result, by_side)
    return f"{reason or 'unknown'}: {failure.get('message') or 'no detail recorded'}."


def _lost_in_tunnel(pair: CandidatePair, result: RunResult) -> str | None:
    """Checks a VPN client sent from the wrong address for their way: from a LAN address
    into the tunnel (the concentrator drops them: WireGuard accepts only the client's tunnel
    address), or from the tunnel address past a split tunnel (out through the home router,
    whose answers cannot find a tunnel address)."""
    agent = pair.agent
    vpn = vpn_of(result, peer_host(result, agent))
    local = _sent_from(pair)
    address, remote = str(local.address or ""), str(pair.remote.address)
    if not vpn or local.type != "host" or not address:
        return None
    tunnel = str(vpn.get("client_address", "")).split("/")[0]
    if address != tunnel and tunnelled(vpn, remote):
        return (
            f"the checks left from {agent}'s LAN address {address}, and its VPN routes "
            f"{remote} into the tunnel, where {vpn['server']} drops them: WireGuard accepts "
            f"only {agent}'s tunnel address ({tunnel}) from it."
        )
    if address == tunnel and not tunnelled(vpn, remote):
        return (
            f"the checks left from {agent}'s tunnel address {address}, but its split tunnel "
            f"does not carry {remote}: they went out through its home router, and the "
            "answers cannot find their way back to a tunnel address."
        )
    return None


def _sent_from(pair: CandidatePair) -> Candidate:
    """The candidate the checks left from: the local candidate's base when the result
    records one (a srflx's host, RFC 8445), else the local candidate itself."""
    base = pair.extra.get("local_base")
    return Candidate.from_json(base) if base else pair.local


def _dropped(
    pair: CandidatePair,
    dropped: JsonObject,
    result: RunResult,
    by_side: dict[str, list[str]],
) -> str:
    node, rule = dropped.get("node"), str(dropped.get("rule") or "")
    direction = dropped.get("direction") or ""
    if rule.startswith("no route"):
        return (
            f"{node} dropped the checks: {rule}. {pair.remote.address} is a private address "
            "inside the other peer's network, not reachable from the internet."
        )
    nat, firewall = nat_of(result, node), firewall_of(result, node)
    if nat and (direction == "inbound" or "filter" in rule):
        return _filtered(pair, node, nat, rule, result, by_side)
    if firewall:
        return f"{node}'s firewall dropped the checks ({direction}) by the rule '{rule}'."
    return f"{node} dropped the checks ({direction}) by the rule '{rule}'."


def _filtered(
    pair: CandidatePair,
    node: str,
    nat: JsonObject,
    rule: str,
    result: RunResult,
    by_side: dict[str, list[str]],
) -> str:
    """An inbound drop at the other side's NAT filter, and the mapping that caused it."""
    filter_name, filter_does = FILTERING.get(nat.get("filtering"), ("its", "filters"))
    text = (
        f"{node}'s {filter_name} filter ({nat.get('filtering')} filtering, rule '{rule}') "
        f"dropped them on the way in: it {filter_does}, and the {other_role(pair.agent)} had "
        "not sent to where they came from."
    )
    if pair.local.type == "relay":
        return text + f" The relay address {pair.local.address} was new to it."
    cause = _mapping_cause(pair, result, by_side)
    return text + (f" {cause}" if cause else "")


def _mapping_cause(pair: CandidatePair, result: RunResult, by_side: dict[str, list[str]]) -> str:
    """The sender's NAT mapping that made its checks arrive from an unexpected port (empty
    when its NAT keeps one port per socket, or the check left from a relay)."""
    agent = pair.agent
    if pair.local.type == "relay":
        return ""
    mapping_nats = [
        n
        for n in by_side.get(agent, [])
        if (nat_of(result, n) or {}).get("mapping") not in (None, MAPPING_EI)
    ]
    if not mapping_nats:
        return ""
    mapper = mapping_nats[-1]
    mapping = nat_of(result, mapper).get("mapping")
    other = other_role(agent)
    source = _public_source(pair)
    srflx = [c for c in peer_of(result, agent).candidates if c.type == "srflx"]
    seen = f" {srflx[0].endpoint}" if srflx else ""
    came = f" from {source}" if source else ""
    if mapping == "address-and-port-dependent":
        return (
            f"The cause is on the {agent}'s side: {mapper}'s symmetric mapping ({mapping}) "
            f"sent the checks{came}, a new public port for this destination, not the "
            f"srflx{seen} its STUN server saw and the {other} knew - so the {other}'s own "
            "checks had opened its NAT only for that srflx."
        )
    return (
        f"The cause is on the {agent}'s side: {mapper}'s {mapping} mapping sent the "
        f"checks{came}, a public port other than the srflx{seen} the {other} knew."
    )


def _public_source(pair: CandidatePair) -> str | None:
    """Where the dropped check came from after the sender's NAT (with --capture)."""
    for check in (pair.trail or {}).get("checks") or []:
        ended = check.get("ended") or {}
        if ended.get("from"):
            return str(ended["from"])
    return None


def _timeout(pair: CandidatePair, result: RunResult, by_side: dict[str, list[str]]) -> str:
    """A check that went unanswered, without wire evidence: what the conditions imply."""
    remote, other = pair.remote, other_role(pair.agent)
    sent = "its" if pair.checks_sent is None else pair.checks_sent
    text = f"no answer to {sent} checks before the timeout"
    if remote.type == "host" and _private(remote.address) and by_side.get(other):
        text += (
            f": {remote.address} is a private address inside the {other}'s "
            "network, which nothing outside it can route to."
        )
    else:
        hint = _filter_hint(other, result, by_side)
        cause = _mapping_cause(pair, result, by_side) if hint else ""
        text += (f": likely because {hint}." if hint else ".") + (f" {cause}" if cause else "")
    return text + " (With --capture the result names the hop that dropped them.)"


def _private(address: str) -> bool:
    try:
        return ipaddress.ip_address(str(address)).is_private
    except ValueError:
        return False


def _filter_hint(role: str, result: RunResult, by_side: dict[str, list[str]]) -> str:
    for node in by_side.get(role, []):
        nat = nat_of(result, node)
        if nat and nat.get("filtering") != "endpoint-independent":
            name, does = FILTERING.get(nat.get("filtering"), ("its", "filters"))
            return f"the {role}'s NAT {node} has a {name} filter that {does}"
        if firewall_of(result, node):
            return f"the {role}'s firewall on {node} may drop them"
    return ""


def selected_lines(result: RunResult) -> list[str]:
    lines = []
    for role in ROLES:
        chosen = result.selected.get(role)
        peer = peer_of(result, role)
        if not chosen:
            why = f" ({peer.error})" if peer.error else ""
            lines.append(f"The {role} selected no pair{why}: no check of its succeeded in time.")
            continue
        lines.append(_selected_line(role, chosen, result, peer))
    return lines


def _priority(pair: CandidatePair) -> int | None:
    """The pair's priority (RFC 8445 6.1.2.3) when its agent reports one."""
    return pair.extra.get("priority")


def _selected_line(role: str, chosen: SelectedPair, result: RunResult, peer: PeerResult) -> str:
    pair = result.selected_pair_of(role)
    succeeded = [p for p in result.pairs_of(role) if p.state == "succeeded"]
    text = f"The {role} chose {chosen.text()}"
    if chosen.rtt_ms is not None and chosen.rtt_upper_bound:
        text += (
            f" (round trip at most {chosen.rtt_ms} ms: its checks were answered only after a"
            " retransmission, as the first ones died at a NAT before the other side had"
            " opened it, and an answer cannot say which send it answers)"
        )
    elif chosen.rtt_ms is not None:
        text += f" (round trip {chosen.rtt_ms} ms)"
    reasons = []
    ice_role = peer.extra.get("ice_role")
    controlling = ice_role == "controlling" or (ice_role is None and role == "viewer")
    if pair and pair.nominated:
        reasons.append(
            "it nominated it, as the controlling agent"
            if controlling
            else f"the {other_role(role)}, the controlling agent, nominated it"
        )
    priority = _priority(pair) if pair else None
    if succeeded and priority is not None:
        higher = [p for p in succeeded if (_priority(p) or 0) > priority]
        reasons.append(
            (
                "it was the only pair that succeeded"
                if len(succeeded) == 1
                else f"its priority was the highest of the {len(succeeded)} pairs that succeeded"
            )
            if not higher
            else f"{len(higher)} succeeded pair(s) had a higher priority, but this one was "
            "nominated first"
        )
    if _relayed(chosen):
        direct = [p for p in succeeded if not _relayed(p)]
        reasons.append(
            "a relay has the lowest type preference (0, against host 126, prflx 110, srflx "
            "100), so it wins only when "
            + ("no direct pair succeeded" if not direct else "the direct pairs came too late")
        )
        protocol = chosen.local.relay_protocol
        if protocol and chosen.local.type == "relay":
            reasons.append(_relay_protocol(protocol, peer))
        elif chosen.remote.relay_protocol:
            reasons.append(
                f"the relay is the {other_role(role)}'s, allocated over "
                f"{chosen.remote.relay_protocol.upper()}"
            )
    else:
        reasons.append("both ends are direct addresses, so no TURN server carries the media")
    return text + ": " + "; ".join(reasons) + "."


def _relay_protocol(protocol: str, peer: PeerResult) -> str:
    udp = any(c.type == "relay" and c.relay_protocol == "udp" for c in peer.candidates)
    if protocol == "udp":
        return "relayed over UDP to the TURN server, the cheapest relay"
    if udp:
        return (
            f"relayed over {protocol.upper()} to the TURN server, though a UDP allocation existed"
        )
    return (
        f"relayed over {protocol.upper()} to the TURN server: no allocation over UDP "
        "succeeded for this peer, so TURN over TCP/TLS carried it"
    )
