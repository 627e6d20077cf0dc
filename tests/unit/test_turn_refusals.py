"""A browser's relay pair that failed without a reason gets the TURN server's 403 from
the server's own log, and only when the log shows one for that peer."""

from __future__ import annotations

from lab.observations.ice import CandidatePair, attribute_turn_refusals
from tests.result_docs import typed


def relay_pair(
    agent: str = "viewer", remote: str = "192.168.1.10", **extra: object
) -> CandidatePair:
    return typed({"pairs": [{
        "agent": agent,
        "local": {"type": "relay", "address": "203.0.113.10", "port": 5},
        "remote": {"type": "host", "address": remote, "port": 7},
        "state": "failed",
        "checks_sent": 0,
        "failure": {"reason": "unknown", "message": "..."},
        **extra,
    }]}).pairs[0]  # fmt: skip


def refusal(**fields: object) -> dict:
    return {"method": "create_permission", "error_code": 403, "reason": "Forbidden IP", **fields}


def test_the_mocks_logged_peer_address_names_the_pair() -> None:
    pairs = [relay_pair(), relay_pair(remote="10.0.0.9")]
    attribute_turn_refusals(pairs, [refusal(peer="192.168.1.10:7")], "s")
    assert pairs[0].failure["reason"] == "turn_error"
    assert pairs[0].failure["code"] == 403 and "server's log" in pairs[0].failure["message"]
    assert pairs[1].failure["reason"] == "unknown"  # no refusal for that peer


def test_coturns_logged_user_names_the_peer() -> None:
    pairs = [relay_pair(), relay_pair(agent="master")]
    attribute_turn_refusals(pairs, [refusal(user="1796249644:viewer-s")], "s")
    assert pairs[0].failure["reason"] == "turn_error"
    assert pairs[1].failure["reason"] == "unknown"  # the master was never refused


def test_a_pair_with_checks_or_its_own_reason_is_left_alone() -> None:
    checked = relay_pair(checks_sent=3)
    timed_out = relay_pair(failure={"reason": "timeout", "message": "..."})
    attribute_turn_refusals([checked, timed_out], [refusal(user="1:viewer-s")], "s")
    assert checked.failure["reason"] == "unknown"
    assert timed_out.failure["reason"] == "timeout"
