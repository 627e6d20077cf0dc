"""The rule table of `lab diagnose`: each rule on the facts that make it hold (and not)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.report.diagnose.diagnosis import check_scenario, diagnose_file
from lab.report.diagnose.facts import Facts, PeerFacts
from lab.report.diagnose.rules import RULES, fragment_for, infer, rule_table

FIXTURES = Path(__file__).parent / "fixtures" / "diagnose"
RULE = {rule.name: rule for rule in RULES}


def peer(role="master", **fields) -> PeerFacts:
    p = PeerFacts(role)
    for name, value in fields.items():
        setattr(p, name, value)
    p.mapping_changes = p.mapping_changes or {"local": False, "remote": False}
    return p


def names(*peers: PeerFacts) -> set[tuple[str, str]]:
    facts = Facts("kvs-log", {p.role: p for p in peers}, "test", [])
    return {(i.rule.name, i.role) for i in infer(facts)}


HOST = {"host": 1}
TCP_3478_TIMEOUT = {
    "url": "turn:t:3478?transport=tcp",
    "reason": "no answer before the gathering timeout",
}


def test_web_only_firewall():
    p = peer(
        local_types={**HOST, "relay": 1},
        relay_protocols=["tls"],
        gathering_errors=[TCP_3478_TIMEOUT],
    )
    assert RULE["web-only-firewall"].test(p) and not RULE["udp-blocked"].test(p)
    assert not RULE["web-only-firewall"].test(
        peer(local_types={**HOST, "relay": 1}, relay_protocols=["tls"])
    )


def test_udp_blocked():
    assert RULE["udp-blocked"].test(
        peer(local_types={**HOST, "relay": 2}, relay_protocols=["tcp", "tls"])
    )
    assert RULE["udp-blocked"].test(
        peer(local_types={**HOST, "relay": 1})
    )  # transport unknown (C SDK)
    assert not RULE["udp-blocked"].test(
        peer(local_types={**HOST, "relay": 1}, relay_protocols=["udp"])
    )
    assert not RULE["udp-blocked"].test(
        peer(local_types={**HOST, "srflx": 1, "relay": 1}, relay_protocols=["tcp"])
    )


def test_servers_unreachable():
    tried = [{"url": "stun:t:3478", "reason": "timeout: no response"}]
    assert RULE["servers-unreachable"].test(peer(local_types=HOST, gathering_errors=tried))
    assert RULE["servers-unreachable"].test(peer(local_types=HOST, statuses=["0x5a000020"]))
    assert not RULE["servers-unreachable"].test(
        peer(local_types=HOST)
    )  # nothing tried: no evidence
    assert not RULE["servers-unreachable"].test(
        peer(local_types={**HOST, "srflx": 1}, gathering_errors=tried)
    )


def test_turn_tcp_dropped():
    p = peer(
        local_types={**HOST, "srflx": 1}, turn_state_failures=["TURN_STATE_CHECK_SOCKET_CONNECTION"]
    )
    assert RULE["turn-tcp-dropped"].test(p)
    assert RULE["turn-tcp-dropped"].test(
        peer(local_types={**HOST, "srflx": 1}, gathering_errors=[TCP_3478_TIMEOUT])
    )
    refused = {"url": "turn:t:3478?transport=tcp", "reason": "connection refused"}
    assert not RULE["turn-tcp-dropped"].test(
        peer(local_types={**HOST, "srflx": 1}, gathering_errors=[refused])
    )


def test_turn_credentials_only_without_a_relay():
    e401 = [{"code": 401, "phrase": "Unauthorized"}]
    assert RULE["turn-credentials"].test(peer(local_types={**HOST, "srflx": 1}, turn_errors=e401))
    # every Allocate is challenged with 401 first: with a relay it is the normal handshake
    assert not RULE["turn-credentials"].test(
        peer(local_types={**HOST, "relay": 1}, turn_errors=e401)
    )


def test_turn_forbidden_ip_and_quota():
    assert RULE["turn-forbidden-ip"].test(
        peer(turn_errors=[{"code": 403, "phrase": "Forbidden IP"}])
    )
    assert RULE["turn-quota"].test(
        peer(gathering_errors=[{"url": "turn:t", "reason": "TURN error 486", "code": 486}])
    )
    assert not RULE["turn-forbidden-ip"].test(peer(turn_errors=[{"code": 486, "phrase": "x"}]))


def test_symmetric_here_and_there():
    moved = peer(
        local_types={**HOST, "srflx": 1, "prflx": 1},
        candidates=[],
        mapping_changes={"local": True, "remote": False},
    )
    assert RULE["symmetric-nat-here"].test(moved)
    needed = peer(
        local_types={**HOST, "srflx": 1, "relay": 1}, selected={"local": "relay", "remote": "srflx"}
    )
    assert RULE["symmetric-nat-here"].test(needed) and not RULE["symmetric-nat-there"].test(needed)
    through = peer(local_types={**HOST, "srflx": 1}, selected={"local": "srflx", "remote": "relay"})
    assert RULE["symmetric-nat-there"].test(through) and not RULE["symmetric-nat-here"].test(
        through
    )
    direct = peer(
        local_types={**HOST, "srflx": 1},
        selected={"local": "srflx", "remote": "srflx"},
        outcome="connected",
    )
    assert not RULE["symmetric-nat-here"].test(direct) and RULE["direct-path"].test(direct)


def test_no_turn_no_relay_there_and_direct_failed():
    failed = peer(
        local_types={**HOST, "srflx": 1}, remote_types={**HOST, "srflx": 1}, outcome="failed"
    )
    assert (
        RULE["no-turn"].test(failed)
        and RULE["no-relay-there"].test(failed)
        and RULE["direct-failed"].test(failed)
    )
    tried = peer(
        local_types={**HOST, "srflx": 1},
        outcome="failed",
        turn_errors=[{"code": 401, "phrase": "Unauthorized"}],
    )
    assert not RULE["no-turn"].test(tried)
    skipped = peer(
        local_types={**HOST, "srflx": 1},
        outcome="failed",
        turn_skipped=True,
        servers_tried=["turn:t"],
    )
    assert RULE["no-turn"].test(skipped)
    relay_there = peer(
        local_types={**HOST, "srflx": 1},
        remote_types={"relay": 1},
        remote_relays=1,
        outcome="failed",
    )
    assert not RULE["no-relay-there"].test(relay_there) and not RULE["direct-failed"].test(
        relay_there
    )


def test_own_side_explanations_beat_guesses_about_the_other_side():
    viewer = peer(
        "viewer",
        local_types={**HOST, "relay": 1},
        relay_protocols=["tls"],
        outcome="connected",
        selected={"local": "relay", "remote": "srflx"},
    )
    master = peer(
        "master",
        local_types={**HOST, "srflx": 1},
        outcome="connected",
        selected={"local": "srflx", "remote": "relay"},
    )
    assert names(viewer, master) == {("udp-blocked", "viewer")}
    assert ("symmetric-nat-there", "master") in names(master)


def test_fragments_name_the_side():
    assert fragment_for(RULE["udp-blocked"], "viewer") == {
        "conditions": {"viewer-gw": {"firewall": "udp-blocked"}}
    }
    assert fragment_for(RULE["no-relay-there"], "master") == {
        "peers": {"viewer": {"host": "viewer", "mode": "stun-only"}}
    }


def test_every_rule_has_reasoning_advice_and_a_lesson():
    for rule in RULES:
        assert rule.condition and rule.advice and rule.lesson
        assert rule.reasoning.format_map({"side": "viewer", "other": "master", **_figures(rule)})


def _figures(rule) -> dict:
    """The figures a rule's reasoning names, from a peer that shows them."""
    p = peer(
        selected={
            "local": "host",
            "remote": "prflx",
            "rtt_ms": 339.0,
            "local_address": "192.168.1.23",
            "remote_address": "192.168.1.57",
        },
        statuses=["0x5d00002f"],
    )
    return rule.values(p) if rule.values else {}


