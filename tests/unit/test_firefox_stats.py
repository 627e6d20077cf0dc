"""Firefox observations from a real page report (symmetric-viewer, Firefox 140 ESR on
both sides, the viewer's report): the mapping shared with Chromium where getStats()
agrees, and what Firefox does not expose marked unknown, never zero or invented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.peers import firefox_stats

FIXTURE = Path(__file__).parent / "fixtures" / "firefox-report-symmetric-viewer.json"
BASE = {"role": "viewer", "host": "viewer", "mode": "stun-turn", "agent": "firefox"}


@pytest.fixture(scope="module")
def observed() -> dict:
    return firefox_stats.observations(json.loads(FIXTURE.read_text()), dict(BASE))


def test_selected_pair_is_the_one_firefox_marks_selected(observed: dict) -> None:
    # Firefox reports no transport entry: its own `selected` flag names the pair.
    selected = [p for p in observed["pairs"] if p["selected"]]
    assert len(selected) == 1 and selected[0]["state"] == "succeeded"
    assert observed["selected"]["local"]["type"] == "prflx"
    assert observed["selected"]["remote"] == selected[0]["remote"]
    assert observed["selected"]["remote"]["type"] == "relay"


def test_counters_and_round_trips_firefox_lacks_are_unknown_not_zero(observed: dict) -> None:
    for pair in observed["pairs"]:
        assert pair["checks_sent"] is None and pair["responses_received"] is None
        assert pair["rtt_ms"] is None
        assert pair["not_exposed"] == ["checks_sent", "responses_received", "rtt_ms"]
    assert observed["selected"]["rtt_ms"] is None
    assert observed["not_exposed"]["candidate-pair"] == [
        "requestsSent",
        "responsesReceived",
        "currentRoundTripTime",
        "totalRoundTripTime",
    ]
    assert observed["not_exposed"]["transport"] == ["selectedCandidatePairId", "iceRole"]
    assert observed["ice_role"] is None


def test_firefox_state_names_map_to_the_labs_and_its_own_are_kept(observed: dict) -> None:
    states = {(p["agent_state"], p["state"]) for p in observed["pairs"]}
    assert ("inprogress", "in-progress") in states
    assert ("cancelled", "cancelled") in states
    cancelled = [p for p in observed["pairs"] if p["state"] == "cancelled"]
    assert all(p["failure"] is None and "cancelled" in p["note"] for p in cancelled)


def test_a_pair_left_in_progress_timed_out_within_the_labs_budget(observed: dict) -> None:
    # RFC 8445 6.1.2.6: in-progress is a check sent and not yet answered.
    checking = [p for p in observed["pairs"] if p["state"] == "in-progress"]
    assert checking and all(p["failure"]["reason"] == "timeout" for p in checking)
    assert all("does not count them" in p["failure"]["message"] for p in checking)


def test_redacted_and_mdns_addresses_are_marked_not_kept_as_addresses(observed: dict) -> None:
    hidden = [c for c in observed["candidates"] if c.get("hidden")]
    assert [(c["type"], c["address"], c["port"]) for c in hidden] == [("prflx", "", 41013)]
    assert all(c["address"] != "(redacted)" for c in observed["candidates"])
    named = [c for c in observed["candidates"] if c.get("mdns")]
    assert {c["protocol"] for c in named} == {"udp", "tcp"}
    unresolved = observed["unresolved_remote_candidates"]
    assert unresolved and all(c["address"].endswith(".local") for c in unresolved)


def test_candidates_keep_what_firefox_gives_and_no_server_it_does_not(observed: dict) -> None:
    relays = {c["relay_protocol"] for c in observed["candidates"] if c["type"] == "relay"}
    assert relays == {"udp", "tcp"}
    assert all(c["server"] is None for c in observed["candidates"])  # no url in its stats


def test_counters_are_used_where_a_firefox_gives_them() -> None:
    pair = {"state": "failed", "requestsSent": 4, "responsesReceived": 0}
    record = firefox_stats.pair_record(pair, {}, None, {})
    assert record["checks_sent"] == 4 and record["responses_received"] == 0
    assert record["failure"]["reason"] == "timeout"
    assert "rtt_ms" in record["not_exposed"] and "checks_sent" not in record["not_exposed"]


@pytest.mark.parametrize(
    ("relay_protocols", "unused"),
    [
        ([], ["turns:203.0.113.10:443?transport=tcp"]),
        (["tls"], []),
    ],
)
def test_turns_urls_named_by_address_are_listed_only_without_a_tls_relay(
    relay_protocols: list[str], unused: list[str]
) -> None:
    servers = [
        {"urls": ["turn:203.0.113.10:3478", "turns:203.0.113.10:443?transport=tcp"]},
        {"urls": ["turns:turn.example.com:443?transport=tcp"]},
    ]
    candidates = [{"type": "relay", "relay_protocol": p} for p in relay_protocols]
    found = firefox_stats.unused_tls_servers(servers, candidates)
    assert [entry["url"] for entry in found] == unused
