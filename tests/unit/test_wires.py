"""Wires without root: which links get a delay line, how each link is cut into veth
segments, what a wire's namespace is set up with, and the delay line's command line."""

from __future__ import annotations

import json

import pytest

from lab.network import impairments as impairments_module
from lab.network.delay_line import BurstLoss, LineSpec
from lab.network.impairments import MECHANISM_ENV, Impairments
from lab.network.topology import load_topology
from lab.network.wires import (
    Wire,
    delay_line_command,
    link_segments,
    plan_wires,
    render_wire_commands,
    render_wire_ruleset,
)

TOPOLOGY = load_topology("two-homes")
VIEWER_LINK = TOPOLOGY.links[0]  # viewer:eth0 <-> viewer-gw:eth0


@pytest.fixture(autouse=True)
def kernel_without_netem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MECHANISM_ENV, raising=False)
    monkeypatch.setattr(impairments_module, "netem_available", lambda: False)


def test_only_what_the_delay_line_carries_gets_a_wire() -> None:
    wires = plan_wires(
        {
            "viewer": (Impairments("eth0", delay_ms=100),),  # auto: no netem here
            "viewer-gw": (Impairments("eth1", loss_percent=5, rate_kbit=900),),
            "master": (Impairments("eth0", delay_ms=10, mechanism="netem"),),
        }
    )
    spec = LineSpec(delay_ms=100, limit=10_000)
    assert wires == [Wire("viewer", "eth0", out=spec, into=spec)]
    assert wires[0].name == "wire.viewer.eth0"


def test_one_wire_carries_different_figures_each_way() -> None:
    uplink = Impairments("eth0", delay_ms=30, direction="out")
    downlink = Impairments("eth0", delay_ms=60, jitter_ms=10, direction="in")
    (wire,) = plan_wires({"viewer": (uplink, downlink)})
    assert wire.out == uplink.line_spec() and wire.into == downlink.line_spec()
    assert wire.into is not None and wire.into.jitter_ms == 10
    (arriving_only,) = plan_wires({"viewer": (downlink,)})
    assert arriving_only.out is None  # that direction passes at once


def test_a_wire_cuts_its_link_in_two_and_keeps_the_node_interface_names() -> None:
    (wire,) = plan_wires({"viewer": (Impairments("eth0", delay_ms=100),)})
    assert link_segments(VIEWER_LINK, [wire]) == [
        (("viewer", "eth0"), ("wire.viewer.eth0", "near")),
        (("wire.viewer.eth0", "far"), ("viewer-gw", "eth0")),
    ]
    assert link_segments(TOPOLOGY.links[1], [wire]) == [
        (("viewer-gw", "eth1"), ("internet", "eth0"))  # other links untouched
    ]


def test_both_ends_impaired_make_two_wires_in_a_row_each_near_its_node() -> None:
    wires = plan_wires(
        {
            "viewer": (Impairments("eth0", delay_ms=10),),
            "viewer-gw": (Impairments("eth0", delay_ms=20),),
        }
    )
    assert link_segments(VIEWER_LINK, wires) == [
        (("viewer", "eth0"), ("wire.viewer.eth0", "near")),
        (("wire.viewer.eth0", "far"), ("wire.viewer-gw.eth0", "far")),
        (("wire.viewer-gw.eth0", "near"), ("viewer-gw", "eth0")),
    ]


def test_a_wire_namespace_says_nothing_and_its_stack_sees_nothing() -> None:
    wire = Wire("viewer", "eth0", out=LineSpec(delay_ms=1))
    commands = render_wire_commands(wire)
    assert commands[0].startswith("sysctl -q -w net.ipv6.conf.all.disable_ipv6=1")
    assert commands[1:] == ["ip link set near up", "ip link set far up"]
    assert not any("addr" in c for c in commands)  # no address: a wire, not a router
    ruleset = render_wire_ruleset(wire)
    assert "table netdev icelab_wire {" in ruleset
    for name in ("near", "far"):
        assert f'type filter hook ingress device "{name}" priority 0; policy drop;' in ruleset


def test_the_delay_line_command_carries_each_direction_as_json() -> None:
    spec = LineSpec(delay_ms=40, jitter_ms=4, burst_loss=BurstLoss(2, 20), limit=5000)
    command = delay_line_command(Wire("turn", "eth0", into=spec), "/venv/python", 4242)
    assert command[:7] == [
        "/venv/python",
        "-m",
        "lab.network.delay_line_run",
        "--near",
        "near",
        "--far",
        "far",
    ]
    assert "--out" not in command
    assert LineSpec.from_dict(json.loads(command[command.index("--in") + 1])) == spec
    assert command[-2:] == ["--parent", "4242"]
