"""IPv6 in topologies: parsing, addresses and routes, the home router's IPv6 firewall,
the expectations on address families and the report's IPv6 wording."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.core.errors import LabInputError
from lab.network.build import render_node_setup
from lab.network.ipv6 import (
    delegated_routes,
    dns64_listen,
    dns64_resolvers,
    ipv6_commands,
    nat64_commands,
    render_tayga_conf,
    synthesized,
)
from lab.network.topology import load_topology
from lab.observations.capture.capture import render_trace_table
from lab.observations.capture.decode import FIELDS, parse_line
from lab.observations.capture.verdicts import parse_trace
from lab.observations.ice import Candidate, endpoint, host_of
from lab.report.address_families import family_lines
from lab.report.expectations import evaluate
from lab.scenario.scenario import load_scenario
from lab.servers.dns import render_dns64
from tests.result_docs import typed

ROOT = Path(__file__).resolve().parents[2]


def _topology_with(tmp_path: Path, name: str, change: Any) -> Path:
    document = yaml.safe_load((ROOT / "topologies" / f"{name}.yaml").read_text())
    change(document)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_dual_stack_interfaces_keep_ipv4_and_ipv6_apart() -> None:
    topology = load_topology("dualstack-home")
    viewer = topology.node("viewer")
    assert viewer.addresses == ["192.168.2.10"]  # IPv4-only code sees only IPv4
    assert viewer.addresses6 == ["2001:db8:2::10"]
    assert viewer.all_addresses == ["192.168.2.10", "2001:db8:2::10"]
    assert str(viewer.gateway6) == "2001:db8:2::1"
    assert topology.node("master").addresses6 == []
    only6 = load_topology("ipv6-only-lte").node("viewer")
    assert only6.addresses == [] and only6.gateway is None and only6.uplink() is None


def test_the_internet_routes_each_delegated_prefix_to_its_home_router() -> None:
    routes = delegated_routes(load_topology("dualstack-homes"))
    assert [(str(n), str(v)) for n, v in routes["internet"]] == [
        ("2001:db8:2::/64", "2001:db8:ff:1::2"),
        ("2001:db8:1::/64", "2001:db8:ff:2::2"),
    ]
    assert routes["viewer-gw"] == [] and routes["viewer"] == []
    assert "master-gw" not in delegated_routes(load_topology("dualstack-home"))  # IPv4 only


def test_an_ipv6_node_gets_addresses_routes_and_ipv6_switched_on() -> None:
    topology = load_topology("dualstack-homes")
    node = topology.node("viewer-gw")
    setup = render_node_setup(node, None, (), delegated_routes(topology)["viewer-gw"])
    assert "ip -6 addr add 2001:db8:2::1/64 dev eth0 nodad" in setup.commands
    assert "ip -6 route add default via 2001:db8:ff:1::1" in setup.commands
    final = setup.commands[-1]  # the sysctls at the end must not switch IPv6 off again
    assert "net.ipv6.conf.all.disable_ipv6=0" in final
    assert "net.ipv6.conf.all.forwarding=1" in final
    internet = ipv6_commands(topology.node("internet"), delegated_routes(topology)["internet"])
    assert "ip -6 route add 2001:db8:2::/64 via 2001:db8:ff:1::2" in internet
    enable = [c for c in internet if "accept_dad=0" in c][0]
    assert "net.ipv6.conf.eth0.accept_dad=0" in enable


def test_ipv4_only_nodes_are_configured_as_before() -> None:
    node = load_topology("two-homes").node("viewer-gw")
    setup = render_node_setup(node, None)
    assert not any("-6" in c for c in setup.commands)
    assert setup.commands[-1] == (
        "sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 "
        "net.ipv4.ip_forward=1"
    )
    assert "ip6" not in setup.ruleset


def test_a_home_router_with_ipv6_drops_unsolicited_inbound_ipv6() -> None:
    setup = render_node_setup(load_topology("dualstack-home").node("viewer-gw"), None)
    assert "table ip6 icelab_cpe6" in setup.ruleset
    assert 'iifname "eth0" oifname "eth1" accept' in setup.ruleset
    assert "ct state established,related accept" in setup.ruleset
    assert 'iifname "eth1" drop' in setup.ruleset
    router = render_node_setup(load_topology("dualstack-home").node("internet"), None)
    assert "icelab_cpe6" not in router.ruleset  # the internet only routes


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            lambda d: d["links"][0]["addresses"][0].__setitem__(1, "2001:db8:2::zz/64"),
            r"links\[0\]\.addresses\[0\]",
            "",
        ),
        (
            lambda d: d["links"][0]["addresses"][0].__setitem__(1, "2001:470::10/64"),
            r"links\[0\]\.addresses\[0\]",
            r"outside the lab's IPv6 range \(2001:db8::/32\)",
        ),
        (
            lambda d: d["nodes"]["viewer"].__setitem__("gateway6", "2001:db8:9::1"),
            r"nodes\.viewer\.gateway6",
            "is on none of its links",
        ),
        (
            lambda d: d["nodes"]["viewer"].__setitem__("gateway6", "2001:db8::zz"),
            r"nodes\.viewer\.gateway6",
            "",
        ),
        (
            lambda d: d["links"][0]["addresses"][1].__setitem__(1, "2001:db8:3::1/64"),
            r"links\[0\]\.addresses",
            "not in one subnet",
        ),
    ],
)
def test_bad_ipv6_input_names_the_file_and_field(
    tmp_path: Path, change: Any, field: str, words: str
) -> None:
    path = _topology_with(tmp_path, "dualstack-home", change)
    with pytest.raises(LabInputError, match=rf"{path}: {field}.*{words}"):
        load_topology(str(path))


def test_lab_validate_exits_2_on_a_bad_ipv6_address(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lab.commands import app

    path = _topology_with(
        tmp_path,
        "dualstack-home",
        lambda d: d["links"][0]["addresses"][0].__setitem__(1, "2001:470::10/64"),
    )
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "links[0].addresses[0]" in result.output and "2001:db8::/32" in result.output


def test_ipv6_endpoints_are_written_with_brackets() -> None:
    assert endpoint("2001:db8:2::10", 5000) == "[2001:db8:2::10]:5000"
    assert endpoint("198.51.100.2", 5000) == "198.51.100.2:5000"
    candidate = Candidate("host", "udp", "2001:db8:2::10", 5000)
    assert candidate.text() == "host [2001:db8:2::10]:5000"


def _candidate(kind: str, address: str, port: int) -> dict[str, Any]:
    return {"type": kind, "address": address, "port": port, "protocol": "udp"}


def _result(selected_v6: bool) -> dict[str, Any]:
    v4, v6 = _candidate("srflx", "198.51.100.2", 1), _candidate("host", "2001:db8:2::10", 2)
    remote = _candidate("srflx", "198.51.100.18", 3)
    pair = {"local": v4, "remote": remote}
    if selected_v6:
        pair = {"local": v6, "remote": _candidate("host", "2001:db8:1::10", 4)}
    return {
        "outcome": "connected",
        "network": {
            "nodes": {
                "viewer": {"role": "peer", "addresses": ["192.168.2.10", "2001:db8:2::10"]},
                "master": {"role": "peer", "addresses": ["192.168.1.10"]},
            }
        },
        "peers": {
            "viewer": {"host": "viewer", "candidates": [v4, v6]},
            "master": {"host": "master", "candidates": [remote]},
        },
        "pairs": [{"agent": "viewer", **pair}],
        "selected": {"viewer": pair},
    }


def test_expectations_on_address_families() -> None:
    expect = {
        "outcome": "connected",
        "selected": {"viewer": {"family": "ipv4"}},
        "gathered": {"viewer": [{"type": "host", "family": "ipv6", "paired": False}]},
    }
    assert all(c.met for c in evaluate(expect, typed(_result(selected_v6=False))))
    failed = [c for c in evaluate(expect, typed(_result(selected_v6=True))) if not c.met]
    assert [c.check for c in failed] == [
        "viewer's selected pair is ipv4",
        "viewer gathered a host ipv6 candidate that no pair could use",
    ]


def test_the_report_says_why_ipv6_candidates_paired_with_nothing() -> None:
    lines = family_lines(typed(_result(selected_v6=False)))
    assert len(lines) == 1 and "[2001:db8:2::10]:2 had nothing to pair with" in lines[0]
    ipv4_only = json.loads(json.dumps(_result(selected_v6=False)))
    ipv4_only["network"]["nodes"]["viewer"]["addresses"] = ["192.168.2.10"]
    assert family_lines(typed(ipv4_only)) == []


def test_the_report_says_an_ipv6_only_host_cannot_reach_an_ipv4_only_service() -> None:
    result = {
        "outcome": "failed",
        "network": {
            "nodes": {
                "viewer": {"role": "peer", "addresses": ["2001:db8:64:1::10"]},
                "signaling": {"role": "signaling", "addresses": ["203.0.113.20"]},
            }
        },
        "peers": {
            "viewer": {"host": "viewer", "candidates": [], "error": "name resolution failed"},
            "master": {"host": "master", "candidates": []},
        },
        "selected": {},
    }
    [line] = family_lines(typed(result))
    assert "IPv6 only (2001:db8:64:1::10): no IPv4 address" in line
    assert "NAT64" in line and "failed before ICE began (name resolution failed)" in line


def test_nat64_translates_a_prefix_of_the_labs_own_range() -> None:
    assert synthesized("203.0.113.20") == "2001:db8:6464::cb00:7114"
    conf = render_tayga_conf("/run/x")
    assert "prefix 2001:db8:6464::/96" in conf and "dynamic-pool 192.168.255.0/24" in conf
    commands = nat64_commands("/run/x/tayga.conf")
    assert commands[0] == "tayga --mktun -c /run/x/tayga.conf"
    assert "ip -6 route add 2001:db8:6464::/96 dev nat64" in commands
    assert "ip route add 192.168.255.0/24 dev nat64" in commands


def test_hosts_behind_a_nat64_ask_its_dns64() -> None:
    topology = load_topology("ipv6-only-lte")
    assert dns64_resolvers(topology, ["mobile-gw"]) == {"viewer": "2001:db8:64:1::1"}
    assert dns64_resolvers(topology, []) == {}
    assert dns64_listen(topology.node("mobile-gw")) == ["2001:db8:64:1::1"]
    config = render_dns64(
        ["2001:db8:64:1::1"], "203.0.113.20", {"a.example": "203.0.113.10"}, Path("/l")
    )
    assert "host-record=a.example,203.0.113.10,2001:db8:6464::cb00:710a" in config
    assert "listen-address=2001:db8:64:1::1" in config and "server=203.0.113.20" in config


@pytest.mark.parametrize(
    ("node", "value", "words"),
    [
        ("master-gw", True, "needs IPv6 addresses on an inside link"),
        ("mobile-gw", "yes", "is not of type 'boolean'"),
    ],
)
def test_a_nat64_where_none_can_be_is_bad_input(
    tmp_path: Path, node: str, value: Any, words: str
) -> None:
    document = yaml.safe_load((ROOT / "scenarios" / "ipv6-only-nat64-viewer.yaml").read_text())
    document["conditions"][node]["nat64"] = value
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(LabInputError, match=rf"{path}: conditions\.{node}\.nat64: .*{words}"):
        load_scenario(str(path))


#: A camera's first IPv6 check, dropped by the viewer's home router (`lab run
#: dual-stack-both --capture`, viewer-gw's `nft monitor trace`, MAC addresses shortened).
IPV6_TRACE = """\
trace id d198091f ip6 icelab6_trace prerouting packet: iif "eth1" ether saddr 46:42 ether daddr 76:76 ip6 saddr 2001:db8:1::10 ip6 daddr 2001:db8:2::10 ip6 hoplimit 61 udp sport 47743 udp dport 41039 udp length 96 @th,64,96 0x100442112a442df6bd33a
trace id d198091f ip6 icelab6_trace prerouting rule meta l4proto udp @th,96,32 0x2112a442 meta nftrace set 1 (verdict continue)
trace id d198091f ip6 icelab6_trace prerouting policy accept
trace id d198091f ip6 icelab_cpe6 forward packet: iif "eth1" oif "eth0" ip6 saddr 2001:db8:1::10 ip6 daddr 2001:db8:2::10 udp sport 47743 udp dport 41039
trace id d198091f ip6 icelab_cpe6 forward rule iifname "eth1" drop comment "home router IPv6: unsolicited inbound" (verdict drop)
"""  # noqa: E501


def test_captures_trace_ipv6_checks_to_the_firewall_rule_that_dropped_them() -> None:
    [traced] = parse_trace("viewer-gw", IPV6_TRACE)
    assert (traced.src, traced.dst) == ("[2001:db8:1::10]:47743", "[2001:db8:2::10]:41039")
    assert traced.dropped_by == "home router IPv6: unsolicited inbound"
    table = render_trace_table("ip6")
    assert table.startswith("table ip6 icelab6_trace {") and "nftrace set 1" in table
    assert render_trace_table().startswith("table ip icelab_trace {")  # IPv4 as before


def test_tshark_fields_of_an_ipv6_check_become_bracketed_endpoints() -> None:
    values = dict.fromkeys(FIELDS, "")
    values.update(
        {
            "frame.interface_id": "0",
            "frame.time_epoch": "1796258646.5",
            "udp.srcport": "47743",
            "udp.dstport": "41039",
            "stun.type.class": "0x00",
            "stun.type.method": "0x0001",
            "stun.id": "aa" * 12,
            "ipv6.src": "2001:db8:1::10",
            "ipv6.dst": "2001:db8:2::10",
        }
    )
    packet = parse_line("\t".join(values[f] for f in FIELDS), ["a link"])
    assert packet is not None
    assert (packet.src, packet.dst) == ("[2001:db8:1::10]:47743", "[2001:db8:2::10]:41039")
    assert (
        host_of(packet.dst) == "2001:db8:2::10" and host_of("203.0.113.10:3478") == "203.0.113.10"
    )


def test_lab_status_lists_ipv6_addresses(tmp_path: Path) -> None:
    from lab.run.hands_on.daemon import build_state

    class Network:
        @staticmethod
        def pid_of(node: str) -> int:
            return os.getpid()

    state = build_state(load_scenario("ipv6-only-viewer"), Network(), "t", tmp_path, "coturn")
    hosts = {h["name"]: h["addresses"] for h in state["hosts"]}
    assert hosts["viewer"] == ["2001:db8:64:1::10"]  # an IPv6-only host has no other
    assert hosts["mobile-gw"] == ["198.51.100.34", "2001:db8:64:1::1", "2001:db8:ff:3::2"]


def test_lab_explain_calls_an_ipv6_host_candidate_global_not_private() -> None:
    from lab.report.explain import explain_text

    text = explain_text(typed(_result(selected_v6=False)))
    assert "viewer host [2001:db8:2::10]:2: viewer's own global IPv6 address" in text
    assert "IPv4 and IPv6" in text


def test_a_nat64_gateway_cannot_also_run_a_lan_resolver(tmp_path: Path) -> None:
    """Its DNS64 is the LAN's resolver: a second dnsmasq would fight it for the same
    config file and port, so the scenario is refused, naming the field."""
    document = yaml.safe_load((ROOT / "scenarios/ipv6-only-nat64-viewer.yaml").read_text())
    document["dns"] = {"lan_resolvers": {"mobile-gw": {"no_answer": ["example.com"]}}}
    document["topology"] = str(ROOT / "topologies/ipv6-only-lte.yaml")
    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(LabInputError, match=r"dns\.lan_resolvers\.mobile-gw: .*DNS64"):
        load_scenario(str(path))
