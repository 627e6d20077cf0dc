"""Observations: ICE facts named as the standards name them (RTCIceCandidateStats,
RTCIceCandidatePairStats), built from what each peer's agent saw, then merged.

A peer process turns its agent's objects into plain records (JSON: it is another
process); the runner merges both peers' records into the result's `peers`, `pairs` and
`selected`, which every reader takes as the typed Candidate, CandidatePair and
SelectedPair below. This module holds the lab's one definition of when two candidates are
the same (`Candidate.key`) and of how a candidate reads (`Candidate.text`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab.core.documents import JsonObject
from lab.core.roles import ROLES, other_role

#: A record as a peer process writes it and the result's JSON holds it.
CandidateRecord = dict[str, Any]


@dataclass
class Candidate:
    """RTCIceCandidateStats, as far as the result keeps it (`$defs/candidate`)."""

    type: str  # host | srflx | prflx | relay
    protocol: str  # udp | tcp
    address: str  # an IP address, or a browser's mDNS name
    port: int
    relay_protocol: str | None = None  # relay: udp | tcp | tls to the TURN server
    server: str | None = None  # the STUN/TURN URL that gave it
    #: Keys the result holds that this class does not model (priority, foundation,
    #: tcp_type, a browser's url...), kept so a result reads and writes back unchanged.
    extra: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, record: CandidateRecord) -> Candidate:
        known = {k: record.get(k) for k in ("relay_protocol", "server")}
        rest = {k: v for k, v in record.items() if k not in _CANDIDATE_KEYS}
        return cls(record["type"], record["protocol"], record["address"], record["port"],
                   **known, extra=rest)  # fmt: skip

    def to_json(self) -> CandidateRecord:
        return {
            "type": self.type, "protocol": self.protocol, "address": self.address,
            "port": self.port, "relay_protocol": self.relay_protocol, "server": self.server,
            **self.extra,
        }  # fmt: skip

    @property
    def key(self) -> tuple[str, int, str]:
        """What makes two candidates the same: their transport address (RFC 8445: address,
        port and transport protocol). A peer-reflexive candidate learned from a check is
        the same as the srflx candidate at that address."""
        return (self.address, self.port, self.protocol)

    def same_as(self, other: Candidate) -> bool:
        return self.key == other.key

    @property
    def endpoint(self) -> str:
        return endpoint(self.address, self.port)

    @property
    def priority(self) -> int | None:
        return self.extra.get("priority")

    def text(self) -> str:
        """`relay 203.0.113.10:50349/tls`, `host 10.0.0.5:9 (tcp)`: how a candidate reads in
        the terminal, `lab explain`, the HTML report and `lab diagnose`."""
        text = f"{self.type} {self.endpoint}"
        if self.protocol == "tcp":
            text += " (tcp)"
        if self.relay_protocol:
            text += f"/{self.relay_protocol}"
        return text


_CANDIDATE_KEYS = ("type", "protocol", "address", "port", "relay_protocol", "server")


@dataclass
class CandidatePair:
    """RTCIceCandidatePairStats, as one agent saw the pair (`$defs/pair`)."""

    agent: str  # the role whose agent checked the pair
    local: Candidate
    remote: Candidate
    state: str  # succeeded | failed | in-progress | waiting | frozen | cancelled
    nominated: bool
    #: A round trip of the pair's checks, in ms (None: no response to time).
    rtt_ms: float | None
    #: failure, checks_sent, responses_received, local_base, trail (with --capture)...
    extra: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, record: JsonObject) -> CandidatePair:
        rest = {k: v for k, v in record.items() if k not in _PAIR_KEYS}
        return cls(record["agent"], Candidate.from_json(record["local"]),
                   Candidate.from_json(record["remote"]), record["state"],
                   bool(record["nominated"]), record["rtt_ms"], rest)  # fmt: skip

    def to_json(self) -> JsonObject:
        document = {"agent": self.agent, "local": self.local.to_json()}
        if "local_base" in self.extra:  # keeps the order peers write: local, its base, remote
            document["local_base"] = self.extra["local_base"]
        return {
            **document, "remote": self.remote.to_json(), "state": self.state,
            **{k: v for k, v in self.extra.items() if k != "local_base"},
            "nominated": self.nominated, "rtt_ms": self.rtt_ms,
        }  # fmt: skip

    @property
    def failure(self) -> JsonObject | None:
        """Why the pair failed: `reason`, `message`, and for a TURN refusal `code`."""
        return self.extra.get("failure")

    @failure.setter
    def failure(self, value: JsonObject | None) -> None:
        self.extra["failure"] = value

    @property
    def checks_sent(self) -> int | None:
        return self.extra.get("checks_sent")

    @property
    def trail(self) -> JsonObject | None:
        """With --capture: each check link by link (lab/observations/capture/trail.py)."""
        return self.extra.get("trail")

    def joins(self, local: Candidate, remote: Candidate) -> bool:
        return self.local.same_as(local) and self.remote.same_as(remote)

    @property
    def rtt_upper_bound(self) -> bool:
        """rtt_ms only bounds the round trip (Karn's rule: see rtt_text)."""
        return bool(self.extra.get("rtt_upper_bound"))

    def rtt_text(self, digits: int = 1) -> str:
        return rtt_text(self.rtt_ms, self.rtt_upper_bound, digits)


_PAIR_KEYS = ("agent", "local", "remote", "state", "nominated", "rtt_ms")


@dataclass
class SelectedPair:
    """The pair an agent selected, with its round trip (`$defs/selected`)."""

    local: Candidate
    remote: Candidate
    rtt_ms: float | None
    extra: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, record: JsonObject | None) -> SelectedPair | None:
        if record is None:
            return None
        rest = {k: v for k, v in record.items() if k not in ("local", "remote", "rtt_ms")}
        return cls(Candidate.from_json(record["local"]), Candidate.from_json(record["remote"]),
                   record.get("rtt_ms"), rest)  # fmt: skip

    def to_json(self) -> JsonObject:
        return {"local": self.local.to_json(), "remote": self.remote.to_json(),
                "rtt_ms": self.rtt_ms, **self.extra}  # fmt: skip

    def text(self) -> str:
        return f"{self.local.text()} -> {self.remote.text()}"

    @property
    def rtt_upper_bound(self) -> bool:
        return bool(self.extra.get("rtt_upper_bound"))

    def rtt_text(self, digits: int = 1) -> str:
        return rtt_text(self.rtt_ms, self.rtt_upper_bound, digits)


