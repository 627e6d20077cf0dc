"""A hop trail per connectivity check: where each check of each pair went, link by link,
what each NAT made of its addresses, and where it ended: answered, or dropped at a node
by a rule that nftables itself named (lab.observations.capture.verdicts).

A check is a STUN Binding request; its transaction id is the same on every link, so its
occurrences across the links are its trail. A check relayed through TURN travels inside
ChannelData or a Send indication between its agent and the TURN server; its relayed
addresses come from the Allocate and ChannelBind that set that relay up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from lab.core.documents import JsonObject
from lab.observations.capture.decode import Packet
from lab.observations.capture.verdicts import Traced
from lab.observations.ice import CandidatePair, endpoint, host_of

#: NAT filter rules (lab/network/nat.py) drop what no mapping lets in: say from where.
FILTER_SUFFIX = "filter"
#: A TURN-wrapped check whose allocation was not seen (e.g. set up over TLS).
UNKNOWN_RELAY = "TURN (relay unknown)"
TLS_NOTE = "; the rest crossed a TLS leg to the TURN server (encrypted: not on any capture)"


@dataclass(frozen=True)
class Seen:
    """A check (or its response) on one link: the frame, and the addresses it is for."""

    packet: Packet
    src: str  # the check's own source and destination (a relayed check: the relay's)
    dst: str
    via: str | None  # "ChannelData 0x4000", "Send indication", ... or None


def _endpoint_key(p: Packet, client_side: bool) -> tuple[str, str, str, str]:
    client, server = (p.src, p.dst) if client_side else (p.dst, p.src)
    return (p.link, p.transport, client, server)


class Relays:
    """Per link, what each TURN client's allocation and channels stand for."""

    def __init__(self, packets: list[Packet]) -> None:
        self.relayed: dict[tuple[str, str, str, str], str] = {}
        self.channels: dict[tuple[str, str, str, str, int], str] = {}
        for p in packets:
            message = p.messages[0] if p.messages else None
            if message is None or p.address is None:
                continue
            if (message.method, message.cls) == ("Allocate", "success"):
                self.relayed[_endpoint_key(p, client_side=False)] = p.address
            elif (message.method, message.cls) == ("ChannelBind", "request") and p.channel_number:
                self.channels[(*_endpoint_key(p, client_side=True), p.channel_number)] = p.address

    def logical(self, p: Packet) -> Seen | None:
        """The check's own addresses for a TURN-wrapped frame (None: unknown relay)."""
        for client_side in (True, False):
            key = _endpoint_key(p, client_side)
            relayed = self.relayed.get(key)
            if relayed is None:
                continue
            if p.channel is not None:
                peer = self.channels.get((*key, p.channel))
                via = f"ChannelData {p.channel:#06x}"
            else:
                peer, via = p.address, f"{p.messages[0].method} indication"
            if peer is None:
                return None
            src, dst = (relayed, peer) if client_side else (peer, relayed)
            return Seen(p, src, dst, via)
        return None


def sightings(packets: list[Packet]) -> tuple[dict[str, list[Seen]], dict[str, list[Seen]]]:
    """Binding requests and responses by transaction id, each with its own addresses."""
    relays = Relays(packets)
    requests: dict[str, list[Seen]] = defaultdict(list)
    responses: dict[str, list[Seen]] = defaultdict(list)
    for p in packets:
        check = p.check
        if check is None or check.method != "Binding":
            continue
        seen = relays.logical(p) if p.relayed else Seen(p, p.src, p.dst, None)
        if seen is None:
            seen = Seen(p, p.src, p.dst, UNKNOWN_RELAY)
        target = requests if check.cls == "request" else responses
        target[check.transaction_id].append(seen)
    return requests, responses


def _where(candidate: JsonObject) -> str:
    return endpoint(candidate["address"], candidate["port"])


def checks_of(pair: JsonObject, requests: dict[str, list[Seen]]) -> list[str]:
    """The transaction ids of the pair's checks: requests from its local to its remote."""
    local, remote = _where(pair["local"]), _where(pair["remote"])
    found = [
        (seen[0].packet.t, txid)
        for txid, seen in requests.items()
        if local in _sources_as_sent(seen, remote)
    ]
    return [txid for _t, txid in sorted(found)]


