"""The rule table: from one peer's facts to a network condition, with the reasoning.

Each rule is data: the condition in words (shown in the README's table), the test on the
facts, the reasoning, the scenario fragment that reproduces the condition (`{side}` is
the peer the evidence is about, `{other}` the other one; nodes are the bundled
`two-homes` topology's), the advice the service's developer guide gives for the case,
and the lesson the written scenario teaches. Rules are tried for every peer the artifact
shows; several may hold at once (their fragments are merged in table order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.report.diagnose.facts import Facts, PeerFacts

PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
TCP_BASED = {"tcp", "tls"}


@dataclass(frozen=True)
class Rule:
    name: str
    condition: str
    test: Callable[[PeerFacts], bool]
    reasoning: str
    fragment: dict[str, Any]
    advice: str
    lesson: str
    absent: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Inference:
    """A rule that held for one peer, with the lines that support it."""

    rule: Rule
    role: str
    evidence: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.name,
            "role": self.role,
            "condition": self.rule.condition,
            "reasoning": self.rule.reasoning.format(side=self.role, other=other(self.role)),
            "fragment": fragment_for(self.rule, self.role),
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
    return "srflx" in p.has and p.tcp_turn_timed_out() and not p.udp_servers_timed_out()


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
        condition="srflx gathered; TURN over TCP/TLS stayed connecting until the timeout",
        test=_tcp_dropped,
        reasoning=(
            "The {side}'s TURN connection over TCP/TLS stayed in progress until the timeout "
            "while UDP to the STUN server worked: outbound TCP to the TURN port is dropped."
        ),
        fragment={
            "conditions": {
                "{side}-gw": {
                    "firewall": {
                        "outbound": {
                            "default": "allow",
                            "rules": [{"action": "deny", "protocol": "tcp", "hosts": ["turn"]}],
                        }
                    }
                }
            }
        },
        advice="Allow outbound TCP to the TURN servers on 443, or use TURN over UDP.",
        lesson=(
            "A firewall that silently drops TCP to the TURN server makes TURN over "
            "TCP/TLS wait for the timeout."
        ),
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
        condition="TURN 403 (Forbidden IP) on a permission or check towards a peer",
        test=lambda p: 403 in p.turn_codes(),
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
)


def fragment_for(rule: Rule, role: str) -> dict[str, Any]:
    """The rule's scenario fragment with `{side}`/`{other}` filled in for this peer."""
    return _fill(rule.fragment, {"side": role, "other": other(role)})


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {_fill(k, names): _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, str):
        return value.format(**names) if "{" in value else value
    return value


#: Rules that explain a peer's own side; when one holds for the other peer, what this
#: peer saw of it (a relay, a moved port) needs no guess about the other's NAT.
OWN_SIDE = ("web-only-firewall", "udp-blocked", "servers-unreachable", "symmetric-nat-here")


def infer(facts: Facts) -> list[Inference]:
    """Every rule that holds for a peer of the artifact, in table order."""
    found = []
    for rule in RULES:
        for role, peer in facts.peers.items():
            if rule.test(peer):
                found.append(Inference(rule, role, _evidence(peer)))
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
    lines = [e["line"] for e in peer.turn_errors + peer.gathering_errors if "line" in e]
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
