"""Observations: ICE facts named as the standards name them (RTCIceCandidateStats,
RTCIceCandidatePairStats), built from what each peer's agent saw, then merged.

A peer process turns its aioice objects into plain records here; the runner merges
both peers' records into the result's `peers`, `pairs` and `selected`.
"""

from __future__ import annotations

from typing import Any

CandidateRecord = dict[str, Any]


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


def same_candidate(a: CandidateRecord, b: CandidateRecord) -> bool:
    return (a["address"], a["port"], a["type"]) == (b["address"], b["port"], b["type"])


def enrich_remote(record: CandidateRecord, peer_candidates: list[CandidateRecord]) -> None:
    """Fill a remote candidate's server and relay protocol from the peer that gathered it."""
    for local in peer_candidates:
        if (local["address"], local["port"]) == (record["address"], record["port"]):
            record["server"] = local["server"]
            record["relay_protocol"] = local["relay_protocol"]
            return


def merge_pairs(observations: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every pair both agents formed, each tagged with its agent, remote sides enriched."""
    pairs = []
    for role, other in (("viewer", "master"), ("master", "viewer")):
        theirs = observations.get(other, {}).get("candidates", [])
        for pair in observations.get(role, {}).get("pairs", []):
            enrich_remote(pair["remote"], theirs)
            pairs.append({"agent": role, **pair})
    return pairs


def selected_pairs(observations: dict[str, dict[str, Any]]) -> dict[str, Any]:
    selected: dict[str, Any] = {}
    for role, other in (("viewer", "master"), ("master", "viewer")):
        pair = observations.get(role, {}).get("selected")
        if pair is not None:
            enrich_remote(pair["remote"], observations.get(other, {}).get("candidates", []))
        selected[role] = pair
    return selected


PERMISSION_METHODS = ("create_permission", "channel_bind")


def _refusal_for(
    pair: dict[str, Any], role_user: str, requests: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The TURN server's 403 that explains this relay pair: one naming the pair's remote
    address (the mock logs peers), else one for a permission asked with this peer's
    credentials (coturn logs the user, not the peer)."""
    refusals = [
        r for r in requests if r.get("error_code") == 403 and r.get("method") in PERMISSION_METHODS
    ]
    address = pair["remote"]["address"]
    for refusal in refusals:
        if (refusal.get("peer") or "").rsplit(":", 1)[0] == address:
            return refusal
    for refusal in refusals:
        if not refusal.get("peer") and (refusal.get("user") or "").endswith(f":{role_user}"):
            return refusal
    return None


def attribute_turn_refusals(
    pairs: list[dict[str, Any]], requests: list[dict[str, Any]], scenario: str
) -> None:
    """Give a relay pair that failed without a reason the TURN server's refusal.

    A browser's getStats() marks a relay pair whose permission the TURN server refused
    `failed`, with no check sent and no reason; the server's own log says why.
    """
    for pair in pairs:
        failure = pair.get("failure") or {}
        if (
            pair["state"] != "failed"
            or pair["local"]["type"] != "relay"
            or pair.get("checks_sent")
            or failure.get("reason") not in (None, "unknown")
        ):
            continue
        refusal = _refusal_for(pair, f"{pair['agent']}-{scenario}", requests)
        if refusal is not None:
            phrase = refusal.get("reason") or "Forbidden"
            pair["failure"] = {
                "reason": "turn_error",
                "message": f"the TURN server refused to relay to {pair['remote']['address']}: "
                f"403 {phrase} (from the server's log: the agent gives no reason)",
                "code": 403,
                "phrase": phrase,
            }
