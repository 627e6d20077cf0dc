"""The rule table: from one peer's facts to a network condition, with the reasoning.

Each rule is data: the condition in words (shown in the README's table), the test on the
facts, the reasoning, the scenario fragment that reproduces the condition (`{side}` is
the peer the evidence is about, `{other}` the other one; nodes are the bundled
`two-homes` topology's), the advice the service's developer guide gives for the case,
and the lesson the written scenario teaches. Rules are tried for every peer the artifact
shows; several may hold at once (their fragments are merged in table order).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.core.documents import JsonObject
from lab.report.diagnose import knowledge
from lab.report.diagnose.facts import Facts, PeerFacts
from lab.report.diagnose.findings import ICE_FAILURES, is_private, real_address

PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
TCP_BASED = {"tcp", "tls"}


@dataclass(frozen=True)
class Rule:
    name: str
    condition: str
    test: Callable[[PeerFacts], bool]
    reasoning: str
    fragment: JsonObject
    advice: str
    lesson: str
    absent: tuple[str, ...] = field(default=())
    #: The lines that show the condition (default: TURN/gathering errors, selected pair, ICE end).
    evidence: Callable[[PeerFacts], list[int]] | None = None
    #: Figures the reasoning and the fragment name, e.g. {rtt_ms}, {delay_ms}.
    values: Callable[[PeerFacts], JsonObject] | None = None


@dataclass(frozen=True)
class Inference:
    """A rule that held for one peer, with the lines that support it."""

    rule: Rule
    role: str
    evidence: list[int]
    values: JsonObject = field(default_factory=dict)

    def as_dict(self) -> JsonObject:
        names = {**self.values, "side": self.role, "other": other(self.role)}
        return {
            "rule": self.rule.name,
            "role": self.role,
            "condition": self.rule.condition,
            "reasoning": self.rule.reasoning.format(**names),
            "fragment": fragment_for(self.rule, self.role, self.values),
            "advice": self.rule.advice,
            "evidence_lines": self.evidence,
        }


def other(role: str) -> str:
    return "master" if role == "viewer" else "viewer"


def _relay_over_tcp_only(p: PeerFacts) -> bool:
    protocols = set(p.relay_protocols) | {(p.selected or {}).get("relay_protocol")} - {None}
    return "relay" in p.has and not protocols - TCP_BASED


def _web_only(p: PeerFacts) -> bool:
    """TURN over TCP on a port other than 443 failed while TLS on 443 gave the relay."""
    tcp_3478_failed = any(
        "transport=tcp" in e["url"] and ":443" not in e["url"] for e in p.gathering_errors
    )
    protocols = set(p.relay_protocols) | {(p.selected or {}).get("relay_protocol")}
    return _no_udp(p) and "tls" in protocols and tcp_3478_failed


def _no_udp(p: PeerFacts) -> bool:
    return p.gathered() and "srflx" not in p.has and "relay" in p.has and _relay_over_tcp_only(p)


def _servers_unreachable(p: PeerFacts) -> bool:
    tried = bool(p.gathering_errors or p.turn_state_failures or p.socket_errors)
    tried = tried or "0x5a000020" in p.statuses
    return p.gathered() and not p.has & {"srflx", "relay"} and tried and not p.turn_codes()


def _tcp_dropped(p: PeerFacts) -> bool:
    """TURN over TCP/TLS never got its TCP connection while UDP worked, or its connect()
    stayed in progress until TURN gave up (whatever the log says of UDP)."""
    udp_worked = "srflx" in p.has and not p.udp_servers_timed_out()
    return (udp_worked and p.tcp_turn_timed_out()) or p.tcp_connect_stuck()


def _tcp_evidence(p: PeerFacts) -> list[int]:
    lines = [c["line"] for c in p.socket_checks]
    lines += [t["line"] for t in p.turn_transitions if "SOCKET" in t["from"] + t["to"]]
    lines += [f["line"] for f in p.turn_failures]
    lines += [e["line"] for e in p.gathering_errors if "transport=tcp" in e["url"]]
    lines += [p.status_lines[c] for c in ("0x5a000020",) if c in p.status_lines]
    return _first(lines)


def _udp_evidence(p: PeerFacts) -> list[int]:
    lines = [t["line"] for t in p.turn_transitions]
    lines += [f["line"] for f in p.turn_failures]
    lines += [p.status_lines[c] for c in ("0x5a000020", "0x5a00002c") if c in p.status_lines]
    return _first(lines)


#: Round trips above these are more than the path adds (ms): a LAN answers in a few ms, a
#: direct path across the internet in under 150 ms, a relayed one in under 250 ms.
TYPICAL_RTT_MS = {"lan": 10, "direct": 150, "relay": 250}
#: How far above the typical round trip counts as added delay (ms).
DELAY_MARGIN_MS = 40


def _same_lan(p: PeerFacts) -> bool:
    """The selected pair's two addresses are private and in one /24: the pair stays on a LAN."""
    sel = p.selected or {}
    local, remote = real_address(sel.get("local_address")), real_address(sel.get("remote_address"))
    if not local or not remote:
        return False
    same_net = ipaddress.ip_network(f"{local}/24", strict=False) == ipaddress.ip_network(
        f"{remote}/24", strict=False
    )
    return bool(is_private(local) and is_private(remote) and same_net)


