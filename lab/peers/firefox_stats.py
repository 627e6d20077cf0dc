"""Observations from a Firefox peer's page: chromium_stats's mapping, with Firefox's pairs.

Firefox's getStats() (measured on 140 and 153 ESR) agrees with Chromium's on candidates
(type, protocol, relayProtocol, address or mDNS name, port, priority) and differs on pairs:
- counters it lacks (140: `requestsSent`, `responsesReceived`, `currentRoundTripTime`,
  `totalRoundTripTime`; 153: `requestsSent`) are recorded as unknown (None) and named in
  `not_exposed`, never as zero;
- no `transport` entry: the selected pair is the pair Firefox marks `selected: true`
  (non-standard, Firefox's own), and the ICE role is unknown;
- its own state names: `inprogress` (the webrtc-stats drafts' spelling) is the lab's
  `in-progress`, and `cancelled` (nICEr stopped checking the pair) is kept as Firefox
  says it;
- candidates carry no `url`, `foundation` or `tcpType`: their server stays None; its own
  peer-reflexive candidates' address is `(redacted)`: left empty and marked hidden.
Pure: the page's report in, the same observation records the other agents write out.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from lab.peers import chromium_stats

#: Firefox's pair state names that differ from the standard's (and Chromium's).
STATE_NAMES = {"inprogress": "in-progress"}
#: The pair fields the lab reads, by the getStats() field it reads them from.
PAIR_COUNTERS = {
    "checks_sent": "requestsSent",
    "responses_received": "responsesReceived",
}
#: Per stats type, the fields the lab reads: what a report lacks is listed as not exposed.
READ_FIELDS = {
    "candidate-pair": (
        "requestsSent",
        "responsesReceived",
        "currentRoundTripTime",
        "totalRoundTripTime",
    ),
    "local-candidate": ("url", "foundation", "relayProtocol"),
    "transport": ("selectedCandidatePairId", "iceRole"),
}
#: What Firefox's getStats() shows for the address of its own peer-reflexive candidates.
REDACTED = "(redacted)"


def counter(pair: dict[str, Any], field: str) -> int | None:
    """A getStats() counter, or None where Firefox does not report it (not zero)."""
    value = pair.get(field)
    return int(value) if value is not None else None


def round_trip_ms(pair: dict[str, Any]) -> float | None:
    rtt = pair.get("currentRoundTripTime")
    answered = pair.get("responsesReceived")
    if rtt is None and answered and pair.get("totalRoundTripTime") is not None:
        rtt = pair["totalRoundTripTime"] / answered
    return round(rtt * 1000, 2) if rtt is not None else None


def pair_failure(pair: dict[str, Any], state: str) -> dict[str, Any] | None:
    """Why a pair did not work: from its counters where Firefox gives them (as for
    Chromium), else from its state alone. `in-progress` means a check was sent and not
    yet answered (RFC 8445 6.1.2.6), so a pair still in it when the lab stopped watching
    had no answer within the lab's budget; `failed` says no more than that."""
    if PAIR_COUNTERS["checks_sent"] in pair:
        return chromium_stats.pair_failure(pair, state, browser="Firefox")
    if state == "in-progress":
        return {
            "reason": "timeout",
            "message": "checks sent (Firefox does not count them), none answered within the "
            "lab's budget; Firefox was still checking and would have kept trying",
        }
    if state != "failed":
        return None
    return {
        "reason": "unknown",
        "message": "Firefox marked the pair failed; its getStats() gives no reason and "
        "no check counters",
    }


def note(state: str, agent_state: str) -> str | None:
    if agent_state == "cancelled":
        return (
            "Firefox cancelled this pair (nICEr's own state, not RFC 8445's): it stopped "
            "checking it before an outcome; getStats() says neither why nor whether a check "
            "was sent"
        )
    if state == "in-progress":
        return "still checking when the lab stopped watching"
    if state in ("waiting", "frozen"):
        return "never checked: Firefox had not started this pair when the lab stopped watching"
    return None


