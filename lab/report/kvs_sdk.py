"""What the customer's SDK would have said: the KVS WebRTC C SDK's status codes and log lines.

Support engineers get these lines from customers; the lab prints the same lines for
the same events (`lab run --log kvs`) and names the status code a failed run would
have produced (`kvs_status` in the result), so a customer's log can be matched to a
scenario. Everything here is derived from the typed result (pure).
"""

from __future__ import annotations

import hashlib

from lab.observations.ice import Candidate, CandidatePair, SelectedPair
from lab.report.result import PeerResult, RunResult

STATUS_CODES = {
    "0x5a00000b": "STATUS_ICE_NO_LOCAL_CANDIDATE_AVAILABLE_AFTER_GATHERING_TIMEOUT",
    "0x5a00000d": "STATUS_ICE_NO_CONNECTED_CANDIDATE_PAIR",
    "0x5a00000e": "STATUS_ICE_CANDIDATE_PAIR_LIST_EMPTY",
    "0x5a000013": "STATUS_ICE_FAILED_TO_NOMINATE_CANDIDATE_PAIR",
    "0x5a000027": "STATUS_TURN_CONNECTION_PEER_NOT_USABLE",
}
MEANINGS = {
    "0x5a00000b": "no local candidate was available after the gathering timeout",
    "0x5a00000d": "no candidate pair connected before the connectivity check timeout",
    "0x5a00000e": "the candidate pair list was empty",
    "0x5a000013": "a pair connected but none could be nominated",
    "0x5a000027": "the TURN server refused the peer (403 Forbidden IP), so the relay is unusable",
}
AGENT_STATES = {
    "checking": "ICE_AGENT_STATE_CHECK_CONNECTION",
    "completed": "ICE_AGENT_STATE_READY",
    "failed": "ICE_AGENT_STATE_FAILED",
    "closed": "ICE_AGENT_STATE_DISCONNECTED",
}


def _status(code: str) -> dict[str, str]:
    return {"code": code, "name": STATUS_CODES[code], "meaning": MEANINGS[code]}


def kvs_status(result: RunResult) -> dict[str, str] | None:
    """The status the C SDK would report for a failed run (None when it connected)."""
    if result.outcome == "connected":
        return None
    viewer = result.peers["viewer"]
    if failed_before_ice(viewer):
        return None  # the C SDK fails in signaling (DNS, TLS, HTTP) and names no ICE status
    if not viewer.candidates:
        return _status("0x5a00000b")
    pairs = result.pairs_of("viewer")
    if not pairs:
        return _status("0x5a00000e")
    if any(_worked(p) for p in pairs):
        return _status("0x5a000013")
    refused = [
        p for p in pairs
        if (p.failure or {}).get("reason") == "turn_error" and (p.failure or {}).get("code") == 403
    ]  # fmt: skip
    if refused and len(refused) == len([p for p in pairs if p.local.type == "relay"]):
        return _status("0x5a000027")
    return _status("0x5a00000d")


def _worked(pair: CandidatePair) -> bool:
    """A pair some of whose checks were answered. libwebrtc sets a pair `in-progress`
    again on every check it sends, so a browser's pair that worked reads `in-progress`
    while its next check is out: on a 5 s round trip (`long-round-trip-kvs`) a Chromium
    viewer's srflx pair, 38 of 138 checks answered, read `in-progress` or `succeeded`
    by the moment getStats() ran."""
    answered = pair.extra.get("responses_received") or 0
    return pair.state == "succeeded" or (pair.state == "in-progress" and answered > 0)


def failed_before_ice(peer: PeerResult) -> bool:
    """The peer's error ended it before its ICE agent started (no state, no candidate):
    the service was out of reach, by name or by address."""
    return bool(peer.error) and not peer.extra.get("ice_states") and not peer.candidates


def candidate_id(candidate: Candidate) -> str:
    """A short stable id, like the C SDK's random candidate ids."""
    key = f"{candidate.type}{candidate.address}{candidate.port}"
    return hashlib.sha1(key.encode()).hexdigest()[:8]


def _detail_lines(side: str, candidate: Candidate) -> list[str]:
    relay = candidate.relay_protocol or "N/A"
    source = candidate.server.split(":")[1] if candidate.server else "N/A"
    return [
        f"{side} Candidate IP Address: {candidate.address}",
        f"{side} Candidate type: {candidate.type}",
        f"{side} Candidate port: {candidate.port}",
        f"{side} Candidate transport protocol: {candidate.protocol}",
        f"{side} Candidate relay protocol: {relay}",
        f"{side} Candidate Ice server source: {source}",
    ]


def kvs_log_lines(result: RunResult, role: str) -> list[str]:
    """The C SDK's log lines for one peer's ICE agent, in the order the events happened."""
    peer = result.peers[role]
    lines = [
        f"New local candidate {candidate_id(c)}: {c.type} {c.endpoint}" for c in peer.candidates
    ]
    lines += [
        f"New remote candidate {candidate_id(c)}: {c.type} {c.endpoint}"
        for c in peer.remote_candidates or []
    ]
    previous = "ICE_AGENT_STATE_NEW"
    for change in peer.extra.get("ice_states") or []:
        state = AGENT_STATES.get(change["state"])
        if state and state != previous:
            lines.append(f"Ice agent state changed from {previous} to {state}.")
            previous = state
    for pair in result.pairs_of(role):
        if pair.state == "succeeded":
            pair_id = candidate_id(pair.local) + candidate_id(pair.remote)
            rtt = round(pair.rtt_ms) if pair.rtt_ms is not None else 0
            lines.append(f"Ice candidate pair {pair_id} is connected. Round trip time: {rtt}ms")
    selected = result.selected.get(role)
    if selected:
        lines += _selected_lines(selected, result, role)
    return lines


def _selected_lines(selected: SelectedPair, result: RunResult, role: str) -> list[str]:
    local, remote = selected.local, selected.remote
    pair_id = candidate_id(local) + candidate_id(remote)
    checked = result.selected_pair_of(role)
    priority = checked.extra.get("priority") if checked else None
    rtt = round(selected.rtt_ms) if selected.rtt_ms is not None else 0
    return [
        f"Selected pair {pair_id}, local candidate type: {local.type}. Round trip time "
        f"{rtt} ms. Local candidate priority: {local.priority}, ice candidate pair "
        f"priority: {priority}",
        *_detail_lines("Local", local),
        *_detail_lines("Remote", remote),
    ]