def _path(p: PeerFacts) -> str:
    sel = p.selected or {}
    if _same_lan(p):
        return "lan"
    return "relay" if "relay" in (sel.get("local"), sel.get("remote")) else "direct"


def _added_delay(p: PeerFacts) -> bool:
    rtt = (p.selected or {}).get("rtt_ms")
    return rtt is not None and rtt > TYPICAL_RTT_MS[_path(p)] + DELAY_MARGIN_MS


def _delay_values(p: PeerFacts) -> JsonObject:
    rtt = float((p.selected or {}).get("rtt_ms") or 0)
    path = _path(p)
    return {
        "rtt_ms": round(rtt),
        "path": {"lan": "a LAN", "direct": "a direct path", "relay": "a relayed path"}[path],
        "typical_ms": TYPICAL_RTT_MS[path],
        # the lab's links add next to nothing: half the round trip each way reproduces it
        "delay_ms": max(10, round(rtt / 2 / 10) * 10),
    }


def _lan_values(p: PeerFacts) -> JsonObject:
    sel = p.selected or {}
    return {"local_address": sel.get("local_address"), "remote_address": sel.get("remote_address")}


def _selected_evidence(p: PeerFacts) -> list[int]:
    return _first(p.selected_lines)


def _shared_address(p: PeerFacts) -> str | None:
    """This peer's server-reflexive address when the other peer's candidates come from it too."""
    mine = {c.get("address") for c in p.candidates if c.get("side", "local") == "local"}
    mine = {a for a in mine if real_address(a)} & {
        c.get("address")
        for c in p.candidates
        if c.get("side", "local") == "local" and c["type"] == "srflx"
    }
    theirs = {c.get("address") for c in p.candidates if c.get("side") == "remote"}
    shared = sorted(a for a in mine & theirs if is_private(a) is False)
    return shared[0] if shared else None


def _shared_evidence(p: PeerFacts) -> list[int]:
    address = _shared_address(p)
    return _first([c["line"] for c in p.candidates if c.get("address") == address and "line" in c])


#: Causes of a status (status_codes.yaml) that are not the path between the peers.
NOT_NETWORK = ("signaling", "credentials", "configuration", "sdk", "device")


def _service_failures(p: PeerFacts) -> list[JsonObject]:
    """Status codes this peer met whose cause is not the network (signaling, credentials,
    the SDK, the device), by the status table."""
    rows = [knowledge.status(code) for code in dict.fromkeys(p.statuses)]
    return [row for row in rows if row["cause"] in NOT_NETWORK]


def _refused_by_service(p: PeerFacts) -> bool:
    return any(400 <= h.get("status", 0) < 500 for h in p.http_statuses)


def _not_the_network(p: PeerFacts) -> bool:
    return bool(_service_failures(p) or p.clock_skew_lines or _refused_by_service(p))


def _service_values(p: PeerFacts) -> JsonObject:
    parts = [
        f"{row['code']} {row['name']} ({row['meaning']})"
        + (f": {row['advice']}" if row.get("advice") else "")
        for row in _service_failures(p)
    ]
    if p.clock_skew_lines:
        parts.append(
            "the service refused the device's clock (the SDK corrected a clock skew): "
            "synchronise the clock (NTP)"
        )
    refused = sorted({h["status"] for h in p.http_statuses if 400 <= h["status"] < 500})
    if refused:
        parts.append(
            f"the service answered HTTP {', '.join(map(str, refused))} "
            "(credentials, signature or clock)"
        )
    return {"what": "; ".join(parts)}


