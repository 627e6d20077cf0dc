"""The allowlist firewall and host names in firewall rules, without root: what it renders,
how scenario host names resolve to addresses, and the errors for unknown hosts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.core.errors import LabInputError
from lab.network.firewall import firewall_from_spec, render_firewall
from lab.scenario.scenario import load_scenario


def unnamed(line: str) -> str:
    """A rule without its comment (the name `lab trace` reports a drop by)."""
    return re.sub(r' comment "[^"]*"', "", line.strip())


TURN = "203.0.113.10, 203.0.113.11"
SIGNALING = "203.0.113.20"
OUT = 'iifname "eth0" oifname "eth1"'
IN = 'iifname "eth1" oifname "eth0"'

SCENARIO = """name: allowlisted
description: test
topology: office-and-home
conditions:
  office-gw:
    nat: port-restricted-cone
    firewall: {firewall}
peers:
  viewer: {{host: viewer}}
  master: {{host: master}}
servers:
  signaling: {{host: signaling}}
expect: {{outcome: connected}}
"""


def scenario_file(tmp_path: Path, firewall: str) -> Path:
    path = tmp_path / "allowlisted.yaml"
    path.write_text(SCENARIO.format(firewall=firewall))
    return path


def office_firewall(tmp_path: Path, firewall: str) -> str:
    scenario = load_scenario(str(scenario_file(tmp_path, firewall)))
    policy = scenario.conditions["office-gw"].firewall
    assert policy is not None
    return render_firewall(policy, "eth1", ["eth0"])


def lines(ruleset: str) -> list[str]:
    return [unnamed(line) for line in ruleset.splitlines()]


def test_allowlist_defaults_to_the_stun_turn_and_signaling_hosts(tmp_path: Path) -> None:
    rules = lines(office_firewall(tmp_path, "allowlist"))
    allowed = f"{{ {TURN}, {SIGNALING} }}"
    dns = rules.index(f"{OUT} meta l4proto udp th dport 53 accept")
    out = rules.index(f"{OUT} ip daddr {allowed} accept")
    out_default = rules.index(f"{OUT} drop")
    back = rules.index(f"{IN} ip saddr {allowed} accept")
    in_default = rules.index(f"{IN} drop")
    assert rules.index("ct state established,related accept") < dns < out < out_default
    assert out_default < back < in_default


def test_allowlist_names_its_hosts_and_takes_every_address_of_each(tmp_path: Path) -> None:
    ruleset = office_firewall(tmp_path, "{preset: allowlist, allow_hosts: [turn]}")
    assert f"{OUT} ip daddr {{ {TURN} }} accept" in ruleset
    assert SIGNALING not in ruleset


def test_allowlist_can_reject_instead_of_dropping(tmp_path: Path) -> None:
    ruleset = office_firewall(
        tmp_path, "{preset: allowlist, allow_hosts: [signaling], deny_with: reject}"
    )
    assert f"{OUT} ip daddr {SIGNALING} accept" in ruleset
    assert f"{OUT} reject with icmpx admin-prohibited" in ruleset
    assert f"{OUT} meta l4proto tcp reject with tcp reset" in ruleset


def test_the_resolved_scenario_shows_hosts_and_their_addresses(tmp_path: Path) -> None:
    scenario = load_scenario(str(scenario_file(tmp_path, "{preset: allowlist}")))
    shown = scenario.resolved()["conditions"]["office-gw"]["firewall"]
    assert shown["preset"] == "allowlist"
    assert list(shown["allow_hosts"]) == ["turn", "signaling"]
    rule = shown["outbound"]["rules"][1]
    assert list(rule["hosts"]) == ["turn", "signaling"]
    assert list(rule["addresses"]) == ["203.0.113.10", "203.0.113.11", "203.0.113.20"]


def test_rules_may_name_hosts_as_well_as_addresses(tmp_path: Path) -> None:
    firewall = (
        "{outbound: {default: deny, rules: ["
        "{action: allow, protocol: tcp, ports: [443], hosts: [signaling], addresses: [192.0.2.1]},"
        "{action: allow, protocol: udp, hosts: [turn]}]}}"
    )
    ruleset = office_firewall(tmp_path, firewall)
    assert (
        f"{OUT} meta l4proto tcp th dport 443 ip daddr {{ 192.0.2.1, {SIGNALING} }} accept"
        in ruleset
    )
    assert f"{OUT} meta l4proto udp ip daddr {{ {TURN} }} accept" in ruleset


def test_without_a_topology_host_names_cannot_resolve() -> None:
    with pytest.raises(LabInputError, match="allow_hosts"):
        firewall_from_spec({"preset": "allowlist", "allow_hosts": ["turn"]})
    # Presets that name no hosts need no topology.
    assert firewall_from_spec("tcp-web-only") is not None


@pytest.mark.parametrize(
    ("firewall", "field"),
    [
        (
            "{preset: allowlist, allow_hosts: [turn, stun]}",
            "conditions.office-gw.firewall.allow_hosts[1]",
        ),
        (
            "{inbound: {rules: [{action: deny, hosts: [nowhere]}]}}",
            "conditions.office-gw.firewall.inbound.rules[0].hosts[0]",
        ),
    ],
)
def test_unknown_hosts_name_the_file_and_field(tmp_path: Path, firewall: str, field: str) -> None:
    path = scenario_file(tmp_path, firewall)
    with pytest.raises(LabInputError) as error:
        load_scenario(str(path))
    message = str(error.value)
    assert message.startswith(f"{path}: {field}: no node"), message
    assert "office-and-home" in message


def test_allow_hosts_belongs_to_an_allowlist(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "{preset: udp-blocked, allow_hosts: [turn]}")
    with pytest.raises(LabInputError, match=r"conditions\.office-gw\.firewall\.allow_hosts: only"):
        load_scenario(str(path))


def test_schema_rejects_a_misspelt_preset_naming_the_field(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "{preset: allow-list}")
    with pytest.raises(LabInputError) as error:
        load_scenario(str(path))
    assert str(error.value).startswith(f"{path}: conditions.office-gw.firewall"), str(error.value)


def test_between_inside_deny_isolates_segments_but_lets_hairpinned_traffic_pass() -> None:
    from lab.network.firewall import firewall_from_spec, render_firewall

    policy = firewall_from_spec({"between_inside": "deny"})
    ruleset = render_firewall(policy, "eth1", ["eth0", "eth2"])
    lines = [unnamed(line) for line in ruleset.splitlines()]
    lateral = 'iifname { "eth0", "eth2" } oifname { "eth0", "eth2" }'
    assert lines.index(f"{lateral} ct status dnat accept") < lines.index(f"{lateral} drop")
    open_policy = render_firewall(firewall_from_spec({}), "eth1", ["eth0", "eth2"])
    assert lateral not in open_policy
