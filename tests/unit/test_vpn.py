"""VPN tunnels: the topology's `vpns` block, what configures each end, the concentrator's
NAT, and the expectation on candidate addresses (pure: no root)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.core.errors import LabInputError
from lab.network.build import render_node_setup
from lab.network.nat import nat_from_spec, render_nat
from lab.network.topology import load_topology
from lab.network.vpn import (
    TUNNEL_PREFIX,
    client_commands,
    plan_tunnels,
    remove_stale_sockets,
    server_commands,
)
from lab.observations.ice import CandidatePair
from lab.report.expectations import evaluate
from lab.report.result import RunResult, load_result
from lab.scenario.scenario import load_scenario
from tests.result_docs import typed

ROOT = Path(__file__).resolve().parents[2]


def test_the_bundled_vpn_topology_tunnels_the_viewer_to_the_concentrator() -> None:
    (tunnel,) = load_topology("vpn").vpns
    assert (tunnel.client, tunnel.server, str(tunnel.endpoint)) == (
        "viewer",
        "vpn-gw",
        "203.0.113.34",
    )
    assert (str(tunnel.server_address), str(tunnel.client_address)) == (
        "10.200.0.1/24",
        "10.200.0.2/24",
    )
    assert tunnel.full and tunnel.mtu == 1420
    assert load_topology("vpn").resolved()["vpns"][0]["endpoint"] == "203.0.113.34:51820"
    assert "vpns" not in load_topology("two-homes").resolved()


def test_tunnel_interfaces_are_unique_to_a_run_and_fit_a_linux_name() -> None:
    tunnels = load_topology("vpn").vpns
    (first,), (second,) = plan_tunnels(tunnels), plan_tunnels(tunnels)
    assert first.client_interface != second.client_interface
    for name in (first.client_interface, first.server_interface):
        assert name.startswith(TUNNEL_PREFIX) and len(name) <= 15


def test_the_client_routes_everything_through_the_tunnel_but_the_tunnel_itself() -> None:
    (planned,) = plan_tunnels(load_topology("vpn").vpns, token="abc123")
    commands = client_commands(
        planned, Path("/run/k"), "PUB=", load_topology("vpn").node("viewer").gateway
    )  # type: ignore[arg-type]
    assert commands[0] == (
        "wg set icewgabc1230c private-key /run/k peer PUB= endpoint 203.0.113.34:51820 "
        "allowed-ips 0.0.0.0/0 persistent-keepalive 25"
    )
    assert "ip route add 203.0.113.34/32 via 192.168.2.1" in commands  # WireGuard's own UDP
    assert commands[-1] == "ip route replace 0.0.0.0/0 dev icewgabc1230c"
    server = server_commands(planned, Path("/run/s"), "CPUB=")
    assert "allowed-ips 10.200.0.2/32" in server[0]  # only the client's tunnel address
    assert "ip link set icewgabc1230s mtu 1420 up" in server


def test_the_concentrator_nats_its_tunnel_and_lets_wireguard_in() -> None:
    scenario = load_scenario("vpn-viewer")
    tunnels = plan_tunnels(scenario.topology.vpns, token="abc123")
    node = scenario.topology.node("vpn-gw")
    ruleset = render_node_setup(node, scenario.conditions["vpn-gw"], tunnels=tunnels).ruleset
    accept = ruleset.index('iifname "eth0" udp dport { 51820 } accept')
    assert accept < ruleset.index('iifname "eth0" ct state new drop')
    assert 'iifname "icewgabc1230s" ip daddr 203.0.113.34' in ruleset  # an inside interface
    home = render_node_setup(scenario.topology.node("viewer-gw"), scenario.conditions["viewer-gw"])
    assert "51820" not in home.ruleset
    plain = render_nat(nat_from_spec("symmetric", "x"), "eth0", "203.0.113.34", [])  # type: ignore[arg-type]
    assert "dport" not in plain


def _topology(tmp_path: Path, change: dict[str, Any]) -> str:
    document = yaml.safe_load((ROOT / "topologies" / "vpn.yaml").read_text())
    document["vpns"][0].update(change)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"server": "nowhere"}, "vpns[0].server", "no node named 'nowhere'"),
        ({"server": "internet"}, "vpns[0].server", "is a router; a concentrator is a `nat` node"),
        ({"server": "viewer"}, "vpns[0].server", "cannot be its own concentrator"),
        ({"client": "viewer-gw"}, "vpns[0].client", "is a nat, not a host"),
        ({"client": "turn", "server": "vpn-gw"}, None, None),
        ({"addresses": "8.8.8.0/24"}, "vpns[0].addresses", "outside the lab's ranges"),
        ({"addresses": "10.200.0.0/31"}, "vpns[0].addresses", "room for two hosts"),
        ({"addresses": "10.200.0.1/24"}, "vpns[0].addresses", "has host bits set"),
        ({"routes": ["10.0.0.300/8"]}, "vpns[0].routes[0]", "Octet 300"),
        ({"routes": ["10.0.0.0/8", "8.8.8.0/24"]}, "vpns[0].routes[1]", "outside the lab's ranges"),
    ],
)
def test_a_bad_vpn_entry_names_the_file_and_field(
    tmp_path: Path, change: dict[str, Any], field: str | None, words: str | None
) -> None:
    path = _topology(tmp_path, change)
    if field is None:  # a server host may have a VPN too
        assert load_topology(path).vpns[0].client == "turn"
        return
    with pytest.raises(LabInputError) as raised:
        load_topology(path)
    assert str(raised.value).startswith(f"{path}: {field}: ") and words in str(raised.value)


def test_a_client_with_two_vpns_is_refused(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "topologies" / "vpn.yaml").read_text())
    document["vpns"].append({"client": "viewer", "server": "master-gw"})
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(LabInputError, match=r"vpns\[1\].client: 'viewer' has a VPN already"):
        load_topology(str(path))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mtu": 9000}, "vpns[0].mtu"),
        ({"port": 1}, "vpns[0]"),
        ({"routes": "0.0.0.0/0"}, "vpns[0].routes"),
    ],
)
def test_the_schema_refuses_what_the_lab_cannot_build(
    tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    path = _topology(tmp_path, change)
    validated = subprocess.run(
        [sys.executable, "-m", "lab", "validate", path], capture_output=True, text=True
    )
    assert validated.returncode == 2
    assert f"{path}: {field}" in validated.stderr


def _result(candidates: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "outcome": "connected",
        "network": {"nodes": {"vpn-gw": {"addresses": ["203.0.113.34"]}}},
        "peers": {"viewer": {"candidates": [{"type": t, "address": a} for t, a in candidates]}},
    }


@pytest.mark.parametrize(
    ("candidates", "met"),
    [
        ([("srflx", "203.0.113.34"), ("host", "10.200.0.2")], True),
        ([("srflx", "198.51.100.2")], False),  # the home router's: the tunnel carried nothing
        ([("srflx", "203.0.113.34"), ("srflx", "198.51.100.2")], False),
        ([("host", "10.200.0.2")], False),  # no srflx at all
    ],
)
def test_candidate_addresses_are_exactly_the_named_ones(
    candidates: list[tuple[str, str]], met: bool
) -> None:
    expect = {"outcome": "connected", "candidate_addresses": {"viewer": {"srflx": ["vpn-gw"]}}}
    (_, check) = evaluate(expect, typed(_result(candidates)))
    assert check.met is met


def test_every_named_host_address_must_be_taken() -> None:
    expect = {
        "outcome": "connected",
        "candidate_addresses": {"viewer": {"host": ["192.168.2.10", "10.200.0.2"]}},
    }
    (_, check) = evaluate(expect, typed(_result([("host", "10.200.0.2")])))  # Chromium's, say
    assert not check.met and check.observed == ["10.200.0.2"]


def test_an_unknown_node_in_candidate_addresses_names_the_field(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "scenarios" / "vpn-viewer.yaml").read_text())
    document["expect"]["candidate_addresses"]["viewer"]["srflx"] = ["vpn-gww"]
    document["topology"] = str(ROOT / "topologies" / "vpn.yaml")
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(
        LabInputError, match=r"expect.candidate_addresses.viewer.srflx\[0\]: no node 'vpn-gww'"
    ):
        load_scenario(str(path))


def test_only_sockets_nobody_answers_on_are_removed(tmp_path: Path, monkeypatch: Any) -> None:
    import socket

    monkeypatch.setattr("lab.network.vpn.SOCKET_DIR", tmp_path)
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(tmp_path / f"{TUNNEL_PREFIX}live0c.sock"))
    live.listen()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(tmp_path / f"{TUNNEL_PREFIX}dead0c.sock"))
    dead.close()  # the file stays, as after a SIGKILL
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(tmp_path / "wg0.sock"))  # not the lab's
    other.close()
    try:
        assert remove_stale_sockets() == [str(tmp_path / f"{TUNNEL_PREFIX}dead0c.sock")]
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            f"{TUNNEL_PREFIX}live0c.sock",
            "wg0.sock",
        ]
    finally:
        live.close()


RESULT = Path(__file__).parent / "fixtures" / "vpn-viewer-result.json"


def _explained(title: str) -> list[str]:
    from lab.report.explain import explain

    result = load_result(RESULT)
    return next(s.lines for s in explain(result) if s.title == title)


def test_explain_puts_the_viewer_behind_its_vpn_exit_not_its_home_router() -> None:
    network = _explained("The network")
    assert any(x.startswith("vpn-gw (the viewer's side) is a symmetric") for x in network)
    assert any(x.startswith("viewer-gw is a port-restricted-cone") for x in network)  # no side
    assert any("viewer has a WireGuard VPN up: everything it sends" in x for x in network)
    candidates = _explained("Why each candidate exists")
    assert any("srflx" in x and "as mapped by vpn-gw" in x for x in candidates)
    assert any("10.200.0.2" in x and "VPN tunnel interface" in x for x in candidates)


def test_explain_says_the_lan_addresss_checks_die_in_the_tunnel() -> None:
    failures = _explained("Why pairs failed")
    lost = [x for x in failures if "LAN address 192.168.2.10" in x]
    assert lost and all(x.startswith("viewer: host ->") for x in lost)
    assert all("vpn-gw drops them" in x for x in lost)
    # the tunnel address's own failed checks keep their NAT reasons
    direct = [x for x in failures if x.startswith("viewer: host -> the other's srflx")]
    assert any("vpn-gw's symmetric mapping" in x for x in direct)


def _split_result() -> RunResult:
    vpn = load_topology("vpn-office").resolved()["vpns"][0]
    return typed({"network": {"vpns": [vpn]}, "peers": {"viewer": {"host": "viewer"}}})


def _check(local: str, remote: str) -> CandidatePair:
    return CandidatePair.from_json(
        {
            "agent": "viewer",
            "local": {"type": "host", "protocol": "udp", "address": local, "port": 5000},
            "remote": {"type": "host", "protocol": "udp", "address": remote, "port": 5000},
            "state": "failed",
            "nominated": False,
            "rtt_ms": None,
            "failure": {"reason": "timeout"},
        }
    )


@pytest.mark.parametrize(
    ("local", "remote", "words"),
    [
        ("192.168.2.10", "10.20.0.10", "LAN address 192.168.2.10, and its VPN routes 10.20.0.10"),
        ("10.200.0.2", "203.0.113.10", "its split tunnel does not carry 203.0.113.10"),
        ("10.200.0.2", "10.20.0.10", None),  # the way that works: no VPN reason
        ("192.168.2.10", "203.0.113.10", None),  # past the split tunnel, as without a VPN
    ],
)
def test_a_split_tunnel_explains_which_address_goes_which_way(
    local: str, remote: str, words: str | None
) -> None:
    from lab.report.explain import failure_reason

    reason = failure_reason(_check(local, remote), _split_result(), {})
    assert ("tunnel" not in reason) if words is None else (words in reason)


def test_a_split_tunnel_client_reaches_its_concentrator_too() -> None:
    (planned,) = plan_tunnels(load_topology("vpn-office").vpns, token="abc123")
    commands = client_commands(
        planned, Path("/k"), "PUB=", load_topology("vpn").node("viewer").gateway
    )  # type: ignore[arg-type]
    assert "allowed-ips 10.20.0.0/16,10.200.0.1/32 " in commands[0]
    assert commands[-1] == "ip route replace 10.20.0.0/16 dev icewgabc1230c"


def test_a_node_script_runs_with_set_e_and_a_failure_says_what_and_why() -> None:
    """LabNetwork.run_script, which the tunnels' and NAT64's configuration go through."""
    import subprocess
    from types import SimpleNamespace

    from lab.core.errors import LabRunError
    from lab.network.build import LabNetwork

    scripts: list[list[str]] = []

    def run(node: str, args: list[str]) -> subprocess.CompletedProcess[bytes]:
        scripts.append(args)
        return subprocess.CompletedProcess(args, 2, b"", b"RTNETLINK answers: File exists\n")

    network = SimpleNamespace(run=run)
    with pytest.raises(LabRunError, match="^configuring x failed: RTNETLINK answers: File exists$"):
        LabNetwork.run_script(
            network, "viewer", ["ip link add a", "wg set a"], "configuring x failed"
        )
    assert scripts == [["sh", "-c", "set -e\nip link add a\nwg set a"]]
