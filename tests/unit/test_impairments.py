"""Link impairments without root: the tc commands and nftables loss table they render,
the scenario fields and their errors, which mechanism carries delay (netem or the delay
line) and netem's message, and the timing profile stretched for added delay."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.core.errors import LabInputError
from lab.network import impairments as impairments_module
from lab.network.build import render_node_setup
from lab.network.conditions import NodeConditions
from lab.network.delay_line import BurstLoss
from lab.network.impairments import (
    MECHANISM_ENV,
    ArrivalLoss,
    Impairments,
    arrival_losses,
    choose_mechanism,
    render_impairments,
    render_loss_ruleset,
    render_netem,
)
from lab.network.topology import load_topology
from lab.peers.timing import LOSSY_CHECK_TIMEOUT_S, PROFILES, for_links
from lab.run.preflight import require_impairment_support
from lab.scenario.scenario import load_scenario

TOPOLOGY = load_topology("two-homes")
VIEWER = TOPOLOGY.node("viewer")


@pytest.fixture(autouse=True)
def kernel_without_netem(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts on a kernel like CI's (no netem) and no override in the
    environment; a test that wants netem says so."""
    monkeypatch.delenv(MECHANISM_ENV, raising=False)
    monkeypatch.setattr(impairments_module, "netem_available", lambda: False)


def test_loss_both_ways_drops_on_arrival_at_both_ends_of_the_link() -> None:
    loss = Impairments("eth1", loss_percent=12.5)
    assert render_impairments(loss) == []  # no tc for loss
    losses = arrival_losses(TOPOLOGY, {"viewer-gw": (loss,), "master": ()})
    # Arriving at viewer-gw's eth1; leaving it, dropped where it arrives: internet's eth0.
    assert losses == {
        "viewer-gw": [ArrivalLoss("eth1", 12.5, "viewer-gw:eth1 in")],
        "internet": [ArrivalLoss("eth0", 12.5, "viewer-gw:eth1 out")],
    }
    ruleset = render_loss_ruleset(losses["internet"])
    assert ruleset.startswith("table ip icelab_impair {")
    assert "type filter hook prerouting priority raw - 50; policy accept;" in ruleset
    assert 'iifname "eth0" numgen random mod 10000 < 1250 drop' in ruleset
    assert "# 12.5 % loss: viewer-gw:eth1 out" in ruleset
    assert "postrouting" not in ruleset and "output" not in ruleset


def test_loss_one_way_drops_at_one_end() -> None:
    out = arrival_losses(TOPOLOGY, {"viewer": (Impairments("eth0", 30, direction="out"),)})
    assert out == {"viewer-gw": [ArrivalLoss("eth0", 30, "viewer:eth0 out")]}
    arriving = arrival_losses(TOPOLOGY, {"viewer": (Impairments("eth0", 30, direction="in"),)})
    assert arriving == {"viewer": [ArrivalLoss("eth0", 30, "viewer:eth0 in")]}


def test_losses_meeting_on_one_interface_get_a_rule_each() -> None:
    losses = arrival_losses(
        TOPOLOGY,
        {
            "viewer": (Impairments("eth0", 10, direction="out"),),
            "viewer-gw": (Impairments("eth0", 5, direction="in"),),
        },
    )
    ruleset = render_loss_ruleset(losses["viewer-gw"])
    # Two independent draws: 1 - 0.9 * 0.95 of the packets are lost.
    assert 'iifname "eth0" numgen random mod 10000 < 1000 drop' in ruleset
    assert 'iifname "eth0" numgen random mod 10000 < 500 drop' in ruleset


def test_no_loss_no_table() -> None:
    assert arrival_losses(TOPOLOGY, {"viewer": (Impairments("eth0", rate_kbit=1000),)}) == {}
    assert arrival_losses(TOPOLOGY, {"viewer": ()}) == {}
    assert render_loss_ruleset([]) == ""
    assert render_impairments(None) == []


