"""The verdict of `lab diagnose --run`: the artifact against a run's result, field by field."""

from __future__ import annotations

import copy

from lab.diagnose.facts import Facts, PeerFacts
from lab.diagnose.verdict import verdict


def candidate(kind, relay=None):
    return {"type": kind, "relay_protocol": relay}


RESULT = {
    "outcome": "connected",
    "selected": {"viewer": {"local": candidate("relay", "tls"), "remote": candidate("srflx")}},
    "kvs_status": None,
    "peers": {"viewer": {"candidates": [candidate("relay", "tls")], "gathering_errors": []}},
    "pairs": [{"agent": "viewer", "failure": {"reason": "turn_error", "code": 403}}],
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
    v = verdict(art, RESULT)
    assert v["reproduced"] and set(checks(v).values()) == {True}


def test_a_different_selected_pair_is_not_reproduced():
    art = facts(outcome="connected", selected={"local": "srflx", "remote": "srflx"})
    v = verdict(art, RESULT)
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
    v = verdict(art, failed)
    assert v["reproduced"], v
    art.peers["viewer"].statuses = ["0x5a000013"]
    assert checks(verdict(art, failed))["status code"] is False


def test_unknown_fields_do_not_count():
    art = facts(local_types={})
    v = verdict(art, RESULT)
    assert {c["field"] for c in v["checks"] if c["match"] is None} >= {
        "outcome",
        "selected pair",
        "relay protocol",
    }
    assert not v["reproduced"]  # nothing known: nothing reproduced
