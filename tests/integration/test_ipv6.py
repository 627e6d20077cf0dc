"""IPv6 for real (root): routed global addresses, the home routers' stateful IPv6
firewalls, IPv4-only nodes left without IPv6, and what a dual-stack viewer's run shows."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.network.build import LabNetwork
from lab.network.ipv6 import synthesized
from lab.scenario.scenario import load_scenario

from .helpers import lab, leftovers, run_scenario

pytestmark = pytest.mark.root

VIEWER, MASTER, INTERNET = "2001:db8:2::10", "2001:db8:1::10", "2001:db8:ff:1::1"
#: Sends a datagram every 0.1 s from (ME, PORT) to (PEER, PORT) for a second; prints
#: what arrived ("arrived" or "nothing").
EXCHANGE = """
import socket, sys, time
me, peer, send = sys.argv[1], sys.argv[2], sys.argv[3] == "send"
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((me, 5000))
s.settimeout(0.1)
got = False
for _ in range(10):
    if send:
        s.sendto(b"x", (peer, 5000))
    try:
        s.recvfrom(100)
        got = True
    except socket.timeout:
        pass
print("arrived" if got else "nothing")
"""


def _exchange(network: LabNetwork, ends: list[tuple[str, str, str, bool]]) -> list[str]:
    """Start each (node, me, peer, sends) at once; what each received."""
    processes = [
        network.popen(
            node,
            [sys.executable, "-c", EXCHANGE, me, peer, "send" if sends else "listen"],
            stdout=subprocess.PIPE,
        )
        for node, me, peer, sends in ends
    ]
    return [p.communicate(timeout=10)[0].decode().strip() for p in processes]


def test_home_routers_let_ipv6_out_and_replies_in_but_drop_unsolicited(tmp_path: Path) -> None:
    scenario = load_scenario("dual-stack-both")
    with LabNetwork(scenario.topology, scenario.conditions, tmp_path) as network:
        ping = network.run("viewer", ["ping", "-6", "-c", "1", "-W", "2", MASTER])
        assert ping.returncode == 0, ping.stdout  # routed end to end (echo is let in)
        # Nobody inside sent first: the viewer's home router drops it.
        unsolicited = _exchange(
            network, [("viewer", VIEWER, INTERNET, False), ("internet", INTERNET, VIEWER, True)]
        )
        assert unsolicited[0] == "nothing"
        # One side alone: the camera's router drops what it did not ask for.
        alone = _exchange(
            network, [("master", MASTER, VIEWER, False), ("viewer", VIEWER, MASTER, True)]
        )
        assert alone[0] == "nothing"
        # Both at once, as ICE checks: each one's outbound packets open its firewall.
        time.sleep(0.2)
        both = _exchange(
            network, [("master", MASTER, VIEWER, True), ("viewer", VIEWER, MASTER, True)]
        )
        assert both == ["arrived", "arrived"]
        ruleset = network.run("viewer-gw", ["nft", "list", "table", "ip6", "icelab_cpe6"])
        assert "unsolicited inbound" in ruleset.stdout.decode()
    assert leftovers()["shells"] == []


def test_ipv4_only_nodes_keep_ipv6_switched_off(tmp_path: Path) -> None:
    scenario = load_scenario("dual-stack-viewer")
    with LabNetwork(scenario.topology, scenario.conditions, tmp_path) as network:
        for node, wanted in (("master", "1"), ("turn", "1"), ("viewer", "0"), ("internet", "0")):
            sysctl = network.run(node, ["sysctl", "-n", "net.ipv6.conf.all.disable_ipv6"])
            assert sysctl.stdout.decode().strip() == wanted, node
        addresses = network.run("master", ["ip", "-6", "addr"]).stdout.decode()
        assert "inet6" not in addresses
        unreachable = network.run("viewer", ["ping", "-6", "-c", "1", "-W", "1", "2001:db8:1::10"])
        assert unreachable.returncode != 0


def test_a_dual_stack_viewer_offers_ipv6_that_nothing_pairs_with(tmp_path: Path) -> None:
    status, result, output = run_scenario(tmp_path, "dual-stack-viewer")
    assert status == 0 and result["expectations_met"], output
    viewer = result["peers"]["viewer"]["candidates"]
    assert {(c["type"], c["address"]) for c in viewer if ":" in c["address"]} == {("host", VIEWER)}
    assert not any(":" in c["address"] for c in result["peers"]["master"]["candidates"])
    assert not any(":" in p["local"]["address"] for p in result["pairs"])
    assert ":" not in result["selected"]["viewer"]["local"]["address"]
    assert f"host [{VIEWER}]:" in output and "had nothing to pair with" in output
    path = tmp_path / "dual-stack-viewer.json"
    explained = lab("explain", str(path))
    assert "IPv4 and IPv6" in explained.stdout and "one address family" in explained.stdout
    html = tmp_path / "report.html"
    assert lab("report", str(path), "-o", str(html)).returncode == 0
    assert "had nothing to pair with" in html.read_text()


def test_an_ipv6_only_viewer_fails_and_the_report_says_no_ipv4(tmp_path: Path) -> None:
    status, result, output = run_scenario(tmp_path, "ipv6-only-viewer")
    assert status == 0 and result["expectations_met"], output  # failing is expected
    assert result["outcome"] == "failed"
    assert "no IPv4 address" in output and "NAT64" in output


#: Prints the source address of the first datagram to 203.0.113.20:5000 ("nothing" after 2 s).
SOURCE_OF = (
    "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
    "s.bind(('203.0.113.20',5000));s.settimeout(2.0)\n"
    "try:\n print(s.recvfrom(100)[1][0])\nexcept socket.timeout:\n print('nothing')"
)


def test_nat64_carries_an_ipv6_only_hosts_packets_to_an_ipv4_server(tmp_path: Path) -> None:
    scenario = load_scenario("ipv6-only-nat64-viewer")
    with LabNetwork(scenario.topology, scenario.conditions, tmp_path) as network:
        receiver = network.popen(
            "signaling", [sys.executable, "-c", SOURCE_OF], stdout=subprocess.PIPE
        )
        time.sleep(0.3)
        send = (
            "import socket;s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);"
            f"s.sendto(b'x',('{synthesized('203.0.113.20')}',5000))"
        )
        network.run("viewer", [sys.executable, "-c", send])
        source = receiver.communicate(timeout=5)[0].decode().strip()
        # Translated by TAYGA into its pool, then NATed out of the carrier's IPv4 uplink.
        assert source == "198.51.100.34"
        direct = network.run("viewer", ["ping", "-c", "1", "-W", "1", "203.0.113.20"])
        assert direct.returncode != 0  # still no IPv4 of its own
    assert leftovers()["shells"] == []


def test_an_ipv6_only_viewer_connects_through_nat64_and_a_relay(tmp_path: Path) -> None:
    status, result, output = run_scenario(tmp_path, "ipv6-only-nat64-viewer")
    assert status == 0 and result["expectations_met"], output
    viewer = result["peers"]["viewer"]["candidates"]
    assert {c["type"] for c in viewer} == {"host", "relay"}  # aiortc: no IPv4 socket, no srflx
    assert all(":" not in c["address"] for c in viewer if c["type"] == "relay")
    synthesised = [a for a in result["servers"]["dns"]["answers"] if a["server"] == "mobile-gw"]
    assert synthesised and all(
        a["answer"].startswith("2001:db8:6464::") for a in synthesised if a["type"] == "AAAA"
    )
    assert "runs NAT64 and DNS64" in output


def test_a_capture_follows_ipv6_checks_across_the_links(tmp_path: Path) -> None:
    status, result, output = run_scenario(tmp_path, "dual-stack-both", "--capture")
    assert status == 0 and result["expectations_met"], output
    [pair] = [p for p in result["pairs"] if p["agent"] == "viewer" and ":" in p["local"]["address"]]
    hops = [h for check in pair["trail"]["checks"] for h in check["hops"]]
    assert {h["link"] for h in hops} >= {
        "viewer:eth0 - viewer-gw:eth0",
        "viewer-gw:eth1 - internet:eth0",
    }
    assert all(h["src"].startswith("[2001:db8:") for h in hops if h["link"].startswith("viewer:"))