def test_rate_only_shapes_egress_and_ingress_through_an_ifb() -> None:
    commands = render_impairments(Impairments("eth0", rate_kbit=2000))
    tbf = "tbf rate 2000kbit burst 3200 latency 100ms"
    assert commands == [
        f"tc qdisc add dev eth0 root handle 1: {tbf}",
        "ip link add ifb-eth0 type ifb",
        "ip link set ifb-eth0 up",
        "tc qdisc add dev eth0 handle ffff: ingress",
        "tc filter add dev eth0 parent ffff: protocol all u32 match u32 0 0 "
        "action mirred egress redirect dev ifb-eth0",
        f"tc qdisc add dev ifb-eth0 root handle 1: {tbf}",
    ]


def test_fast_rates_get_a_bucket_of_ten_milliseconds() -> None:
    commands = render_impairments(Impairments("eth0", rate_kbit=100_000, direction="out"))
    tbf = "tbf rate 100000kbit burst 125000 latency 100ms"
    assert commands == [f"tc qdisc add dev eth0 root handle 1: {tbf}"]


def test_loss_and_rate_render_both_the_table_and_the_qdiscs() -> None:
    both = Impairments("eth0", loss_percent=10, rate_kbit=500)
    losses = arrival_losses(TOPOLOGY, {"viewer": (both,)})["viewer"]
    setup = render_node_setup(VIEWER, _conditions(both), losses)
    assert "numgen random mod 10000 < 1000 drop" in setup.ruleset
    assert any("tbf rate 500kbit" in c for c in setup.commands)
    # tc runs after the interface is up and addressed.
    up = setup.commands.index("ip link set eth0 up")
    assert all(setup.commands.index(c) > up for c in setup.commands if c.startswith("tc "))


def test_delay_jitter_and_rate_put_tbf_under_netem_for_the_vm() -> None:
    shaped = Impairments("eth1", rate_kbit=1000, delay_ms=40, jitter_ms=5, mechanism="netem")
    commands = render_impairments(shaped)
    tbf = "tbf rate 1000kbit burst 3200 latency 100ms"
    netem = "netem limit 4500 delay 40ms 5ms"  # room for 100k packets/s for 45 ms
    egress = [
        f"tc qdisc add dev eth1 root handle 1: {netem}",
        f"tc qdisc add dev eth1 parent 1:1 handle 10: {tbf}",
    ]
    ingress = [
        f"tc qdisc add dev ifb-eth1 root handle 1: {netem}",
        f"tc qdisc add dev ifb-eth1 parent 1:1 handle 10: {tbf}",
    ]
    assert commands[:2] == egress
    assert commands[-2:] == ingress
    assert "ip link add ifb-eth1 type ifb" in commands
    assert shaped.needs_emulator and shaped.added_rtt_ms == 90


def test_delay_alone_one_way() -> None:
    delayed = Impairments("eth0", delay_ms=25, direction="in", mechanism="netem")
    commands = render_impairments(delayed)
    assert commands[-1] == "tc qdisc add dev ifb-eth0 root handle 1: netem limit 2500 delay 25ms"
    assert not any("dev eth0 root" in c for c in commands)
    assert delayed.added_rtt_ms == 25


def test_netem_gets_every_impairment_the_delay_line_has() -> None:
    everything = Impairments(
        "eth0",
        delay_ms=100,
        jitter_ms=20,
        jitter_distribution="normal",
        jitter_reorders=False,
        reorder_percent=5,
        duplicate_percent=1.5,
        burst_loss=BurstLoss(p_percent=2, r_percent=30, bad_loss_percent=80),
        mechanism="netem",
    )
    # Normal jitter reaches 4 sigma (netem's table): 100 + 4 x 20 ms at 100k packets/s.
    assert render_netem(everything) == (
        "netem limit 18000 delay 100ms 20ms distribution normal reorder 5% duplicate 1.5% "
        "loss gemodel 2% 30% 80% 0% rate 100gbit"
    )
    # Without delay netem still duplicates and loses in bursts; no table without jitter.
    alone = Impairments("eth0", duplicate_percent=3, burst_loss=BurstLoss(1), mechanism="netem")
    assert render_netem(alone) == "netem limit 1000 duplicate 3% loss gemodel 1% 99% 100% 0%"


