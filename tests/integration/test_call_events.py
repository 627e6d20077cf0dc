"""Ongoing calls on real networks (root): the lab changes the network mid-call and the
result's `call` section shows, on one clock, what the agents did and when data flowed
again. The bundled scenarios (`call-link-outage`, `call-nat-flush`) also run with aiortc
peers in test_scenario_library, where their recovery expectations are judged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.helpers import leftovers, run_scenario

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]


def states_between(timeline: list[dict[str, Any]], start: float, end: float) -> list[str]:
    return [e["ice_state"] for e in timeline if "ice_state" in e and start <= e["t_s"] <= end]


def test_a_browser_reports_the_outage_and_the_call_comes_back_on_the_same_pair(
    tmp_path: Path,
) -> None:
    status, result, output = run_scenario(
        tmp_path, "call-link-outage", "--viewer", "chromium", "--master", "chromium"
    )
    assert status == 0 and result["outcome"] == "connected", output
    call = result["call"]
    event = call["events"][0]
    assert event["applied"] and event["kind"] == "link-down"
    began, ended = event["began_s"], event["ended_s"]
    assert 1.9 < began < 2.5 and 7.9 < ended - began < 8.5
    # Nothing comes back while the link is down, everything after it.
    silent = [row["echoes"] for row in call["delivery"] if began + 1 <= row["second"] < ended - 1]
    assert silent and not any(silent)
    assert call["messages_echoed"] == call["messages_sent"] > 0
    assert event["recovery_s"] is not None and event["recovery_s"] < 3
    viewer = call["peers"]["viewer"]
    assert "disconnected" in states_between(viewer, began, ended + 0.5)
    # The lab notes the end once `nft` has returned: the browser may already have seen it.
    assert "connected" in states_between(viewer, ended - 0.5, ended + 3)
    pairs = {e["selected_pair"] for e in viewer if "selected_pair" in e and e["t_s"] > 0}
    assert len(pairs) <= 1  # the same pair before and after
    assert "call timeline" in output and "down for 8 s" in output


def test_a_lossy_spell_delays_data_but_loses_none_of_it(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "scenarios" / "call-link-outage.yaml").read_text())
    document["name"] = "call-lossy-spell"
    document["call"] = {"duration_s": 5, "messages_per_s": 40}
    document["events"] = [{"at_s": 1, "link": "viewer", "loss_percent": 40, "for_s": 2}]
    document["expect"] = {"outcome": "connected", "recovers_within_s": 2, "call_breaks": False}
    path = tmp_path / "call-lossy-spell.yaml"
    path.write_text(yaml.safe_dump(document))
    status, result, output = run_scenario(tmp_path, str(path))
    assert status == 0 and result["expectations_met"], output
    event = result["call"]["events"][0]
    assert event["applied"] and event["target"] == "viewer:eth0" and event["loss_percent"] == 40
    # The data channel is reliable: lost packets are sent again, every message comes back.
    assert result["call"]["messages_echoed"] == result["call"]["messages_sent"] >= 150
    # Loss of 40 % each way, for 2 s at 40 messages a second, leaves gaps longer than the
    # 25 ms between messages (a retransmission waits for SCTP's timer).
    assert result["call"]["longest_gap_s"]["length_s"] > 0.1


def test_a_turn_restart_kills_the_relayed_call_until_the_browser_restarts_ice(
    tmp_path: Path,
) -> None:
    document = yaml.safe_load((ROOT / "scenarios" / "call-turn-restart.yaml").read_text())
    document["name"] = "call-turn-restart-ice-restart"
    document["peers"]["viewer"].update(agent="chromium", mode="turn-only")
    document["peers"]["master"]["agent"] = "chromium"
    document["call"] = {"duration_s": 16, "messages_per_s": 20, "ice_restart": True}
    document["expect"] = {"outcome": "connected", "ice_restart": True, "call_breaks": False}
    path = tmp_path / "call-turn-restart-ice-restart.yaml"
    path.write_text(yaml.safe_dump(document))
    status, result, output = run_scenario(tmp_path, str(path))
    assert status == 0 and result["expectations_met"], output
    event = result["call"]["events"][0]
    assert event["kind"] == "turn-restart" and event["applied"]
    assert event["ended_s"] - event["began_s"] < 2  # the server listens again quickly
    # The TURN server started twice, and the viewer allocated again after the restart.
    requests = result["servers"]["turn"]["requests"]
    assert requests, "the TURN server's log was read"
    viewer = result["call"]["peers"]["viewer"]
    restarts = [e["t_s"] for e in viewer if "ice_restart" in e]
    assert restarts and restarts[0] > event["ended_s"]
    assert result["call"]["events"][0]["recovery_s"] is not None
    assert leftovers()["turnservers"] == []
