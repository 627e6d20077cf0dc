"""Expectations that differ by agent, each with its reason, and scenarios not meant for
some agents: a scenario says so, and the lab judges each run by what applies to it."""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.scenario.by_agent import applies, expect_for, not_meant_for, reasons_for
from lab.scenario.scenario import load_scenario
from lab.sweeps.compare import Combo, differences, run_cell

ROOT = Path(__file__).resolve().parents[2]
EXPECT = {
    "outcome": "connected",
    "selected": {"viewer": {"local": "host"}, "master": {"local": "host", "remote": "host"}},
    "failing_pairs": [{"local": "host", "remote": "srflx"}],
    "where_agents": [
        {
            "when": {"viewer": ["chromium", "firefox"]},
            "why": "mDNS",
            "selected": {"master": {"local": "host", "remote": ["host", "prflx"]}},
        }
    ],
    "not_for_agents": [{"when": {"master": ["command"]}, "why": "a program has no pairs"}],
}


def test_an_entry_applies_when_every_role_it_names_runs_an_agent_it_lists() -> None:
    when = {"viewer": ["chromium"], "master": ["aiortc"]}
    assert applies(when, {"viewer": "chromium", "master": "aiortc"})
    assert not applies(when, {"viewer": "chromium", "master": "chromium"})
    assert applies({"viewer": ["chromium"]}, {"viewer": "chromium", "master": "kvs-js"})


def test_a_matching_entry_replaces_what_it_names_per_role() -> None:
    browser = expect_for(EXPECT, {"viewer": "chromium", "master": "aiortc"})
    assert browser["selected"]["master"] == {"local": "host", "remote": ["host", "prflx"]}
    assert browser["selected"]["viewer"] == {"local": "host"}  # the other role keeps its own
    assert browser["failing_pairs"] == EXPECT["failing_pairs"]
    assert "where_agents" not in browser and "not_for_agents" not in browser
    assert reasons_for(EXPECT, {"viewer": "chromium", "master": "aiortc"}) == ["mDNS"]
    plain = expect_for(EXPECT, {"viewer": "aiortc", "master": "aiortc"})
    assert plain["selected"] == EXPECT["selected"] and reasons_for(EXPECT, {}) == []


def test_a_scenario_says_which_agents_it_is_not_meant_for() -> None:
    assert not_meant_for(EXPECT, {"viewer": "aiortc", "master": "command"}) == (
        "a program has no pairs"
    )
    assert not_meant_for(EXPECT, {"viewer": "aiortc", "master": "aiortc"}) is None


def test_same_lan_expects_a_peer_reflexive_remote_behind_a_browser_and_says_why() -> None:
    expect = load_scenario("same-lan").expect
    mixed = expect_for(expect, {"viewer": "chromium", "master": "aiortc"})
    assert "prflx" in mixed["selected"]["master"]["remote"]
    assert mixed["selected"]["viewer"]["remote"] == "host"
    assert any("mDNS" in why for why in reasons_for(expect, {"viewer": "kvs-js"}))
    both = expect_for(expect, {"viewer": "chromium", "master": "firefox"})
    assert "prflx" in both["selected"]["viewer"]["remote"]
    assert expect_for(expect, {"viewer": "aiortc", "master": "aiortc"}) == {
        k: v for k, v in expect.items() if k != "where_agents"
    }


def test_compare_does_not_run_or_judge_a_combination_the_scenario_is_not_meant_for(
    tmp_path: Path,
) -> None:
    document = yaml.safe_load((ROOT / "scenarios" / "same-lan.yaml").read_text())
    document["expect"]["not_for_agents"] = [{"when": {"viewer": ["chromium"]}, "why": "a test"}]
    path = tmp_path / "not-for.yaml"
    path.write_text(yaml.safe_dump(document))
    cell = run_cell(str(path), Combo("chromium", "aiortc"), [])  # returns before any run
    assert cell["outcome"] == "n/a" and cell["not_meant_for"] == "a test"
    cells = {"aiortc/aiortc": {**cell, "outcome": "connected"}, "chromium/aiortc": cell}
    assert differences(cells) == []


def test_an_entry_drops_what_does_not_apply_to_its_agents() -> None:
    expect = {
        "outcome": "connected",
        "absent_candidates": {"viewer": ["srflx"], "master": ["srflx"]},
        "where_agents": [
            {"when": {"viewer": ["chromium"]}, "why": "TURN", "drop": ["absent_candidates.viewer"]},
            {"when": {"master": ["chromium"]}, "why": "TURN", "drop": ["absent_candidates.master"]},
        ],
    }
    one = expect_for(expect, {"viewer": "chromium", "master": "aiortc"})
    assert one["absent_candidates"] == {"master": ["srflx"]}
    both = expect_for(expect, {"viewer": "chromium", "master": "chromium"})
    assert "absent_candidates" not in both
    assert expect["absent_candidates"] == {"viewer": ["srflx"], "master": ["srflx"]}  # untouched


def test_the_bundled_scenarios_per_agent_entries_leave_aiortc_alone_and_keep_a_check() -> None:
    """No entry changes what two aiortc peers are judged by (the scenarios are written for
    them), every entry says why, and every combination an entry applies to is still
    judged by more than its outcome."""
    from itertools import product

    from lab.scenario.scenario import bundled_scenarios

    agents = ("aiortc", "chromium", "kvs-js", "firefox")
    for path in bundled_scenarios():
        expect = load_scenario(path.stem).expect
        entries = expect.get("where_agents", []) + expect.get("not_for_agents", [])
        assert all(len(e["why"]) > 40 for e in entries), path.stem
        plain = {k: v for k, v in expect.items() if k not in ("where_agents", "not_for_agents")}
        for viewer, master in product(agents, agents):
            roles = {"viewer": viewer, "master": master}
            if not_meant_for(expect, roles) is not None:
                continue
            effective = expect_for(expect, roles)
            assert set(effective) - {"outcome"}, (path.stem, roles)
            if viewer == master == "aiortc":
                assert effective == plain, path.stem


def test_scenarios_say_which_agents_cannot_restart_ice_or_form_a_pair() -> None:
    for name in ("call-nat-flush-ice-restart", "call-uplink-switch"):
        expect = load_scenario(name).expect
        assert not_meant_for(expect, {"viewer": "aiortc", "master": "chromium"})
        assert not_meant_for(expect, {"viewer": "chromium", "master": "aiortc"})
        assert not_meant_for(expect, {"viewer": "chromium", "master": "chromium"}) is None
    unreachable = load_scenario("turn-unreachable").expect
    assert expect_for(unreachable, {"viewer": "aiortc", "master": "chromium"})["kvs_status"] == (
        "0x5a00000e"
    )
    assert expect_for(unreachable, {"viewer": "chromium", "master": "aiortc"})["kvs_status"] == (
        "0x5a00000d"
    )
