"""lab explain: sentences built from a result, for results old and new, failed and not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lab.report.explain import explain, explain_text, failure_lines, firewall_summary
from lab.report.network_graph import network_graph, sides
from lab.report.result import RunResult
from tests.result_docs import typed

FIXTURE = Path(__file__).parent / "fixtures" / "html" / "symmetric-both-result.json"


@pytest.fixture
def symmetric() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def _section(document: dict[str, Any], title: str) -> list[str]:
    result = RunResult.from_json(document)
    return next(s.lines for s in explain(result) if s.title == title)


def _srflx_failure(lines: list[str], agent: str) -> str:
    return next(x for x in lines if x.startswith(f"{agent}: host -> the other's srflx"))


def test_symmetric_both_blames_the_mapping_and_the_other_sides_filter(symmetric):
    line = _srflx_failure(_section(symmetric, "Why pairs failed"), "viewer")
    assert "master-gw's port-restricted filter" in line
    assert "viewer-gw's symmetric mapping" in line
    # the public port the NAT chose, read from the wire trail, and the srflx it differs from
    assert "not the srflx 198.51.100.2:58576" in line
    master = _srflx_failure(_section(symmetric, "Why pairs failed"), "master")
    assert "viewer-gw's port-restricted filter" in master
    assert "master-gw's symmetric mapping" in master


def test_relay_pairs_to_a_filtered_srflx_are_not_blamed_on_the_mapping(symmetric):
    line = next(
        x
        for x in _section(symmetric, "Why pairs failed")
        if x.startswith("viewer: relay -> the other's srflx")
    )
    assert "mapping" not in line
    assert "relay address 203.0.113.10 was new" in line


def test_private_host_candidates_fail_for_want_of_a_route(symmetric):
    line = next(
        x
        for x in _section(symmetric, "Why pairs failed")
        if x.startswith("viewer: host -> the other's host")
    )
    assert "no route to 192.168.1.10" in line and "private address" in line


def test_an_old_result_without_wire_evidence_still_names_the_filter(symmetric):
    old = copy.deepcopy(symmetric)
    old["network"].pop("nodes", None)
    old["network"].pop("links", None)
    for pair in old["pairs"]:
        pair.pop("trail", None)
        if pair.get("failure"):
            pair["failure"].pop("dropped_at", None)
    line = _srflx_failure(_section(old, "Why pairs failed"), "viewer")
    assert "no answer to 4 checks" in line
    assert "the master's NAT master-gw has a port-restricted filter" in line
    assert "viewer-gw's symmetric mapping" in line  # the done-when holds without a capture
    host = next(
        x
        for x in _section(old, "Why pairs failed")
        if x.startswith("viewer: host -> the other's host")
    )
    assert "192.168.1.10 is a private address inside the master's network" in host


def test_candidates_say_where_they_came_from(symmetric):
    lines = _section(symmetric, "Why each candidate exists")
    srflx = next(x for x in lines if x.startswith("viewer srflx"))
    assert "stun:203.0.113.10:3478" in srflx and "viewer-gw" in srflx
    prflx = next(x for x in lines if x.startswith("viewer prflx"))
    assert "address-and-port-dependent mapping" in prflx
    relay = next(x for x in lines if x.startswith("viewer relay") and "/tls" in x)
    assert "turns:203.0.113.10:443" in relay


def test_the_selected_pair_won_by_nomination_and_priority(symmetric):
    viewer, master = _section(symmetric, "Why the selected pair won")
    assert "nominated it, as the controlling agent" in viewer
    assert "highest of the" in viewer
    assert "no direct pair succeeded" in viewer
    assert "the viewer, the controlling agent, nominated it" in master


def test_a_failed_run_has_no_winner_and_says_so(symmetric):
    failed = copy.deepcopy(symmetric)
    failed["outcome"] = "failed"
    failed["selected"] = {"viewer": None, "master": None}
    failed["peers"]["master"]["error"] = "no pair succeeded"
    for pair in failed["pairs"]:
        pair["state"] = "failed"
    text = explain_text(RunResult.from_json(failed))
    assert "The peers did not connect" in text
    assert "The viewer selected no pair" in text
    assert "The master selected no pair (no pair succeeded)" in text


def test_turn_refusals_and_pairs_in_progress():
    result = typed(
        {
            "peers": {"viewer": {"host": "v"}, "master": {"host": "m"}},
            "network": {"topology": "no-such-topology", "conditions": {}},
            "pairs": [
                {
                    "agent": "viewer",
                    "local": {"type": "relay", "address": "203.0.113.10", "port": 1},
                    "remote": {"type": "host", "address": "192.168.1.10", "port": 2},
                    "state": "failed",
                    "failure": {"reason": "turn_error", "code": 403, "message": "Forbidden IP"},
                },
                {
                    "agent": "viewer",
                    "local": {"type": "host", "address": "1d5aeb18-aaaa.local", "port": 3},
                    "remote": {"type": "host", "address": "192.168.1.10", "port": 2},
                    "state": "in-progress",
                },
            ],
            "selected": {"viewer": None, "master": None},
        }
    )
    lines = failure_lines(result, network_graph(result))
    assert "403 Forbidden IP" in lines[0] and "will not relay" in lines[0]
    assert "still in-progress" in lines[1]
    assert explain_text(result)  # no topology at all: still a walk-through


def test_sides_split_the_path_at_the_router(symmetric):
    result = RunResult.from_json(symmetric)
    assert sides(result, network_graph(result)) == {
        "viewer": ["viewer-gw"],
        "master": ["master-gw"],
    }


def test_firewall_summary_lists_what_it_allows():
    firewall = {
        "preset": "tcp-web-only",
        "outbound": {
            "default": "deny",
            "rules": [{"action": "allow", "protocol": "tcp", "ports": ["80", "443"]}],
        },
        "inbound": {"default": "allow", "rules": []},
    }
    assert firewall_summary(firewall) == (
        "tcp-web-only: outbound deny by default, allows tcp 80,443; inbound allow by default"
    )


def test_a_browsers_hidden_host_and_a_lone_winner(symmetric):
    browser = copy.deepcopy(symmetric)
    browser["peers"]["viewer"]["candidates"][0]["address"] = ""
    winner = browser["selected"]["viewer"]
    for pair in browser["pairs"]:
        chosen = pair["local"] == winner["local"] and pair["remote"] == winner["remote"]
        if pair["agent"] == "viewer" and not chosen:
            pair["state"] = "failed"
    candidates = _section(browser, "Why each candidate exists")
    assert any("reports without the address itself" in x for x in candidates)
    assert (
        "it was the only pair that succeeded" in _section(browser, "Why the selected pair won")[0]
    )
