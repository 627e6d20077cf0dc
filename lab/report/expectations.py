"""Check a result against the scenario's `expect:` block.

Each check is reported with what was observed, so a failed expectation says why.
"""

from __future__ import annotations

from lab.core.addresses import family
from lab.core.documents import JsonObject
from lab.core.roles import ROLES
from lab.observations.call_timeline import recovery_checks
from lab.observations.ice import Candidate, CandidatePair, SelectedPair
from lab.report.result import Expectation, RunResult

#: The scenario's `expect:` block, as the schema allows it.
ExpectBlock = JsonObject


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _alternatives(phrase: str) -> list[str]:
    """`TLS|701`: agents word one failure differently; any alternative will do."""
    return phrase.split("|")


def evaluate(expect: ExpectBlock, result: RunResult) -> list[Expectation]:
    """One check per expectation, with what was observed."""
    checks = [
        Expectation(
            f"outcome is {expect['outcome']}", result.outcome == expect["outcome"], result.outcome
        )  # fmt: skip
    ]
    if "kvs_status" in expect:
        observed = (result.kvs_status or {}).get("code")
        checks.append(Expectation(f"the KVS C SDK would report {expect['kvs_status']}",
                                  observed == expect["kvs_status"], observed))  # fmt: skip
    checks += [_failing_check(spec, result) for spec in expect.get("failing_pairs", [])]
    checks += [Expectation.from_json(c) for c in recovery_checks(expect, result.call)]
    for role, phrases in expect.get("gathering_errors", {}).items():
        errors = result.peers[role].extra.get("gathering_errors") or []
        reasons = [f"{e['url']}: {e['reason']}" for e in errors]
        for words in map(_alternatives, phrases):
            checks.append(Expectation(
                f"{role} has a gathering error mentioning " + " or ".join(f"'{a}'" for a in words),
                any(a in reason for reason in reasons for a in words), reasons,
            ))  # fmt: skip
    for role, phrases in expect.get("peer_errors", {}).items():
        # "Name or service not known|ERR_NAME_NOT_RESOLVED": each agent's words.
        error = result.peers[role].error or ""
        for words in map(_alternatives, phrases):
            checks.append(Expectation(
                f"{role}'s error mentions " + " or ".join(f"'{a}'" for a in words),
                any(a in error for a in words), error or None,
            ))  # fmt: skip
    for role, minimum in expect.get("min_gathering_s", {}).items():
        seen = result.timings.gathering_s.get(role)
        checks.append(Expectation(f"{role}'s gathering took at least {minimum:g} s",
                                  seen is not None and seen >= minimum, seen))  # fmt: skip
    for role, wanted in expect.get("selected", {}).items():
        checks += _selected_checks(role, wanted, result.selected.get(role))
    for role, wanted in expect.get("gathered", {}).items():
        checks += [_gathered_check(role, spec, result) for spec in wanted]
    for role, absent in expect.get("absent_candidates", {}).items():
        types = sorted({c.type for c in result.peers[role].candidates})
        checks.append(Expectation(f"{role} has no {'/'.join(absent)} candidate",
                                  not set(absent) & set(types), types))  # fmt: skip
    for role, by_type in expect.get("candidate_addresses", {}).items():
        checks += [_addresses_check(role, t, wanted, result) for t, wanted in by_type.items()]
    return checks


def _selected_checks(role: str, wanted: JsonObject, pair: SelectedPair | None) -> list[Expectation]:
    checks = []
    for side in ("local", "remote"):
        if side in wanted:
            types = _as_list(wanted[side])
            observed = getattr(pair, side).type if pair else None
            checks.append(Expectation(f"{role}'s selected {side} candidate is {'/'.join(types)}",
                                      observed in types, observed))  # fmt: skip
    if "involves" in wanted:
        types = _as_list(wanted["involves"])
        both = [pair.local.type, pair.remote.type] if pair else None
        checks.append(Expectation(
            f"{role}'s selected pair involves a {'/'.join(types)} candidate",
            bool(both and set(both) & set(types)), both,
        ))  # fmt: skip
    if "family" in wanted:
        families = (
            sorted({family(pair.local.address), family(pair.remote.address)}) if pair else None
        )
        checks.append(Expectation(f"{role}'s selected pair is {wanted['family']}",
                                  families == [wanted["family"]], families))  # fmt: skip
    if "relay_protocol" in wanted:
        protocols = wanted["relay_protocol"]
        observed = pair.local.relay_protocol if pair else None
        checks.append(Expectation(f"{role}'s selected relay is reached over {'/'.join(protocols)}",
                                  observed in protocols, observed))  # fmt: skip
    return checks