def test_the_manual_s_rule_table_is_the_code_s():
    page = (Path(__file__).parents[2] / "docs" / "reference" / "diagnose-rules.md").read_text()
    assert rule_table() in page, (
        "docs/reference/diagnose-rules.md is stale: .venv/bin/python -m scripts.docs.generate"
    )


#: The service guide's troubleshooting cases, each a lab log cut to an excerpt (and redacted),
#: plus the other artifact kinds: the rules that must hold and the scenario they write.
CASES = {
    "lab-turn-unreachable-master-excerpt-redacted.txt": {
        ("servers-unreachable", "master"),
        ("no-relay-there", "master"),
    },
    "lab-turn-needed-master-stun-only-excerpt-redacted.txt": {
        ("no-turn", "master"),
        ("no-relay-there", "master"),
        ("direct-failed", "master"),
    },
    "lab-enterprise-firewall-viewer-excerpt-redacted.txt": {("web-only-firewall", "viewer")},
    "lab-udp-blocked-both-excerpt-redacted.txt": {
        ("udp-blocked", "viewer"),
        ("udp-blocked", "master"),
    },
    "lab-turn-forbidden-private-peers-excerpt-redacted.txt": {
        ("turn-forbidden-ip", "viewer"),
        ("direct-path", "viewer"),
        ("direct-path", "master"),
    },
    "lab-turn-credentials-expired.txt": {
        ("turn-credentials", "viewer"),
        ("turn-credentials", "master"),
        ("direct-failed", "viewer"),
        ("direct-failed", "master"),
    },
    "lab-symmetric-both-80-columns-wrapped.txt": {
        ("symmetric-nat-here", "master"),
        ("symmetric-nat-there", "master"),
    },
    "handmade-c-sdk-master-403-forbidden-ip.log": {
        ("turn-forbidden-ip", "master"),
        ("direct-path", "master"),
    },
    "handmade-c-sdk-master-udp-blocked-vpn.log": {("udp-blocked", "master")},
    "handmade-c-sdk-master-no-turn-0x5a00000d.log": {
        ("no-turn", "master"),
        ("no-relay-there", "master"),
        ("direct-failed", "master"),
    },
    "handmade-c-sdk-viewer-turn-tcp-timeout.log": {("turn-tcp-dropped", "viewer")},
    "handmade-js-sdk-viewer-console-symmetric.log": {("symmetric-nat-here", "viewer")},
    "webrtc-internals-symmetric-viewer-from-chromium-report.json": {
        ("symmetric-nat-here", "viewer")
    },
    "viewer.chromium-report-symmetric-viewer.json": {("symmetric-nat-here", "viewer")},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_diagnoses_to_a_valid_scenario(name, tmp_path):
    diagnosis = diagnose_file(FIXTURES / name)
    assert {(i.rule.name, i.role) for i in diagnosis["inferences"]} == CASES[name]
    check_scenario(diagnosis["scenario"], tmp_path / "diagnosed.yaml")  # schema and cross-checks
    assert diagnosis["scenario"]["teaches"]


def test_written_scenarios_carry_the_conditions():
    doc = diagnose_file(FIXTURES / "lab-enterprise-firewall-viewer-excerpt-redacted.txt")[
        "scenario"
    ]
    assert doc["conditions"]["viewer-gw"]["firewall"] == "tcp-web-only"
    assert doc["expect"] == {"outcome": "connected", "absent_candidates": {"viewer": ["srflx"]}}
    doc = diagnose_file(FIXTURES / "lab-turn-unreachable-master-excerpt-redacted.txt")["scenario"]
    assert doc["expect"]["kvs_status"] == "0x5a00000d"
    doc = diagnose_file(FIXTURES / "lab-turn-needed-master-stun-only-excerpt-redacted.txt")[
        "scenario"
    ]
    assert doc["peers"]["master"]["mode"] == doc["peers"]["viewer"]["mode"] == "stun-only"
    doc = diagnose_file(FIXTURES / "handmade-js-sdk-viewer-console-symmetric.log")["scenario"]
    assert doc["peers"]["viewer"]["agent"] == "chromium"


# --- the rules of issue 24: sequences, addresses, round trips, not the network --------------

IN_PROGRESS = "Operation already in progress"


def checks(*seconds: float) -> list[dict]:
    return [{"reason": IN_PROGRESS, "at_s": s, "line": i + 1} for i, s in enumerate(seconds)]


def test_turn_tcp_dropped_from_a_connect_that_stays_in_progress():
    rule = RULE["turn-tcp-dropped"]
    assert rule.test(peer(socket_checks=checks(0.0, 1.0)))  # no srflx needed
    assert rule.test(peer(turn_state_failures=["TURN_STATE_CHECK_SOCKET_CONNECTION"]))
    assert not rule.test(peer(socket_checks=checks(0.0)))  # one check says nothing
    assert not rule.test(peer(socket_checks=checks(0.0, 0.2)))  # under a second
    moved_on = {"from": "TURN_STATE_CHECK_SOCKET_CONNECTION", "to": "TURN_STATE_GET_CREDENTIALS"}
    assert not rule.test(peer(socket_checks=checks(0.0, 1.0), turn_transitions=[moved_on]))
    answered = [{"code": 403, "phrase": "Forbidden IP"}]
    assert not rule.test(peer(socket_checks=checks(0.0, 1.0), turn_errors=answered))


def test_turn_udp_timeout_when_the_first_allocate_is_unanswered_without_tcp():
    rule = RULE["turn-udp-timeout"]
    assert rule.test(peer(turn_state_failures=["TURN_STATE_GET_CREDENTIALS"]))
    assert rule.test(peer(statuses=["0x5a00002c"]))
    assert not rule.test(
        peer(turn_state_failures=["TURN_STATE_GET_CREDENTIALS"], socket_checks=checks(0.0))
    )
    challenged = [{"event": "challenged", "line": 3}]
    assert not rule.test(
        peer(turn_state_failures=["TURN_STATE_ALLOCATION"], turn_events=challenged)
    )
    assert fragment_for(rule, "master")["conditions"]["master-gw"]["firewall"]["outbound"][
        "rules"
    ] == [{"action": "deny", "protocol": "udp", "hosts": ["turn"]}]


def selected(local: str, remote: str, rtt: float = 5.0, types=("host", "prflx")) -> dict:
    return {
        "local": types[0],
        "remote": types[1],
        "rtt_ms": rtt,
        "local_address": local,
        "remote_address": remote,
    }


def test_same_lan_from_the_selected_pair_s_addresses():
    rule = RULE["same-lan"]
    assert rule.test(peer(selected=selected("192.168.1.23", "192.168.1.57")))
    assert not rule.test(peer(selected=selected("192.168.1.23", "192.168.2.57")))
    assert not rule.test(peer(selected=selected("203.0.113.5", "203.0.113.6")))  # the internet
    assert not rule.test(peer(selected=selected("192.168.1.23", "XXX.XXX.XXX.XXX")))
    assert fragment_for(rule, "master")["topology"] == "home-lan"


def test_added_delay_against_what_the_path_usually_takes():
    rule = RULE["added-delay"]
    lan = peer(selected=selected("192.168.1.23", "192.168.1.57", rtt=339))
    assert rule.test(lan)
    assert rule.values(lan)["delay_ms"] == 170
    assert fragment_for(rule, "master", rule.values(lan)) == {
        "conditions": {"master": {"impairments": {"delay_ms": 170}}}
    }
    assert not rule.test(peer(selected=selected("192.168.1.23", "192.168.1.57", rtt=5)))
    internet = ("198.51.100.2", "203.0.113.9")
    assert not rule.test(peer(selected=selected(*internet, rtt=120, types=("srflx", "srflx"))))
    assert rule.test(peer(selected=selected(*internet, rtt=400, types=("srflx", "srflx"))))
    assert not rule.test(peer(selected=selected(*internet, rtt=260, types=("relay", "srflx"))))


def candidate(side: str, kind: str, address: str) -> dict:
    return {"side": side, "type": kind, "address": address, "port": 1, "line": 1}


def test_same_public_address_when_the_other_peer_comes_from_this_peer_s_srflx():
    rule = RULE["same-public-address"]
    mine = candidate("local", "srflx", "203.0.113.151")
    assert rule.test(peer(candidates=[mine, candidate("remote", "host", "203.0.113.151")]))
    assert not rule.test(peer(candidates=[mine, candidate("remote", "host", "203.0.113.152")]))
    lan = candidate("local", "srflx", "192.168.1.5")
    assert not rule.test(peer(candidates=[lan, candidate("remote", "host", "192.168.1.5")]))


def test_not_the_network_from_the_status_table_s_causes_the_clock_and_http():
    rule = RULE["not-the-network"]
    assert rule.test(peer(statuses=["0x5d00002f"]))  # ICE config refresh failed
    assert rule.test(peer(statuses=["0x5a000024"]))  # the SDK's TURN-over-TCP parsing
    assert rule.test(peer(clock_skew_lines=[4]))
    assert rule.test(peer(http_statuses=[{"status": 403, "line": 2}]))
    assert not rule.test(peer(statuses=["0x5a00000d", "0x5a000020"]))  # the network's
    assert not rule.test(peer(statuses=["0x5a000027"]))  # benign
    assert not rule.test(peer(http_statuses=[{"status": 200, "line": 2}]))
    what = rule.values(peer(statuses=["0x5d00002f"], clock_skew_lines=[4]))["what"]
    assert "STATUS_SIGNALING_ICE_CONFIG_REFRESH_FAILED" in what and "clock" in what


def test_turn_forbidden_ip_from_peer_not_usable():
    assert RULE["turn-forbidden-ip"].test(peer(statuses=["0x5a000027"]))


def test_each_inference_names_its_evidence_lines():
    p = peer(
        socket_checks=checks(0.0, 1.0), statuses=["0x5a000020"], status_lines={"0x5a000020": 9}
    )
    (inference,) = [
        i
        for i in infer(Facts("kvs-log", {"master": p}, "t", []))
        if i.rule.name == "turn-tcp-dropped"
    ]
    assert inference.evidence == [1, 2, 9]


def test_no_other_path_when_tcp_to_turn_is_stuck_and_nothing_else_got_out():
    rule = RULE["no-other-path"]
    stuck = {"socket_checks": checks(0.0, 1.0), "outcome": "failed"}
    assert rule.test(peer(**stuck))
    assert not rule.test(peer(**{**stuck, "outcome": None}))  # the log does not say it failed
    assert not rule.test(peer(**stuck, local_types={"host": 1, "srflx": 1}))  # UDP got out


def test_the_issue_s_master_log_drops_tcp_and_udp_to_turn(tmp_path):
    """Both firewall rules end up on the master's router (rule lists add up when merged)."""
    log = Path(__file__).parent / "fixtures" / "customer_logs"
    diagnosis = diagnose_file(log / "issue24-master-turn-tcp-stuck-no-pair.log")
    rules = diagnosis["scenario"]["conditions"]["master-gw"]["firewall"]["outbound"]["rules"]
    assert {(r["protocol"], tuple(r["hosts"])) for r in rules} == {
        ("tcp", ("turn",)),
        ("udp", ("turn",)),
    }
    assert diagnosis["scenario"]["expect"]["outcome"] == "failed"
    check_scenario(diagnosis["scenario"], tmp_path / "diagnosed.yaml")
