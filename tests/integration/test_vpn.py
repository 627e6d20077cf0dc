"""A real WireGuard tunnel (root): the viewer's traffic leaves from the VPN exit, the home
NAT sees only WireGuard's UDP, and neither a run nor `lab clean` after a killed run
leaves a wireguard-go process or its socket behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.core.processes import is_same_process, start_time
from lab.network.build import LabNetwork, namespace_members, namespaces_of
from lab.network.vpn import SOCKET_DIR, TUNNEL_PREFIX, socket_path
from lab.scenario.scenario import load_scenario

from .helpers import LAB, lab, leftovers

pytestmark = pytest.mark.root

RECEIVE = (
    "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
    "s.bind(('203.0.113.20',5000));s.settimeout(2.0)\n"
    "try:\n print(s.recvfrom(100)[1][0])\nexcept socket.timeout:\n print('nothing')"
)
SEND = (
    "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
    "s.sendto(b'hello',('203.0.113.20',5000))"
)


def _source_seen_by_signaling(network: LabNetwork) -> str:
    """Where a datagram from the viewer comes from, as the signaling host sees it."""
    receiver = network.popen("signaling", [sys.executable, "-c", RECEIVE], stdout=subprocess.PIPE)
    time.sleep(0.3)
    network.run("viewer", [sys.executable, "-c", SEND])
    out, _ = receiver.communicate(timeout=5)
    return out.decode().strip()


def _udp_flows(network: LabNetwork, node: str) -> list[str]:
    listed = network.run(node, ["conntrack", "-L", "-p", "udp"])
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.decode().splitlines()


def test_the_tunnel_carries_the_viewers_traffic_out_of_the_vpn_exit(tmp_path: Path) -> None:
    scenario = load_scenario("vpn-viewer")
    with LabNetwork(scenario.topology, scenario.conditions, tmp_path) as network:
        (planned,) = network.tunnels
        wireguard = list(network.tunnel_processes)
        namespaces = namespaces_of(p.pid for p in wireguard)
        assert len(namespaces) == 2  # the viewer's and the concentrator's
        assert _source_seen_by_signaling(network) == "203.0.113.34"  # the exit, not 198.51.100.2
        home = _udp_flows(network, "viewer-gw")
        assert home and all("dst=203.0.113.34" in f and "dport=51820" in f for f in home), home
        exit_flows = _udp_flows(network, "vpn-gw")
        assert any("src=10.200.0.2 dst=203.0.113.20" in f and "dport=5000" in f for f in exit_flows)
        link = network.run("viewer", ["ip", "-o", "link", "show", planned.client_interface])
        assert " mtu 1420 " in link.stdout.decode()
        # A full-size packet for the tunnel's MTU crosses (1420 inside, 1500 outside)...
        ping = ["ping", "-c", "1", "-W", "2", "-M", "do", "-s"]
        assert network.run("viewer", [*ping, "1392", "203.0.113.20"]).returncode == 0
        # ...one byte more does not: the tunnel's MTU, not the LAN's, bounds the viewer.
        assert b"mtu=1420" in network.run("viewer", [*ping, "1393", "203.0.113.20"]).stderr
    assert all(p.poll() is not None for p in wireguard)
    assert not socket_path(planned.client_interface).exists()
    assert not socket_path(planned.server_interface).exists()
    assert namespace_members(namespaces) == []


def _new_sockets(before: set[Path]) -> set[Path]:
    return set(SOCKET_DIR.glob(f"{TUNNEL_PREFIX}*.sock")) - before if SOCKET_DIR.is_dir() else set()


def _wireguard_pids(sockets: set[Path]) -> dict[int, int | None]:
    """Pid -> start time of the wireguard-go processes serving these sockets' tunnels."""
    names = {p.stem for p in sockets}
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"wireguard-go") and argv[1].decode() in names:
                found[int(entry.name)] = start_time(int(entry.name))
    return found


def test_lab_clean_removes_the_tunnels_of_a_killed_run() -> None:
    before = set(SOCKET_DIR.glob(f"{TUNNEL_PREFIX}*.sock")) if SOCKET_DIR.is_dir() else set()
    process = subprocess.Popen(
        [*LAB, "run", "vpn-viewer", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while len(sockets := _new_sockets(before)) < 2:
        assert process.poll() is None and time.monotonic() < deadline, "no tunnel came up"
        time.sleep(0.01)
    pids = _wireguard_pids(sockets)
    assert len(pids) == 2 and process.poll() is None
    namespaces = namespaces_of(pids)
    process.send_signal(signal.SIGKILL)  # no tear-down at all
    process.wait(timeout=10)
    assert all(is_same_process(pid, start) for pid, start in pids.items())  # still running
    time.sleep(0.5)  # the namespaces' shells exit with their stdin
    cleaned = lab("clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert "WireGuard socket(s)" in cleaned.stdout  # ours, and any another killed run left
    assert not any(is_same_process(pid, start) for pid, start in pids.items())
    assert not any(path.exists() for path in sockets)
    assert namespace_members(namespaces) == []
    assert leftovers()["run_dirs"] == []
