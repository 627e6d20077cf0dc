"""Link impairments and the allowlist firewall on real emulated networks (root): loss
really drops packets (on two interfaces of one node too), the rate limit really limits,
the allowlist lets only the named hosts through, and netem asked for where the kernel has
none stops before anything is built (delay itself: test_delay_line.py)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from lab.network.build import LabNetwork
from lab.network.conditions import NodeConditions
from lab.network.firewall import firewall_from_spec
from lab.network.impairments import Impairments, netem_available
from lab.scenario.scenario import Scenario, load_scenario

from .helpers import lab, leftovers, run_scenario

pytestmark = pytest.mark.root

SIGNALING = "203.0.113.20"
TURN = "203.0.113.10"
HOME_GW = "198.51.100.18"


def office(viewer: Impairments | None = None, **office_gw: object) -> tuple[Scenario, dict]:
    """office-and-home with its NATs, the viewer's link impaired and office-gw changed."""
    scenario = load_scenario("enterprise-firewall")
    conditions = dict(scenario.conditions)
    conditions["office-gw"] = replace(conditions["office-gw"], **{"firewall": None, **office_gw})
    if viewer is not None:
        conditions["viewer"] = NodeConditions(impairments=(viewer,))
    return scenario, conditions


def ping_loss(network: LabNetwork, source: str, target: str, count: int = 300) -> float:
    completed = network.run(
        source, ["ping", "-n", "-q", "-i", "0.002", "-W", "1", "-c", str(count), target], timeout=60
    )
    output = completed.stdout.decode()
    match = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    assert match, output + completed.stderr.decode()
    sent, received = int(match[1]), int(match[2])
    return 100 * (sent - received) / sent


def test_loss_drops_that_share_of_packets_each_way_and_nothing_without_it(tmp_path: Path) -> None:
    scenario, conditions = office()
    with LabNetwork(scenario.topology, conditions, tmp_path) as network:
        assert ping_loss(network, "viewer", SIGNALING) == 0
    # Only leaving the viewer: a ping is lost when its request is (30 %).
    out_only = Impairments("eth0", loss_percent=30, direction="out")
    scenario, conditions = office(out_only)
    with LabNetwork(scenario.topology, conditions, tmp_path) as network:
        # Dropped where the packets arrive: office-gw's end of the link.
        ruleset = network.run("office-gw", ["nft", "list", "table", "ip", "icelab_impair"])
        assert "numgen random mod 10000 < 3000 drop" in ruleset.stdout.decode()
        loss = ping_loss(network, "viewer", SIGNALING)
        print(f"30 % loss out: {loss:.1f} % of pings lost")
        assert 19 <= loss <= 41, loss
    # Both ways: request or reply lost, 1 - 0.7 * 0.7 = 51 %.
    scenario, conditions = office(Impairments("eth0", loss_percent=30))
    with LabNetwork(scenario.topology, conditions, tmp_path) as network:
        loss = ping_loss(network, "viewer", SIGNALING)
        print(f"30 % loss both ways: {loss:.1f} % of pings lost")
        assert 37 <= loss <= 65, loss


TWO_LINKS = """name: internet-two-links
description: the internet router loses packets towards both homes, not towards the servers
topology: two-homes
conditions:
  internet:
    impairments:
      - {interface: eth0, loss_percent: 30, direction: out, rate_kbit: 100000}
      - {interface: eth1, loss_percent: 10, direction: in, rate_kbit: 100000}
peers:
  viewer: {host: viewer}
  master: {host: master}
expect: {outcome: connected}
"""


def test_a_list_impairs_two_interfaces_of_one_node(tmp_path: Path) -> None:
    path = tmp_path / "internet-two-links.yaml"
    path.write_text(TWO_LINKS)
    scenario = load_scenario(str(path))
    with LabNetwork(scenario.topology, scenario.conditions, tmp_path) as network:
        qdiscs = network.run("internet", ["tc", "qdisc", "show"]).stdout.decode()
        assert "dev eth0 root" in qdiscs and "dev ifb-eth1 root" in qdiscs, qdiscs
        # eth0, out: the replies to viewer-gw are lost (dropped on arrival at viewer-gw).
        towards_viewer = ping_loss(network, "viewer-gw", "198.51.100.1")
        # eth1, in: the requests from master-gw are lost (dropped on arrival at internet).
        from_master = ping_loss(network, "master-gw", "198.51.100.17")
        # eth2 and eth3 are not impaired: turn and signaling reach each other through it.
        servers = ping_loss(network, "turn", SIGNALING)
    print(
        f"internet:eth0 30 % out: {towards_viewer:.1f} % lost; internet:eth1 10 % in: "
        f"{from_master:.1f} %; eth2 to eth3: {servers:.1f} %"
    )
    assert 19 <= towards_viewer <= 41, towards_viewer
    assert 3 <= from_master <= 18, from_master
    assert servers == 0


TRANSFER = """
import socket, sys, time
role, direction, address = sys.argv[1:4]
if role == "listen":
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, 5001))
    server.listen(1)
    print("listening", flush=True)
    sock, _ = server.accept()
else:
    sock = socket.create_connection((address, 5001), timeout=10)
if direction == "send":
    deadline = time.monotonic() + 3
    block = bytes(16384)
    while time.monotonic() < deadline:
        sock.sendall(block)
    sock.close()
else:
    total, started = 0, None
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        if started is None:
            started = time.monotonic()
        total += len(chunk)
    print(total * 8 / 1000 / (time.monotonic() - started))
"""