def test_the_delay_line_leaves_only_the_rate_limit_in_the_node() -> None:
    """Delay, jitter and the rest happen in the wire beside the node: no netem, and no ifb
    unless a rate limits arriving traffic."""
    delayed = Impairments("eth0", delay_ms=100, jitter_ms=10, mechanism="delay-line")
    assert delayed.carrier == "delay-line"
    assert render_impairments(delayed) == []
    shaped = Impairments("eth0", delay_ms=100, rate_kbit=2000, mechanism="delay-line")
    commands = render_impairments(shaped)
    assert not any("netem" in c for c in commands)
    assert (
        commands[0]
        == "tc qdisc add dev eth0 root handle 1: tbf rate 2000kbit burst 3200 latency 100ms"
    )
    assert "ip link add ifb-eth0 type ifb" in commands


def test_auto_takes_netem_where_the_kernel_has_it_and_the_environment_overrides_auto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert choose_mechanism("auto") == "delay-line"  # CI's kernel
    monkeypatch.setattr(impairments_module, "netem_available", lambda: True)
    assert choose_mechanism() == "netem"
    assert choose_mechanism("delay-line") == "delay-line"  # the scenario's word wins
    monkeypatch.setenv(MECHANISM_ENV, "delay-line")
    assert choose_mechanism() == "delay-line"
    assert choose_mechanism("netem") == "netem"
    monkeypatch.setenv(MECHANISM_ENV, "tc")
    with pytest.raises(LabInputError, match=f"{MECHANISM_ENV}=tc: expected auto, netem or"):
        choose_mechanism()


def test_loss_and_rate_need_no_mechanism() -> None:
    plain = Impairments("eth0", loss_percent=5, rate_kbit=900)
    assert not plain.needs_emulator and plain.carrier is None
    assert plain.resolved() is plain
    assert "mechanism" not in plain.describe()
    for emulated in (
        Impairments("eth0", duplicate_percent=1),
        Impairments("eth0", burst_loss=BurstLoss(1)),
        Impairments("eth0", delay_ms=1),
    ):
        assert emulated.resolved().mechanism == "delay-line"


def _conditions(*impairments: Impairments) -> NodeConditions:
    return NodeConditions(impairments=impairments, impairments_listed=len(impairments) > 1)


# -- scenario fields --------------------------------------------------------------------

SCENARIO = """name: impaired
description: test
topology: two-homes
conditions:
{conditions}
peers:
  viewer: {{host: viewer}}
  master: {{host: master}}
expect: {{outcome: connected}}
"""


def scenario_file(tmp_path: Path, conditions: str) -> Path:
    path = tmp_path / "impaired.yaml"
    path.write_text(SCENARIO.format(conditions=conditions))
    return path


def test_impairments_default_to_the_uplink_and_show_in_the_resolved_scenario(
    tmp_path: Path,
) -> None:
    path = scenario_file(tmp_path, "  viewer-gw: {impairments: {loss_percent: 10}}")
    scenario = load_scenario(str(path))
    assert scenario.conditions["viewer-gw"].impairments == (Impairments("eth1", loss_percent=10),)
    shown = scenario.resolved()["conditions"]["viewer-gw"]["impairments"]
    assert shown == {"interface": "eth1", "direction": "both", "loss_percent": 10}


def test_a_node_without_uplink_takes_its_only_interface_and_servers_can_be_impaired(
    tmp_path: Path,
) -> None:
    path = scenario_file(tmp_path, "  turn: {impairments: {rate_kbit: 800, direction: in}}")
    impairments = load_scenario(str(path)).conditions["turn"].impairments
    assert impairments == (Impairments("eth0", rate_kbit=800, direction="in"),)


@pytest.mark.parametrize(
    ("conditions", "field", "phrase"),
    [
        (
            "  internet: {impairments: {loss_percent: 5}}",
            "conditions.internet.impairments.interface",
            "several interfaces and no uplink",
        ),
        (
            "  viewer: {impairments: {loss_percent: 5, interface: eth7}}",
            "conditions.viewer.impairments.interface",
            "no interface 'eth7'",
        ),
        (
            "  viewer: {impairments: {jitter_ms: 5}}",
            "conditions.viewer.impairments.jitter_ms",
            "set delay_ms too",
        ),
        (
            "  viewer: {impairments: {loss_percent: 0}}",
            "conditions.viewer.impairments",
            "at least one",
        ),
        (
            "  viewer: {impairments: {loss_percent: 120}}",
            "conditions.viewer.impairments.loss_percent",
            "120",
        ),
        (
            "  viewer: {impairments: {rate_kbit: 1.5}}",
            "conditions.viewer.impairments.rate_kbit",
            "integer",
        ),
        ("  viewer: {impairments: {lose: 5}}", "conditions.viewer.impairments", "lose"),
    ],
)
def test_bad_impairments_name_the_file_and_field(
    tmp_path: Path, conditions: str, field: str, phrase: str
) -> None:
    assert_names_field(tmp_path, conditions, field, phrase)


