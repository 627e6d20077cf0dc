"""Findings summed up per peer: what the rules reason about, and what the log does not say.

A customer's excerpt rarely says everything. Each fact is None when the artifact is
silent about it, and `unknowns` lists those gaps in words, so an inference never passes
off an assumption as something the log showed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from lab.core.documents import JsonObject
from lab.report.diagnose.findings import ICE_FAILURES, ROLES, Finding

READY_STATES = ("ICE_AGENT_STATE_READY", "ICE_AGENT_STATE_CONNECTED", "connected", "completed")
FAILED_STATES = ("ICE_AGENT_STATE_FAILED", "failed")


@dataclass
class PeerFacts:
    """What one peer's part of the artifact says."""

    role: str
    local_types: dict[str, int] = field(default_factory=dict)
    remote_types: dict[str, int] = field(default_factory=dict)
    relay_protocols: list[str] = field(default_factory=list)
    remote_relays: int = 0
    servers_tried: list[str] = field(default_factory=list)
    turn_skipped: bool = False
    turn_errors: list[JsonObject] = field(default_factory=list)
    gathering_errors: list[JsonObject] = field(default_factory=list)
    turn_state_failures: list[str] = field(default_factory=list)
    socket_errors: list[JsonObject] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    outcome: str | None = None
    selected: JsonObject | None = None
    pairs: dict[str, int] = field(default_factory=dict)
    mapping_changes: dict[str, bool] = field(default_factory=dict)
    candidates: list[JsonObject] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    stamps: dict[str, float] = field(default_factory=dict)
    # what the C SDK says of its TURN connections, sockets, signaling and itself
    turn_transitions: list[JsonObject] = field(default_factory=list)
    turn_failures: list[JsonObject] = field(default_factory=list)
    turn_events: list[JsonObject] = field(default_factory=list)
    socket_checks: list[JsonObject] = field(default_factory=list)
    no_pair_lines: list[int] = field(default_factory=list)
    signaling_states: list[str] = field(default_factory=list)
    signaling_errors: list[JsonObject] = field(default_factory=list)
    http_statuses: list[JsonObject] = field(default_factory=list)
    clock_skew_lines: list[int] = field(default_factory=list)
    status_lines: dict[str, int] = field(default_factory=dict)
    sdk_version: str | None = None
    other_lines: dict[str, int] = field(default_factory=dict)
    relay_ready: bool = False
    turn_failed: bool = False
    selected_lines: list[int] = field(default_factory=list)

    @property
    def has(self) -> set[str]:
        return set(self.local_types)

    def gathered(self) -> bool:
        """Whether the log shows this peer's own candidates at all."""
        return bool(self.local_types)

    def turn_codes(self) -> set[int]:
        """TURN error codes that mattered: a 401 counts only if no relay came after it."""
        codes = {e["code"] for e in self.turn_errors if e.get("code")}
        codes |= {e["code"] for e in self.gathering_errors if e.get("code")}
        if "relay" in self.local_types:
            codes.discard(401)  # the long-term credential challenge every Allocate gets first
        return codes

    def tcp_turn_timed_out(self) -> bool:
        """TURN over TCP/TLS never connected: no answer before the timeout."""
        timeouts = [
            e
            for e in self.gathering_errors
            if ("transport=tcp" in e["url"] or e["url"].startswith("turns:"))
            and re.search(r"no answer|timed? ?out|timeout", e["reason"])
        ]
        stuck = any("CHECK_SOCKET_CONNECTION" in s for s in self.turn_state_failures)
        # 0x5a000020 alone does not say which state timed out; with the state, the state says
        unplaced = "0x5a000020" in self.statuses and not self.turn_state_failures
        return bool(timeouts) or stuck or unplaced

    def turn_answered(self) -> bool:
        """A TURN server answered this peer: a challenge, an allocation, a permission, an error."""
        answers = ("challenged", "allocated", "relay_address", "permission", "channel_bound")
        progressed = any(
            t["from"] in ("TURN_STATE_GET_CREDENTIALS", "TURN_STATE_ALLOCATION")
            and t["to"] not in ("TURN_STATE_FAILED", "TURN_STATE_CLEAN_UP")
            for t in self.turn_transitions
        )
        return (
            progressed
            or bool(self.turn_errors)
            or any(e["event"] in answers for e in self.turn_events)
        )

    def tcp_connected(self) -> bool:
        """A TURN connection got past its TCP connect (or TLS completed)."""
        return any(
            t["from"] == "TURN_STATE_CHECK_SOCKET_CONNECTION"
            and t["to"] not in ("TURN_STATE_FAILED", "TURN_STATE_CLEAN_UP")
            for t in self.turn_transitions
        ) or any(e["event"] == "tls_connected" for e in self.turn_events)

    def tcp_connect_stuck(self) -> bool:
        """TURN's TCP connect stayed in progress: repeated checks over a second or more (three
        without time stamps) and nothing later shows TCP to TURN working, or the connection
        failed in TURN_STATE_CHECK_SOCKET_CONNECTION."""
        if any("CHECK_SOCKET_CONNECTION" in s for s in self.turn_state_failures):
            return True
        waiting = [c for c in self.socket_checks if "progress" in c["reason"].lower()]
        stamps = [c["at_s"] for c in waiting if c.get("at_s") is not None]
        repeated = (max(stamps) - min(stamps) >= 1.0) if len(stamps) >= 2 else len(waiting) >= 3
        return repeated and not self.tcp_connected() and not self.turn_answered()

    def turn_udp_unanswered(self) -> bool:
        """A TURN connection failed waiting for the first answer to its Allocate (no 401
        challenge came back) without ever waiting on a TCP connect: TURN over UDP unanswered."""
        waiting = (
            any(
                f in ("TURN_STATE_GET_CREDENTIALS", "TURN_STATE_ALLOCATION")
                for f in self.turn_state_failures
            )
            or "0x5a00002c" in self.statuses
        )
        return waiting and not self.socket_checks and not self.turn_answered()

    def refused(self) -> bool:
        errors = self.gathering_errors + self.socket_errors
        return any("refused" in e["reason"].lower() for e in errors)

    def udp_servers_timed_out(self) -> bool:
        return any(
            "transport=tcp" not in e["url"]
            and not e["url"].startswith("turns:")
            and re.search(r"timeout|no response", e["reason"])
            for e in self.gathering_errors
        )

    def as_dict(self) -> JsonObject:
        data = asdict(self)
        data.pop("candidates")
        data.pop("stamps")
        return data


