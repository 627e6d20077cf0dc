"""Did the run reproduce the artifact? Field by field, for each peer the artifact shows.

Fields: outcome, the selected pair's candidate types, the relay's transport, the C SDK
status of a failed connection, the TURN errors, and where the artifact shows them TURN's TCP
connect stuck and the round trip. A field the artifact does not show is `unknown` and does
not count; a run that matches only absences (no TURN errors, no status) reproduced nothing,
so the verdict is then unknown, never yes. srflx and prflx count as the same (both are the NAT's
mapping; which one a peer learns first depends on timing), and tcp and tls as one relay
transport (the C SDK reports TURN over TLS as tcp).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from lab.core.documents import JsonObject
from lab.observations.ice import CandidatePair
from lab.report.diagnose.facts import Facts, PeerFacts
from lab.report.diagnose.findings import ICE_FAILURES, is_private
from lab.report.result import RunResult


@dataclass(frozen=True)
class Check:
    field: str
    role: str
    artifact: Any
    run: Any
    match: bool | None

    def as_dict(self) -> JsonObject:
        return asdict(self)


def _kind(candidate_type: str | None) -> str | None:
    return "reflexive" if candidate_type in ("srflx", "prflx") else candidate_type


def _family(protocol: str | None) -> str | None:
    return None if protocol is None else ("tcp" if protocol in ("tcp", "tls") else protocol)


def _check(name: str, role: str, artifact: Any, run: Any, same: bool | None = None) -> Check:
    if artifact is None:
        return Check(name, role, "unknown", run, None)
    return Check(name, role, artifact, run, (artifact == run) if same is None else same)


def _selected_relay(selected: JsonObject | None) -> str | None:
    if not selected:
        return None
    if selected.get("local") == "relay":
        return selected.get("relay_protocol")
    if selected.get("remote") == "relay":
        return selected.get("remote_relay_protocol")
    return None


def _pair_relay(pair: CandidatePair) -> str | None:
    for side in (pair.local, pair.remote):
        if side.type == "relay":
            return side.relay_protocol
    return None


def tied_relay(result: RunResult, role: str, protocol: str | None) -> bool:
    """The run had a working pair through a relay over `protocol` at the selected pair's
    priority: which of two equal pairs gets selected is timing, not the network."""
    checked = result.selected_pair_of(role)
    if checked is None or protocol is None:
        return False
    priority = checked.extra.get("priority")
    return priority is not None and any(
        p.state == "succeeded"
        and p.extra.get("priority") == priority
        and _family(_pair_relay(p)) == _family(protocol)
        for p in result.pairs_of(role)
    )


def run_turn_codes(result: RunResult, role: str) -> set[int]:
    """TURN error codes the run's peer met: gathering errors and refused pairs."""
    peer = result.peers[role]
    codes = {
        int(m[1])
        for e in peer.extra.get("gathering_errors") or []
        for m in [re.search(r"TURN error (\d{3})", e.get("reason", ""))]
        if m
    }
    for pair in result.pairs_of(role):
        failure = pair.failure or {}
        if failure.get("reason") == "turn_error" and failure.get("code"):
            codes.add(int(failure["code"]))
    if any(c.type == "relay" for c in peer.candidates):
        codes.discard(401)
    return codes


def peer_checks(peer: PeerFacts, result: RunResult) -> list[Check]:
    role = peer.role
    run_sel = result.selected.get(role)
    run_types = (run_sel.local.type, run_sel.remote.type) if run_sel else None
    sel = peer.selected or {}
    checks = [_check("outcome", role, peer.outcome, result.outcome)]
    if sel.get("local") or peer.outcome == "failed":
        art = artifact_types(sel) if sel else None
        same = art is None and run_types is None
        if art and run_types:
            same = _kind(art[0]) == _kind(run_types[0]) and (
                art[1] is None or _kind(art[1]) == _kind(run_types[1])
            )
        shown = " -> ".join(t or "?" for t in art) if art else "none"
        if art and art[1] != sel.get("remote"):
            shown += f" ({sel.get('remote')} on a LAN)"
        checks.append(
            _check(
                "selected pair", role, shown, " -> ".join(run_types) if run_types else "none", same
            )
        )
    else:
        checks.append(
            _check("selected pair", role, None, " -> ".join(run_types) if run_types else "none")
        )
    art_relay = _selected_relay(sel)
    run_relay = _selected_relay(
        {
            "local": run_sel.local.type,
            "remote": run_sel.remote.type,
            "relay_protocol": run_sel.local.relay_protocol,
            "remote_relay_protocol": run_sel.remote.relay_protocol,
        }
        if run_sel
        else None
    )
    if art_relay is not None or (
        sel.get("local") and "relay" not in (sel.get("local"), sel.get("remote"))
    ):
        same = _family(art_relay) == _family(run_relay)
        shown = run_relay or "none"
        if not same and tied_relay(result, role, art_relay):
            same, shown = True, f"{shown} ({art_relay} tied at the same pair priority)"
        checks.append(_check("relay protocol", role, art_relay or "none", shown, same))
    else:
        checks.append(_check("relay protocol", role, None, run_relay or "none"))
    checks.append(_status_check(peer, result))
    art_codes = peer.turn_codes()
    run_codes = run_turn_codes(result, role)
    checks.append(
        _check("TURN errors", role, sorted(art_codes), sorted(run_codes), art_codes <= run_codes)
        if art_codes or peer.gathered()
        else _check("TURN errors", role, None, sorted(run_codes))
    )
    return checks