def pair_record(
    pair: dict[str, Any],
    by_id: dict[str, dict[str, Any]],
    selected_id: str | None,
    announced: dict[tuple[int, str, int], str],
) -> dict[str, Any]:
    """A Firefox candidate-pair as the result names a pair; what it lacks is None."""
    agent_state = str(pair.get("state", "unknown"))
    state = STATE_NAMES.get(agent_state, agent_state)
    sent = counter(pair, PAIR_COUNTERS["checks_sent"])
    answered = counter(pair, PAIR_COUNTERS["responses_received"])
    local = by_id.get(pair.get("localCandidateId", ""), {})
    remote = by_id.get(pair.get("remoteCandidateId", ""), {})
    record: dict[str, Any] = {
        "local": chromium_stats.candidate_record(local, announced),
        "remote": chromium_stats.candidate_record(remote, announced),
        "state": state,
        "agent_state": agent_state,
        "failure": pair_failure(pair, state),
        "nominated": bool(pair.get("nominated")),
        "checks_sent": sent,
        "responses_received": answered,
        "rtt_ms": round_trip_ms(pair),
        "selected": pair.get("id") == selected_id,
    }
    missing = [name for name, field in PAIR_COUNTERS.items() if field not in pair]
    if "currentRoundTripTime" not in pair and "totalRoundTripTime" not in pair:
        missing.append("rtt_ms")
    if missing:
        record["not_exposed"] = missing
    if "priority" in pair:
        record["priority"] = int(pair["priority"])
    if record["local"]["type"] in ("srflx", "prflx"):
        record["local_base_type"] = "host"  # a reflexive candidate's base (RFC 8445 5.1.1.1)
    if text := note(state, agent_state):
        record["note"] = text
    return record


def selected_pair_id(stats: list[dict[str, Any]]) -> str | None:
    """The transport's selected pair where there is a transport entry, else the pair
    Firefox marks `selected` (it reports no transport)."""
    from_transport = chromium_stats.selected_pair_id(stats)
    if from_transport is not None:
        return from_transport
    for entry in stats:
        if entry.get("type") == "candidate-pair" and entry.get("selected"):
            return str(entry["id"])
    return None


def not_exposed(stats: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per stats type, the fields the lab reads that no entry of this report had (a type
    with no entry at all: every field)."""
    missing = {}
    for kind, fields in READ_FIELDS.items():
        entries = [e for e in stats if e.get("type") == kind]
        absent = [f for f in fields if not any(f in e for e in entries)]
        if kind == "local-candidate":  # relayProtocol belongs to relay candidates only
            relays = [e for e in entries if e.get("candidateType") == "relay"]
            absent = [f for f in absent if f != "relayProtocol" or relays]
        if absent:
            missing[kind] = absent
    return missing


def _ip_host(url: str) -> bool:
    """Whether a `turns:HOST:PORT?...` URL names its server by an IP address."""
    host = urlsplit("//" + url.split(":", 1)[1].split("?")[0]).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def unused_tls_servers(
    servers: list[dict[str, Any]], candidates: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """`turns:` URLs named by an IP address, when Firefox gathered no TLS relay candidate:
    Firefox does not use them (measured, Firefox 140: with only such a URL and relay-only
    policy nICEr logs that no TURN server is configured; the same server by a host name
    in its certificate gives a TLS relay). Evidence of this run, not a rule: a TLS relay
    candidate in the run means it was used, and nothing is listed."""
    if any(c.get("relay_protocol") == "tls" for c in candidates):
        return []
    urls = [u for s in servers for u in s.get("urls", []) if u.startswith("turns:")]
    return [
        {
            "url": url,
            "reason": "firefox: no TLS relay candidate; Firefox does not use a turns: URL "
            "whose host is an IP address (TLS needs a host name to verify)",
        }
        for url in urls
        if _ip_host(url)
    ]


def unredacted(entry: dict[str, Any]) -> dict[str, Any]:
    """A stats entry with Firefox's `(redacted)` address (its own peer-reflexive
    candidates) left empty, as Chromium leaves what it hides: marked hidden, not kept as
    if it were an address."""
    if entry.get("address") == REDACTED:
        return entry | {"address": ""}
    return entry


def observations(report: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The peer's observations: `base` plus what Firefox's page saw and what its
    getStats() did not say (`not_exposed`)."""
    stats = [unredacted(entry) for entry in report.get("stats", [])]
    return chromium_stats.observations(
        report | {"stats": stats}, base, pair_record=pair_record, selected_pair_id=selected_pair_id
    ) | {"not_exposed": not_exposed(stats)}
