"""Names, not addresses, on the real network (root): a host behind a NAT resolves the
service's names through the run's dnsmasq, in a mount namespace of its own (the machine's
resolv.conf untouched); split DNS and wrong answers reach the hosts they should; a firewall
allows by name from the addresses its resolver handed out; runs connect with named
STUN/TURN/signaling URLs, and the broken-DNS scenarios fail the way they say; nothing
(dnsmasq, mount namespaces, files) survives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lab.core.lifecycle import run_directory
from lab.network.build import LabNetwork
from lab.run.hands_on.state import read_state
from lab.scenario.dns import ServiceNames
from lab.scenario.scenario import load_scenario
from lab.servers.launch import start_servers

from .helpers import LAB, lab, run_scenario

pytestmark = pytest.mark.root
NAMES = ServiceNames.for_region("us-west-2")


@contextmanager
def network_with_servers(scenario_name: str, **dns: Any) -> Iterator[tuple[LabNetwork, Path]]:
    """The scenario's network and servers (DNS included), torn down on leaving."""
    scenario = load_scenario(scenario_name)
    if dns:
        from dataclasses import replace

        from lab.scenario.dns import dns_from_spec

        spec = {**scenario.document.get("dns", {}), **dns}  # the scenario's, and more
        scenario = replace(scenario, dns=dns_from_spec(spec, lambda f, m: AssertionError(m)))
    with (
        run_directory(keep=False) as workdir,
        LabNetwork(scenario.topology, scenario.conditions, workdir) as network,
    ):
        start_servers(network, scenario, workdir, "coturn")
        yield network, workdir


def resolve(network: LabNetwork, host: str, name: str) -> str | None:
    """The address `getent` (glibc, as every client) finds for `name` on `host`."""
    completed = network.run(host, ["getent", "ahostsv4", name], timeout=10)
    return completed.stdout.decode().split()[0] if completed.returncode == 0 else None


def mount_namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/mnt")


def processes_in(namespaces: set[str]) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if mount_namespace(int(entry)) in namespaces:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def test_hosts_resolve_service_names_through_the_lab_dns_and_nothing_stays() -> None:
    machine_resolv = Path("/etc/resolv.conf").read_bytes()
    with network_with_servers("split-dns-office", wrong_answer={NAMES.https: "192.0.2.99"}) as (
        network,
        workdir,
    ):
        # The master's home NAT in between: the public server, by name.
        assert resolve(network, "master", NAMES.wss) == "203.0.113.20"
        assert resolve(network, "master", NAMES.stun) == "203.0.113.10"
        assert resolve(network, "master", NAMES.turn("203.0.113.11")) == "203.0.113.11"
        assert resolve(network, "master", NAMES.https) == "192.0.2.99"  # the wrong answer
        assert resolve(network, "master", "www.example.com") is None  # NXDOMAIN
        # The office's own resolver does not know the service (split DNS).
        assert resolve(network, "viewer", NAMES.wss) is None
        completed = network.run("viewer", ["cat", "/etc/resolv.conf"])
        assert "nameserver 10.10.0.1" in completed.stdout.decode()
        dnsmasqs = [p for p in network.processes if "dnsmasq" in str(getattr(p, "args", ""))]
        assert len(dnsmasqs) == 2  # public, and the office's
        namespaces = {mount_namespace(p.pid) for p in dnsmasqs}
        assert mount_namespace(os.getpid()) not in namespaces  # private, not the machine's
        assert Path("/etc/resolv.conf").read_bytes() == machine_resolv
        ours = [p.pid for p in network.processes] + [h.pid for h in network.hosts.values()]
    assert all(p.poll() is not None for p in dnsmasqs)
    assert not [pid for pid in ours if Path(f"/proc/{pid}").exists()]
    assert processes_in(namespaces) == []
    assert not workdir.exists()
    assert Path("/etc/resolv.conf").read_bytes() == machine_resolv


def test_a_firewall_allows_by_name_what_its_resolver_answered() -> None:
    with network_with_servers("allowlist-by-name") as (network, _):

        def allowed() -> str:
            listing = network.run("office-gw", ["nft", "list", "set", "inet", "icelab_filter",
                                                "outbound_names_0"])  # fmt: skip
            return listing.stdout.decode()

        def https(url: str) -> int:
            script = (
                "import socket, sys; s = socket.socket(); s.settimeout(2); "
                f"sys.exit(s.connect_ex(('{url}', 443)))"
            )
            return network.run("viewer", ["python3", "-c", script], timeout=10).returncode

        assert "203.0.113.20" not in allowed()
        assert https("203.0.113.20") != 0  # by address, before any name: dropped
        assert resolve(network, "viewer", NAMES.wss) == "203.0.113.20"
        assert "203.0.113.20" in allowed()  # the resolver's answer opened the rule
        assert https("203.0.113.20") == 0


def test_a_run_connects_by_names_and_split_dns_fails_as_it_says(tmp_path: Path) -> None:
    completed = lab("run", "allowlist-by-name", "--keep", "--json", str(tmp_path / "r.json"))
    output = completed.stdout + completed.stderr
    kept = next((ln.split(": ", 1)[1] for ln in output.splitlines() if "kept" in ln), None)
    try:
        assert completed.returncode == 0, output
        assert json.loads((tmp_path / "r.json").read_text())["outcome"] == "connected"
        assert kept is not None
        config = json.loads((Path(kept) / "viewer.config.json").read_text())
        assert config["signaling_url"].startswith(f"wss://{NAMES.wss}/?")
        urls = [url for server in config["ice_servers"] for url in server["urls"]]
        assert urls[0] == f"stun:{NAMES.stun}:443"
        assert f"turns:{NAMES.turn('203.0.113.10')}:443?transport=tcp" in urls
        log = (Path(kept) / "dnsmasq-office-gw.log").read_text()
        assert "nftset add 4 inet icelab_filter outbound_names_0 203.0.113.10" in log
    finally:
        if kept:
            shutil.rmtree(kept, ignore_errors=True)

    status, result, output = run_scenario(tmp_path, "split-dns-office")
    assert status == 0, output  # its expectations are met: it fails
    assert result["outcome"] == "failed"
    assert "Name or service not known" in result["peers"]["viewer"]["error"]
    assert result["peers"]["master"].get("error") != result["peers"]["viewer"]["error"]


def test_lab_exec_resolves_through_the_lab_dns() -> None:
    """`lab exec` (and `lab up`'s shells) get the host's resolv.conf too."""
    if read_state() is not None:
        pytest.skip("a `lab up` network is already up on this machine (not the tests')")
    started = lab("up", "stun-name-missing", timeout=90)
    state = read_state()
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        found = lab("exec", "viewer", "--", "getent", "ahostsv4", NAMES.control_plane)
        assert found.returncode == 0 and found.stdout.startswith("203.0.113.20"), found.stderr
        missing = lab("exec", "viewer", "--", "getent", "ahostsv4", NAMES.stun)
        assert missing.returncode == 2  # NXDOMAIN, as the scenario says
    finally:
        down = subprocess.run([*LAB, "down"], capture_output=True, text=True, timeout=60)
        assert down.returncode == 0, down.stderr
    assert state is not None
    assert not [h for h in state["hosts"] if Path(f"/proc/{h['shell_pid']}").exists()]
    assert not Path(state["run_directory"]).exists()