def assert_names_field(tmp_path: Path, conditions: str, field: str, phrase: str) -> None:
    """Loading the scenario fails with one message naming the file, the field, and why."""
    path = scenario_file(tmp_path, conditions)
    with pytest.raises(LabInputError) as error:
        load_scenario(str(path))
    message = str(error.value)
    assert message.startswith(f"{path}: {field}"), message
    assert phrase in message, message


# -- netem ---------------------------------------------------------------------------------


def test_delay_without_netem_takes_the_delay_line_and_shows_it(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "  viewer-gw: {impairments: {delay_ms: 40, rate_kbit: 900}}")
    scenario = load_scenario(str(path))
    require_impairment_support(scenario)  # goes ahead: no netem needed
    shown = scenario.resolved()["conditions"]["viewer-gw"]["impairments"]
    assert shown == {
        "interface": "eth1",
        "direction": "both",
        "rate_kbit": 900,
        "delay_ms": 40,
        "mechanism": "delay-line",
    }


def test_auto_shows_netem_on_a_kernel_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(impairments_module, "netem_available", lambda: True)
    path = scenario_file(tmp_path, "  viewer: {impairments: {delay_ms: 40, jitter_ms: 4}}")
    shown = load_scenario(str(path)).resolved()["conditions"]["viewer"]["impairments"]
    assert shown["mechanism"] == "netem"
    assert shown["jitter_distribution"] == "uniform" and shown["jitter_reorders"] is True


def test_netem_asked_for_without_netem_stops_naming_the_field_the_module_and_the_vm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conditions = "  viewer-gw: {impairments: {delay_ms: 40, rate_kbit: 900, mechanism: netem}}"
    path = scenario_file(tmp_path, conditions)
    scenario = load_scenario(str(path))
    monkeypatch.setattr("platform.release", lambda: "6.1.0-test")
    with pytest.raises(LabInputError) as error:
        require_impairment_support(scenario)
    message = str(error.value)
    assert message.startswith(f"{path}: conditions.viewer-gw.impairments.mechanism: ")
    assert "sch_netem" in message and "(6.1.0-test)" in message
    assert "delay line" in message and MECHANISM_ENV in message
    assert "Vagrant VM" in message and "docs/how-to/vm.md" in message
    monkeypatch.setattr(impairments_module, "netem_available", lambda: True)
    require_impairment_support(scenario)  # the VM: goes ahead


def test_the_environment_asks_for_netem_for_every_auto_impairment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MECHANISM_ENV, "netem")
    path = scenario_file(tmp_path, "  viewer: {impairments: {delay_ms: 40}}")
    scenario = load_scenario(str(path))
    assert scenario.conditions["viewer"].impairments[0].mechanism == "netem"
    with pytest.raises(LabInputError, match="impairments.mechanism: netem needs"):
        require_impairment_support(scenario)


def test_loss_and_rate_never_ask_for_netem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = scenario_file(tmp_path, "  viewer-gw: {impairments: {loss_percent: 20, rate_kbit: 900}}")
    monkeypatch.setattr(impairments_module, "netem_available", lambda: pytest.fail("asked"))
    require_impairment_support(load_scenario(str(path)))
    require_impairment_support(load_scenario("home-nat-both"))


def test_netem_detection_trusts_a_loaded_module(monkeypatch: pytest.MonkeyPatch) -> None:
    real_exists = Path.exists
    monkeypatch.setattr(
        Path, "exists", lambda self: str(self) == "/sys/module/sch_netem" or real_exists(self)
    )
    impairments_module._kernel_has_netem.cache_clear()  # asked once per process otherwise
    try:
        assert impairments_module._kernel_has_netem()
    finally:
        impairments_module._kernel_has_netem.cache_clear()


# -- timing ----------------------------------------------------------------------------