def _service_evidence(p: PeerFacts) -> list[int]:
    lines = [
        p.status_lines[row["code"]] for row in _service_failures(p) if row["code"] in p.status_lines
    ]
    lines += p.clock_skew_lines + [e["line"] for e in p.signaling_errors]
    lines += [h["line"] for h in p.http_statuses if 400 <= h["status"] < 500]
    return _first(lines)


def _deny_to_turn(protocol: str) -> JsonObject:
    """The fragment of a firewall on SIDE's router that drops `protocol` to the TURN server."""
    deny = {"action": "deny", "protocol": protocol, "hosts": ["turn"]}
    return {
        "conditions": {
            "{side}-gw": {"firewall": {"outbound": {"default": "allow", "rules": [deny]}}}
        }
    }


def _first(lines: list[int]) -> list[int]:
    return sorted(set(lines))[:10]


def _credentials(p: PeerFacts) -> bool:
    return 401 in p.turn_codes() and "relay" not in p.has


def _symmetric_here(p: PeerFacts) -> bool:
    """This side maps per destination: its own prflx moved ports, or it needed its relay."""
    sel = p.selected or {}
    needed_relay = sel.get("local") == "relay" and sel.get("remote") != "relay" and "srflx" in p.has
    return p.mapping_changes.get("local", False) or needed_relay


def _symmetric_there(p: PeerFacts) -> bool:
    sel = p.selected or {}
    needed_relay = sel.get("remote") == "relay" and sel.get("local") in ("srflx", "prflx")
    return p.mapping_changes.get("remote", False) or needed_relay


def _no_turn(p: PeerFacts) -> bool:
    tried_turn = any(u.startswith("turn") for u in p.servers_tried if not p.turn_skipped)
    return (
        p.outcome == "failed"
        and p.gathered()
        and "relay" not in p.has
        and (p.turn_skipped or not (tried_turn or p.turn_errors or p.turn_state_failures))
    )


def _direct_failed(p: PeerFacts) -> bool:
    return (
        p.outcome == "failed" and "srflx" in p.has and "relay" not in p.has and not p.remote_relays
    )


def _direct(p: PeerFacts) -> bool:
    sel = p.selected or {}
    return (
        p.outcome == "connected"
        and bool(sel)
        and "relay" not in (sel.get("local"), sel.get("remote"))
    )