def _status_check(peer: PeerFacts, result: RunResult) -> Check:
    art = next((s for s in peer.statuses if s in ICE_FAILURES), None)
    run = (result.kvs_status or {}).get("code")
    if art is None and peer.outcome == "connected":
        art = "none"
    return _check("status code", peer.role, art, run or "none")


def verdict(facts: Facts, result: RunResult) -> JsonObject:
    """Every check, and `reproduced`: True when every field the artifact shows matches and at
    least one states a fact; False when one differs; None (unknown) when nothing the artifact
    states could be compared, with `why`."""
    checks = [c for peer in facts.peers.values() for c in peer_checks(peer, result)]
    path_art = artifact_path_rtt(facts)
    checks += [c for peer in facts.peers.values() for c in extra_checks(peer, result, path_art)]
    outcome, why = reproduced(checks)
    return {"reproduced": outcome, "why": why, "checks": [c.as_dict() for c in checks]}


#: What an artifact shows when it only shows an absence: no fact to reproduce by itself.
STATES_NOTHING = ("none", "unknown")


def reproduced(checks: list[Check]) -> tuple[bool | None, str]:
    """Whether the run reproduced the artifact, and why not (or why it cannot say)."""
    known = [c for c in checks if c.match is not None]
    differ = [f"{c.role} {c.field}" for c in known if not c.match]
    if differ:
        return False, f"the run differs in: {', '.join(differ)}"
    stated = [c for c in known if c.artifact not in STATES_NOTHING and c.artifact != []]
    if stated:
        return True, ""
    lacking = sorted({c.field for c in checks if c.match is None})
    return None, (
        "the run matches nothing the artifact states about the failure or the connection; "
        f"the artifact does not show: {', '.join(lacking) or 'any field'}"
    )


def extra_checks(peer: PeerFacts, result: RunResult, path_art: float | None = None) -> list[Check]:
    """Checks of what only some artifacts show: TURN's TCP connect stuck, the round trip."""
    return [c for c in (turn_tcp_check(peer, result), rtt_check(peer, result, path_art)) if c]


def artifact_path_rtt(facts: Facts) -> float | None:
    """The lower of the round trips the artifact's peers show for their selected pairs."""
    rtts = [(p.selected or {}).get("rtt_ms") for p in facts.peers.values()]
    rtts = [r for r in rtts if r is not None]
    return min(rtts) if rtts else None


def turn_tcp_check(peer: PeerFacts, result: RunResult) -> Check | None:
    """The artifact's TURN over TCP stuck connecting: did the run's TURN over TCP time out?"""
    if not peer.tcp_connect_stuck():
        return None
    ran = result.peers.get(peer.role)
    errors = (ran.extra.get("gathering_errors") if ran else None) or []
    tcp = [
        e
        for e in errors
        if "transport=tcp" in e.get("url", "") or e.get("url", "").startswith("turns:")
    ]
    stuck = any(re.search(r"no answer|timed? ?out|timeout", e.get("reason", "")) for e in tcp)
    run = "stuck connecting" if stuck else (tcp[0].get("reason", "failed") if tcp else "no error")
    return Check("TURN over TCP", peer.role, "stuck connecting", run, stuck)


def artifact_types(selected: JsonObject) -> tuple[str | None, str | None]:
    """The selected pair's candidate types; on one LAN a peer-reflexive remote is the other
    peer's host address learned from its checks before its candidate arrived (timing), so it
    counts as host."""
    local, remote = selected.get("local"), selected.get("remote")
    on_lan = is_private(selected.get("local_address")) and is_private(
        selected.get("remote_address")
    )
    if local == "host" and remote == "prflx" and on_lan:
        return local, "host"
    return local, remote


def path_rtt(result: RunResult) -> float | None:
    """The selected path's round trip as the run measured it: the lower of the peers'
    measures (a check answered after a retransmission doubles one of them)."""
    rtts = [s.rtt_ms for s in result.selected.values() if s and s.rtt_ms is not None]
    return min(rtts) if rtts else None


def rtt_check(peer: PeerFacts, result: RunResult, path_art: float | None = None) -> Check | None:
    """The selected pair's round trip, within 30 % (or 30 ms) of the artifact's. Like the
    run's (path_rtt), the artifact's path round trip is the lower of its peers' measures
    (`path_art`): one side's may count a retransmission."""
    art = (peer.selected or {}).get("rtt_ms")
    if art is None:
        return None
    art = min(art, path_art) if path_art is not None else art
    run = path_rtt(result)
    if run is None:
        return Check("round trip", peer.role, f"{art:g} ms", "unknown", None)
    close = abs(run - art) <= max(30.0, 0.3 * art)
    return Check("round trip", peer.role, f"{art:g} ms", f"{run:g} ms", close)
