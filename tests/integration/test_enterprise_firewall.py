"""`lab run enterprise-firewall` end to end on a real emulated network (root)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from lab.core.documents import load_schema
from lab.core.processes import is_same_process
from lab.network.build import OWNER, PROCESS_RECORD

from .helpers import KEPT_BEFORE, LAB, leftovers, run_dirs, run_scenario

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def enterprise(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, str]:
    return run_scenario(tmp_path_factory.mktemp("enterprise"), "enterprise-firewall")


def test_run_meets_its_expectations_and_exits_zero(enterprise: tuple[int, dict, str]) -> None:
    status, result, output = enterprise
    assert status == 0, output
    assert result["outcome"] == "connected"
    assert result["expectations_met"] is True


def test_result_validates_against_the_published_schema(enterprise: tuple[int, dict, str]) -> None:
    jsonschema.validate(enterprise[1], load_schema("result"))


def test_viewer_behind_the_firewall_has_no_server_reflexive_candidate(
    enterprise: tuple[int, dict, str],
) -> None:
    viewer = enterprise[1]["peers"]["viewer"]
    types = {c["type"] for c in viewer["candidates"]}
    assert "srflx" not in types
    assert "host" in types
    # The STUN request was dropped by the firewall: recorded, not silently skipped.
    assert any(e["url"].startswith("stun:") for e in viewer["gathering_errors"])


def test_viewer_selects_a_relay_reached_over_tls_on_443(enterprise: tuple[int, dict, str]) -> None:
    selected = enterprise[1]["selected"]["viewer"]
    assert selected["local"]["type"] == "relay"
    assert selected["local"]["relay_protocol"] in ("tcp", "tls")
    assert ":443" in selected["local"]["server"]


def test_udp_and_tcp_3478_turn_are_blocked_for_the_viewer(
    enterprise: tuple[int, dict, str],
) -> None:
    viewer = enterprise[1]["peers"]["viewer"]
    relays = {c["relay_protocol"] for c in viewer["candidates"] if c["type"] == "relay"}
    assert relays == {"tls"}
    failed_urls = {e["url"] for e in viewer["gathering_errors"]}
    assert "turn:203.0.113.10:3478?transport=udp" in failed_urls
    assert "turn:203.0.113.10:3478?transport=tcp" in failed_urls


def test_master_at_home_gathers_srflx_and_relays(enterprise: tuple[int, dict, str]) -> None:
    master = enterprise[1]["peers"]["master"]
    types = {c["type"] for c in master["candidates"]}
    assert {"host", "srflx", "relay"} <= types
    srflx = next(c for c in master["candidates"] if c["type"] == "srflx")
    assert srflx["address"] == "198.51.100.18"  # the home NAT's public address
    assert srflx["server"] == "stun:203.0.113.10:3478"


def test_data_channel_echoed(enterprise: tuple[int, dict, str]) -> None:
    result = enterprise[1]
    assert result["echo"] is True
    assert result["timings"]["connected_s"] > 0


def test_pairs_carry_agent_and_state(enterprise: tuple[int, dict, str]) -> None:
    pairs = enterprise[1]["pairs"]
    assert {p["agent"] for p in pairs} == {"viewer", "master"}
    nominated = [p for p in pairs if p["nominated"]]
    assert nominated and all(p["state"] == "succeeded" for p in nominated)


def test_nothing_is_left_behind_after_the_run(enterprise: tuple[int, dict, str]) -> None:
    assert leftovers() == {"shells": [], "run_dirs": [], "turnservers": []}


def test_sigint_two_seconds_in_tears_everything_down() -> None:
    process = subprocess.Popen(
        [*LAB, "run", "enterprise-firewall", "--timing", "kvs"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert leftovers() == {"shells": [], "run_dirs": [], "turnservers": []}


def test_sigterm_tears_everything_down() -> None:
    process = subprocess.Popen([*LAB, "run", "enterprise-firewall", "--timing", "kvs"])
    time.sleep(1.5)
    process.terminate()
    assert process.wait(timeout=30) == 143  # 128 + SIGTERM
    assert leftovers() == {"shells": [], "run_dirs": [], "turnservers": []}


def test_bad_input_exits_two_with_one_line(tmp_path: Path) -> None:
    completed = subprocess.run(
        [*LAB, "run", "no-such-scenario"], capture_output=True, text=True, timeout=30
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().count("\n") == 0
    assert "unknown scenario 'no-such-scenario'" in completed.stderr
    assert leftovers() == {"shells": [], "run_dirs": [], "turnservers": []}


def recorded_pids(run_dirs: list[str]) -> dict[int, dict]:
    """Pid -> record (start time, what) of every live process the killed run started."""
    found = {}
    for run_dir in run_dirs:
        record = Path(run_dir) / PROCESS_RECORD
        for line in record.read_text().splitlines() if record.exists() else []:
            entry = json.loads(line)
            if is_same_process(entry["pid"], entry["start"]):
                found[entry["pid"]] = entry
    return found


def runs_owned_by(pid: int) -> list[str]:
    """The run directories whose network `pid` built (other labs may run meanwhile)."""
    owned = []
    for run_dir in sorted(run_dirs() - KEPT_BEFORE):
        record = Path(run_dir) / PROCESS_RECORD
        lines = record.read_text().splitlines() if record.exists() else []
        owners = [json.loads(line) for line in lines[:1]]
        if owners and owners[0]["what"] == OWNER and owners[0]["pid"] == pid:
            owned.append(run_dir)
    return owned


def test_lab_clean_removes_what_a_killed_run_left() -> None:
    process = subprocess.Popen(
        [*LAB, "run", "enterprise-firewall", "--timing", "kvs"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # killed once its TURN server is up, however busy
        started = recorded_pids(runs_owned_by(process.pid))
        if any("turnserver" in entry["what"] for entry in started.values()):
            break
        time.sleep(0.1)
    process.kill()  # SIGKILL: no chance to tear anything down
    process.wait(timeout=10)
    left = leftovers()
    assert left["run_dirs"], "nothing to clean up?"
    started = recorded_pids(left["run_dirs"])
    assert any("turnserver" in entry["what"] for entry in started.values()), started
    time.sleep(0.5)  # the namespaces' shells exit with their stdin; the servers stay
    completed = subprocess.run([*LAB, "clean"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert "killed" in completed.stdout
    assert leftovers() == {"shells": [], "run_dirs": [], "turnservers": []}
    survivors = [e for pid, e in started.items() if is_same_process(pid, e["start"])]
    assert survivors == [], f"lab clean left processes the run had started: {survivors}"
    again = subprocess.run([*LAB, "clean"], capture_output=True, text=True, timeout=60)
    assert "nothing to clean" in again.stdout
