"""The verdict of `lab diagnose --run`: the artifact against a run's result, field by field."""

from __future__ import annotations

import copy

from lab.report.diagnose.facts import Facts, PeerFacts
from lab.report.diagnose.verdict import verdict
from tests.result_docs import typed


def candidate(kind, relay=None):
    return {"type": kind, "address": "192.0.2.1", "port": 1, "relay_protocol": relay}


RESULT = {
    "outcome": "connected",
    "selected": {"viewer": {"local": candidate("relay", "tls"), "remote": candidate("srflx")}},
    "kvs_status": None,
    "peers": {"viewer": {"candidates": [candidate("relay", "tls")], "gathering_errors": []}},
    "pairs": [
        {
            "agent": "viewer",
            "local": candidate("relay", "tls"),
            "remote": candidate("host"),
            "state": "failed",
            "failure": {"reason": "turn_error", "code": 403},
        }
    ],
}


def facts(**fields) -> Facts:
    p = PeerFacts("viewer", local_types={"host": 1, "relay": 1})
    for name, value in fields.items():
        setattr(p, name, value)
    return Facts("kvs-log", {"viewer": p}, "test", [])


def checks(v):
    return {c["field"]: c["match"] for c in v["checks"]}


def test_all_fields_match_with_tcp_tls_and_reflexive_equivalence():
    art = facts(
        outcome="connected",
        selected={"local": "relay", "remote": "prflx", "relay_protocol": "tcp"},
        turn_errors=[{"code": 403, "phrase": "Forbidden IP"}],
    )
    v = verdict(art, typed(RESULT))
    assert v["reproduced"] and set(checks(v).values()) == {True}


def test_a_different_selected_pair_is_not_reproduced():
    art = facts(outcome="connected", selected={"local": "srflx", "remote": "srflx"})
    v = verdict(art, typed(RESULT))
    assert not v["reproduced"] and checks(v)["selected pair"] is False


def test_status_and_turn_errors():
    failed = copy.deepcopy(RESULT)
    failed.update(outcome="failed", selected={}, kvs_status={"code": "0x5a00000d"}, pairs=[])
    failed["peers"]["viewer"]["gathering_errors"] = [
        {"url": "turn:t", "reason": "TURN error 401 Unauthorized"}
    ]
    failed["peers"]["viewer"]["candidates"] = []
    art = facts(
        outcome="failed",
        statuses=["0x5a00000d"],
        local_types={"host": 1},
        turn_errors=[{"code": 401, "phrase": "Unauthorized"}],
    )
    v = verdict(art, typed(failed))
    assert v["reproduced"], v
    art.peers["viewer"].statuses = ["0x5a000013"]
    assert checks(verdict(art, typed(failed)))["status code"] is False


def test_unknown_fields_do_not_count():
    art = facts(local_types={})
    v = verdict(art, typed(RESULT))
    assert {c["field"] for c in v["checks"] if c["match"] is None} >= {
        "outcome",
        "selected pair",
        "relay protocol",
    }
    assert v["reproduced"] is None and "does not show" in v["why"]  # nothing known: unknown


def test_a_relay_transport_tied_at_equal_priority_is_timing_not_network():
    udp = {"type": "relay", "address": "203.0.113.10", "port": 1, "relay_protocol": "udp"}
    tcp = {"type": "relay", "address": "203.0.113.10", "port": 2, "relay_protocol": "tcp"}
    prflx = {"type": "prflx", "address": "198.51.100.2", "port": 3, "relay_protocol": None}
    pair = {"agent": "viewer", "state": "succeeded", "local": prflx, "priority": 7}
    result = {
        "outcome": "connected",
        "selected": {"viewer": {"local": prflx, "remote": tcp}},
        "kvs_status": None,
        "peers": {"viewer": {"candidates": [prflx], "gathering_errors": []}},
        "pairs": [{**pair, "remote": tcp}, {**pair, "remote": udp}],
    }
    art = facts(
        outcome="connected",
        selected={"local": "prflx", "remote": "relay", "remote_relay_protocol": "udp"},
    )
    assert verdict(art, typed(result))["reproduced"]
    result["pairs"][1]["priority"] = 6  # the udp relay pair was worse: a real difference
    assert checks(verdict(art, typed(result)))["relay protocol"] is False


def test_matching_only_absences_is_unknown_never_yes():
    """Issue 24: every field unknown but 'no TURN errors, none in the run' reproduced nothing."""
    art = facts(local_types={"host": 1})  # gathered, so TURN errors [] is checked
    v = verdict(art, typed(RESULT))
    assert checks(v)["TURN errors"] is True and v["reproduced"] is None
    assert "outcome" in v["why"]


def test_a_difference_is_no_with_the_fields_named():
    v = verdict(facts(outcome="failed"), typed(RESULT))
    assert v["reproduced"] is False and "viewer outcome" in v["why"]


def test_turn_tcp_stuck_is_compared_with_the_run_s_tcp_turn():
    stuck = [{"reason": "Operation already in progress", "at_s": s, "line": 1} for s in (0, 1)]
    art = facts(socket_checks=stuck)
    result = copy.deepcopy(RESULT)
    result["peers"]["viewer"]["gathering_errors"] = [
        {"url": "turns:t:443?transport=tcp", "reason": "no answer before the gathering timeout"}
    ]
    v = verdict(art, typed(result))
    assert checks(v)["TURN over TCP"] is True and v["reproduced"] is True
    result["peers"]["viewer"]["gathering_errors"] = []
    assert checks(verdict(art, typed(result)))["TURN over TCP"] is False


def test_the_round_trip_within_30_percent():
    art = facts(
        outcome="connected", selected={"local": "relay", "remote": "prflx", "rtt_ms": 339.0}
    )
    result = copy.deepcopy(RESULT)
    result["selected"]["viewer"]["rtt_ms"] = 300.0
    assert checks(verdict(art, typed(result)))["round trip"] is True
    result["selected"]["viewer"]["rtt_ms"] = 3.0
    assert checks(verdict(art, typed(result)))["round trip"] is False


def test_a_prflx_remote_on_one_lan_counts_as_host_and_the_lower_rtt_is_the_path_s():
    """Issue 24's camera: host -> prflx on 192.168.1.x, 339 ms; the lab's run selects
    host -> host and its two peers measure 344 and 682 ms (one check retransmitted)."""
    lan = {"type": "host", "address": "192.168.1.10", "relay_protocol": None}
    other = {"type": "host", "address": "192.168.1.20", "relay_protocol": None}
    result = {
        "outcome": "connected",
        "selected": {
            "viewer": {"local": other, "remote": lan, "rtt_ms": 344.2},
            "master": {"local": lan, "remote": other, "rtt_ms": 682.2},
        },
        "kvs_status": None,
        "peers": {"master": {"candidates": [lan], "gathering_errors": []}},
        "pairs": [],
    }
    p = PeerFacts("master", local_types={})
    p.outcome = "connected"
    p.selected = {
        "local": "host",
        "remote": "prflx",
        "rtt_ms": 339.0,
        "local_address": "192.168.1.23",
        "remote_address": "192.168.1.57",
    }
    v = verdict(Facts("kvs-log", {"master": p}, "test", []), typed(result))
    assert checks(v)["selected pair"] is True and checks(v)["round trip"] is True
    assert v["reproduced"] is True
    shown = next(c["artifact"] for c in v["checks"] if c["field"] == "selected pair")
    assert shown == "host -> host (prflx on a LAN)"