def test_no_added_delay_nor_loss_keeps_the_profile() -> None:
    assert for_links(PROFILES["fast"]) is PROFILES["fast"]
    assert for_links(PROFILES["fast"], 0, 0) is PROFILES["fast"]


def test_the_kvs_profile_keeps_the_sdk_values_whatever_the_links() -> None:
    assert for_links(PROFILES["kvs"], 400, 20) is PROFILES["kvs"]


def test_added_delay_stretches_the_fast_profile() -> None:
    fast = PROFILES["fast"]
    stretched = for_links(fast, 90)  # e.g. 40 ms + 5 ms jitter each way
    assert stretched.stun_rto_s == pytest.approx(0.18)  # twice the added round trip
    assert stretched.stun_retries == fast.stun_retries
    assert stretched.stun_transaction_s == pytest.approx(0.18 * 15)
    assert stretched.gathering_timeout_s > stretched.stun_transaction_s
    assert stretched.check_timeout_s > fast.check_timeout_s + stretched.stun_transaction_s
    assert stretched.signaling_timeout_s > fast.signaling_timeout_s
    assert stretched.nomination_wait_s == pytest.approx(0.36)
    assert stretched.name == "fast"


def test_a_small_delay_keeps_the_rto_it_already_covers() -> None:
    assert for_links(PROFILES["fast"], 10) is PROFILES["fast"]  # 2 x 10 ms < 30 ms


def test_loss_gives_the_data_channel_time_to_retransmit() -> None:
    lossy = for_links(PROFILES["fast"], 0, 15)
    assert lossy.check_timeout_s == LOSSY_CHECK_TIMEOUT_S
    assert lossy.stun_rto_s == PROFILES["fast"].stun_rto_s
    both = for_links(PROFILES["fast"], 600, 5)
    assert both.stun_rto_s == pytest.approx(1.2)
    assert both.check_timeout_s == pytest.approx(4 + 2 * (18 - 0.45))  # more than 30 s


def test_the_scenario_sums_the_delay_of_every_link(tmp_path: Path) -> None:
    conditions = (
        "  viewer-gw: {impairments: {delay_ms: 40, jitter_ms: 5}}\n"
        "  master: {impairments: {delay_ms: 10, direction: out}}"
    )
    assert load_scenario(str(scenario_file(tmp_path, conditions))).added_rtt_ms == 100
    lossy = load_scenario("lossy-link")
    assert lossy.added_rtt_ms == 0 and lossy.loss_percent == 10


# -- several interfaces of one node (a list) ----------------------------------------------

INTERNET = TOPOLOGY.node("internet")
TWO_LINKS = (
    "  internet:\n"
    "    impairments:\n"
    "      - {interface: eth0, loss_percent: 30, direction: out}\n"
    "      - {interface: eth1, rate_kbit: 1000, loss_percent: 5, direction: in}"
)


def test_a_list_impairs_each_named_interface_and_shows_as_a_list(tmp_path: Path) -> None:
    scenario = load_scenario(str(scenario_file(tmp_path, TWO_LINKS)))
    conditions = scenario.conditions["internet"]
    assert conditions.impairments == (
        Impairments("eth0", loss_percent=30, direction="out"),
        Impairments("eth1", loss_percent=5, rate_kbit=1000, direction="in"),
    )
    assert [where for where, _ in conditions.impairment_fields()] == [
        "impairments[0]",
        "impairments[1]",
    ]
    shown = scenario.resolved()["conditions"]["internet"]["impairments"]
    assert shown == [
        {"interface": "eth0", "direction": "out", "loss_percent": 30},
        {"interface": "eth1", "direction": "in", "loss_percent": 5, "rate_kbit": 1000},
    ]


def test_a_list_on_a_node_with_one_interface_needs_no_interface_names(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "  turn: {impairments: [{loss_percent: 2}]}")
    conditions = load_scenario(str(path)).conditions["turn"]
    assert conditions.impairments == (Impairments("eth0", loss_percent=2),)
    assert conditions.describe_impairments() == [
        {"interface": "eth0", "direction": "both", "loss_percent": 2}
    ]  # a list of one stays a list


