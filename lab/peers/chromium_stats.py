"""Observations from what a Chromium peer's page reports: getStats() and its events.

Pure: the page's report in, the same observation records the aiortc peer writes out.
Only what getStats() says is recorded; what it does not say is left out or marked,
never invented (e.g. a failed pair's reason is given only where the counters show it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FINAL_STATES = ("succeeded", "failed")
STILL_CHECKING = ("in-progress", "waiting", "frozen")


def announced_addresses(lines: list[str]) -> dict[tuple[int, str, int], str]:
    """(port, type, priority) -> the address a candidate line announced.

    getStats() leaves a host candidate's address empty when the browser announced it
    under an mDNS name; the candidate line it signalled carries the name."""
    announced = {}
    for line in lines:
        fields = line.removeprefix("candidate:").split()
        if len(fields) >= 8 and fields[6] == "typ":
            announced[(int(fields[5]), fields[7], int(fields[3]))] = fields[4]
    return announced


def candidate_record(
    stats: dict[str, Any], announced: dict[tuple[int, str, int], str] | None = None
) -> dict[str, Any]:
    """An RTCIceCandidateStats as the result schema names a candidate."""
    kind = stats.get("candidateType", "host")
    address = stats.get("address") or stats.get("ip") or ""
    if not address and announced:
        key = (int(stats.get("port", 0)), kind, int(stats.get("priority", 0)))
        address = announced.get(key, "")
    record: dict[str, Any] = {
        "type": kind,
        "protocol": stats.get("protocol", "udp"),
        "address": address,
        "port": int(stats.get("port", 0)),
        "relay_protocol": stats.get("relayProtocol") if kind == "relay" else None,
        "server": stats.get("url") or None,
    }
    if "priority" in stats:
        record["priority"] = int(stats["priority"])
    if stats.get("foundation"):
        record["foundation"] = str(stats["foundation"])
    if stats.get("tcpType"):
        record["tcp_type"] = stats["tcpType"]
    if record["address"].endswith(".local"):
        record["mdns"] = True
    elif not record["address"]:
        record["hidden"] = True  # the browser neither showed nor announced this address
    return record


def unresolved_remote(lines: list[str], remote: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The mDNS host candidates the other peer announced that never became a remote
    candidate here: the name did not resolve (multicast does not cross a router)."""
    known = {(c["address"], c["port"]) for c in remote}
    unresolved = []
    for (port, kind, _), address in announced_addresses(lines).items():
        if address.endswith(".local") and (address, port) not in known:
            unresolved.append(
                {
                    "type": kind,
                    "address": address,
                    "port": port,
                    "reason": "the mDNS name did not resolve from this network",
                }
            )
    return unresolved


def pair_failure(
    pair: dict[str, Any], state: str, browser: str = "Chromium"
) -> dict[str, Any] | None:
    """Why a pair did not work, as far as its counters tell; the browser gives no reason."""
    sent = int(pair.get("requestsSent", 0))
    answered = int(pair.get("responsesReceived", 0))
    if state == "failed":
        if sent and not answered:
            return {
                "reason": "timeout",
                "message": f"no response to {sent} check(s): a NAT or firewall on the path "
                "dropped them",
            }
        return {
            "reason": "unknown",
            "message": f"{browser} marked the pair failed ({sent} check(s) sent, {answered} "
            "answered); getStats() gives no reason",
        }
    if state in STILL_CHECKING and sent and not answered:
        return {
            "reason": "timeout",
            "message": f"no response to {sent} check(s) within the lab's budget; {browser} was "
            "still checking and would have kept trying",
        }
    return None


