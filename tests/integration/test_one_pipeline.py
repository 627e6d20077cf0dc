"""One pipeline: a run on a kept site (how `lab matrix` workers reuse a network) gives the
same result document as `lab run` of the same scenario on a fresh site, section by
section: DNS answers, TURN requests, the capture when asked, and a call's events."""

from __future__ import annotations

from typing import Any

import pytest

from lab.core.documents import schema_errors
from lab.run.pipeline import run_scenario
from lab.run.plan import RunOptions
from lab.run.programs import preload_programs
from lab.run.sites import ReusedSites
from lab.scenario.scenario import load_scenario

pytestmark = pytest.mark.root


def run(scenario: Any, options: RunOptions, sites: ReusedSites | None = None) -> dict[str, Any]:
    """The run's result document, as `lab run --json` writes it."""
    return run_scenario(scenario, options, sites).to_json()


def kinds(candidate: dict[str, Any]) -> str:
    return f"{candidate['type']}/{candidate['protocol']}"


def sections(result: dict[str, Any]) -> dict[str, Any]:
    """What a result says, less what differs between any two runs (ports, priorities
    derived from ports, timings, TURN session numbers, retransmissions)."""
    peers = {
        role: {
            "agent": peer["agent"],
            "mode": peer["mode"],
            "candidates": sorted(kinds(c) for c in peer["candidates"]),
            "error": peer.get("error"),
        }
        for role, peer in result["peers"].items()
    }
    # Which pairs there are, by the socket their checks left from (a pair that worked is
    # shown at its valid local candidate, one that did not at its base); not each pair's
    # end state, which can differ between any two runs (a check to a relay passes once
    # the other side's TURN permission exists).
    pairs = {
        (p["agent"], kinds(p.get("local_base") or p["local"]), kinds(p["remote"]))
        for p in result["pairs"]
    }
    selected = {
        role: (kinds(s["local"]), kinds(s["remote"])) if s else None
        for role, s in result["selected"].items()
    }
    dns = {(a["server"], a["client"], a["type"], a["name"], a["answer"])
           for a in result["servers"]["dns"]["answers"]}  # fmt: skip
    turn = {(r["method"], r["outcome"], r.get("error_code"))
            for r in result["servers"]["turn"]["requests"]}  # fmt: skip
    call = result.get("call")
    return {
        "keys": sorted(result),
        "scenario": result["scenario"],
        "outcome": result["outcome"],
        "expectations": [(e["check"], e["met"]) for e in result["expectations"]],
        "network": result["network"],
        "peers": peers,
        "pairs": pairs,
        "selected": selected,
        "servers.dns": dns,
        "servers.turn": turn,
        "servers.turn.software": result["servers"]["turn"]["software"],
        "timings": sorted(result["timings"]),
        "phases": sorted(result["timings"]["phases"]),
        "kvs_status": result["kvs_status"],
        "capture": sorted(result["capture"]) if "capture" in result else None,
        "trails": sorted(bool(p.get("trail")) for p in result["pairs"]),
        "call": None if call is None else {
            "started": call["started"],
            "events": [e["kind"] for e in call["events"]],
        },
    }  # fmt: skip


def assert_same(reused: dict[str, Any], fresh: dict[str, Any]) -> None:
    assert schema_errors(reused, "result") == []
    ours, theirs = sections(reused), sections(fresh)
    for name in theirs:
        assert ours[name] == theirs[name], f"section {name} differs"


def test_a_run_on_a_kept_site_equals_lab_run_section_by_section() -> None:
    preload_programs()
    captured = RunOptions(capture=True)
    with ReusedSites() as sites:
        first = run(load_scenario("home-nat-both"), RunOptions(), sites)
        kept = sites.kept
        assert kept is not None
        symmetric = run(load_scenario("symmetric-both"), captured, sites)
        call = run(load_scenario("call-nat-flush"), RunOptions(), sites)
        assert kept.runs == 3 and sites.kept is None  # the call's events closed the site
        assert not kept.workdir.exists()
    # The kept site's second and third runs found the network already up.
    assert first["timings"]["phases"]["servers_s"] > 0
    assert symmetric["timings"]["phases"]["servers_s"] == 0.0
    assert call["timings"]["phases"]["servers_s"] == 0.0
    assert first["servers"]["dns"]["answers"] and symmetric["servers"]["dns"]["answers"]
    assert "capture" in symmetric and call["call"]["started"]
    assert_same(first, run(load_scenario("home-nat-both"), RunOptions()))
    assert_same(symmetric, run(load_scenario("symmetric-both"), captured))
    assert_same(call, run(load_scenario("call-nat-flush"), RunOptions()))