@pytest.mark.parametrize(
    ("conditions", "field", "phrase"),
    [
        (
            "  internet: {impairments: [{interface: eth0, loss_percent: 5}, {loss_percent: 5}]}",
            "conditions.internet.impairments[1].interface",
            "every entry of the list names one (eth0, eth1, eth2, eth3)",
        ),
        (
            "  viewer-gw: {impairments: [{loss_percent: 5}]}",  # an uplink is no default here
            "conditions.viewer-gw.impairments[0].interface",
            "every entry of the list names one",
        ),
        (
            "  internet: {impairments: [{interface: eth0, loss_percent: 5},"
            " {interface: eth0, rate_kbit: 900}]}",
            "conditions.internet.impairments[1].interface",
            "'eth0' is already impaired by conditions.internet.impairments[0]",
        ),
        (
            "  turn: {impairments: [{loss_percent: 5}, {rate_kbit: 900}]}",  # both on eth0
            "conditions.turn.impairments[1].interface",
            "already impaired",
        ),
        (
            "  internet: {impairments: [{interface: eth9, loss_percent: 5}]}",
            "conditions.internet.impairments[0].interface",
            "no interface 'eth9'",
        ),
        (
            "  internet: {impairments: [{interface: eth0, loss_percent: 5},"
            " {interface: eth1, jitter_ms: 5}]}",
            "conditions.internet.impairments[1].jitter_ms",
            "set delay_ms too",
        ),
        (
            "  internet: {impairments: [{interface: eth0, loss_percent: 5}, {interface: eth1}]}",
            "conditions.internet.impairments[1]",
            "at least one",
        ),
        (
            "  internet: {impairments: [{interface: eth0, loss_percent: 120}]}",
            "conditions.internet.impairments[0].loss_percent",
            "120",
        ),
        (
            "  internet: {impairments: [{interface: eth0, rate_kbit: 1.5}]}",
            "conditions.internet.impairments[0].rate_kbit",
            "integer",
        ),
        ("  internet: {impairments: []}", "conditions.internet.impairments", "non-empty"),
        ("  viewer: {impairments: 5}", "conditions.viewer.impairments", "'object', 'array'"),
    ],
)
def test_bad_impairment_lists_name_the_file_and_entry(
    tmp_path: Path, conditions: str, field: str, phrase: str
) -> None:
    assert_names_field(tmp_path, conditions, f"{field}: ", phrase)


