"""Building networks for real: rulesets that fail to load stop the build, and the lab
tears down the part it had built (root)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from lab.core.errors import LabRunError
from lab.network.build import LabNetwork
from lab.network.firewall import Direction, FirewallPolicy, Rule
from lab.run.cleanup import lab_shells
from lab.scenario.scenario import load_scenario

pytestmark = pytest.mark.root


def test_a_ruleset_that_fails_to_load_stops_the_build_and_leaves_nothing(tmp_path: Path) -> None:
    scenario = load_scenario("enterprise-firewall")
    broken = FirewallPolicy(outbound=Direction("deny", (Rule("allow", "tcp", ("0-99999",)),)))
    conditions = dict(scenario.conditions)
    conditions["office-gw"] = replace(conditions["office-gw"], firewall=broken)
    failed = pytest.raises(LabRunError, match="configuring node 'office-gw' failed: .*out of range")
    with failed, LabNetwork(scenario.topology, conditions, tmp_path):
        pytest.fail("the network must not come up with a firewall that is not there")
    assert lab_shells() == {}


RECEIVE = (
    "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
    "s.bind(('203.0.113.20',5000));s.settimeout(1.0)\n"
    "try:\n print(s.recvfrom(100)[0].decode())\nexcept socket.timeout:\n print('nothing')"
)
SEND = (
    "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
    "s.sendto(b'arrived',('203.0.113.20',5000))"
)


def udp_reaches_signaling(network: LabNetwork, sender: str) -> bool:
    receiver = network.popen("signaling", [sys.executable, "-c", RECEIVE], stdout=subprocess.PIPE)
    time.sleep(0.3)
    network.run(sender, [sys.executable, "-c", SEND])
    out, _ = receiver.communicate(timeout=5)
    return out.decode().strip() == "arrived"


def test_the_office_firewall_drops_udp_that_home_lets_through(tmp_path: Path) -> None:
    scenario = load_scenario("enterprise-firewall")
    with LabNetwork(scenario.topology, scenario.conditions, tmp_path) as network:
        ruleset = network.run("office-gw", ["nft", "list", "ruleset"]).stdout.decode()
        assert "dport { 80, 443 } accept" in ruleset
        assert not udp_reaches_signaling(network, "viewer")  # the office drops UDP
        assert udp_reaches_signaling(network, "master")  # the home router does not
    assert lab_shells() == {}