@dataclass
class Facts:
    """Per peer facts, which peers the artifact is from, and what it leaves unknown."""

    format: str
    peers: dict[str, PeerFacts]
    role_source: str
    unknowns: list[str]

    def as_dict(self) -> JsonObject:
        return {
            "format": self.format,
            "role_source": self.role_source,
            "peers": {role: p.as_dict() for role, p in self.peers.items()},
            "unknowns": self.unknowns,
        }


def _roles(findings: list[Finding], default: str) -> tuple[list[str], str]:
    named = [f for f in findings if f.kind == "role" and f.data.get("role") in ROLES]
    owners = [f.role for f in findings if f.role in ROLES and f.kind != "role"]
    roles = list(dict.fromkeys([*(f.data["role"] for f in named), *owners]))
    if roles:
        how = named[0].data.get("how", "") if named else "sections of the lab's output"
        return roles, f"line {named[0].line}: {how}" if named else how
    return [default], f"not in the log; assumed {default}"


def summarize(findings: list[Finding], fmt: str, default_role: str = "master") -> Facts:
    """Sum the findings up per peer; findings without a peer belong to every peer."""
    roles, source = _roles(findings, default_role)
    peers = {role: PeerFacts(role) for role in roles}
    only = roles[0] if len(roles) == 1 else None
    for finding in findings:
        owner = finding.role or only
        targets = [peers[owner]] if owner in peers else list(peers.values())
        for peer in targets:
            _apply(peer, finding)
    for peer in peers.values():
        _finish(peer)
    return Facts(fmt, peers, source, _unknowns(peers))


def _stamp(peer: PeerFacts, finding: Finding) -> None:
    """First local candidate, gathering done, checks started and ended (log time stamps)."""
    at = finding.data.get("at_s")
    if at is None:
        return
    data, stamps = finding.data, peer.stamps
    if finding.kind == "candidate" and data.get("side") == "local":
        stamps.setdefault("first_candidate", at)
    elif finding.kind == "gathering_done":
        stamps.setdefault("gathering_done", at)
    elif finding.kind == "agent_state" and data["to"] == "ICE_AGENT_STATE_CHECK_CONNECTION":
        stamps.setdefault("checks", at)
    elif finding.kind == "agent_state" and data["to"] in READY_STATES + FAILED_STATES:
        stamps.setdefault("checks_done", at)