RULES: tuple[Rule, ...] = (
    Rule(
        name="web-only-firewall",
        condition=(
            "no srflx; the relay came over TLS on 443 while TURN over TCP on another port failed"
        ),
        test=_web_only,
        reasoning=(
            "The {side} has no server-reflexive candidate although it asked a STUN server, and "
            "its only relay was allocated over TLS on 443 while TURN over UDP and over TCP on "
            "another port failed: its network lets only web ports (TCP 80/443) out, as an "
            "enterprise firewall or a VPN does."
        ),
        fragment={"conditions": {"{side}-gw": {"firewall": "tcp-web-only"}}},
        advice=(
            "Enterprise or restricted network: try another network or disconnect the VPN; keep "
            "TURN over TLS on 443 (turns:...:443?transport=tcp) in the ICE servers, it is the "
            "only way out of such a network."
        ),
        lesson=(
            "An enterprise firewall that lets only TCP 80/443 out leaves TURN over "
            "TLS on 443 as the only path."
        ),
        absent=("srflx",),
    ),
    Rule(
        name="udp-blocked",
        condition="no srflx; relay candidates only over TCP/TLS",
        test=lambda p: _no_udp(p) and not _web_only(p),
        reasoning=(
            "The {side} gathered no server-reflexive candidate (no STUN answer came back) and "
            "reached TURN only over TCP or TLS: UDP to the internet is blocked on its side."
        ),
        fragment={"conditions": {"{side}-gw": {"firewall": "udp-blocked"}}},
        advice=(
            "Enterprise or restricted network (or a VPN) blocking UDP: try another network or "
            "disconnect the VPN; TURN over TCP/TLS on 443 still connects, relayed."
        ),
        lesson="With UDP blocked, no STUN answer comes back and only TURN over TCP/TLS connects.",
        absent=("srflx",),
    ),
    Rule(
        name="servers-unreachable",
        condition=(
            "neither srflx nor relay although STUN/TURN were tried (timeouts, refused connections)"
        ),
        test=_servers_unreachable,
        reasoning=(
            "The {side} tried its STUN and TURN servers but got neither a server-reflexive nor a "
            "relay candidate, and no TURN error came back: the servers are unreachable from its "
            "network (a firewall drops or refuses the traffic to them). With only host "
            "candidates, no pair can work across NATs: 0x5a00000d."
        ),
        fragment={
            "conditions": {
                "{side}-gw": {
                    "nat": "symmetric",
                    "firewall": {
                        "deny_with": "reject",
                        "outbound": {
                            "default": "allow",
                            "rules": [{"action": "deny", "hosts": ["turn"]}],
                        },
                    },
                }
            }
        },
        advice=(
            '"No valid ICE candidate": no route was found; a firewall or an unreachable '
            "network. Allow the STUN/TURN servers (port 443, UDP and TCP) or try another network."
        ),
        lesson=(
            "A firewall that blocks the STUN/TURN servers leaves only host "
            "candidates: no pair connects (0x5a00000d)."
        ),
        absent=("srflx", "relay"),
    ),
    Rule(
        name="turn-tcp-dropped",
        condition=(
            "TURN over TCP/TLS stayed connecting until the timeout while srflx was gathered, or "
            "its connect() stayed in progress (repeated checks over a second, nothing later shows "
            "TCP to TURN working, or TURN failed in TURN_STATE_CHECK_SOCKET_CONNECTION)"
        ),
        test=_tcp_dropped,
        reasoning=(
            "The {side}'s TCP connection to the TURN server never completed: connect() stayed "
            "in progress at each check (socketConnectionIsConnected: 'Operation already in "
            "progress'), and where the log goes on, the TURN connection failed in "
            "TURN_STATE_CHECK_SOCKET_CONNECTION. The SYN gets no answer: outbound TCP to the "
            "TURN port is dropped silently on this side, so TURN over TCP/TLS cannot work; "
            "without another path there is no candidate pair."
        ),
        evidence=_tcp_evidence,
        fragment=_deny_to_turn("tcp"),
        advice="Allow outbound TCP to the TURN servers on 443, or use TURN over UDP.",
        lesson=(
            "A firewall that silently drops TCP to the TURN server makes TURN over "
            "TCP/TLS wait for the timeout."
        ),
    ),
    Rule(
        name="no-other-path",
        condition=(
            "failed while TURN over TCP/TLS was stuck connecting, and the log shows no srflx, no "
            "relay and no TURN answer over UDP"
        ),
        test=lambda p: (
            p.outcome == "failed"
            and _tcp_dropped(p)
            and not p.has & {"srflx", "relay"}
            and not p.turn_answered()
        ),
        reasoning=(
            "The {side} did not connect (no candidate pair to send on), and nothing in its log "
            "shows another way out: no server-reflexive candidate, no relay, no TURN answer over "
            "UDP. With TCP to TURN dropped, the failure says UDP to the STUN/TURN server does not "
            "get through either; the scenario drops it too."
        ),
        fragment=_deny_to_turn("udp"),
        advice=(
            "Allow the STUN/TURN servers from this network (UDP and TCP on 443), or try another "
            "network; with neither, only a peer on the same LAN can be reached."
        ),
        lesson="With UDP and TCP to STUN/TURN both dropped, only host candidates remain.",
        evidence=_tcp_evidence,
    ),
    Rule(
        name="turn-udp-timeout",
        condition=(
            "a TURN connection failed waiting for the answer to its first Allocate "
            "(TURN_STATE_GET_CREDENTIALS or ALLOCATION, 0x5a000020/0x5a00002c), never waited on "
            "a TCP connect, and no TURN server answered"
        ),
        test=lambda p: p.turn_udp_unanswered(),
        reasoning=(
            "The {side}'s TURN connection sent its first Allocate and never got the server's "
            "401 challenge back before the state timed out; it never waited on a TCP connect, so "
            "this was TURN over UDP. The TURN server does not answer over UDP from this network: "
            "UDP to the TURN port is blocked or lost on this side."
        ),
        fragment=_deny_to_turn("udp"),
        advice=(
            "Allow outbound UDP to the TURN servers (port 443), or keep TURN over TCP/TLS "
            "(turns:...:443?transport=tcp) in the ICE servers."
        ),
        lesson="A firewall that drops UDP to TURN leaves the first Allocate unanswered.",
        evidence=_udp_evidence,
    ),
    Rule(
        name="turn-credentials",
        condition="TURN 401 Unauthorized and no relay candidate",
        test=_credentials,
        reasoning=(
            "Every Allocate of the {side} ended in 401 Unauthorized, also after the "
            "authenticated retry, and no relay candidate was gathered: its TURN credentials are "
            "wrong or expired (the service's last 300 s)."
        ),
        fragment={
            "servers": {
                "stun_turn": {
                    "host": "turn",
                    "software": "mock",
                    "faults": {"credentials": "expired"},
                }
            }
        },
        advice=(
            "Fetch fresh TURN credentials with GetIceServerConfig before they expire (the C SDK "
            "refreshes 30 s before the TTL); check the device clock."
        ),
        lesson="Expired TURN REST credentials get 401 on every Allocate: no relay candidate.",
        absent=("relay",),
    ),
    Rule(
        name="turn-forbidden-ip",
        condition=(
            "TURN 403 (Forbidden IP) on a permission or check towards a peer, or 0x5a000027 "
            "(peer not usable)"
        ),
        test=lambda p: 403 in p.turn_codes() or "0x5a000027" in p.statuses,
        reasoning=(
            "The TURN server answered 403 (Forbidden IP) for a peer of the {side}'s relay: the "
            "service's TURN servers refuse private peer addresses (192.168.*, 10.*), so relay "
            "pairs towards the other side's host candidates fail (0x5a000027 in the C SDK)."
        ),
        fragment={
            "servers": {
                "stun_turn": {"host": "turn", "software": "coturn", "denied_peers": PRIVATE_RANGES}
            }
        },
        advice=(
            "403 Forbidden IP for private candidates is benign: the guide says to disregard it "
            "when other pairs connect."
        ),
        lesson=(
            "The service's TURN refuses private peers with 403 Forbidden IP; pairs "
            "to public addresses still work."
        ),
    ),
    Rule(
        name="turn-quota",
        condition="TURN 486 Allocation Quota Reached",
        test=lambda p: 486 in p.turn_codes(),
        reasoning=(
            "The TURN server refused an allocation of the {side} with 486: the user's allocation "
            "quota was reached (too many relay candidates or leaked allocations)."
        ),
        fragment={
            "servers": {"stun_turn": {"host": "turn", "software": "mock", "faults": {"quota": 1}}}
        },
        advice=(
            "Free allocations that are not used (close old peer connections); use "
            "fewer TURN URLs per peer."
        ),
        lesson="A TURN allocation quota (486) leaves later peers without a relay.",
    ),
    Rule(
        name="symmetric-nat-here",
        condition=(
            "this peer's mapping changed per destination (prflx on its srflx "
            "address with another port), or it connected only through its own relay "
            "although it had srflx"
        ),
        test=_symmetric_here,
        reasoning=(
            "The {side}'s NAT gave it a new public port per destination (or it could connect "
            "only through its own relay although STUN worked): an address-and-port-dependent "
            "mapping, a symmetric NAT, as on many 4G networks. Its srflx address is useless to "
            "the other side; TURN is needed."
        ),
        fragment={"conditions": {"{side}-gw": {"nat": "symmetric"}}},
        advice=(
            "Symmetric NAT: TURN is required; enable TURN on both sides "
            "(STUN/TURN, or TURN only in the browser)."
        ),
        lesson=(
            "Behind a symmetric NAT the srflx candidate is useless to the other "
            "side; ICE falls back to TURN."
        ),
    ),
    Rule(
        name="symmetric-nat-there",
        condition=(
            "the other peer's mapping changed per destination, or the pair went "
            "through the other's relay"
        ),
        test=_symmetric_there,
        reasoning=(
            "The {other} showed up with new peer-reflexive ports per destination (or was reached "
            "only through its relay): the {other} is behind a symmetric NAT."
        ),
        fragment={"conditions": {"{other}-gw": {"nat": "symmetric"}}},
        advice="Symmetric NAT on the other side: TURN is required; enable TURN on both sides.",
        lesson="A symmetric NAT on one side is enough to make every direct pair fail.",
    ),
    Rule(
        name="same-lan",
        condition="the selected pair's two addresses are private and in one /24",
        test=_same_lan,
        reasoning=(
            "The selected pair joins {local_address} and {remote_address}: both private, in one "
            "subnet. The two peers are on the same LAN and the media never leaves it; no NAT "
            "traversal was needed (a peer-reflexive candidate here is the other peer's host "
            "address, learned from its checks before its candidate arrived)."
        ),
        fragment={
            "topology": "home-lan",
            "conditions": {"home-gw": {"nat": "port-restricted-cone"}},
        },
        advice="Nothing to fix in the network: the peers reach each other on their LAN.",
        lesson="On one LAN the host candidates reach each other directly; ICE needs no server.",
        evidence=_selected_evidence,
        values=_lan_values,
    ),
    Rule(
        name="added-delay",
        condition=(
            "the selected pair's round trip is more than 40 ms above what its path usually takes "
            "(a LAN 10 ms, a direct path 150 ms, a relay 250 ms)"
        ),
        test=_added_delay,
        reasoning=(
            "The selected pair's round trip is {rtt_ms} ms where {path} usually takes under "
            "{typical_ms} ms: the network between the peers adds delay (slow or congested Wi-Fi, a "
            "loaded device, a queueing uplink). The scenario adds {delay_ms} ms each way on the "
            "{side}'s link."
        ),
        fragment={"conditions": {"{side}": {"impairments": {"delay_ms": "{delay_ms}"}}}},
        advice=(
            "The path is slow, not blocked: check the Wi-Fi (signal, 2.4 GHz congestion), the "
            "device's load and the uplink's queue; media will lag by about half the round trip."
        ),
        lesson="Delay does not stop ICE until it nears the check timeouts; it shows in the RTT.",
        evidence=_selected_evidence,
        values=_delay_values,
    ),
    Rule(
        name="same-public-address",
        condition="this peer's srflx address is the address the other peer's candidates come from",
        test=lambda p: _shared_address(p) is not None,
        reasoning=(
            "The {side}'s server-reflexive address {address} is also where the {other}'s "
            "candidates come from: both peers leave through the same public address, behind the "
            "same NAT. Their srflx pairs need the router to hairpin, and their host pairs a shared "
            "LAN; a router that does neither leaves only TURN."
        ),
        fragment={
            "topology": "one-home",
            "conditions": {
                "home-gw": {
                    "nat": {"preset": "port-restricted-cone", "hairpinning": False},
                    "firewall": {"between_inside": "deny"},
                }
            },
        },
        advice=(
            "Both peers are behind one NAT: put them on one LAN, enable hairpinning (NAT "
            "loopback) on the router, or make sure both have TURN."
        ),
        lesson="Behind one NAT, the srflx pair needs hairpinning; without it only TURN connects.",
        evidence=_shared_evidence,
        values=lambda p: {"address": _shared_address(p)},
    ),
    Rule(
        name="no-turn",
        condition="failed; no relay candidate and no TURN server tried (or TURN skipped)",
        test=_no_turn,
        reasoning=(
            "ICE failed, and the {side} never tried a TURN server, so it had no relay "
            "candidate: with no direct path, nothing could connect (0x5a00000d)."
        ),
        fragment={"peers": {"{side}": {"host": "{side}", "mode": "stun-only"}}},
        advice=(
            "Enable TURN on the master side; in the browser choose STUN/TURN or TURN only "
            "(the service's guide)."
        ),
        lesson=(
            "Without TURN, a peer behind a NAT that maps per destination has no path: 0x5a00000d."
        ),
        absent=("relay",),
    ),
    Rule(
        name="no-relay-there",
        condition="failed; the other peer's candidates arrived and none is a relay",
        test=lambda p: p.outcome == "failed" and bool(p.remote_types) and not p.remote_relays,
        reasoning=(
            "The {other}'s candidates reached the {side} and none of them is a relay: the "
            "{other} had no relay either (no TURN configured, STUN only in the browser, or "
            "TURN unreachable from its side); the lab gives it no TURN."
        ),
        fragment={"peers": {"{other}": {"host": "{other}", "mode": "stun-only"}}},
        advice="In the browser choose STUN/TURN or TURN only; enable TURN on the master side.",
        lesson="When neither side has a relay, only a direct path can connect.",
    ),
    Rule(
        name="direct-failed",
        condition="failed; srflx gathered, no relay on either side",
        test=_direct_failed,
        reasoning=(
            "The {side} had a server-reflexive candidate and no relay on either side, and no "
            "pair connected: direct paths are closed by a NAT that maps per destination "
            "(symmetric), which the lab puts on the {other}'s side (the log cannot say which)."
        ),
        fragment={"conditions": {"{other}-gw": {"nat": "symmetric"}}},
        advice=(
            "No pair within the timeout (0x5a00000d): TURN is needed; check that "
            "both sides get relay candidates."
        ),
        lesson="srflx candidates are not enough when a NAT maps per destination.",
    ),
    Rule(
        name="direct-path",
        condition="connected over a pair without a relay",
        test=_direct,
        reasoning=(
            "The {side} connected over a pair without a relay: the NATs on the path let a "
            "direct pair through (cone NATs, as most home routers)."
        ),
        fragment={},
        advice="Nothing to fix: a direct path works.",
        lesson="Home routers (port-restricted cone NATs) let the srflx pair connect directly.",
    ),
    Rule(
        name="not-the-network",
        condition=(
            "a status whose cause is signaling, credentials, configuration, the SDK or the device "
            "(status_codes.yaml), a clock skew the SDK corrected, or the service refusing a call "
            "(HTTP 4xx)"
        ),
        test=_not_the_network,
        reasoning=(
            "What failed on the {side} is not the path between the peers: {what}. A network "
            "scenario cannot reproduce it; the lab runs the baseline."
        ),
        fragment={},
        advice=(
            "Not the network: fix the service side first (credentials, IAM permissions, region, "
            "the device's clock, the SDK version), then look at ICE again."
        ),
        lesson=(
            "Signaling, credentials and clock failures happen before ICE: no network causes them."
        ),
        evidence=_service_evidence,
        values=_service_values,
    ),
)


