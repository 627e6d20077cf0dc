"""An ongoing call: the scenario's call and events, the rulesets that carry link events,
and the timeline and recovery judged from what the peers recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.core.errors import LabInputError
from lab.observations.call_timeline import (
    call_lines,
    call_section,
    consent_changes,
    consent_summary,
    delivery_per_second,
    longest_gap,
    moved_mappings,
    recovery_after,
    recovery_checks,
)
from lab.peers.call_traffic import in_pause
from lab.run.events import (
    idle_timeout_sysctls,
    rebind_commands,
    render_event_ruleset,
    udp_mappings,
    uplink_switch_commands,
)
from lab.scenario.call_events import CallEvent, Pause
from lab.scenario.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def call_document(**changes: Any) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "scenarios" / "call-link-outage.yaml").read_text())
    document.update(changes)
    return document


def load(tmp_path: Path, document: dict[str, Any]) -> Any:
    path = tmp_path / "call.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_scenario(str(path))


def test_bundled_call_scenarios_name_their_events() -> None:
    outage = load_scenario("call-link-outage")
    assert outage.call is not None and outage.call.duration_s == 12
    assert outage.events == (CallEvent(2.0, "link-down", "viewer-gw", "eth1", 8.0),)
    flush = load_scenario("call-nat-flush")
    assert [(e.kind, e.node) for e in flush.events] == [("nat-flush", "viewer-gw")]
    restart = load_scenario("call-turn-restart")
    assert [(e.kind, e.node) for e in restart.events] == [("turn-restart", "turn")]
    assert restart.events[0].describe().startswith("the TURN server restarts")


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"call": None}, "events", "add `call"),
        ({"events": [{"at_s": 20, "link": "viewer-gw", "down_s": 1}]}, "events[0].at_s", "past"),
        ({"events": [{"at_s": 1, "node": "viewer", "nat": "flush"}]}, "events[0].node", "no NAT"),
        (
            {"events": [{"at_s": 1, "link": "viewer-gw:eth9", "down_s": 1}]},
            "events[0].link",
            "eth9",
        ),
        ({"events": [{"at_s": 1, "link": "nowhere", "down_s": 1}]}, "events[0].link", "nowhere"),
        ({"events": [{"at_s": 1, "link": "viewer-gw", "loss_percent": 5}]}, "events[0].for_s", ""),
        ({"events": [{"at_s": 1}]}, "events[0]", "say what happens"),
        ({"events": [{"at_s": 1, "server": "turn"}]}, "events[0].restart", "restart: true"),
        (
            {"events": [{"at_s": 1, "link": "viewer-gw", "down_s": 1, "for_s": 2}]},
            "events[0].for_s",
            "does not belong",
        ),
    ],
)
def test_a_wrong_event_names_the_file_and_the_field(
    tmp_path: Path, changes: dict[str, Any], field: str, words: str
) -> None:
    document = call_document(**changes)
    if document.get("call") is None:
        document.pop("call")
    with pytest.raises(LabInputError) as error:
        load(tmp_path, document)
    message = str(error.value)
    assert "call.yaml" in message and f"{field}:" in message and words in message


def test_recovery_cannot_be_expected_of_a_call_without_events(tmp_path: Path) -> None:
    document = call_document()
    document.pop("events")
    with pytest.raises(LabInputError, match=r"expect.recovers_within_s: needs `events`"):
        load(tmp_path, document)


def test_an_outage_drops_everything_both_ways_and_loss_only_a_share() -> None:
    down = render_event_ruleset(CallEvent(1, "link-down", "viewer-gw", "eth1", 3), 0)
    assert "table ip icelab_event_0" in down
    assert 'iifname "eth1" drop' in down and 'oifname "eth1" drop' in down
    lossy = render_event_ruleset(CallEvent(1, "link-loss", "viewer", "eth0", 5, 30), 2)
    assert "table ip icelab_event_2" in lossy
    assert 'iifname "eth0" numgen random mod 10000 < 3000 drop' in lossy
    assert 'oifname "eth0" numgen random mod 10000 < 3000 drop' in lossy


# A call that started at t=100: 10 messages a second, an outage from 102 to 104.
ZERO = 100.0
SENT = [ZERO + n / 10 for n in range(60)]


def echoes_with_outage(back_at: float | None) -> list[float | None]:
    """Echoes 5 ms after sending, none sent in the outage come back before `back_at`."""
    echoed: list[float | None] = []
    for at in SENT:
        if at < 102:
            echoed.append(at + 0.005)
        elif back_at is None:
            echoed.append(None)
        else:
            echoed.append(max(at, back_at) + 0.005)
    return echoed


def test_recovery_counts_from_the_events_end_to_the_first_new_echo() -> None:
    assert recovery_after(104.0, SENT, echoes_with_outage(back_at=104.5)) == 0.505
    assert recovery_after(104.0, SENT, echoes_with_outage(back_at=None)) is None


def test_delivery_per_second_and_the_longest_silence() -> None:
    echoed = echoes_with_outage(back_at=104.5)
    rows = delivery_per_second(SENT, echoed, ZERO)
    assert [r["sent"] for r in rows] == [10, 10, 10, 10, 10, 10]
    assert [r["echoes"] for r in rows[:4]] == [10, 10, 0, 0]
    assert sum(r["echoes"] for r in rows) == 60
    assert longest_gap(echoed, ZERO) == {"from_s": 1.905, "length_s": 2.6}
    # Echoes that stop for good: the silence runs to the end of the call.
    broken = echoes_with_outage(back_at=None)
    assert longest_gap(broken, ZERO, ended_at=106.0) == {"from_s": 1.905, "length_s": 4.095}


def observations(echoed: list[float | None]) -> dict[str, Any]:
    return {
        "viewer": {
            "ice_states": [{"t_s": 0.1, "state": "connected", "at": 99.5}],
            "call": {"sent_at": SENT, "echoed_at": echoed, "ended_at": 106.0, "selected": []},
        },
        "master": {"ice_states": [], "call": {"selected": [{"at": 103.0, "pair": "relay"}]}},
    }


def applied(event: int, began: float, ended: float | None) -> list[dict[str, Any]]:
    log = [{"event": event, "what": "began", "at": began, "ok": True}]
    if ended is not None:
        log.append({"event": event, "what": "ended", "at": ended, "ok": True})
    return log


def test_the_call_section_lines_up_events_states_and_echoes() -> None:
    outage = CallEvent(2.0, "link-down", "viewer-gw", "eth1", 2.0)
    section = call_section(
        (outage,), applied(0, 102.0, 104.0), ZERO, observations(echoes_with_outage(104.5))
    )
    event = section["events"][0]
    assert (event["began_s"], event["ended_s"], event["recovery_s"]) == (2.0, 4.0, 0.505)
    assert section["messages_sent"] == section["messages_echoed"] == 60
    assert section["peers"]["viewer"] == [{"t_s": -0.5, "ice_state": "connected"}]
    assert section["peers"]["master"] == [{"t_s": 3.0, "selected_pair": "relay"}]
    text = "\n".join(call_lines(section))
    assert "viewer-gw:eth1 down for 2 s" in text and "data again 0.505 s after" in text
    assert "60 of 60 messages came back" in text


def test_recovery_expectations_judge_every_event() -> None:
    flush = CallEvent(2.0, "nat-flush", "viewer-gw")
    broken = call_section(
        (flush,), applied(0, 102.0, None), ZERO, observations(echoes_with_outage(None))
    )
    assert broken["events"][0]["recovery_s"] is None
    checks = recovery_checks({"recovers_within_s": 3, "call_breaks": True}, broken)
    assert [c["met"] for c in checks] == [False, True]
    healed = call_section(
        (flush,), applied(0, 102.0, None), ZERO, observations(echoes_with_outage(104.5))
    )
    assert healed["events"][0]["recovery_s"] == 2.505  # an instant event counts from its start
    checks = recovery_checks({"recovers_within_s": 3, "call_breaks": True}, healed)
    assert [c["met"] for c in checks] == [True, False]


def test_ice_restarts_are_counted_per_peer_and_expected() -> None:
    flush = CallEvent(2.0, "nat-flush", "viewer-gw")
    seen = observations(echoes_with_outage(109.0))
    seen["viewer"]["call"]["restarts"] = [
        {"at": 108.0, "kind": "restart", "reason": "ICE disconnected"},
        {"at": 108.1, "kind": "signaling", "reason": "signaling connected again"},
    ]
    seen["master"]["call"]["restarts"] = [{"at": 108.2, "kind": "answer", "reason": "offer"}]
    section = call_section((flush,), applied(0, 102.0, None), ZERO, seen)
    assert section["ice_restarts"] == {"viewer": 1, "master": 1}
    assert {"t_s": 8.0, "ice_restart": "ICE disconnected"} in section["peers"]["viewer"]
    assert [c["met"] for c in recovery_checks({"ice_restart": True}, section)] == [True]
    assert "  ICE restarts: viewer 1, master 1" in call_lines(section)
    # An agent without restartIce() says so, and a call that needed one is judged broken.
    seen["viewer"]["call"] = {
        **seen["viewer"]["call"],
        "restarts": [],
        "ice_restart_supported": False,
        "ice_restart_wanted": True,
    }
    seen["master"]["call"]["restarts"] = []
    section = call_section((flush,), applied(0, 102.0, None), ZERO, seen)
    assert section["ice_restarts"] == {"viewer": None, "master": 0}
    assert [c["met"] for c in recovery_checks({"ice_restart": True}, section)] == [False]
    assert any("viewer cannot" in line for line in call_lines(section))


def test_an_uplink_switch_takes_the_default_uplink_down_and_routes_through_the_other() -> None:
    scenario = load_scenario("call-uplink-switch")
    (event,) = scenario.events
    assert (event.kind, event.node, event.interface) == ("uplink-switch", "viewer", "eth1")
    viewer = scenario.topology.node("viewer")
    assert uplink_switch_commands(viewer, event) == [
        "ip link set eth0 down",
        "ip route replace default via 100.64.0.1 dev eth1",
    ]


def test_an_uplink_switch_needs_a_further_uplink(tmp_path: Path) -> None:
    document = call_document(events=[{"at_s": 1, "host": "viewer", "switch_uplink": "eth1"}])
    with pytest.raises(LabInputError, match=r"events\[0\].switch_uplink: .*it has none"):
        load(tmp_path, document)  # two-homes: the viewer has one uplink


def test_the_selected_pair_moving_is_judged_from_the_viewers_timeline() -> None:
    section = {
        "started": True,
        "events": [{"began_s": 2.0}],
        "peers": {
            "viewer": [
                {"t_s": 0.0, "selected_pair": "srflx 198.51.100.2:1 -> srflx 198.51.100.18:2"},
                {"t_s": 8.0, "selected_pair": "srflx 198.51.100.34:3 -> srflx 198.51.100.18:4"},
            ]
        },
    }
    met = [c["met"] for c in recovery_checks({"selected_pair_changes_to": "srflx"}, section)]
    assert met == [True]
    met = [c["met"] for c in recovery_checks({"selected_pair_changes_to": "relay"}, section)]
    assert met == [False]
    section["peers"]["viewer"].pop()  # still the pair from before the event
    met = [c["met"] for c in recovery_checks({"selected_pair_changes_to": "any"}, section)]
    assert met == [False]


def test_a_call_that_never_started_breaks() -> None:
    section = call_section((CallEvent(1, "nat-flush", "viewer-gw"),), [], None, {})
    assert section["started"] is False
    assert [c["met"] for c in recovery_checks({"call_breaks": True}, section)] == [True]
    assert call_lines(section) == ["call: never started (the peers did not both connect)"]


# -- NAT rebind, idle timeouts, pauses, consent and gathering in the timeline ----------


def test_bundled_rebind_idle_timeout_and_lossy_spell_scenarios_load() -> None:
    rebind = load_scenario("call-nat-rebind")
    assert [(e.kind, e.node) for e in rebind.events] == [("nat-rebind", "viewer-gw")]
    assert rebind.events[0].describe() == "viewer-gw moves its NAT mappings to new public ports"
    idle = load_scenario("call-firewall-idle-timeout")
    (event,) = idle.events
    assert (event.kind, event.node, event.idle_timeout_s) == ("idle-timeout", "office-gw", 3.0)
    assert idle.call is not None and idle.call.pauses == (Pause(2.0, 6.0),)
    assert idle.call.as_dict()["pauses"] == [{"at_s": 2.0, "for_s": 6.0}]
    lossy = load_scenario("call-lossy-spell")
    assert [(e.kind, e.loss_percent) for e in lossy.events] == [("link-loss", 30.0)]


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"events": [{"at_s": 1, "node": "viewer", "idle_timeout_s": 3}]},
            "events[0].node",
            "no NAT or firewall",
        ),
        ({"events": [{"at_s": 1, "node": "viewer", "nat": "rebind"}]}, "events[0].node", "no NAT"),
        ({"events": [{"at_s": 1, "idle_timeout_s": 3}]}, "events[0].node", "name the node"),
        (
            {"events": [{"at_s": 1, "node": "viewer-gw", "idle_timeout_s": 3, "for_s": 1}]},
            "events[0].for_s",
            "does not belong",
        ),
        (
            {"call": {"duration_s": 12, "pauses": [{"at_s": 8, "for_s": 4}]}},
            "call.pauses[0]",
            "before the call's end",
        ),
        (
            {
                "call": {
                    "duration_s": 12,
                    "pauses": [{"at_s": 1, "for_s": 4}, {"at_s": 3, "for_s": 1}],
                }
            },
            "call.pauses[1]",
            "overlaps",
        ),
        ({"events": [{"at_s": 1, "node": "viewer-gw", "idle_timeout_s": 0}]}, "events[0]", ""),
        ({"events": [{"at_s": 1, "node": "viewer-gw", "nat": "reboot"}]}, "events[0].nat", ""),
    ],
)
def test_a_wrong_rebind_idle_timeout_or_pause_names_the_file_and_the_field(
    tmp_path: Path, changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(LabInputError) as error:
        load(tmp_path, call_document(**changes))
    message = str(error.value)
    assert "call.yaml" in message and field in message and words in message


def test_a_rebind_holds_udp_forgets_learned_mappings_but_keeps_their_ports_taken() -> None:
    script = "\n".join(rebind_commands())
    assert "priority raw - 70; policy accept; meta l4proto udp drop" in script
    for learned in (
        "map ip icelab_nat ei_out",
        "map ip icelab_nat inbound",
        "set ip icelab_nat contacted",
    ):
        assert f"flush {learned}" in script
    assert "mapped_ports" not in script  # the old ports stay taken: new mappings differ
    # The hold is released even when the conntrack flush fails (sh -e exits there).
    assert script.index("trap 'nft delete table ip icelab_rebind_hold' EXIT") < script.index(
        "conntrack -F"
    )


def test_the_nats_mappings_are_read_from_conntrack() -> None:
    listing = (
        "udp      17 29 src=192.168.2.10 dst=198.51.100.18 sport=4000 dport=5000 "
        "src=198.51.100.18 dst=198.51.100.2 sport=5000 dport=61000 [ASSURED] mark=0 use=1\n"
        "udp      17 20 src=198.51.100.2 dst=203.0.113.10 sport=53 dport=53 "
        "src=203.0.113.10 dst=198.51.100.2 sport=53 dport=53 mark=0 use=1\n"
        "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.\n"
    )
    assert udp_mappings(listing) == [
        {
            "inside": "192.168.2.10:4000",
            "public": "198.51.100.2:61000",
            "remote": "198.51.100.18:5000",
        }
    ]
    moved = moved_mappings(
        {
            "before": [{"inside": "192.168.2.10:4000", "public": "198.51.100.2:4000"}],
            "after": udp_mappings(listing),
        }
    )
    assert moved == [("192.168.2.10:4000", "198.51.100.2:4000", "198.51.100.2:61000")]


def test_an_idle_timeout_sets_the_nodes_udp_conntrack_timeouts() -> None:
    event = CallEvent(1, "idle-timeout", "office-gw", idle_timeout_s=3)
    assert idle_timeout_sysctls(event) == {
        "net.netfilter.nf_conntrack_udp_timeout": "3",
        "net.netfilter.nf_conntrack_udp_timeout_stream": "3",
    }
    assert event.describe() == "office-gw forgets UDP flows idle for 3 s"


def test_the_viewer_is_silent_only_within_its_pauses() -> None:
    pauses = [(2.0, 8.0)]
    assert [in_pause(pauses, t) for t in (1.99, 2.0, 7.99, 8.0)] == [False, True, True, False]


def test_consent_changes_from_aiortc_checks_and_from_browser_counters() -> None:
    aiortc = [
        {"at": 101.0, "answered": True},
        {"at": 106.0, "answered": False},
        {"at": 111.0, "answered": False},
        {"at": 116.0, "answered": True},
        {"at": 140.0, "expired": True},
    ]
    assert consent_changes(aiortc, browser=False) == [
        (106.0, "checks unanswered"),
        (116.0, "answered again"),
        (140.0, "expired: the agent closes the connection"),
    ]
    assert consent_summary(aiortc, browser=False) == {
        "checks": 4,
        "unanswered_in_a_row_max": 2,
        "expired": True,
    }
    # A browser: one check in flight is no verdict; two in a row unanswered are.
    browser = [
        {"at": 101.0, "unanswered": 0, "consent_requests_sent": 3},
        {"at": 102.0, "unanswered": 1, "consent_requests_sent": 4},
        {"at": 102.1, "unanswered": 0, "consent_requests_sent": 4},
        {"at": 105.0, "unanswered": 1, "consent_requests_sent": 5},
        {"at": 107.5, "unanswered": 2, "consent_requests_sent": 6},
        {"at": 110.0, "unanswered": 0, "consent_requests_sent": 7},
    ]
    assert consent_changes(browser, browser=True) == [
        (107.5, "checks unanswered"),
        (110.0, "answered again"),
    ]
    assert consent_summary(browser, browser=True)["checks"] == 4


def test_the_timeline_has_gathering_consent_pauses_and_an_idle_timeouts_recovery() -> None:
    idle = CallEvent(1.0, "idle-timeout", "office-gw", idle_timeout_s=3)
    seen = observations(echoes_with_outage(104.5))
    seen["viewer"]["agent"] = "chromium"
    seen["viewer"]["ice_states"].append({"t_s": 3.0, "state": "disconnected", "at": 103.0})
    seen["viewer"]["call"] |= {
        "started_at": 99.9,
        "gathering": [{"state": "gathering", "at": 99.0}, {"state": "complete", "at": 99.2}],
    }
    seen["master"]["agent"] = "aiortc"
    seen["master"]["call"]["consent"] = [{"at": 103.5, "answered": False}]
    section = call_section((idle,), applied(0, 101.0, None), ZERO, seen, (Pause(2.1, 2.0),))
    assert section["pauses"] == [{"from_s": 2.0, "to_s": 4.0, "resumed_s": 0.505}]
    event = section["events"][0]
    # The idle timeout is felt after the pause, and its recovery counts from there.
    assert (event["recovery_from_s"], event["recovery_s"]) == (4.0, 0.505)
    viewer = section["peers"]["viewer"]
    assert {"t_s": -1.0, "gathering": "gathering"} in viewer
    assert {
        "t_s": 3.0,
        "ice_state": "disconnected",
        "consent": "checks unanswered (the browser's disconnected)",
    } in viewer
    assert {"t_s": 3.5, "consent": "checks unanswered"} in section["peers"]["master"]
    text = "\n".join(call_lines(section))
    assert "data again 0.505 s after the next pause" in text
    assert "viewer  ICE disconnected: consent checks unanswered" in text
    assert "master  consent checks unanswered" in text
    assert "viewer  sends again (data again 0.505 s after)" in text


def test_an_idle_timeout_may_be_set_on_a_firewall_without_a_nat(tmp_path: Path) -> None:
    document = call_document(
        conditions={"viewer-gw": {"nat": "none", "firewall": "udp-blocked"}},
        events=[{"at_s": 1, "node": "viewer-gw", "idle_timeout_s": 30}],
        expect={"outcome": "connected"},
    )
    (event,) = load(tmp_path, document).events
    assert (event.kind, event.node, event.idle_timeout_s) == ("idle-timeout", "viewer-gw", 30.0)
    document["events"] = [{"at_s": 1, "node": "viewer-gw", "nat": "rebind"}]
    with pytest.raises(LabInputError, match=r"events\[0\].node: node 'viewer-gw' has no NAT"):
        load(tmp_path, document)  # a rebind needs a NAT


def test_lab_show_spells_out_the_call_and_its_events() -> None:
    from lab.scenario.scenario import load_scenario

    resolved = load_scenario("call-nat-rebind").resolved()
    assert resolved["call"]["duration_s"] > 0
    assert [e["kind"] for e in resolved["events"]] == ["nat-rebind"]
    assert "call" not in load_scenario("home-nat-both").resolved()


def test_an_agent_that_cannot_hold_a_call_is_refused_before_anything_is_built() -> None:
    """A kvs-js peer or a user's program would connect and then say nothing of the
    call's events: bad input, naming the option, not a run that looks broken."""
    from lab.core.errors import LabInputError
    from lab.run.plan import RunOptions, peer_agents
    from lab.scenario.scenario import load_scenario

    with pytest.raises(LabInputError, match="--viewer-command: the scenario holds a call"):
        peer_agents(load_scenario("call-link-outage"), RunOptions(viewer_command=["true"]))
    agents = peer_agents(load_scenario("home-nat-both"), RunOptions(viewer_command=["true"]))
    assert agents == {"viewer": "command", "master": "aiortc"}