def _apply(peer: PeerFacts, finding: Finding) -> None:
    _stamp(peer, finding)
    data = finding.data
    kind = finding.kind
    if kind == "candidate":
        _candidate(peer, {**data, "line": finding.line})
    elif kind in ("ice_server",):
        peer.servers_tried.append(data["url"])
    elif kind == "skipped_server":
        peer.servers_tried.append(data["url"])
        if "TURN" in data["reason"] or data["url"].startswith("turn"):
            peer.turn_skipped = True
    elif kind == "gathering_error":
        peer.gathering_errors.append({**data, "line": finding.line})
        peer.servers_tried.append(data["url"])
    elif kind == "socket_error":
        peer.socket_errors.append({**data, "line": finding.line})
    elif kind == "turn_error":
        peer.turn_errors.append({**data, "line": finding.line})
    elif kind == "turn_state":
        peer.turn_transitions.append({**data, "line": finding.line})
        if data.get("to") == "TURN_STATE_FAILED":
            peer.turn_state_failures.append(data["from"])
    elif kind == "status":
        peer.statuses.append(data["code"])
        peer.status_lines.setdefault(data["code"], finding.line)
    elif kind in SDK_KINDS:
        _sdk_fact(peer, finding)
    elif kind == "agent_state":
        if data["to"] in READY_STATES:
            peer.outcome = peer.outcome or "connected"
        elif data["to"] in FAILED_STATES:
            peer.outcome = "failed"
    elif kind == "outcome":
        peer.outcome = data["outcome"]
    elif kind == "pair":
        peer.pairs[data["state"]] = peer.pairs.get(data["state"], 0) + 1
    elif kind in ("selected", "selected_detail"):
        _selected(peer, kind, data)
        peer.selected_lines.append(finding.line)


#: Findings of the C SDK's own messages that `_sdk_fact` sums up.
SDK_KINDS = (
    "turn_failed",
    "turn_relay",
    "socket_check",
    "no_pair",
    "ice_failed",
    "agent_event",
    "pc_state",
    "dtls_done",
    "signaling_state",
    "signaling_error",
    "http_status",
    "clock_skew",
    "sdk_version",
    "other",
)
#: Kinds kept as lists of their data (with the line) on the peer, by attribute.
LISTED = {
    "turn_failed": "turn_failures",
    "turn_relay": "turn_events",
    "socket_check": "socket_checks",
    "signaling_error": "signaling_errors",
    "http_status": "http_statuses",
}
#: RTC_PEER_CONNECTION_STATE numbers (Include.h) that say how the connection ended.
PC_OUTCOMES = {3: "connected", 5: "failed"}


def _sdk_fact(peer: PeerFacts, finding: Finding) -> None:
    data, kind, line = finding.data, finding.kind, finding.line
    if kind in LISTED:
        getattr(peer, LISTED[kind]).append({**data, "line": line})
    elif kind == "no_pair":
        peer.no_pair_lines.append(line)
    elif kind == "ice_failed":
        peer.outcome = "failed"
    elif kind == "agent_event" and data.get("event") == "ready":
        peer.outcome = peer.outcome or "connected"
    elif kind == "pc_state" and data.get("state") in PC_OUTCOMES:
        peer.outcome = PC_OUTCOMES[data["state"]]
    elif kind == "dtls_done":
        peer.outcome = peer.outcome or "connected"
    elif kind == "signaling_state" and data.get("name"):
        peer.signaling_states.append(data["name"])
    elif kind == "clock_skew":
        peer.clock_skew_lines.append(line)
    elif kind == "sdk_version":
        peer.sdk_version = data["version"]
    elif kind == "other":
        component = data.get("component", "other")
        peer.other_lines[component] = peer.other_lines.get(component, 0) + 1


def _candidate(peer: PeerFacts, data: JsonObject) -> None:
    side = data.get("side", "local")
    counts = peer.local_types if side == "local" else peer.remote_types
    counts[data["type"]] = counts.get(data["type"], 0) + 1
    peer.candidates.append(data)
    if side == "local" and data["type"] == "relay" and data.get("relay_protocol"):
        peer.relay_protocols.append(data["relay_protocol"])
    if side == "remote" and data["type"] == "relay":
        peer.remote_relays += 1