def fragment_for(rule: Rule, role: str, values: JsonObject | None = None) -> JsonObject:
    """The rule's scenario fragment with `{side}`/`{other}` and its figures filled in."""
    return _fill(rule.fragment, {**(values or {}), "side": role, "other": other(role)})


PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _fill(value: Any, names: JsonObject) -> Any:
    if isinstance(value, dict):
        return {_fill(k, names): _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and not isinstance(names.get(whole[1], ""), str):
            return names[whole[1]]  # a number stays a number
        return value.format_map(_Missing(names)) if "{" in value else value
    return value


class _Missing(dict):
    """Placeholders without a value stay as they are (the README table shows them)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


#: Rules that explain a peer's own side; when one holds for the other peer, what this
#: peer saw of it (a relay, a moved port) needs no guess about the other's NAT.
OWN_SIDE = ("web-only-firewall", "udp-blocked", "servers-unreachable", "symmetric-nat-here")


def infer(facts: Facts) -> list[Inference]:
    """Every rule that holds for a peer of the artifact, in table order."""
    found = []
    for rule in RULES:
        for role, peer in facts.peers.items():
            if rule.test(peer):
                lines = (rule.evidence or _evidence)(peer) or _evidence(peer)
                values = rule.values(peer) if rule.values else {}
                found.append(Inference(rule, role, lines, values))
    explained = {i.role for i in found if i.rule.name in OWN_SIDE}
    return [
        i
        for i in found
        if not (
            i.rule.name in ("symmetric-nat-there", "direct-failed") and other(i.role) in explained
        )
        # the other peer's own log says better what it had
        and not (i.rule.name == "no-relay-there" and other(i.role) in facts.peers)
    ]


def _evidence(peer: PeerFacts) -> list[int]:
    """TURN and gathering errors, the selected pair, and the statuses that ended ICE."""
    lines = [e["line"] for e in peer.turn_errors + peer.gathering_errors if "line" in e]
    lines += peer.selected_lines
    lines += [
        peer.status_lines[c] for c in ICE_FAILURES + ("0x5a000027",) if c in peer.status_lines
    ]
    return sorted(set(lines))[:10]


def rule_table() -> str:
    """The rule table as Markdown, for the README (a unit test keeps them equal)."""
    rows = [
        "| rule | when (for one peer, SIDE; the other is OTHER) | scenario "
        "fragment | the guide's advice |",
        "|---|---|---|---|",
    ]
    for rule in RULES:
        filled = _fill(rule.fragment, {"side": "SIDE", "other": "OTHER"})
        fragment = f"`{_flow(filled)}`" if rule.fragment else "(none: the baseline)"
        rows.append(f"| `{rule.name}` | {rule.condition} | {fragment} | {rule.advice} |")
    return "\n".join(rows)


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return str(value)