def _sources_as_sent(seen: list[Seen], remote: str) -> set[str]:
    """The check's source addresses on its way to `remote`, before any NAT changed its
    destination: its base, then what its own NAT mapped it to (a reflexive local)."""
    known = [s for s in _first_per_link(seen) if s.via != UNKNOWN_RELAY]
    sources = set()
    for s in known:
        # A browser hides a peer-reflexive remote's address (`:PORT`): its port must do.
        if s.dst != remote and not (remote.startswith(":") and s.dst.endswith(remote)):
            break
        sources.add(s.src)
    return sources


def _hop(seen: Seen, start: float) -> JsonObject:
    p = seen.packet
    hop = {
        "t": round(p.t - start, 6),
        "link": p.link,
        "src": p.src,
        "dst": p.dst,
        "message": p.info,
    }
    if seen.via:
        hop["via"] = f"{seen.via} ({p.transport}), relayed {seen.src} -> {seen.dst}"
    return hop


def _first_per_link(seen: list[Seen]) -> list[Seen]:
    """One sighting per link and leg (the first), in the order the check reached them: a
    relayed check crosses the TURN server's link twice, wrapped and then unwrapped."""
    first: dict[tuple[str, str, str], Seen] = {}
    for s in seen:
        first.setdefault((s.packet.link, s.packet.src, s.packet.dst), s)
    return list(first.values())


class Verdicts:
    """Finds what a node's nftables did with a frame that arrived on one of its links."""

    def __init__(self, manifest: JsonObject, traces: dict[str, list[Traced]]) -> None:
        self.nodes: JsonObject = manifest["nodes"]
        self.ends = {link["link"]: [tuple(e) for e in link["ends"]] for link in manifest["links"]}
        self.traces = traces

    def receiver(self, p: Packet) -> tuple[str, str, Traced | None]:
        """The node that received frame `p` on its link, its interface there, and what its
        nftables did with the last frame of the same check and addresses."""
        ends = self.ends.get(p.link, [])
        prefix = p.check.transaction_id[:8] if p.check else ""
        for node, interface in ends:
            matches = [
                t
                for t in self.traces.get(node, [])
                if t.iif == interface and (t.src, t.dst) == (p.src, p.dst)
                and t.transaction_prefix == prefix
            ]  # fmt: skip
            if matches:
                return node, interface, matches[-1]
        address = host_of(p.dst)
        for node, interface in ends:
            if address in self.nodes.get(node, {}).get("addresses", []):
                return node, interface, None
        for node, facts in self.nodes.items():  # a server further on (a check to TURN)
            if address in facts.get("addresses", []):
                return node, "", None
        return (ends[-1] if ends else ("?", "?")) + (None,)  # type: ignore[return-value]

    def direction(self, node: str, interface: str) -> str:
        uplink = self.nodes.get(node, {}).get("uplink")
        if uplink is None or self.nodes[node]["role"] == "router":
            return "forward"
        return "inbound" if interface == uplink else "outbound"


def _ending(seen: list[Seen], answered: list[Seen], verdicts: Verdicts) -> JsonObject:
    if answered:
        last = answered[-1].packet
        return {"kind": "answered", "link": last.link, "message": last.info}
    if not seen:
        return {"kind": "not_seen"}
    last = _first_per_link(seen)[-1]
    node, interface, traced = verdicts.receiver(last.packet)
    where = {"node": node, "direction": verdicts.direction(node, interface)}
    if traced is not None and traced.dropped_by:
        return {"kind": "dropped", **where, "rule": traced.dropped_by, "from": last.packet.src,
                "to": last.packet.dst}  # fmt: skip
    if traced is not None and traced.unroutable:
        rule = f"no route to {host_of(last.packet.dst)}"
        return {"kind": "dropped", **where, "rule": rule, "from": last.packet.src,
                "to": last.packet.dst}  # fmt: skip
    if traced is not None and traced.forwarded:
        return {"kind": "lost", **where}
    return {"kind": "unanswered", **where, "role": verdicts.nodes.get(node, {}).get("role")}


