"""Issue 3 on real runs: every pair final with a reason, all TURN URLs, the service's ICE
server shape, NAT traversal modes, KVS status codes and log lines (root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.scenario.dns import ServiceNames

from .helpers import lab, run_scenario

pytestmark = pytest.mark.root
FINAL = {"succeeded", "failed"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, dict, str]]:
    tmp = tmp_path_factory.mktemp("ice")
    return {
        "enterprise": run_scenario(tmp, "enterprise-firewall"),
        "symmetric": run_scenario(tmp, "symmetric-viewer"),
        "kvs": run_scenario(tmp, "enterprise-firewall-kvs"),
        "turn-only": run_scenario(tmp, "enterprise-firewall", "--mode", "turn-only"),
        "disabled": run_scenario(tmp, "enterprise-firewall", "--mode", "disabled"),
    }


@pytest.mark.parametrize("name", ["enterprise", "symmetric"])
def test_every_pair_is_final_and_failures_have_reasons(runs: dict, name: str) -> None:
    _, result, output = runs[name]
    assert result["outcome"] == "connected", output
    pairs = result["pairs"]
    assert pairs and {p["state"] for p in pairs} <= FINAL
    failed = [p for p in pairs if p["state"] == "failed"]
    assert failed, "these networks always have pairs that cannot work"
    for pair in failed:
        assert pair["failure"]["reason"] in {"timeout", "icmp_unreachable", "turn_error", "policy"}
        assert pair["failure"]["message"]
    for pair in pairs:
        assert isinstance(pair["priority"], int) and pair["priority"] > 0
        assert pair["checks_sent"] >= 1
        if pair["state"] == "succeeded":
            assert pair["responses_received"] >= 1 and pair["rtt_ms"] is not None


def test_both_agents_select_the_same_pair(runs: dict) -> None:
    for name in ("enterprise", "symmetric"):
        selected = runs[name][1]["selected"]
        viewer, master = selected["viewer"], selected["master"]
        assert (viewer["local"]["address"], viewer["local"]["port"]) == (
            master["remote"]["address"],
            master["remote"]["port"],
        )


def test_symmetric_nat_gives_a_new_peer_reflexive_mapping_per_destination(runs: dict) -> None:
    result = runs["symmetric"][1]
    selected = result["selected"]["viewer"]
    assert "relay" in (selected["local"]["type"], selected["remote"]["type"])
    prflx = {
        (p["local"]["address"], p["local"]["port"])
        for p in result["pairs"]
        if p["agent"] == "viewer" and p["local"]["type"] == "prflx"
    }
    assert len(prflx) >= 2


def test_service_shaped_servers_give_relays_over_several_protocols(runs: dict) -> None:
    status, result, output = runs["kvs"]
    assert status == 0, output
    master = result["peers"]["master"]
    relays = [c for c in master["candidates"] if c["type"] == "relay"]
    assert {c["relay_protocol"] for c in relays} >= {"udp", "tls"}
    assert all(c["server"] and ":443" in c["server"] for c in relays)
    assert len({c["server"] for c in relays}) == 4  # udp and tls of two TURN sets
    viewer = result["peers"]["viewer"]
    assert {c["relay_protocol"] for c in viewer["candidates"] if c["type"] == "relay"} == {"tls"}
    errors = {e["url"]: e for e in viewer["gathering_errors"]}
    turn_host = ServiceNames.for_region("us-west-2").turn("203.0.113.10")  # by name
    assert f"turn:{turn_host}:443?transport=udp" in errors
    assert errors[f"turn:{turn_host}:443?transport=udp"]["elapsed_s"] > 0
    skipped = {s["url"]: s["reason"] for s in viewer["skipped_servers"]}
    assert "DTLS" in skipped[f"turns:{turn_host}:443?transport=udp"]


def test_turn_only_mode_uses_relay_candidates_only(runs: dict) -> None:
    status, result, output = runs["turn-only"]
    assert result["outcome"] == "connected", output
    for role in ("viewer", "master"):
        assert {c["type"] for c in result["peers"][role]["candidates"]} == {"relay"}
        assert result["selected"][role]["local"]["type"] == "relay"
    assert {p["local"]["type"] for p in result["pairs"]} == {"relay"}


def test_disabled_mode_has_host_candidates_only_and_fails_with_0x5a00000d(runs: dict) -> None:
    status, result, output = runs["disabled"]
    assert status == 1  # the scenario expects a connection
    for role in ("viewer", "master"):
        assert {c["type"] for c in result["peers"][role]["candidates"]} == {"host"}
    assert result["outcome"] == "failed"
    assert result["kvs_status"]["code"] == "0x5a00000d"
    assert "0x5a00000d STATUS_ICE_NO_CONNECTED_CANDIDATE_PAIR" in output
    assert {p["state"] for p in result["pairs"]} == {"failed"}


def test_modes_per_peer(tmp_path: Path) -> None:
    _, result, _ = run_scenario(
        tmp_path, "home-nat-both", "--viewer-mode", "turn-only", "--master-mode", "stun-only"
    )
    assert {c["type"] for c in result["peers"]["viewer"]["candidates"]} == {"relay"}
    assert "relay" not in {c["type"] for c in result["peers"]["master"]["candidates"]}
    assert result["outcome"] == "connected"


def test_kvs_log_lines_and_pair_grid(tmp_path: Path) -> None:
    completed = lab("run", "home-nat-both", "--log", "kvs")
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "Selected pair" in out and "local candidate type: srflx" in out
    assert "Local Candidate type: srflx" in out and "Remote Candidate type: srflx" in out
    assert "Ice agent state changed from ICE_AGENT_STATE_NEW" in out
    assert "is connected. Round trip time:" in out
    assert "viewer \\ master" in out  # the pair grid