def pair_record(
    pair: dict[str, Any],
    by_id: dict[str, dict[str, Any]],
    selected_id: str | None,
    announced: dict[tuple[int, str, int], str],
) -> dict[str, Any]:
    state = pair.get("state", "unknown")
    rtt = pair.get("currentRoundTripTime")
    if rtt is None and pair.get("responsesReceived"):
        total = pair.get("totalRoundTripTime")
        rtt = total / pair["responsesReceived"] if total is not None else None
    record: dict[str, Any] = {
        "local": candidate_record(by_id.get(pair.get("localCandidateId", ""), {}), announced),
        "remote": candidate_record(by_id.get(pair.get("remoteCandidateId", ""), {}), announced),
        "state": state,
        "agent_state": state,
        "failure": pair_failure(pair, state),
        "nominated": bool(pair.get("nominated")),
        "checks_sent": int(pair.get("requestsSent", 0)),
        "responses_received": int(pair.get("responsesReceived", 0)),
        "rtt_ms": round(rtt * 1000, 2) if rtt is not None else None,
        "selected": pair.get("id") == selected_id,
    }
    if "priority" in pair:
        record["priority"] = int(pair["priority"])
    if record["local"]["type"] in ("srflx", "prflx"):
        # Its checks leave from a host socket (a reflexive candidate's base, RFC 8445
        # 5.1.1.1); getStats() hides that socket's address but not what it is.
        record["local_base_type"] = "host"
    if state in STILL_CHECKING:
        record["note"] = (
            "still checking when the lab stopped watching"
            if record["checks_sent"]
            else "never checked: Chromium had not started this pair when the lab stopped watching"
        )
    return record


#: pair_record's shape: (getStats pair, stats by id, selected pair id, announced) -> record.
PairRecord = Callable[
    [dict[str, Any], dict[str, dict[str, Any]], str | None, dict[tuple[int, str, int], str]],
    dict[str, Any],
]


def selected_pair_id(stats: list[dict[str, Any]]) -> str | None:
    """The transport's selected pair (what webrtc-internals shows as the active pair)."""
    for entry in stats:
        if entry.get("type") == "transport" and entry.get("selectedCandidatePairId"):
            return str(entry["selectedCandidatePairId"])
    return None


def gathering_seconds(states: list[dict[str, Any]]) -> float | None:
    """From the start of gathering to `complete`, by the page's own clock."""
    start = next((s["t_s"] for s in states if s["state"] == "gathering"), None)
    end = next((s["t_s"] for s in states if s["state"] == "complete"), None)
    if start is None or end is None:
        return None
    return round(end - start, 4)


def gathering_errors(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`icecandidateerror` events (RFC 8445 errors and Chromium's 7xx codes) per server."""
    errors = []
    for event in events:
        reason = f"{event.get('error_code')} {event.get('error_text') or ''}".strip()
        errors.append(
            {"url": event.get("url") or "", "reason": reason, "elapsed_s": event.get("t_s", 0)}
        )
    return errors


def observations(
    report: dict[str, Any],
    base: dict[str, Any],
    pair_record: PairRecord = pair_record,
    selected_pair_id: Callable[[list[dict[str, Any]]], str | None] = selected_pair_id,
) -> dict[str, Any]:
    """The peer's observations: `base` (role, host, mode, software...) plus what the page saw.

    Another browser whose getStats() differs in its pairs only (Firefox) passes its own
    `pair_record` and `selected_pair_id`; candidates, events and the rest are the same."""
    stats = report.get("stats", [])
    by_id = {str(entry["id"]): entry for entry in stats if "id" in entry}
    selected_id = selected_pair_id(stats)
    announced = announced_addresses(
        report.get("local_candidates", []) + report.get("remote_candidates", [])
    )
    pairs = [
        pair_record(entry, by_id, selected_id, announced)
        for entry in stats
        if entry.get("type") == "candidate-pair"
    ]
    selected = next((p for p in pairs if p["selected"]), None)
    remote = [candidate_record(e, announced) for e in stats if e.get("type") == "remote-candidate"]
    return (
        base
        | {
            "ice_state": report.get("ice_state"),
            "ice_states": report.get("ice_states", []),
            "connected_s": report.get("connected_s"),
            "echo": bool(report.get("echo")),
            "error": report.get("error"),
            "candidates": [
                candidate_record(e, announced) for e in stats if e.get("type") == "local-candidate"
            ],
            "remote_candidates": remote,
            "unresolved_remote_candidates": unresolved_remote(
                report.get("remote_candidates", []), remote
            ),
            "ice_role": next(
                (e["iceRole"] for e in stats if e.get("type") == "transport" and "iceRole" in e),
                None,
            ),
            "gathering_s": gathering_seconds(report.get("gathering_states", [])),
            "gathering_errors": gathering_errors(report.get("candidate_errors", [])),
            "pairs": pairs,
            "selected": (
                {k: selected[k] for k in ("local", "remote", "rtt_ms")} if selected else None
            ),
        }
        | ({"call": report["call"]} if report.get("call") else {})
    )