def _selected(peer: PeerFacts, kind: str, data: JsonObject) -> None:
    selected = peer.selected or {}
    if kind == "selected":
        selected.update({k: v for k, v in data.items() if v is not None or k not in selected})
    else:
        side = data["side"]
        for key, value in data.items():
            if key == "type":
                # some samples print the local type as "Remote Candidate type": the ICE agent's
                # own selected-pair line, when the log has it, says the remote type right
                if not (side == "remote" and selected.get("remote")):
                    selected[side] = value
            elif key == "relay protocol" and value != "N/A":
                selected["relay_protocol" if side == "local" else "remote_relay_protocol"] = value
            elif key == "IP Address":
                selected[f"{side}_address"] = value
            elif key == "port":
                selected[f"{side}_port"] = value
    peer.selected = selected
    peer.outcome = peer.outcome or "connected"


def _timings(stamps: dict[str, float]) -> dict[str, float]:
    spans = {
        "gathering_s": ("first_candidate", "gathering_done"),
        "checks_s": ("checks", "checks_done"),
    }
    return {
        name: round(stamps[end] - stamps[start], 3)
        for name, (start, end) in spans.items()
        if start in stamps and end in stamps and stamps[end] >= stamps[start]
    }


def _finish(peer: PeerFacts) -> None:
    peer.timings = _timings(peer.stamps)
    if any(code in ICE_FAILURES for code in peer.statuses) and peer.outcome != "connected":
        peer.outcome = "failed"
    # media written with no pair, and nothing in the log ever connected: not connected
    if peer.no_pair_lines and peer.outcome is None and not peer.selected:
        peer.outcome = "failed"
    ready = ("allocated", "relay_address", "permission", "channel_bound")
    peer.relay_ready = any(e["event"] in ready for e in peer.turn_events)
    peer.turn_failed = bool(peer.turn_failures or peer.turn_state_failures)
    _selected_addresses(peer)
    peer.mapping_changes = {
        "local": _port_changes(peer, "local"),
        "remote": _port_changes(peer, "remote"),
    }


def _selected_addresses(peer: PeerFacts) -> None:
    """The selected pair's addresses from its candidates' ids (`Selected pair <local>_<remote>`)
    when the metrics lines did not give them."""
    selected = peer.selected
    if not selected or "_" not in str(selected.get("id", "")):
        return
    local_id, remote_id = str(selected["id"]).split("_", 1)
    by_id = {c.get("id"): c for c in peer.candidates if c.get("id")}
    for side, cid in (("local", local_id), ("remote", remote_id)):
        candidate = by_id.get(cid)
        if candidate and candidate.get("address"):
            selected.setdefault(f"{side}_address", candidate["address"])
            selected.setdefault(side, candidate["type"])


def _port_changes(peer: PeerFacts, side: str) -> bool:
    """A peer-reflexive mapping on the srflx address with another port: a NAT that maps
    per destination (address-and-port-dependent mapping, "symmetric")."""
    mine = [c for c in peer.candidates if c.get("side", "local") == side]
    srflx = {(c.get("address"), c.get("port")) for c in mine if c["type"] == "srflx"}
    addresses = {a for a, _ in srflx}
    return any(
        c["type"] == "prflx"
        and c.get("address") in addresses
        and (c.get("address"), c.get("port")) not in srflx
        for c in mine
    )


def _unknowns(peers: dict[str, PeerFacts]) -> list[str]:
    gaps = []
    for role, peer in peers.items():
        if not peer.gathered():
            gaps.append(f"{role}: which candidates it gathered (no local candidate lines)")
        if not peer.servers_tried and not peer.gathered():
            gaps.append(f"{role}: which STUN/TURN servers it was given")
        if peer.outcome is None:
            gaps.append(f"{role}: whether ICE connected (no state change, selected pair or status)")
        if peer.outcome == "connected" and not (peer.selected or {}).get("remote"):
            gaps.append(f"{role}: the selected pair's remote candidate type")
        if (
            "relay" in peer.local_types
            and not peer.relay_protocols
            and not (peer.selected or {}).get("relay_protocol")
        ):
            gaps.append(f"{role}: over which transport its relay candidates reached TURN")
    others = [r for r in ROLES if r not in peers]
    for role in others:
        gaps.append(
            f"{role}: everything on its side (the artifact has only the {'/'.join(peers)}'s view)"
        )
    return gaps
