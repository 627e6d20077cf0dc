"""The service's names and the run's DNS, without root: name shapes, dnsmasq configurations,
firewall sets by name, each host's resolver, and the errors for a bad `dns:` block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.core.errors import LabInputError
from lab.network.firewall import firewall_from_spec, render_firewall
from lab.network.resolver import (
    SCRIPT,
    command_prefix,
    render_resolv_conf,
    resolver_addresses,
    write_node_files,
)
from lab.scenario.dns import Answers, ServiceNames, covers
from lab.scenario.scenario import load_scenario
from lab.servers.dns import (
    plan_dns,
    read_answers,
    render_lan_resolver,
    render_public_dns,
)

NAMES = ServiceNames.for_region("us-west-2")
ZONE = "kinesisvideo.us-west-2.amazonaws.com"
SCENARIO = """name: dns-test
description: test
topology: office-and-home
conditions:
  office-gw: {{nat: port-restricted-cone, firewall: {firewall}}}
{dns}
peers:
  viewer: {{host: viewer}}
  master: {{host: master}}
ice_servers:
  kvs: {{turn_sets: 2}}
expect: {{outcome: connected}}
"""


def scenario_file(tmp_path: Path, dns: str = "", firewall: str = "tcp-web-only") -> Path:
    path = tmp_path / "dns-test.yaml"
    path.write_text(SCENARIO.format(dns=dns, firewall=firewall))
    return path


def test_names_are_shaped_as_the_service_shapes_them() -> None:
    assert NAMES.control_plane == ZONE
    assert re.fullmatch(rf"m-[0-9a-f]{{8}}\.{re.escape(ZONE)}", NAMES.wss)
    assert re.fullmatch(rf"r-[0-9a-f]{{8}}\.{re.escape(ZONE)}", NAMES.https)
    assert NAMES.stun == f"stun.{ZONE}"
    assert NAMES.turn("203.0.113.10") == f"203-0-113-10.t-{NAMES.token}.{ZONE}"
    other = ServiceNames.for_region("eu-west-1")
    assert other.stun == "stun.kinesisvideo.eu-west-1.amazonaws.com"
    assert other.token != NAMES.token  # endpoints differ per region, as the service's do


def test_a_name_covers_itself_and_names_below_and_a_wildcard_only_those_below() -> None:
    assert covers(ZONE, ZONE) and covers(ZONE, NAMES.stun)
    assert covers(f"*.{ZONE}", NAMES.stun) and not covers(f"*.{ZONE}", ZONE)
    assert not covers(NAMES.stun, f"x{NAMES.stun}")


def test_the_public_server_answers_every_name_and_only_the_records(tmp_path: Path) -> None:
    records = NAMES.records("203.0.113.20", ["203.0.113.10", "203.0.113.11"])
    conf = render_public_dns("203.0.113.20", records, Answers(), tmp_path / "log").splitlines()
    assert "local=/#/" in conf  # NXDOMAIN for any other name, never forwarded or refused
    assert "no-resolv" in conf and "no-hosts" in conf  # nothing of the machine's
    assert "listen-address=203.0.113.20" in conf
    assert f"host-record={NAMES.wss},203.0.113.20" in conf
    assert f"host-record={NAMES.stun},203.0.113.10" in conf
    assert f"host-record={NAMES.turn('203.0.113.11')},203.0.113.11" in conf


def test_no_answer_and_wrong_answer_change_the_public_records(tmp_path: Path) -> None:
    records = NAMES.records("203.0.113.20", ["203.0.113.10"])
    answers = Answers((NAMES.stun, f"*.t-{NAMES.token}.{ZONE}"), {NAMES.wss: "192.0.2.1"})
    conf = render_public_dns("203.0.113.20", records, answers, tmp_path / "log")
    assert NAMES.stun not in conf and ".t-" not in conf
    assert f"host-record={NAMES.wss},192.0.2.1" in conf
    assert f"host-record={ZONE},203.0.113.20" in conf


def test_a_lan_resolver_forwards_overrides_and_fills_the_firewall_sets(tmp_path: Path) -> None:
    answers = Answers((f"*.{ZONE}",), {NAMES.stun: "192.0.2.7"})
    sets = {"outbound_names_0": (f"*.{ZONE}", "example.net")}
    conf = render_lan_resolver(["10.10.0.1"], "203.0.113.20", answers, sets, tmp_path / "l")
    lines = conf.splitlines()
    assert "server=203.0.113.20" in lines and "listen-address=10.10.0.1" in lines
    assert f"local=/*.{ZONE}/" in lines  # NXDOMAIN here for the names below the zone
    assert f"address=/{NAMES.stun}/192.0.2.7" in lines
    assert f"nftset=/{ZONE}/example.net/4#inet#icelab_filter#outbound_names_0" in lines


def test_a_firewall_rule_by_name_matches_a_set_the_resolver_fills() -> None:
    spec = {
        "outbound": {
            "default": "deny",
            "rules": [{"action": "allow", "protocol": "tcp", "ports": [443], "names": [ZONE]}],
        }
    }
    policy = firewall_from_spec(spec)
    assert policy is not None and policy.name_sets() == {"outbound_names_0": (ZONE,)}
    ruleset = render_firewall(policy, "eth1", ["eth0"])
    assert "set outbound_names_0 {\n        type ipv4_addr\n    }" in ruleset
    assert "meta l4proto tcp th dport 443 ip daddr @outbound_names_0 accept" in ruleset


def test_hosts_behind_a_lan_resolver_use_it_and_the_rest_the_public_server() -> None:
    topology = load_scenario("enterprise-firewall").topology
    chosen = resolver_addresses(topology, "203.0.113.20", ["office-gw"])
    assert chosen["viewer"] == "10.10.0.1"
    assert chosen["master"] == chosen["office-gw"] == chosen["turn"] == "203.0.113.20"
    assert set(resolver_addresses(topology, "203.0.113.20", []).values()) == {"203.0.113.20"}


def test_each_node_gets_its_own_files_and_commands_bind_them(tmp_path: Path) -> None:
    directories = write_node_files(tmp_path, {"viewer": "10.10.0.1"})
    resolv = (directories["viewer"] / "resolv.conf").read_text()
    assert "nameserver 10.10.0.1" in resolv and resolv == render_resolv_conf("10.10.0.1")
    assert "hosts: files dns" in (directories["viewer"] / "nsswitch.conf").read_text()
    prefix = command_prefix(directories["viewer"])
    assert prefix[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert prefix[-1] == str(directories["viewer"]) and SCRIPT in prefix
    assert SCRIPT.endswith('&& shift && exec "$@"')  # a failed bind never runs the command


def test_kvs_ice_servers_and_the_plan_carry_names(tmp_path: Path) -> None:
    scenario = load_scenario(str(scenario_file(tmp_path)))
    urls = [url for server in scenario.ice_servers for url in server.urls]
    assert urls[0] == f"stun:{NAMES.stun}:443"
    assert f"turns:{NAMES.turn('203.0.113.11')}:443?transport=tcp" in urls
    assert not any(re.search(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+", url) for url in urls)
    servers, resolvers = plan_dns(scenario, tmp_path)
    assert [(s.node, s.role) for s in servers] == [("signaling", "public")]
    assert set(resolvers.values()) == {"203.0.113.20"}


def test_the_allowlist_by_name_scenario_runs_a_resolver_on_its_firewall(tmp_path: Path) -> None:
    servers, resolvers = plan_dns(load_scenario("allowlist-by-name"), tmp_path)
    office = next(s for s in servers if s.node == "office-gw")
    assert f"nftset=/{ZONE}/4#inet#icelab_filter#outbound_names_0" in office.config
    assert resolvers["viewer"] == "10.10.0.1" and resolvers["master"] == "203.0.113.20"


def test_split_dns_and_region_reach_the_scenario(tmp_path: Path) -> None:
    dns = "region: eu-west-1\ndns:\n  lan_resolvers:\n    office-gw: {no_answer: [amazonaws.com]}"
    scenario = load_scenario(str(scenario_file(tmp_path, dns)))
    assert scenario.region == "eu-west-1"
    assert scenario.dns.lan_resolvers["office-gw"].no_answer == ("amazonaws.com",)
    assert scenario.ice_servers[0].urls[0] == "stun:stun.kinesisvideo.eu-west-1.amazonaws.com:443"
    shown = scenario.resolved()["dns"]["lan_resolvers"]["office-gw"]  # `lab show`
    assert list(shown["no_answer"]) == ["amazonaws.com"]


@pytest.mark.parametrize(
    ("dns", "firewall", "field"),
    [
        ("dns: {no_answer: [not_a name]}", "tcp-web-only", "dns.no_answer"),
        (f"dns: {{wrong_answer: {{{ZONE}: 300.1.1.1}}}}", "tcp-web-only", "dns.wrong_answer"),
        ("dns: {lan_resolvers: {viewer: {}}}", "tcp-web-only", "dns.lan_resolvers.viewer"),
        ("dns: {lan_resolvers: {nowhere: {}}}", "tcp-web-only", "dns.lan_resolvers.nowhere"),
        ("dns: {typo: []}", "tcp-web-only", "dns"),
        (
            "",
            "{outbound: {rules: [{action: allow, names: [not_a name]}]}}",
            "conditions.office-gw.firewall.outbound.rules[0].names[0]",
        ),
        (
            "",
            "{outbound: {rules: [{action: allow, names: [a.example.com], hosts: [turn]}]}}",
            "conditions.office-gw.firewall.outbound.rules[0].names",
        ),
    ],
)
def test_a_bad_dns_block_names_the_file_and_the_field(
    tmp_path: Path, dns: str, firewall: str, field: str
) -> None:
    path = scenario_file(tmp_path, dns, firewall)
    with pytest.raises(LabInputError) as error:
        load_scenario(str(path))
    assert str(path) in str(error.value) and field in str(error.value)


def test_the_result_says_what_each_resolver_answered_whom(tmp_path: Path) -> None:
    (tmp_path / "dnsmasq-office-gw.log").write_text(
        "Dec  3 00:34:23 dnsmasq[9]: started, version 2.90 cache disabled\n"
        f"Dec  3 00:34:23 dnsmasq[9]: query[A] {NAMES.wss} from 10.10.0.10\n"
        f"Dec  3 00:34:23 dnsmasq[9]: query[AAAA] {NAMES.wss} from 10.10.0.10\n"
        f"Dec  3 00:34:23 dnsmasq[9]: config {NAMES.wss} is NXDOMAIN\n"
        f"Dec  3 00:34:23 dnsmasq[9]: forwarded {NAMES.wss} to 203.0.113.20\n"
        f"Dec  3 00:34:23 dnsmasq[9]: reply {NAMES.wss} is NODATA-IPv6\n"
    )
    assert read_answers(tmp_path) == [
        {"server": "office-gw", "client": "10.10.0.10", "type": "A", "name": NAMES.wss,
         "answer": "NXDOMAIN"},
        {"server": "office-gw", "client": "10.10.0.10", "type": "AAAA", "name": NAMES.wss,
         "answer": "NODATA-IPv6"},
    ]  # fmt: skip


def test_lab_up_suggests_resolving_the_service_by_name() -> None:
    from lab.run.hands_on.display import next_steps

    state = {
        "peers": {"viewer": "viewer"},
        "servers": {"signaling": {"service_url": f"https://{NAMES.control_plane}"}},
    }
    assert f"  sudo lab exec viewer -- getent hosts {NAMES.control_plane}" in next_steps(state)


def test_a_resolver_waits_longer_where_the_scenarios_delays_make_round_trips_long() -> None:
    from lab.network.resolver import render_resolv_conf, resolver_timeout_s

    assert resolver_timeout_s(0) == 1
    assert resolver_timeout_s(5000) == 6  # long-round-trip-kvs: a 5 s round trip
    assert resolver_timeout_s(100_000) == 30  # glibc's most
    assert "options timeout:6 attempts:2" in render_resolv_conf("10.0.0.1", 6)


def test_a_resolver_asks_again_where_the_scenarios_links_lose_packets() -> None:
    from lab.network.resolver import render_resolv_conf, resolver_attempts

    assert resolver_attempts(0) == 2
    assert resolver_attempts(10) == 5  # lossy-link: glibc's most
    assert "options timeout:1 attempts:5" in render_resolv_conf("10.0.0.1", 1, 5)
