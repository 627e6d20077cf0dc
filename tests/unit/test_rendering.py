"""Rendering of nftables rulesets, node set-up, coturn's command line and credentials:
pure functions, tested without root."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path

from lab.network.build import render_node_setup
from lab.network.firewall import (
    Direction,
    FirewallPolicy,
    Rule,
    firewall_from_spec,
    render_firewall,
)
from lab.network.nat import conntrack_sysctls, nat_from_spec, render_nat
from lab.scenario.scenario import load_scenario
from lab.servers.coturn import CoturnSetup, cidr_to_range, coturn_args
from lab.servers.credentials import rest_credentials


def unnamed(line: str) -> str:
    """A rule without its comment (the name `lab trace` reports a drop by)."""
    return re.sub(r' comment "[^"]*"', "", line.strip())


def test_tcp_web_only_allows_dns_and_web_then_drops_the_rest() -> None:
    ruleset = render_firewall(firewall_from_spec("tcp-web-only"), "eth1", ["eth0"])
    lines = [unnamed(line) for line in ruleset.splitlines()]
    allow_dns = lines.index('iifname "eth0" oifname "eth1" meta l4proto udp th dport 53 accept')
    allow_web = lines.index(
        'iifname "eth0" oifname "eth1" meta l4proto tcp th dport { 80, 443 } accept'
    )
    deny_rest = lines.index('iifname "eth0" oifname "eth1" drop')
    assert lines.index("ct state established,related accept") < allow_dns < allow_web < deny_rest


def test_a_proxy_edge_forwards_nothing_either_way_and_names_its_proxy() -> None:
    for preset, proxy in (("https-proxy", "https"), ("socks5-proxy", "socks5")):
        policy = firewall_from_spec(preset)
        assert policy is not None and policy.proxy == proxy
        ruleset = render_firewall(policy, "eth1", ["eth0"])
        rules = [unnamed(line) for line in ruleset.splitlines()]
        verdicts = [r for r in rules if r.startswith("iifname")]
        assert verdicts == [
            'iifname "eth0" oifname "eth1" drop',
            'iifname "eth1" oifname "eth0" drop',
        ]
    assert firewall_from_spec("tcp-web-only").proxy is None  # type: ignore[union-attr]


def test_reject_answers_tcp_with_reset_and_the_rest_with_icmp() -> None:
    policy = FirewallPolicy(outbound=Direction("allow", (Rule("deny", "udp"),)), deny_with="reject")
    ruleset = render_firewall(policy, "eth1", ["eth0", "eth2"])
    assert 'iifname { "eth0", "eth2" } oifname "eth1" meta l4proto udp reject' in ruleset
    assert "meta l4proto tcp reject with tcp reset" in ruleset


def test_rule_with_ports_and_addresses_for_any_protocol() -> None:
    rule = Rule("allow", "any", ("443",), ("203.0.113.10",))
    policy = FirewallPolicy(outbound=Direction("deny", (rule,)))
    ruleset = render_firewall(policy, "eth1", ["eth0"])
    assert "meta l4proto { tcp, udp } th dport 443 ip daddr 203.0.113.10 accept" in ruleset


def _nat(spec: object) -> str:
    return render_nat(nat_from_spec(spec, "x"), "eth1", "198.51.100.2", ["eth0"])


def test_port_restricted_cone_reuses_the_mapping_and_lets_only_replies_in() -> None:
    cone = _nat("port-restricted-cone")
    assert "snat ip to ip saddr . udp sport map @ei_out" in cone
    assert 'oifname "eth1" meta l4proto udp masquerade\n' in cone  # keeps the inside port
    assert "dnat" not in cone  # conntrack's 5-tuple is the only way in


def test_symmetric_makes_a_fresh_mapping_per_destination() -> None:
    symmetric = _nat("symmetric")
    assert "@ei_out" not in symmetric.split("chain postrouting")[1].split("chain learn")[0]
    assert "udp sport @mapped_ports masquerade fully-random" in symmetric
    assert 'oifname "eth1" masquerade fully-random' in symmetric  # TCP too


def test_full_and_restricted_cone_let_outsiders_in_through_the_mapping() -> None:
    full = _nat("full-cone")
    restricted = _nat("restricted-cone")
    assert (
        'iifname "eth1" ip daddr 198.51.100.2 meta l4proto udp dnat ip to udp dport map @inbound'
        in full
    )
    assert "udp dport . ip saddr @contacted dnat ip to udp dport map @inbound" in restricted


def test_address_dependent_mapping_is_keyed_by_destination_address() -> None:
    ruleset = _nat({"mapping": "address-dependent", "filtering": "address-dependent"})
    assert "snat ip to ip saddr . udp sport . ip daddr map @ad_out" in ruleset
    assert "update @ad_out { ct original ip saddr . ct original proto-src . ip daddr" in ruleset


def test_learning_only_follows_flows_started_inside() -> None:
    learn = _nat("full-cone").split("chain learn")[1].split("chain input")[0]
    rules = [line for line in learn.splitlines() if "update @" in line]
    assert rules and all("ct direction original" in line for line in rules)


def test_hairpinning_loops_back_with_the_public_source_or_drops() -> None:
    on = _nat({"preset": "full-cone", "hairpinning": True})
    off = _nat({"preset": "full-cone", "hairpinning": False})
    assert 'iifname "eth0" ip daddr 198.51.100.2 meta l4proto udp dnat' in on
    assert "ct status dnat meta l4proto udp snat ip to 198.51.100.2" in on
    assert (
        'iifname "eth0" ip daddr 198.51.100.2 meta l4proto udp drop comment "no hairpinning"' in off
    )


def test_no_port_preservation_always_picks_a_random_port() -> None:
    ruleset = _nat({"preset": "full-cone", "port_preservation": False})
    assert "meta l4proto udp masquerade\n" not in ruleset
    assert 'oifname "eth1" meta l4proto udp masquerade fully-random' in ruleset


def test_udp_timeout_sets_both_the_learned_maps_and_conntrack() -> None:
    behaviour = nat_from_spec({"preset": "full-cone", "udp_timeout": 7}, "x")
    assert "timeout 7s" in render_nat(behaviour, "eth1", "198.51.100.2", ["eth0"])
    assert set(conntrack_sysctls(behaviour).values()) == {"7"}


def test_nat_preset_names_round_trip() -> None:
    for preset in ("full-cone", "restricted-cone", "port-restricted-cone", "symmetric"):
        assert nat_from_spec(preset, "x").preset == preset
    assert nat_from_spec({"mapping": "address-dependent"}, "x").preset is None


def test_enterprise_firewall_node_setup() -> None:
    scenario = load_scenario("enterprise-firewall")
    office = scenario.topology.node("office-gw")
    setup = render_node_setup(office, scenario.conditions["office-gw"])
    assert "ip addr add 10.10.0.1/24 dev eth0" in setup.commands
    assert "ip route add default via 198.51.100.1" in setup.commands
    assert any("net.ipv4.ip_forward=1" in c for c in setup.commands)
    assert "table ip icelab_nat" in setup.ruleset and "table inet icelab_filter" in setup.ruleset
    viewer = render_node_setup(scenario.topology.node("viewer"), None)
    assert viewer.ruleset == ""
    assert any("net.ipv4.ip_forward=0" in c for c in viewer.commands)


def test_coturn_args_never_touch_system_paths(tmp_path: Path) -> None:
    setup = CoturnSetup(
        addresses=("203.0.113.10", "203.0.113.11"),
        cert=tmp_path / "c.pem",
        key=tmp_path / "c.key",
        secret="s",
        workdir=tmp_path,
        denied_peers=("192.168.0.0/16",),
    )
    args = coturn_args(setup)
    assert args[:2] == ["turnserver", "-n"]  # -n: no configuration file
    for option in ("--log-file", "--pidfile", "--userdb"):
        assert args[args.index(option) + 1].startswith(str(tmp_path))
    assert args.count("--listening-ip") == 2
    assert args[args.index("--relay-ip") + 1] == "203.0.113.10"
    assert args[args.index("--denied-peer-ip") + 1] == "192.168.0.0-192.168.255.255"
    assert args[args.index("--tls-listening-port") + 1] == "443"


def test_cidr_to_range() -> None:
    assert cidr_to_range("10.0.0.0/8") == "10.0.0.0-10.255.255.255"


def test_rest_credentials_match_coturn_formula() -> None:
    credentials = rest_credentials("secret", "viewer", ttl_s=300, now=1_000_000)
    assert credentials.username == "1000300:viewer"
    expected = base64.b64encode(
        hmac.new(b"secret", b"1000300:viewer", hashlib.sha1).digest()
    ).decode()
    assert credentials.password == expected


def test_conntrack_sysctls_wait_for_the_ruleset_that_loads_conntrack() -> None:
    """On a modular kernel (the VM's) nf_conntrack's sysctls appear only once a ruleset
    using conntrack is loaded, so they are set after `nft -f`, not before."""
    scenario = load_scenario("home-nat-both")
    setup = render_node_setup(scenario.topology.node("viewer-gw"), scenario.conditions["viewer-gw"])
    assert not any("nf_conntrack" in c for c in setup.commands)
    assert any("nf_conntrack_udp_timeout=30" in c for c in setup.after_ruleset)
    assert render_node_setup(scenario.topology.node("viewer"), None).after_ruleset == []