def test_a_bad_list_exits_2_naming_the_entry(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lab.commands import app

    conditions = (
        "  internet: {impairments: [{interface: eth0, loss_percent: 5},"
        " {interface: eth0, loss_percent: 9}]}"
    )
    result = CliRunner().invoke(app, ["validate", str(scenario_file(tmp_path, conditions))])
    assert result.exit_code == 2, result.output
    assert "conditions.internet.impairments[1].interface" in result.output


def test_two_interfaces_of_one_node_get_their_own_qdiscs_ifbs_and_losses() -> None:
    eth0 = Impairments("eth0", loss_percent=30, rate_kbit=2000, direction="out")
    eth1 = Impairments("eth1", loss_percent=5, rate_kbit=1000, direction="in")
    losses = arrival_losses(TOPOLOGY, {"internet": (eth0, eth1)})
    assert losses == {
        # eth0's leaving packets are dropped where they arrive: viewer-gw's eth1.
        "viewer-gw": [ArrivalLoss("eth1", 30, "internet:eth0 out")],
        "internet": [ArrivalLoss("eth1", 5, "internet:eth1 in")],
    }
    setup = render_node_setup(INTERNET, _conditions(eth0, eth1), losses["internet"])
    tc = [c for c in setup.commands if c.startswith(("tc ", "ip link add ifb"))]
    assert tc == [
        "tc qdisc add dev eth0 root handle 1: tbf rate 2000kbit burst 3200 latency 100ms",
        "ip link add ifb-eth1 type ifb",
        "tc qdisc add dev eth1 handle ffff: ingress",
        "tc filter add dev eth1 parent ffff: protocol all u32 match u32 0 0 "
        "action mirred egress redirect dev ifb-eth1",
        "tc qdisc add dev ifb-eth1 root handle 1: tbf rate 1000kbit burst 3200 latency 100ms",
    ]
    assert 'iifname "eth1" numgen random mod 10000 < 500 drop' in setup.ruleset
    assert "eth0" not in setup.ruleset
    up = setup.commands.index("ip link set eth3 up")  # every interface up before any tc
    assert all(setup.commands.index(c) > up for c in tc)


def test_both_ways_on_two_interfaces_make_two_ifbs() -> None:
    delayed = Impairments("eth1", delay_ms=10, mechanism="netem")
    entries = (Impairments("eth0", rate_kbit=900), delayed)
    setup = render_node_setup(INTERNET, _conditions(*entries))
    assert "ip link add ifb-eth0 type ifb" in setup.commands
    assert "ip link add ifb-eth1 type ifb" in setup.commands
    assert "tc qdisc add dev ifb-eth1 root handle 1: netem limit 1000 delay 10ms" in setup.commands
    assert "tc qdisc add dev eth1 root handle 1: netem limit 1000 delay 10ms" in setup.commands
    assert "tc qdisc add dev eth0 root handle 1: tbf rate 900kbit burst 3200 latency 100ms" in (
        setup.commands
    )


def test_netem_in_a_list_without_netem_names_the_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conditions = (
        "  internet:\n"
        "    impairments:\n"
        "      - {interface: eth0, loss_percent: 10}\n"
        "      - {interface: eth1, delay_ms: 20, jitter_ms: 2, mechanism: netem}"
    )
    path = scenario_file(tmp_path, conditions)
    scenario = load_scenario(str(path))
    with pytest.raises(LabInputError) as error:
        require_impairment_support(scenario)
    assert str(error.value).startswith(
        f"{path}: conditions.internet.impairments[1].mechanism: netem needs"
    )


def test_the_timing_stretch_sums_every_entry_of_every_list(tmp_path: Path) -> None:
    conditions = (
        "  internet:\n"
        "    impairments:\n"
        "      - {interface: eth0, delay_ms: 20, loss_percent: 3}\n"  # 40 ms a round trip
        "      - {interface: eth1, delay_ms: 10, jitter_ms: 5, direction: out}\n"  # 15 ms
        "  viewer-gw: {impairments: {delay_ms: 5, loss_percent: 12}}"  # 10 ms
    )
    scenario = load_scenario(str(scenario_file(tmp_path, conditions)))
    # viewer -> master crosses internet's eth0 and eth1: their delays add up.
    assert scenario.added_rtt_ms == 65
    assert scenario.loss_percent == 12  # the worst interface's
    stretched = for_links(PROFILES["fast"], scenario.added_rtt_ms, scenario.loss_percent)
    assert stretched.stun_rto_s == pytest.approx(0.13)
    assert stretched.check_timeout_s == LOSSY_CHECK_TIMEOUT_S


# -- what netem offers, in the scenario ------------------------------------------------------


def test_every_field_reaches_the_impairment_and_the_resolved_scenario(tmp_path: Path) -> None:
    conditions = (
        "  viewer:\n"
        "    impairments:\n"
        "      delay_ms: 80\n"
        "      jitter_ms: 15\n"
        "      jitter_distribution: pareto\n"
        "      jitter_reorders: false\n"
        "      reorder_percent: 2\n"
        "      duplicate_percent: 0.5\n"
        "      burst_loss: {p_percent: 1, r_percent: 40}\n"
        "      mechanism: delay-line\n"
    )
    scenario = load_scenario(str(scenario_file(tmp_path, conditions)))
    (impairment,) = scenario.conditions["viewer"].impairments
    assert impairment == Impairments(
        "eth0",
        delay_ms=80,
        jitter_ms=15,
        jitter_distribution="pareto",
        jitter_reorders=False,
        reorder_percent=2,
        duplicate_percent=0.5,
        burst_loss=BurstLoss(p_percent=1, r_percent=40),
        mechanism="delay-line",
    )
    shown = scenario.resolved()["conditions"]["viewer"]["impairments"]
    assert shown["burst_loss"] == {
        "p_percent": 1,
        "r_percent": 40,
        "bad_loss_percent": 100,
        "good_loss_percent": 0,
    }
    assert shown["jitter_reorders"] is False and shown["mechanism"] == "delay-line"


def test_burst_loss_or_duplication_alone_is_an_impairment(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "  viewer: {impairments: {burst_loss: {p_percent: 2}}}")
    (impairment,) = load_scenario(str(path)).conditions["viewer"].impairments
    assert impairment.needs_emulator and impairment.mechanism == "delay-line"


def test_one_interface_takes_an_out_entry_and_an_in_entry(tmp_path: Path) -> None:
    conditions = (
        "  viewer:\n"
        "    impairments:\n"
        "      - {direction: out, delay_ms: 30}\n"
        "      - {direction: in, delay_ms: 60, jitter_ms: 10, mechanism: netem}"
    )
    scenario = load_scenario(str(scenario_file(tmp_path, conditions)))
    out, into = scenario.conditions["viewer"].impairments
    assert (out.interface, out.mechanism, into.interface, into.mechanism) == (
        "eth0",
        "delay-line",
        "eth0",
        "netem",
    )
    assert scenario.added_rtt_ms == 30 + 70


@pytest.mark.parametrize(
    ("conditions", "field", "phrase"),
    [
        (
            "  viewer: {impairments: {reorder_percent: 5}}",
            "conditions.viewer.impairments.reorder_percent",
            "set delay_ms too",
        ),
        (
            "  viewer: {impairments: {delay_ms: 5, jitter_distribution: normal}}",
            "conditions.viewer.impairments.jitter_distribution",
            "set jitter_ms too",
        ),
        (
            "  viewer: {impairments: {delay_ms: 5, jitter_reorders: false}}",
            "conditions.viewer.impairments.jitter_reorders",
            "set jitter_ms too",
        ),
        (
            "  viewer: {impairments: {loss_percent: 5, mechanism: delay-line}}",
            "conditions.viewer.impairments.mechanism",
            "loss_percent and rate_kbit work the same on every kernel",
        ),
        (
            "  viewer: {impairments: {delay_ms: 5, mechanism: tc}}",
            "conditions.viewer.impairments.mechanism",
            "'tc' is not one of",
        ),
        (
            "  viewer: {impairments: {delay_ms: 5, jitter_ms: 1, jitter_distribution: gauss}}",
            "conditions.viewer.impairments.jitter_distribution",
            "'gauss' is not one of",
        ),
        (
            "  viewer: {impairments: {burst_loss: {r_percent: 5}}}",
            "conditions.viewer.impairments.burst_loss",
            "'p_percent' is a required property",
        ),
        (
            "  viewer: {impairments: {duplicate_percent: 101}}",
            "conditions.viewer.impairments.duplicate_percent",
            "101",
        ),
        (
            "  viewer: {impairments: [{direction: out, delay_ms: 30}, {delay_ms: 60}]}",
            "conditions.viewer.impairments[1].interface",
            "or two, one with direction: out and one with direction: in",
        ),
    ],
)
def test_bad_new_fields_name_the_file_and_field(
    tmp_path: Path, conditions: str, field: str, phrase: str
) -> None:
    assert_names_field(tmp_path, conditions, field, phrase)


def test_delay_on_the_delay_line_stretches_the_timing_as_netem_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """for_links reads the scenario's impairments, whatever carries them."""
    conditions = "  viewer: {impairments: {delay_ms: 100, jitter_ms: 10}}"
    on_ci = load_scenario(str(scenario_file(tmp_path, conditions)))
    monkeypatch.setattr(impairments_module, "netem_available", lambda: True)
    on_vm = load_scenario(str(scenario_file(tmp_path, conditions)))
    assert on_ci.conditions["viewer"].impairments[0].mechanism == "delay-line"
    assert on_vm.conditions["viewer"].impairments[0].mechanism == "netem"
    assert on_ci.added_rtt_ms == on_vm.added_rtt_ms == 220
    stretched = for_links(PROFILES["fast"], on_ci.added_rtt_ms)
    assert stretched == for_links(PROFILES["fast"], on_vm.added_rtt_ms)
    assert stretched.stun_rto_s == pytest.approx(0.44)


def test_a_node_on_the_delay_line_keeps_only_its_rate_limit() -> None:
    shaped = Impairments("eth0", delay_ms=100, rate_kbit=2000, mechanism="delay-line")
    setup = render_node_setup(VIEWER, _conditions(shaped))
    tc = [c for c in setup.commands if c.startswith("tc ")]
    assert tc and not any("netem" in c for c in tc)
    assert "ip addr add 192.168.2.10/24 dev eth0" in setup.commands  # addresses unchanged