def rtt_text(rtt_ms: float | None, upper_bound: bool, digits: int = 1) -> str:
    """`12.3 ms`, or `≤ 212.9 ms` for a value that only bounds the round trip: timed from
    the first send of a check answered after a retransmission, it cannot say which send
    the response answers (Karn's rule), so the path may be far quicker than it reads."""
    if rtt_ms is None:
        return "no round trip"
    return f"{'≤ ' if upper_bound else ''}{rtt_ms:.{digits}f} ms"


def candidate_record(
    candidate: Any, server: str | None = None, relay_protocol: str | None = None
) -> CandidateRecord:
    """One candidate as the result schema names it (from an aioice Candidate)."""
    return {
        "type": candidate.type,
        "protocol": candidate.transport.lower(),
        "address": candidate.host,
        "port": candidate.port,
        "relay_protocol": relay_protocol if candidate.type == "relay" else None,
        "server": server,
        "priority": candidate.priority,
        "foundation": candidate.foundation,
    }


def endpoint(address: Any, port: Any) -> str:
    """`203.0.113.10:3478`, or `[2001:db8:2::10]:50558` for IPv6 (RFC 3986's brackets:
    without them the port reads as the address's last group)."""
    return f"[{address}]:{port}" if ":" in str(address) else f"{address}:{port}"


def host_of(text: str) -> str:
    """The address of an `address:port` or `[address]:port` endpoint."""
    return text.rsplit(":", 1)[0].strip("[]")


def pair_priority(local_priority: int, remote_priority: int, controlling: bool) -> int:
    """RFC 8445 section 6.1.2.3: 2^32*min(G,D) + 2*max(G,D) + (G>D ? 1 : 0)."""
    g, d = (local_priority, remote_priority) if controlling else (remote_priority, local_priority)
    return (1 << 32) * min(g, d) + 2 * max(g, d) + (1 if g > d else 0)


def enrich_remote(record: CandidateRecord, peer_candidates: list[CandidateRecord]) -> None:
    """Fill a remote candidate's server and relay protocol from the peer that gathered it."""
    for local in peer_candidates:
        if (local["address"], local["port"]) == (record["address"], record["port"]):
            record["server"] = local["server"]
            record["relay_protocol"] = local["relay_protocol"]
            return


def merge_pairs(observations: dict[str, JsonObject]) -> list[CandidatePair]:
    """Every pair both agents formed, each tagged with its agent, remote sides enriched."""
    pairs = []
    for role in ROLES:
        theirs = observations.get(other_role(role), {}).get("candidates", [])
        for pair in observations.get(role, {}).get("pairs", []):
            enrich_remote(pair["remote"], theirs)
            pairs.append(CandidatePair.from_json({"agent": role, **pair}))
    return pairs


def selected_pairs(observations: dict[str, JsonObject]) -> dict[str, SelectedPair | None]:
    """The pair each agent selected (None: it selected none), remote side enriched."""
    selected: dict[str, SelectedPair | None] = {}
    for role in ROLES:
        pair = observations.get(role, {}).get("selected")
        if pair is not None:
            theirs = observations.get(other_role(role), {}).get("candidates", [])
            enrich_remote(pair["remote"], theirs)
        selected[role] = SelectedPair.from_json(pair)
    return selected


PERMISSION_METHODS = ("create_permission", "channel_bind")


def _refusal_for(
    pair: CandidatePair, role_user: str, requests: list[JsonObject]
) -> JsonObject | None:
    """The TURN server's 403 that explains this relay pair: one naming the pair's remote
    address (the mock logs peers), else one for a permission asked with this peer's
    credentials (coturn logs the user, not the peer)."""
    refusals = [
        r for r in requests if r.get("error_code") == 403 and r.get("method") in PERMISSION_METHODS
    ]
    address = pair.remote.address
    for refusal in refusals:
        if (refusal.get("peer") or "").rsplit(":", 1)[0] == address:
            return refusal
    for refusal in refusals:
        if not refusal.get("peer") and (refusal.get("user") or "").endswith(f":{role_user}"):
            return refusal
    return None


def attribute_turn_refusals(
    pairs: list[CandidatePair], requests: list[JsonObject], scenario: str
) -> None:
    """Give a relay pair that failed without a reason the TURN server's refusal.

    A browser's getStats() marks a relay pair whose permission the TURN server refused
    `failed`, with no check sent and no reason; the server's own log says why.
    """
    for pair in pairs:
        failure = pair.failure or {}
        if (
            pair.state != "failed"
            or pair.local.type != "relay"
            or pair.checks_sent
            or failure.get("reason") not in (None, "unknown")
        ):
            continue
        refusal = _refusal_for(pair, f"{pair.agent}-{scenario}", requests)
        if refusal is not None:
            phrase = refusal.get("reason") or "Forbidden"
            pair.failure = {
                "reason": "turn_error",
                "message": f"the TURN server refused to relay to {pair.remote.address}: "
                f"403 {phrase} (from the server's log: the agent gives no reason)",
                "code": 403,
                "phrase": phrase,
            }
