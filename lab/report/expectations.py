"""Check a result against the scenario's `expect:` block.

Each check is reported with what was observed, so a failed expectation says why.
"""

from __future__ import annotations

from typing import Any

from lab.core.addresses import family
from lab.observations.call_timeline import recovery_checks


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def evaluate(expect: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per expectation: {check, met, observed}."""
    checks = [
        {
            "check": f"outcome is {expect['outcome']}",
            "met": result["outcome"] == expect["outcome"],
            "observed": result["outcome"],
        }
    ]
    if "kvs_status" in expect:
        observed = (result.get("kvs_status") or {}).get("code")
        checks.append(
            {
                "check": f"the KVS C SDK would report {expect['kvs_status']}",
                "met": observed == expect["kvs_status"],
                "observed": observed,
            }
        )
    checks += [_failing_check(spec, result) for spec in expect.get("failing_pairs", [])]
    checks += recovery_checks(expect, result.get("call"))
    for role, phrases in expect.get("gathering_errors", {}).items():
        reasons = [
            f"{e['url']}: {e['reason']}"
            for e in result["peers"][role].get("gathering_errors") or []
        ]
        for phrase in phrases:
            # "TLS|701": agents word one failure differently (aiortc names the TLS error,
            # a browser reports icecandidateerror 701); any alternative will do.
            alternatives = phrase.split("|")
            checks.append(
                {
                    "check": f"{role} has a gathering error mentioning "
                    + " or ".join(f"'{a}'" for a in alternatives),
                    "met": any(a in reason for reason in reasons for a in alternatives),
                    "observed": reasons,
                }
            )
    for role, phrases in expect.get("peer_errors", {}).items():
        error = result["peers"][role].get("error") or ""
        for phrase in phrases:
            # "Name or service not known|ERR_NAME_NOT_RESOLVED": each agent's words.
            alternatives = phrase.split("|")
            checks.append(
                {
                    "check": f"{role}'s error mentions "
                    + " or ".join(f"'{a}'" for a in alternatives),
                    "met": any(a in error for a in alternatives),
                    "observed": error or None,
                }
            )
    for role, minimum in expect.get("min_gathering_s", {}).items():
        observed = result["timings"]["gathering_s"].get(role)
        checks.append(
            {
                "check": f"{role}'s gathering took at least {minimum:g} s",
                "met": observed is not None and observed >= minimum,
                "observed": observed,
            }
        )
    for role, wanted in expect.get("selected", {}).items():
        checks += _selected_checks(role, wanted, result["selected"].get(role))
    for role, wanted in expect.get("gathered", {}).items():
        checks += [_gathered_check(role, spec, result) for spec in wanted]
    for role, absent in expect.get("absent_candidates", {}).items():
        types = sorted({c["type"] for c in result["peers"][role]["candidates"]})
        checks.append(
            {
                "check": f"{role} has no {'/'.join(absent)} candidate",
                "met": not set(absent) & set(types),
                "observed": types,
            }
        )
    for role, by_type in expect.get("candidate_addresses", {}).items():
        checks += [_addresses_check(role, t, wanted, result) for t, wanted in by_type.items()]
    return checks


def _selected_checks(
    role: str, wanted: dict[str, Any], pair: dict[str, Any] | None
) -> list[dict[str, Any]]:
    checks = []
    for side in ("local", "remote"):
        if side in wanted:
            types = _as_list(wanted[side])
            observed = pair[side]["type"] if pair else None
            checks.append(
                {
                    "check": f"{role}'s selected {side} candidate is {'/'.join(types)}",
                    "met": observed in types,
                    "observed": observed,
                }
            )
    if "involves" in wanted:
        types = _as_list(wanted["involves"])
        observed = [pair["local"]["type"], pair["remote"]["type"]] if pair else None
        checks.append(
            {
                "check": f"{role}'s selected pair involves a {'/'.join(types)} candidate",
                "met": bool(observed and set(observed) & set(types)),
                "observed": observed,
            }
        )
    if "family" in wanted:
        observed = (
            sorted({family(pair[s]["address"]) for s in ("local", "remote")}) if pair else None
        )
        checks.append(
            {
                "check": f"{role}'s selected pair is {wanted['family']}",
                "met": observed == [wanted["family"]],
                "observed": observed,
            }
        )
    if "relay_protocol" in wanted:
        protocols = wanted["relay_protocol"]
        observed = pair["local"]["relay_protocol"] if pair else None
        checks.append(
            {
                "check": f"{role}'s selected relay is reached over {'/'.join(protocols)}",
                "met": observed in protocols,
                "observed": observed,
            }
        )
    return checks


def _gathered_check(role: str, spec: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The peer gathered a candidate of this type and address family, which some pair
    used (`paired: true`) or which no pair of either agent used (`paired: false`)."""
    types = _as_list(spec.get("type", ["host", "srflx", "prflx", "relay"]))
    used = {
        (c["address"], c["port"])
        for p in result["pairs"]
        for c in (p["local"], p.get("local_base") or p["local"], p["remote"])
    }
    found = [
        c
        for c in result["peers"][role]["candidates"]
        if c["type"] in types and family(c["address"]) == spec.get("family", family(c["address"]))
    ]
    label = f"{role} gathered a {'/'.join(types)} {spec.get('family', '')} candidate".replace(
        "  ", " "
    )
    if "paired" in spec:
        label += " that a pair used" if spec["paired"] else " that no pair could use"
        found = [c for c in found if ((c["address"], c["port"]) in used) == spec["paired"]]
    observed = sorted(
        f"{c['type']} {family(c['address'])}"
        + ("" if (c["address"], c["port"]) in used else " unpaired")
        for c in result["peers"][role]["candidates"]
    )
    return {"check": label, "met": bool(found), "observed": observed}


def _failing_check(spec: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Every pair of the given types failed (for the given reason), and there was one."""
    local, remote = _as_list(spec["local"]), _as_list(spec["remote"])
    agents = [spec["agent"]] if "agent" in spec else ["viewer", "master"]
    formed = [
        p
        for p in result["pairs"]
        if p["agent"] in agents and _local_type(p) in local and p["remote"]["type"] in remote
    ]
    pairs = [p for p in formed if not _never_checked(p)]
    label = f"{'/'.join(local)} -> {'/'.join(remote)} pairs fail"
    if "reason" in spec:
        label += f" with {spec['reason']}" + (f" {spec['code']}" if "code" in spec else "")

    def matches(pair: dict[str, Any]) -> bool:
        failure = pair.get("failure") or {}
        # A browser pair still unanswered when the lab's budget ran out timed out by that
        # budget, although the browser itself would have kept trying.
        gave_up = pair["state"] == "in-progress" and failure.get("reason") == "timeout"
        return (
            (pair["state"] == "failed" or gave_up)
            and failure.get("reason", spec.get("reason"))
            == spec.get("reason", failure.get("reason"))
            and ("code" not in spec or failure.get("code") == spec["code"])
        )

    observed = sorted({f"{p['state']}:{(p.get('failure') or {}).get('reason')}" for p in pairs})
    # No evidence against: the pairs could not be formed (unresolvable mDNS names), or
    # the agent formed them and never checked them (it had selected a pair already).
    unformed = [] if formed else _unresolvable(result, agents, remote)
    if unformed:
        observed = [f"not formed: {', '.join(unformed)}"]
    elif formed and not pairs:
        observed = [f"{len(formed)} formed, none checked: the agent stopped after selecting a pair"]
    return {
        "check": label,
        "met": all(matches(p) for p in pairs) and bool(formed or unformed),
        "observed": observed,
    }


def _local_type(pair: dict[str, Any]) -> str:
    """What a pair's local side is, as the expectations name it: a pair that worked by its
    valid local candidate, one that did not by the socket its checks left from. aiortc's
    failed pairs already carry that socket; a browser labels a check from its host socket
    with the reflexive candidate it shares the socket with."""
    if pair["state"] != "succeeded" and pair.get("local_base_type"):
        return str(pair["local_base_type"])
    return str(pair["local"]["type"])


def _never_checked(pair: dict[str, Any]) -> bool:
    """A pair the agent formed but never checked (a browser stops starting new pairs once
    one is selected): it neither worked nor failed, so it says nothing either way."""
    return pair["state"] in ("waiting", "frozen") and not pair.get("checks_sent")


def _unresolvable(result: dict[str, Any], agents: list[str], remote: list[str]) -> list[str]:
    """Why no pair of these types could even be formed: the remote candidates were mDNS
    names that did not resolve (a browser's host candidates seen across a NAT)."""
    reasons = []
    for agent in agents:
        names = [
            c["address"]
            for c in result["peers"][agent].get("unresolved_remote_candidates") or []
            if c["type"] in remote
        ]
        if names:
            reasons.append(f"{agent} could not resolve the mDNS name(s) {', '.join(names)}")
    return reasons


def _addresses_check(
    role: str, kind: str, wanted: list[str], result: dict[str, Any]
) -> dict[str, Any]:
    """The peer's candidates of type `kind` are at exactly these addresses: each at one of
    them, each of them taken. A node's name stands for any of its addresses (a VPN's
    srflx is at its concentrator's, not the home router's)."""
    nodes = (result.get("network") or {}).get("nodes") or {}
    found = sorted({c["address"] for c in result["peers"][role]["candidates"] if c["type"] == kind})

    def addresses(entry: str) -> set[str]:
        return set(nodes[entry]["addresses"]) if entry in nodes else {entry}

    each_wanted = all(any(a in addresses(e) for a in found) for e in wanted)
    each_found = all(any(a in addresses(e) for e in wanted) for a in found)
    return {
        "check": f"{role}'s {kind} candidates are at {', '.join(wanted)}",
        "met": bool(found) and each_wanted and each_found,
        "observed": found,
    }
