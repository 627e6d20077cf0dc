"""Issue 11 on real networks: Chromium peers in the lab's namespaces, observed through
getStats(), beside aiortc peers; nothing of a browser survives a run (root)."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .helpers import LAB, lab, leftovers, run_scenario

pytestmark = pytest.mark.root
CLEAN = {"shells": [], "run_dirs": [], "turnservers": []}
BROWSER_STATES = {"succeeded", "failed", "in-progress", "waiting", "frozen"}


def lab_browsers() -> list[int]:
    """Pids of browsers the lab started: their profiles live in its run directories."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if b"--user-data-dir=/run/ice-lab/" in command:
            found.append(int(entry))
    return found


def chromium_version() -> str:
    output = subprocess.run(["chromium", "--version"], capture_output=True, text=True).stdout
    return output.split()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, dict, str]]:
    tmp = tmp_path_factory.mktemp("chromium")
    both = ("--viewer", "chromium", "--master", "chromium")
    return {
        "home": run_scenario(tmp, "home-nat-both", *both),
        "symmetric": run_scenario(tmp, "symmetric-both", "--viewer", "chromium"),
        "udp-blocked": run_scenario(tmp, "udp-blocked-both", *both),
        "bad-cert": run_scenario(tmp, "turn-tls-bad-certificate", "--viewer", "chromium"),
        "same-lan": run_scenario(tmp, "same-lan", *both),
        "revealed": run_scenario(tmp, "same-lan", *both, "--reveal-host-addresses"),
    }


def test_home_routers_connect_two_browsers_with_a_reflexive_pair(runs: dict) -> None:
    status, result, output = runs["home"]
    assert status == 0 and result["outcome"] == "connected", output
    for role in ("viewer", "master"):
        assert result["selected"][role]["local"]["type"] in {"srflx", "prflx"}
        assert result["selected"][role]["remote"]["type"] in {"srflx", "prflx"}


def test_each_result_names_the_browser_that_ran(runs: dict) -> None:
    version = chromium_version()
    for name in ("home", "udp-blocked", "same-lan"):
        peers = runs[name][1]["peers"]
        for role in ("viewer", "master"):
            assert peers[role]["agent"] == "chromium"
            assert peers[role]["software"]["name"] == "chromium"
            assert peers[role]["software"]["version"] == version
    master = runs["symmetric"][1]["peers"]["master"]
    assert master["agent"] == "aiortc" and master["software"]["name"] == "aiortc"


def test_browser_pairs_come_from_getstats_with_honest_states(runs: dict) -> None:
    pairs = runs["home"][1]["pairs"]
    assert pairs and {p["state"] for p in pairs} <= BROWSER_STATES
    assert any(p["nominated"] and p["state"] == "succeeded" for p in pairs)
    for p in pairs:
        assert isinstance(p["checks_sent"], int) and isinstance(p["responses_received"], int)
        if p["state"] in {"in-progress", "waiting", "frozen"}:
            assert p["note"], p  # still checking, or never checked: said so


def test_a_browser_viewer_meets_an_aiortc_master_through_a_relay(runs: dict) -> None:
    status, result, output = runs["symmetric"]
    assert status == 0 and result["outcome"] == "connected", output
    selected = result["selected"]["viewer"]
    assert "relay" in {selected["local"]["type"], selected["remote"]["type"]}


def test_udp_blocked_browsers_relay_over_tcp_or_tls(runs: dict) -> None:
    status, result, output = runs["udp-blocked"]
    assert status == 0 and result["outcome"] == "connected", output
    assert result["selected"]["viewer"]["local"]["type"] == "relay"
    assert result["selected"]["viewer"]["local"]["relay_protocol"] in {"tcp", "tls"}
    assert not [c for c in result["peers"]["viewer"]["candidates"] if c["type"] == "srflx"]


def test_browser_refuses_a_turn_certificate_it_cannot_verify(runs: dict) -> None:
    status, result, output = runs["bad-cert"]
    assert status == 0 and result["outcome"] == "failed", output
    viewer = result["peers"]["viewer"]
    assert not [c for c in viewer["candidates"] if c["type"] == "relay"]
    errors = [e for e in viewer["gathering_errors"] if e["url"].startswith("turns:")]
    assert errors and errors[0]["reason"].startswith("701"), viewer["gathering_errors"]


def test_same_lan_browsers_connect_host_to_host_through_mdns_names(runs: dict) -> None:
    status, result, output = runs["same-lan"]
    assert status == 0 and result["outcome"] == "connected", output
    for role in ("viewer", "master"):
        assert result["peers"][role]["host_addresses"] == "mdns"
        selected = result["selected"][role]
        assert selected["local"]["type"] == selected["remote"]["type"] == "host"
        assert selected["local"]["address"].endswith(".local")
        assert selected["remote"]["address"].endswith(".local")


def test_home_routers_keep_mdns_names_from_crossing(runs: dict) -> None:
    viewer = runs["home"][1]["peers"]["viewer"]
    assert [c for c in viewer["candidates"] if c.get("mdns")]
    unresolved = viewer["unresolved_remote_candidates"]
    assert unresolved and all(c["address"].endswith(".local") for c in unresolved)


def test_revealed_host_addresses_are_real_ones(runs: dict) -> None:
    status, result, output = runs["revealed"]
    assert status == 0 and result["outcome"] == "connected", output
    for role in ("viewer", "master"):
        assert result["peers"][role]["host_addresses"] == "revealed"
        selected = result["selected"][role]
        for side in ("local", "remote"):
            assert ipaddress.ip_address(selected[side]["address"]).is_private


def test_no_browser_profile_or_namespace_outlives_the_runs(runs: dict) -> None:
    assert lab_browsers() == []
    assert leftovers() == CLEAN


def _start_long_browser_run() -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            *LAB,
            "run",
            "turn-tls-bad-certificate",
            "--viewer",
            "chromium",
            "--master",
            "chromium",
            "--timing",
            "kvs",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while len(lab_browsers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(lab_browsers()) >= 2, "the browsers never started"
    return process


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_signal_mid_call_leaves_no_browser(sig: signal.Signals) -> None:
    process = _start_long_browser_run()
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 128 + sig, stderr  # 143 for SIGTERM, 130 for Ctrl-C
    assert lab_browsers() == []
    assert leftovers() == CLEAN


def test_lab_clean_kills_the_browsers_of_a_killed_run() -> None:
    process = _start_long_browser_run()
    process.kill()
    process.communicate(timeout=10)
    completed = lab("clean")
    assert completed.returncode == 0, completed.stderr
    assert lab_browsers() == []
    assert leftovers() == CLEAN


def test_unknown_agent_is_bad_input() -> None:
    completed = lab("run", "home-nat-both", "--viewer", "safari")
    assert completed.returncode == 2
    assert "--viewer" in completed.stderr
    assert leftovers() == CLEAN