def throughput_kbit(network: LabNetwork, client: str, server: str, address: str, up: bool) -> float:
    """kbit/s of a 3-second TCP transfer between `client` and `server` (listening on
    `address`): from the client if `up`, else to it."""
    server_direction, client_direction = ("recv", "send") if up else ("send", "recv")
    listener = network.popen(
        server,
        [sys.executable, "-c", TRANSFER, "listen", server_direction, address],
        stdout=subprocess.PIPE,
    )
    assert listener.stdout is not None
    assert listener.stdout.readline().strip() == b"listening"
    completed = network.run(
        client, [sys.executable, "-c", TRANSFER, "connect", client_direction, address], timeout=30
    )
    out, _ = listener.communicate(timeout=30)
    return float((out if up else completed.stdout).decode().strip())


def test_rate_limit_caps_each_direction_near_the_limit(tmp_path: Path) -> None:
    scenario, conditions = office()
    with LabNetwork(scenario.topology, conditions, tmp_path) as network:
        unlimited = throughput_kbit(network, "viewer", "signaling", SIGNALING, up=True)
    scenario, conditions = office(Impairments("eth0", rate_kbit=2000))
    with LabNetwork(scenario.topology, conditions, tmp_path) as network:
        upload = throughput_kbit(network, "viewer", "signaling", SIGNALING, up=True)
        download = throughput_kbit(network, "viewer", "signaling", SIGNALING, up=False)
    print(f"unlimited {unlimited:.0f} kbit/s, upload {upload:.0f}, download {download:.0f}")
    assert unlimited > 50_000
    # TCP payload under a 2000 kbit/s token bucket: a little under the limit.
    assert 1500 <= upload <= 2200, upload
    assert 1500 <= download <= 2200, download


def test_loss_and_rate_together_on_one_interface(tmp_path: Path) -> None:
    both = Impairments("eth0", loss_percent=10, rate_kbit=4000)
    scenario, conditions = office(both)
    with LabNetwork(scenario.topology, conditions, tmp_path) as network:
        qdiscs = network.run("viewer", ["tc", "qdisc", "show"]).stdout.decode()
        assert "tbf" in qdiscs and "ifb-eth0" in qdiscs
        # Arriving packets pass the ingress hook once, not once more after the ifb.
        loss = ping_loss(network, "viewer", SIGNALING)
        print(f"10 % loss both ways with 4000 kbit/s: {loss:.1f} % of pings lost")
        assert 10 <= loss <= 29, loss  # 1 - 0.9 * 0.9 = 19 %


UDP_PROBE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for attempt in range(3):
    s.sendto(b"ping", (sys.argv[1], 7))
    try:
        s.recvfrom(100)
        print("answered")
        break
    except OSError:
        continue
else:
    print("nothing")
"""

UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 7))  # replies leave from the address asked
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(100)
    s.sendto(data, peer)
"""


def udp_answered(network: LabNetwork, node: str, address: str) -> bool:
    completed = network.run(node, [sys.executable, "-c", UDP_PROBE, address], timeout=10)
    return completed.stdout.decode().strip() == "answered"


def test_allowlist_lets_the_named_hosts_through_and_drops_the_rest(tmp_path: Path) -> None:
    scenario = load_scenario("enterprise-firewall")
    addresses = {n: scenario.topology.node(n).addresses for n in scenario.topology.nodes}
    policy = firewall_from_spec(
        {"preset": "allowlist", "allow_hosts": ["turn", "signaling"]},
        lambda where, host: addresses[host],
    )
    scenario, conditions = office(firewall=policy)
    with LabNetwork(scenario.topology, conditions, tmp_path) as network:
        for node in ("turn", "signaling", "home-gw"):
            for address in scenario.topology.node(node).addresses:
                echo = network.popen(
                    node, [sys.executable, "-c", UDP_ECHO, address], stdout=subprocess.PIPE
                )
                assert echo.stdout is not None and echo.stdout.readline().strip() == b"ready"
        time.sleep(0.1)
        assert udp_answered(network, "viewer", TURN)
        assert udp_answered(network, "viewer", "203.0.113.11")  # every address of turn
        assert udp_answered(network, "viewer", SIGNALING)
        assert not udp_answered(network, "viewer", HOME_GW)
        # The home router is not behind the allowlist: it reaches the same echo servers.
        assert network.run("master", ["ping", "-c", "1", "-W", "1", TURN]).returncode == 0
        assert network.run("viewer", ["ping", "-c", "1", "-W", "1", HOME_GW]).returncode != 0


DELAYED = """name: delayed-uplink
description: the viewer's uplink adds 40 ms each way, through netem
topology: two-homes
conditions:
  viewer-gw:
    nat: port-restricted-cone
    impairments: {delay_ms: 40, jitter_ms: 5, mechanism: netem}
peers:
  viewer: {host: viewer}
  master: {host: master}
expect: {outcome: connected}
"""


@pytest.mark.skipif(netem_available(), reason="this kernel has netem: the run would go ahead")
def test_netem_without_netem_exits_2_naming_sch_netem_and_builds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "delayed-uplink.yaml"
    path.write_text(DELAYED)
    before = leftovers()
    completed = lab("run", str(path))
    output = completed.stdout + completed.stderr
    assert completed.returncode == 2, output
    assert f"{path}: conditions.viewer-gw.impairments.mechanism: netem needs" in output
    assert "sch_netem" in output and "delay line" in output and "Vagrant VM" in output
    assert len(output.strip().splitlines()) == 1, output
    after = leftovers()  # other runs may be going on: compare with before
    assert set(after["shells"]) <= set(before["shells"])
    assert set(after["run_dirs"]) <= set(before["run_dirs"])


def test_lossy_link_meets_its_expectations(tmp_path: Path) -> None:
    status, result, output = run_scenario(tmp_path, "lossy-link")
    assert status == 0 and result["expectations_met"], output
    assert leftovers()["shells"] == []
