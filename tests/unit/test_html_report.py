"""The HTML report's pure parts: which document is which, the pair grid, the topology
drawing, and pages rendered from edge cases (no topology, a browser's pairs in progress,
a failed run, hostile text)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from lab.core.errors import LabInputError
from lab.report.html.render import kind_of, page_json, pair_grid, render_document, timeline
from lab.report.html.topology_svg import drawing
from lab.report.result import RunResult
from lab.sweeps.compare import Combo, compare_document, scenario_row, summarize
from lab.sweeps.matrix import matrix_document

FIXTURE = Path(__file__).parent / "fixtures" / "html" / "symmetric-both-result.json"


@pytest.fixture
def result() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def test_documents_are_told_apart(result):
    assert kind_of(result) == "result"
    assert kind_of({"presets": [], "cells": []}) == "matrix"
    assert kind_of({"combos": [], "scenarios": []}) == "compare"
    with pytest.raises(LabInputError, match="x.json: not a result, matrix or compare"):
        render_document({"hello": 1}, "x.json")


def test_the_grid_marks_the_selected_pair_and_every_failure(result):
    grid = pair_grid(RunResult.from_json(result), "viewer", "run")
    cells = [c for row in grid.rows for c in row.cells if c.index is not None]
    assert len(cells) == grid.count == 23
    assert [c.text for c in cells if c.selected] == ["ok 2.1 ms"]
    failed = [c for c in cells if c.state == "failed"]
    assert {c.why for c in failed} == {"timeout @ internet", "timeout @ master-gw"}
    assert all(c.checks == "4/0" for c in failed)
    # peer-reflexive locals learned from checks get rows of their own
    assert sum(1 for row in grid.rows if row.candidate.type == "prflx") == 3


def test_the_drawing_highlights_the_relayed_path(result):
    picture = drawing(RunResult.from_json(result))
    assert picture is not None
    assert picture.path == [
        "viewer",
        "viewer-gw",
        "internet",
        "turn",
        "internet",
        "master-gw",
        "master",
    ]
    assert {b.name for b in picture.boxes if b.on_path} == {
        "viewer",
        "viewer-gw",
        "internet",
        "turn",
        "master-gw",
        "master",
    }
    assert {(w.a, w.b) for w in picture.wires if not w.on_path} == {("signaling", "internet")}
    labels = {b.name: b.lines for b in picture.boxes}
    assert labels["viewer-gw"][1] == "NAT symmetric"


def test_a_direct_pair_does_not_cross_the_turn_server(result):
    direct = copy.deepcopy(result)
    direct["selected"]["viewer"]["remote"] = dict(
        direct["peers"]["master"]["candidates"][1]  # the master's srflx
    )
    assert "turn" not in drawing(RunResult.from_json(direct)).path


def test_a_result_without_a_known_topology_still_renders(result):
    lost = copy.deepcopy(result)
    lost["network"] = {"topology": "gone-topology", "conditions": {}}
    page = render_document(lost)
    assert "does not describe its topology" in page
    assert 'class="grid"' in page


def test_a_failed_browser_run_with_pairs_in_progress_renders(result):
    browser = copy.deepcopy(result)
    browser["outcome"] = "failed"
    browser["selected"] = {"viewer": None, "master": None}
    browser["timings"]["connected_s"] = None
    for pair in browser["pairs"]:
        pair["state"] = "in-progress"
        pair["rtt_ms"] = None
        pair.pop("failure", None)
    page = render_document(browser)
    assert "No selected pair: no path to highlight" in page
    assert 'class="pair in-progress"' in page
    assert " selected" not in re.sub(r"selected (pair|no pair)", "", page.split("<body>")[1])


def test_text_from_the_result_is_escaped(result):
    hostile = copy.deepcopy(result)
    hostile["description"] = "<img src=x onerror=alert(1)>"
    hostile["pairs"][0]["failure"]["message"] = "</script><script>alert(2)</script>"
    page = render_document(hostile)
    assert "<img src=x" not in page
    assert "</script><script>alert(2)" not in page
    assert "\\u003c/script\\u003e" in page_json(hostile["pairs"][0]["failure"]["message"])


def test_the_page_fetches_nothing(result):
    page = render_document(result)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page


def test_the_timeline_orders_the_run(result):
    events = timeline(RunResult.from_json(result)).timed
    assert [e.t for e in events] == sorted(e.t for e in events)
    assert events[-1].kind == "connected"
    assert any(e.kind == "gathering" and "stun:203.0.113.10:3478" in e.what for e in events)


def test_captured_checks_get_a_lane_of_their_own(result):
    checks = timeline(RunResult.from_json(result)).checks
    # the fixture keeps the trail of one check per host -> srflx pair, both dropped
    assert sorted(c.lane for c in checks) == ["master", "viewer"]
    assert all("dropped at" in c.what and "filter" in c.what for c in checks)
    assert "Each check on the wire" in render_document(result)


def test_an_ongoing_call_has_its_events_and_timelines(result):
    call = copy.deepcopy(result)
    call["call"] = {
        "started": True,
        "events": [
            {"at_s": 1, "kind": "link-down", "target": "viewer-gw", "began_s": 1.0,
             "ended_s": 3.0, "recovery_s": None, "applied": True},
        ],
        "peers": {"viewer": [{"t_s": 1.2, "ice_state": "disconnected"}]},
        "messages_sent": 10,
        "messages_echoed": 4,
        "longest_gap_s": {"from_s": 1.0, "length_s": 4.5},
    }  # fmt: skip
    page = render_document(call)
    assert "link-down" in page and "never" in page and "ice state: disconnected" in page
    call["call"]["pauses"] = [{"from_s": 2.0, "to_s": 8.0, "resumed_s": 0.004}]
    call["call"]["consent"] = {
        "master": {"checks": 3, "unanswered_in_a_row_max": 2, "expired": True}
    }
    call["call"]["peers"]["master"] = [{"t_s": 4.0, "consent": "checks unanswered"}]
    page = render_document(call)
    assert "from 2.0 s to 8.0 s (a pause); data again 0.004 s after it" in page
    assert "consent checks (RFC 7675) during the call: 3, at most 2 unanswered" in page
    assert "consent expired" in page and "consent: checks unanswered" in page


def test_a_matrix_page_colours_cells_and_links_their_reports(result):
    relayed = {
        "viewer": "symmetric",
        "master": "symmetric",
        "result": result,
        "agrees": True,
        "libwebrtc": {"local": "prflx", "remote": "relay", "relayed": True},
    }
    failed = {
        "viewer": "symmetric",
        "master": "open",
        "result": None,
        "agrees": None,
        "error": "the lab failed",
    }
    document = matrix_document({"viewer": "aiortc", "master": "aiortc"},
                               ["symmetric", "open"], [relayed, failed], 1.0)  # fmt: skip
    page = render_document(document)
    assert '<td class="relay"' in page and '<td class="failed"' in page
    assert 'href="#cell-symmetric-symmetric"' in page and 'id="cell-symmetric-symmetric"' in page
    assert "libwebrtc: prflx-relay (relay)" in page
    assert "not run" in page  # open x open and open x symmetric


def test_a_compare_page_shows_each_combination(result):
    combos = [Combo("aiortc", "aiortc"), Combo("chromium", "aiortc")]
    row = scenario_row(
        "symmetric-both",
        {
            "aiortc/aiortc": summarize(RunResult.from_json(result)),
            "chromium/aiortc": summarize(None, "no browser"),
        },
    )
    page = render_document(compare_document(combos, [row], 2.0))
    assert '<td class="relay"' in page and '<td class="failed"' in page
    assert "no browser" in page