def check_trail(
    txid: str, seen: list[Seen], answered: list[Seen], verdicts: Verdicts, start: float
) -> JsonObject:
    """One check: its sends, its hops (first sighting per link), its response, its end."""
    first_link = seen[0].packet.link if seen else None
    return {
        "transaction_id": txid,
        "sent": sum(1 for s in seen if s.packet.link == first_link),
        "hops": [_hop(s, start) for s in _first_per_link(seen)],
        "response": [_hop(s, start) for s in _first_per_link(answered)],
        "ended": _ending(seen, answered, verdicts),
    }


def describe_drop(ended: JsonObject) -> str:
    """`dropped by viewer-gw: port-restricted filter, no prior outbound to 198.51.100.18:40112`."""
    text = f"dropped by {ended['node']}: {ended['rule']}"
    if ended["rule"].endswith(FILTER_SUFFIX):
        text += f", no prior outbound to {ended['from']}"
    elif not ended["rule"].startswith("no route"):
        text += f" ({ended['from']} -> {ended['to']})"
    return text


def describe_end(ended: JsonObject) -> str:
    """One line for where a check ended, for the trail and `lab trace`."""
    kind = ended["kind"]
    if kind == "answered":
        return f"answered ({ended['message']})"
    if kind == "dropped":
        return describe_drop(ended)
    if kind == "lost":
        return f"forwarded by {ended['node']}, then seen on no link"
    if kind == "unanswered" and ended.get("role") == "stun-turn":
        return (
            f"reached the TURN server ({ended['node']}), which relayed it to no one: "
            "no permission for its sender, no response"
        )
    if kind == "unanswered":
        return f"reached {ended['node']}, no response"
    return "no check seen on any link (never sent, or inside TLS to the TURN server)"


def _tls_leg(pair: JsonObject) -> bool:
    """Whether the pair's checks or responses cross a TLS leg to the TURN server, where no
    capture can read them (a relay over TLS at either end)."""
    return "tls" in (pair["local"].get("relay_protocol"), pair["remote"].get("relay_protocol"))


def pair_trails(
    pairs: list[JsonObject],
    packets: list[Packet],
    manifest: JsonObject,
    traces: dict[str, list[Traced]],
) -> None:
    """Give each pair its `trail`, and each failed pair whose check a rule dropped its
    `failure.dropped_at` and a message that names node and rule."""
    requests, responses = sightings(packets)
    verdicts = Verdicts(manifest, traces)
    start = manifest.get("started") or (packets[0].t if packets else 0.0)
    for pair in pairs:
        checks = [
            check_trail(txid, requests[txid], responses.get(txid, []), verdicts, start)
            for txid in checks_of(pair, requests)
        ]
        ends = [c["ended"] for c in checks]
        answered = [e for e in ends if e["kind"] == "answered"]
        final = (answered or ends or [{"kind": "not_seen"}])[-1]
        summary = describe_end(final)
        if not answered and pair["state"] == "succeeded" and _tls_leg(pair):
            summary += TLS_NOTE
        pair["trail"] = {"checks": checks, "summary": summary}
        dropped = [e for e in ends if e["kind"] == "dropped"]
        if pair["state"] == "failed" and dropped and not any(e["kind"] == "answered" for e in ends):
            ended = dropped[-1]
            failure = pair.setdefault("failure", {"reason": "timeout"}) or {"reason": "timeout"}
            failure["dropped_at"] = {k: ended[k] for k in ("node", "rule", "direction")}
            failure["message"] = describe_drop(ended)
            pair["failure"] = failure


def drop_lines(pairs: list[CandidatePair]) -> list[str]:
    """The terminal's account of failed pairs whose checks a rule dropped: one line per node
    and rule, with how many pairs and one example (`lab trace --pair N` shows the rest)."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, pair in enumerate(pairs):
        at = (pair.failure or {}).get("dropped_at")
        if at:
            groups[(at["node"], at["rule"])].append(index)
    lines = []
    for (node, rule), indexes in groups.items():
        example = (pairs[indexes[0]].failure or {})["message"]
        lines.append(
            f"  {len(indexes)} pair(s) dropped by {node}: {rule} (e.g. pair {indexes[0]}: "
            f"{example})"
        )
    if lines:
        lines.insert(0, "where the failed pairs' checks died (lab trace --pair N for the ladder):")
    return lines