def _gathered_check(role: str, spec: JsonObject, result: RunResult) -> Expectation:
    """The peer gathered a candidate of this type and address family, which some pair
    used (`paired: true`) or which no pair of either agent used (`paired: false`)."""
    types = _as_list(spec.get("type", ["host", "srflx", "prflx", "relay"]))
    used = {(c.address, c.port) for p in result.pairs for c in (p.local, _base(p), p.remote)}
    candidates = result.peers[role].candidates
    found = [
        c for c in candidates
        if c.type in types and family(c.address) == spec.get("family", family(c.address))
    ]  # fmt: skip
    label = f"{role} gathered a {'/'.join(types)} {spec.get('family', '')} candidate".replace(
        "  ", " "
    )
    if "paired" in spec:
        label += " that a pair used" if spec["paired"] else " that no pair could use"
        found = [c for c in found if ((c.address, c.port) in used) == spec["paired"]]
    observed = sorted(
        f"{c.type} {family(c.address)}" + ("" if (c.address, c.port) in used else " unpaired")
        for c in candidates
    )
    return Expectation(label, bool(found), observed)


def _base(pair: CandidatePair) -> Candidate:
    """The socket the pair's checks left from (its local candidate's base)."""
    base = pair.extra.get("local_base")
    return Candidate.from_json(base) if base else pair.local


def _failing_check(spec: JsonObject, result: RunResult) -> Expectation:
    """Every pair of the given types failed (for the given reason), and there was one."""
    local, remote = _as_list(spec["local"]), _as_list(spec["remote"])
    agents = [spec["agent"]] if "agent" in spec else list(ROLES)
    formed = [
        p for p in result.pairs
        if p.agent in agents and _local_type(p) in local and p.remote.type in remote
    ]  # fmt: skip
    pairs = [p for p in formed if not _never_checked(p)]
    label = f"{'/'.join(local)} -> {'/'.join(remote)} pairs fail"
    if "reason" in spec:
        label += f" with {spec['reason']}" + (f" {spec['code']}" if "code" in spec else "")

    def matches(pair: CandidatePair) -> bool:
        failure = pair.failure or {}
        # A browser pair still unanswered when the lab's budget ran out timed out by that
        # budget, although the browser itself would have kept trying.
        gave_up = pair.state == "in-progress" and failure.get("reason") == "timeout"
        return (
            (pair.state == "failed" or gave_up)
            and failure.get("reason", spec.get("reason"))
            == spec.get("reason", failure.get("reason"))
            and ("code" not in spec or failure.get("code") == spec["code"])
        )

    observed = sorted({f"{p.state}:{(p.failure or {}).get('reason')}" for p in pairs})
    # No evidence against: the pairs could not be formed (unresolvable mDNS names), or
    # the agent formed them and never checked them (it had selected a pair already).
    unformed = [] if formed else _unresolvable(result, agents, remote)
    if unformed:
        observed = [f"not formed: {', '.join(unformed)}"]
    elif formed and not pairs:
        observed = [
            f"{len(formed)} formed, none checked to a verdict: the agent stopped after "
            "selecting a pair"
        ]
    return Expectation(label, all(matches(p) for p in pairs) and bool(formed or unformed), observed)


def _local_type(pair: CandidatePair) -> str:
    """What a pair's local side is, as the expectations name it: a pair that worked by its
    valid local candidate, one that did not by the socket its checks left from. aiortc's
    failed pairs already carry that socket; a browser labels a check from its host socket
    with the reflexive candidate it shares the socket with."""
    if pair.state != "succeeded" and pair.extra.get("local_base_type"):
        return str(pair.extra["local_base_type"])
    return pair.local.type


def _never_checked(pair: CandidatePair) -> bool:
    """A pair the agent formed but never brought to a verdict: one it never checked (a
    browser stops starting new pairs once one is selected), or one Firefox `cancelled`
    (nICEr stops checking the pending pairs once one is nominated, and its getStats()
    says neither why nor whether a check was sent). It neither worked nor failed, so it
    says nothing either way."""
    if pair.state == "cancelled":
        return True
    return pair.state in ("waiting", "frozen") and not pair.checks_sent


def _unresolvable(result: RunResult, agents: list[str], remote: list[str]) -> list[str]:
    """Why no pair of these types could even be formed: the remote candidates were mDNS
    names that did not resolve (a browser's host candidates seen across a NAT)."""
    reasons = []
    for agent in agents:
        unresolved = result.peers[agent].extra.get("unresolved_remote_candidates") or []
        names = [c["address"] for c in unresolved if c["type"] in remote]
        if names:
            reasons.append(f"{agent} could not resolve the mDNS name(s) {', '.join(names)}")
    return reasons


def _addresses_check(role: str, kind: str, wanted: list[str], result: RunResult) -> Expectation:
    """The peer's candidates of type `kind` are at exactly these addresses: each at one of
    them, each of them taken. A node's name stands for any of its addresses (a VPN's
    srflx is at its concentrator's, not the home router's)."""
    nodes = (result.network or {}).get("nodes") or {}
    found = sorted({c.address for c in result.peers[role].candidates if c.type == kind})

    def addresses(entry: str) -> set[str]:
        return set(nodes[entry]["addresses"]) if entry in nodes else {entry}

    each_wanted = all(any(a in addresses(e) for a in found) for e in wanted)
    each_found = all(any(a in addresses(e) for e in wanted) for a in found)
    return Expectation(f"{role}'s {kind} candidates are at {', '.join(wanted)}",
                       bool(found) and each_wanted and each_found, found)  # fmt: skip
