"""Ongoing calls on real networks (root): the lab changes the network mid-call and the
result's `call` section shows, on one clock, what the agents did and when data flowed
again. The bundled scenarios (`call-link-outage`, `call-nat-flush`) also run with aiortc
peers in test_scenario_library, where their recovery expectations are judged."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.observations.call_timeline import moved_mappings, selected_around_events
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
    # The same pair before and after (a browser may still settle its pair just after
    # connecting, before the outage: that change does not count).
    before, after = selected_around_events(call)
    assert before is not None and after in (None, before), (before, after)
    assert "call timeline" in output and "down for 8 s" in output


def test_a_lossy_spell_delays_data_but_loses_none_of_it(tmp_path: Path) -> None:
    status, result, output = run_scenario(tmp_path, "call-lossy-spell")
    assert status == 0 and result["expectations_met"], output
    call = result["call"]
    event = call["events"][0]
    assert event["applied"] and event["target"] == "viewer:eth0" and event["loss_percent"] == 30
    # The data channel is reliable: lost packets are sent again, every message comes back.
    assert call["messages_echoed"] == call["messages_sent"] >= 200
    # Loss of 30 % each way, for 3 s at 40 messages a second, leaves gaps longer than the
    # 25 ms between messages (a retransmission waits for SCTP's timer).
    assert call["longest_gap_s"]["length_s"] > 0.1
    # ICE consent survives it: never expired, never six unanswered in a row.
    assert not any(c["expired"] for c in call["consent"].values())
    assert all(c["unanswered_in_a_row_max"] < 6 for c in call["consent"].values())


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


def both_agents(tmp_path: Path, scenario: str) -> dict[str, tuple[int, dict[str, Any], str]]:
    """The scenario with aiortc peers and with Chromium peers, two runs at once."""
    runs = {"aiortc": [], "chromium": ["--viewer", "chromium", "--master", "chromium"]}
    for agent in runs:
        (tmp_path / agent).mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            a: pool.submit(run_scenario, tmp_path / a, scenario, *args) for a, args in runs.items()
        }
        return {agent: future.result() for agent, future in futures.items()}


def flat(output: str) -> str:
    """The terminal output with its line wrapping and alignment undone."""
    return " ".join(output.split())


def entries(timeline: list[dict[str, Any]], key: str, after: float = -60.0) -> list[Any]:
    return [e[key] for e in timeline if key in e and e["t_s"] >= after]


def test_a_rebind_moves_the_viewers_mapping_chromium_follows_it_and_aiortc_does_not(
    tmp_path: Path,
) -> None:
    results = both_agents(tmp_path, "call-nat-rebind")
    for agent, (_, result, output) in results.items():
        call = result["call"]
        event = call["events"][0]
        assert event["kind"] == "nat-rebind" and event["applied"], output
        # The NAT's conntrack: the call's inside endpoint now leaves from another port.
        moved = moved_mappings(event["mappings"])
        assert moved, (agent, event["mappings"])
        _, old, new = moved[0]
        assert old.split(":")[0] == new.split(":")[0] and old != new
        # Both agents gathered before the call: new, then gathering, then complete.
        for role in ("viewer", "master"):
            gathering = entries(call["peers"][role], "gathering")
            assert gathering[-1] == "complete" and "gathering" in gathering, (agent, role)
    status, result, output = results["chromium"]
    # It did not break: the scenario expects a Chromium viewer to follow the rebind.
    assert status == 0 and result["expectations_met"], output
    call = result["call"]
    new_port = moved_mappings(call["events"][0]["mappings"])[0][2].split(":")[1]
    began = call["events"][0]["began_s"]
    # The viewer learns its new mapped port as a peer-reflexive local candidate.
    viewer_pairs = entries(call["peers"]["viewer"], "selected_pair", began)
    local = viewer_pairs[-1].split(" -> ")[0] if viewer_pairs else ""
    assert local.startswith("prflx") and local.endswith(f":{new_port}"), viewer_pairs
    master_pairs = entries(call["peers"]["master"], "selected_pair", began)
    assert master_pairs and master_pairs[-1].endswith(f":{new_port}"), master_pairs
    assert call["events"][0]["recovery_s"] < 4 and call["ice_restarts"]["viewer"] == 0
    status, result, output = results["aiortc"]
    assert status == 0 and result["expectations_met"], output  # call_breaks: true
    call = result["call"]
    began = call["events"][0]["began_s"]
    assert call["events"][0]["recovery_s"] is None
    # The master's consent checks go to the old port: unanswered, and the timeline says so.
    assert "checks unanswered" in entries(call["peers"]["master"], "consent", began), output
    assert call["consent"]["master"]["unanswered_in_a_row_max"] >= 1
    assert call["consent"]["viewer"]["unanswered_in_a_row_max"] == 0
    assert "now leaves as" in output and "master consent checks unanswered" in flat(output)
    assert leftovers()["turnservers"] == []


def test_an_idle_timeout_keeps_chromiums_paused_call_and_breaks_aiortcs(tmp_path: Path) -> None:
    """Chromium checks consent every 2.5 s, within the 3 s timeout; aiortc every 4-6 s,
    so a 2 s timeout always leaves its flow idle long enough to expire in a 6 s pause."""
    document = yaml.safe_load((ROOT / "scenarios" / "call-firewall-idle-timeout.yaml").read_text())
    document["peers"] = {"viewer": {"host": "viewer"}, "master": {"host": "master"}}
    document["events"][0]["idle_timeout_s"] = 2
    document["expect"] = {"outcome": "connected", "call_breaks": True}
    (tmp_path / "aiortc").mkdir()
    aiortc_path = tmp_path / "aiortc" / "call-idle-timeout-aiortc.yaml"
    aiortc_path.write_text(yaml.safe_dump(document))
    (tmp_path / "chromium").mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        browsers = pool.submit(run_scenario, tmp_path / "chromium", "call-firewall-idle-timeout")
        library = pool.submit(run_scenario, tmp_path / "aiortc", str(aiortc_path))
        results = {"chromium": browsers.result(), "aiortc": library.result()}
    for agent, (_, result, output) in results.items():
        call = result["call"]
        event = call["events"][0]
        assert event["kind"] == "idle-timeout" and event["applied"], output
        assert 0.9 < event["began_s"] < 1.5
        (pause,) = call["pauses"]
        assert 5.9 < pause["to_s"] - pause["from_s"] < 6.1
        # Nothing is sent, so nothing comes back, within the pause.
        quiet = [
            r for r in call["delivery"] if pause["from_s"] + 1 <= r["second"] < pause["to_s"] - 1
        ]
        assert quiet and not any(r["sent"] or r["echoes"] for r in quiet), agent
        assert event["recovery_from_s"] == pause["to_s"]
        assert call["consent"]["viewer"]["checks"] >= 1, (agent, call["consent"])
    status, result, output = results["chromium"]
    assert status == 0 and result["expectations_met"], output  # the call survives
    call = result["call"]
    assert call["events"][0]["idle_timeout_s"] == 3
    assert call["events"][0]["recovery_s"] < 1 and call["messages_echoed"] == call["messages_sent"]
    assert not any(c["expired"] for c in call["consent"].values())
    assert "viewer sends again (data again" in flat(output)
    status, result, output = results["aiortc"]
    assert status == 0 and result["expectations_met"], output  # call_breaks: true
    call = result["call"]
    assert call["pauses"][0]["resumed_s"] is None and call["events"][0]["recovery_s"] is None
    assert "data never again after the next pause" in flat(output)
