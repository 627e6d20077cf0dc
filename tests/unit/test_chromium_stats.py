"""Chromium observations from a real page report (symmetric-both, Chromium viewer): what
getStats() says is kept, what it hides is marked, nothing is invented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.core.documents import schema_errors
from lab.peers import chromium_stats

FIXTURE = Path(__file__).parent / "fixtures" / "chromium-report-symmetric-viewer.json"
BASE = {"role": "viewer", "host": "viewer", "mode": "stun-turn", "agent": "chromium"}


@pytest.fixture(scope="module")
def observed() -> dict:
    return chromium_stats.observations(json.loads(FIXTURE.read_text()), dict(BASE))


def test_selected_pair_is_the_transports_not_any_nominated_one(observed: dict) -> None:
    nominated = [p for p in observed["pairs"] if p["nominated"]]
    assert len(nominated) == 2  # Chromium nominated twice; the transport uses one
    assert observed["selected"]["local"]["type"] == "prflx"
    assert observed["selected"]["remote"]["type"] == "relay"
    assert observed["selected"]["rtt_ms"] == 1.0


def test_mdns_host_candidates_carry_the_name_they_were_announced_under(observed: dict) -> None:
    announced = [c for c in observed["candidates"] if c.get("mdns")]
    assert [c["address"] for c in announced] == ["64aee27c-d007-4870-80b7-6f285f071760.local"]
    assert announced[0]["port"] == 39832


def test_addresses_the_browser_hides_are_marked_not_invented(observed: dict) -> None:
    hidden = [c for c in observed["candidates"] + observed["remote_candidates"] if c.get("hidden")]
    assert hidden and all(c["address"] == "" for c in hidden)
    assert {c["type"] for c in hidden} >= {"host", "prflx"}


def test_the_other_peers_mdns_name_is_reported_unresolved(observed: dict) -> None:
    unresolved = observed["unresolved_remote_candidates"]
    assert [c["address"] for c in unresolved] == ["52deaf23-be11-4725-a8e5-40b0bea8b4f1.local"]


def test_pairs_keep_chromiums_states_and_counters(observed: dict) -> None:
    states = {p["state"] for p in observed["pairs"]}
    assert states == {"succeeded", "waiting", "in-progress"}
    unanswered = [p for p in observed["pairs"] if p["state"] == "in-progress"]
    assert unanswered[0]["checks_sent"] == 3 and unanswered[0]["responses_received"] == 0
    assert unanswered[0]["failure"]["reason"] == "timeout"
    assert "would have kept trying" in unanswered[0]["failure"]["message"]
    never = [p for p in observed["pairs"] if p["state"] == "waiting"]
    assert all(p["failure"] is None and p["note"].startswith("never checked") for p in never)


def test_relay_candidates_name_their_server_and_transport(observed: dict) -> None:
    relays = {
        c["relay_protocol"]: c["server"] for c in observed["candidates"] if c["type"] == "relay"
    }
    assert relays == {
        "udp": "turn:203.0.113.10:3478?transport=udp",
        "tcp": "turn:203.0.113.10:3478?transport=tcp",
    }


def test_timings_and_role_come_from_the_page(observed: dict) -> None:
    assert observed["gathering_s"] == pytest.approx(0.152)
    assert observed["connected_s"] is not None and observed["echo"] is True
    assert observed["ice_role"] == "controlling"


def test_failed_pair_reason_only_from_counters() -> None:
    answered = {"state": "failed", "requestsSent": 4, "responsesReceived": 1}
    assert chromium_stats.pair_failure(answered, "failed")["reason"] == "unknown"
    silent = {"state": "failed", "requestsSent": 4, "responsesReceived": 0}
    assert chromium_stats.pair_failure(silent, "failed")["reason"] == "timeout"
    assert chromium_stats.pair_failure({"requestsSent": 0}, "waiting") is None


def test_candidate_errors_become_gathering_errors() -> None:
    errors = chromium_stats.gathering_errors(
        [
            {
                "url": "turns:203.0.113.10:443?transport=tcp",
                "error_code": 701,
                "error_text": "Failed to establish connection",
                "t_s": 0.3,
            }
        ]  # fmt: skip
    )
    assert errors == [
        {
            "url": "turns:203.0.113.10:443?transport=tcp",
            "reason": "701 Failed to establish connection",
            "elapsed_s": 0.3,
        }
    ]


def test_observations_fit_the_result_schemas_peer_and_pair(observed: dict) -> None:
    result = {
        "scenario": "x",
        "outcome": "connected",
        "expectations_met": True,
        "peers": {"viewer": observed, "master": {"candidates": []}},
        "pairs": [{"agent": "viewer", **p} for p in observed["pairs"]],
        "selected": {"viewer": observed["selected"], "master": None},
        "timings": {
            "gathering_s": {"viewer": 0.1, "master": None},
            "connected_s": 0.4,
            "total_s": 1.0,
        },  # fmt: skip
    }
    assert schema_errors(result, "result") == []
