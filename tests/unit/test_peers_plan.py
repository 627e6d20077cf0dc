"""ICE server plans per NAT traversal mode, pair priorities, observations, expectations."""

from __future__ import annotations

import pytest

from lab.observations.ice import merge_pairs, pair_priority
from lab.peers.ice_servers import parse_url, plan_servers
from lab.report.expectations import evaluate
from tests.result_docs import typed

URLS = [
    "stun:203.0.113.10:3478",
    "turn:203.0.113.10:3478?transport=udp",
    "turn:203.0.113.10:3478?transport=tcp",
    "turns:203.0.113.10:443?transport=tcp",
    "turns:203.0.113.10:443?transport=udp",
]


def plan(mode: str):
    return plan_servers([parse_url(u, "u", "p") for u in URLS], mode)


def test_parse_url_defaults_and_relay_protocol() -> None:
    assert parse_url("turn:1.2.3.4").port == 3478
    assert parse_url("turn:1.2.3.4").relay_protocol == "udp"
    assert parse_url("turns:1.2.3.4").port == 5349
    assert parse_url("turns:1.2.3.4:443?transport=tcp").relay_protocol == "tls"
    assert parse_url("turn:1.2.3.4?transport=tcp").relay_protocol == "tcp"
    assert parse_url("stun:1.2.3.4").relay_protocol is None
    with pytest.raises(ValueError):
        parse_url("http://1.2.3.4")


def test_stun_turn_uses_every_url_but_turn_over_dtls() -> None:
    p = plan("stun-turn")
    assert [s.url for s in p.stun] == [URLS[0]]
    assert [s.url for s in p.turn] == URLS[1:4]
    assert [s.url for s in p.skipped] == [URLS[4]]
    assert "DTLS" in p.skipped[0].reason
    assert not p.relay_only


def test_turn_only_has_no_stun_and_relay_policy() -> None:
    p = plan("turn-only")
    assert not p.stun and len(p.turn) == 3 and p.relay_only


def test_stun_only_and_disabled() -> None:
    assert not plan("stun-only").turn and plan("stun-only").stun
    disabled = plan("disabled")
    assert not disabled.stun and not disabled.turn and len(disabled.skipped) == len(URLS)


def test_pair_priority_matches_rfc8445_and_the_c_sdk_numbers() -> None:
    host, srflx = 2130706431, 1694498815  # KVS C SDK priorities (KVS.md)
    g, d = host, srflx
    expected = (1 << 32) * min(g, d) + 2 * max(g, d) + 1
    assert pair_priority(host, srflx, controlling=True) == expected
    # The controlled agent computes the same number for the same pair.
    assert pair_priority(srflx, host, controlling=False) == expected


def candidate(kind: str, address: str, port: int, relay: str | None = None) -> dict:
    return {
        "type": kind,
        "protocol": "udp",
        "address": address,
        "port": port,
        "relay_protocol": relay,
        "server": "turns:x" if relay else None,
    }


def test_merge_pairs_fills_remote_relay_details_from_the_other_peer() -> None:
    relay = candidate("relay", "203.0.113.10", 50000, "tls")
    remote_view = candidate("relay", "203.0.113.10", 50000)
    observations = {
        "viewer": {"candidates": [relay], "pairs": []},
        "master": {
            "candidates": [],
            "pairs": [
                {
                    "local": candidate("host", "192.168.1.10", 1),
                    "remote": remote_view,
                    "state": "succeeded",
                    "nominated": True,
                    "rtt_ms": 1.0,
                }
            ],  # fmt: skip
        },
    }
    pairs = merge_pairs(observations)
    assert pairs[0].agent == "master"
    assert pairs[0].remote.relay_protocol == "tls"


def result_with(selected_local: dict | None, outcome: str = "connected") -> dict:
    pair = {"local": selected_local, "remote": candidate("host", "1.1.1.1", 1), "rtt_ms": 1}
    return {
        "outcome": outcome,
        "selected": {"viewer": pair if selected_local else None, "master": None},
        "peers": {
            "viewer": {"candidates": [candidate("host", "10.0.0.1", 1)]},
            "master": {"candidates": []},
        },
    }


def test_expectations_hold_and_fail_with_the_observed_value() -> None:
    expect = {
        "outcome": "connected",
        "selected": {"viewer": {"local": "relay", "relay_protocol": ["tcp", "tls"]}},
        "absent_candidates": {"viewer": ["srflx"]},
    }
    good = evaluate(expect, typed(result_with(candidate("relay", "203.0.113.10", 1, "tls"))))
    assert all(check.met for check in good)
    bad = evaluate(expect, typed(result_with(candidate("relay", "203.0.113.10", 1, "udp"))))
    failed = [c for c in bad if not c.met]
    assert len(failed) == 1 and failed[0].observed == "udp"
    none = evaluate(expect, typed(result_with(None, outcome="failed")))
    assert sum(not c.met for c in none) == 3
