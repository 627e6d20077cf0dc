"""Hands-on mode for real: `lab up symmetric-both`, walk in with `lab exec`, look with
`lab status`, leave with `lab down`, and recover from a killed daemon (root)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lab.core.errors import LabInputError
from lab.core.processes import start_time
from lab.run.hands_on.launch import start
from lab.run.hands_on.processes import daemon_alive
from lab.run.hands_on.state import read_state
from lab.run.hands_on.teardown import (
    clean_up_state,
    leftovers,
    purge,
    stop,
    wait_gone,
    wait_no_leftovers,
)
from lab.scenario.dns import ServiceNames
from lab.scenario.scenario import load_scenario

from .helpers import LAB, lab

pytestmark = pytest.mark.root


def lab_input(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LAB, *args], input=stdin, capture_output=True, text=True, timeout=60)


def what_is_left(state: dict[str, Any]) -> dict[str, Any]:
    """What of that network is still around: daemon, shells, marked processes, files."""
    return {
        "daemon": daemon_alive(state),
        "processes": leftovers(state),
        "state_file": read_state() is not None,
        "run_directory": Path(state["run_directory"]).exists(),
    }


NOTHING = {"daemon": False, "processes": [], "state_file": False, "run_directory": False}


def take_down() -> None:
    """Finalizer: whatever a test did, leave nothing (even if `lab down` is broken)."""
    state = read_state()
    lab("down", timeout=60)
    if state is not None:
        purge(state)
        if daemon_alive(state):
            os.kill(state["pid"], signal.SIGKILL)
        wait_no_leftovers(state)


def bring_up(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    started = lab("up", "symmetric-both", *args, timeout=90)
    assert started.returncode == 0, started.stdout + started.stderr
    state = read_state()
    assert state is not None and daemon_alive(state)
    return started, state


@pytest.fixture(scope="module")
def up() -> Iterator[tuple[subprocess.CompletedProcess[str], dict[str, Any]]]:
    if read_state() is not None:
        pytest.skip("a `lab up` network is already up on this machine (not the tests')")
    try:
        yield bring_up()
    finally:
        take_down()


@pytest.fixture
def clean_slate() -> Iterator[None]:
    if read_state() is not None:
        pytest.skip("a `lab up` network is already up on this machine (not the tests')")
    try:
        yield
    finally:
        take_down()


def test_up_prints_hosts_servers_and_what_to_try(up: tuple) -> None:
    out = up[0].stdout
    assert out.startswith("up: symmetric-both (pid ")
    assert "viewer     peer       192.168.2.10" in out
    assert "STUN/TURN (coturn) on turn: stun:203.0.113.10:3478" in out
    assert "sudo lab exec viewer -- ip addr" in out


def test_status_json_lists_every_host_with_role_and_addresses(up: tuple) -> None:
    completed = lab("status", "--json")
    assert completed.returncode == 0, completed.stderr
    status = json.loads(completed.stdout)
    assert status["up"] is True and status["scenario"] == "symmetric-both"
    assert status["pid"] == up[1]["pid"]
    topology = load_scenario("symmetric-both").topology
    expected = [
        {"name": n.name, "role": n.role, "addresses": n.addresses} for n in topology.nodes.values()
    ]
    assert status["hosts"] == expected
    assert {h["role"] for h in status["hosts"]} == {
        "peer", "nat", "router", "stun-turn", "signaling"
    }  # fmt: skip
    assert status["servers"]["stun_turn"]["addresses"] == ["203.0.113.10", "203.0.113.11"]
    wss = ServiceNames.for_region("us-west-2").wss  # the service's name, not an address
    assert status["servers"]["signaling"]["url"] == f"wss://{wss}"


def test_status_in_words(up: tuple) -> None:
    completed = lab("status")
    assert completed.returncode == 0
    assert completed.stdout.startswith("symmetric-both is up since ")
    assert "turn       stun-turn  203.0.113.10, 203.0.113.11" in completed.stdout


def test_exec_runs_in_the_hosts_namespace(up: tuple) -> None:
    completed = lab("exec", "viewer", "--", "ip", "-4", "addr")
    assert completed.returncode == 0, completed.stderr
    assert "inet 192.168.2.10/24" in completed.stdout
    assert "203.0.113" not in completed.stdout  # not the machine's or another host's view


def test_exec_passes_the_exit_status_through(up: tuple) -> None:
    assert lab("exec", "viewer", "--", "sh", "-c", "exit 7").returncode == 7


def test_exec_passes_stdin_through(up: tuple) -> None:
    completed = lab_input("hi\n", "exec", "viewer", "--", "cat")
    assert (completed.returncode, completed.stdout) == (0, "hi\n")


def test_the_viewer_reaches_the_turn_server_through_its_nat(up: tuple) -> None:
    completed = lab("exec", "viewer", "--", "ping", "-c1", "-W1", "203.0.113.10")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    stun = lab("exec", "viewer", "--", "timeout", "3", "turnutils_stunclient", "203.0.113.10")
    assert "UDP reflexive addr: 198.51.100.2:" in stun.stdout  # the viewer-gw's address


def test_exec_an_unknown_host_names_the_known_ones(up: tuple) -> None:
    completed = lab("exec", "nowhere", "--", "true")
    assert completed.returncode == 2
    assert "unknown host 'nowhere'" in completed.stderr
    assert "viewer, viewer-gw, internet, master-gw, master, turn, signaling" in completed.stderr


def test_a_second_up_says_what_is_up(up: tuple) -> None:
    completed = lab("up", "open-internet")
    assert completed.returncode == 2
    assert completed.stderr.strip().count("\n") == 0
    assert "'symmetric-both' is already up" in completed.stderr
    assert f"pid {up[1]['pid']}" in completed.stderr
    assert "run `lab down` first" in completed.stderr
    assert read_state()["pid"] == up[1]["pid"]  # the first one is untouched


def test_down_leaves_nothing(up: tuple) -> None:
    state = up[1]
    began = time.monotonic()
    completed = lab("down")
    took = time.monotonic() - began
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("down: 'symmetric-both'")
    assert what_is_left(state) == NOTHING
    assert start_time(state["pid"]) is None  # the daemon is gone, not a zombie
    assert took < 10


def test_nothing_up_exec_exits_two_and_down_and_status_say_so(clean_slate: None) -> None:
    completed = lab("exec", "viewer", "--", "ip", "addr")
    assert completed.returncode == 2
    assert "nothing is up; start one with `lab up SCENARIO`" in completed.stderr
    down = lab("down")
    assert (down.returncode, down.stdout.strip()) == (0, "nothing is up")
    assert json.loads(lab("status", "--json").stdout) == {"up": False}


def test_bad_input_exits_two_and_builds_nothing(clean_slate: None) -> None:
    completed = lab("up", "no-such-scenario")
    assert completed.returncode == 2
    assert "unknown scenario 'no-such-scenario'" in completed.stderr
    assert read_state() is None


def test_a_daemon_that_fails_reports_its_error_and_leaves_nothing(clean_slate: None) -> None:
    missing = SimpleNamespace(source=Path("/nonexistent/scenario.yaml"))
    with pytest.raises(LabInputError, match="no such scenario file"):
        start(missing, "coturn")
    assert read_state() is None


def test_a_killed_daemon_is_cleaned_up_by_the_next_up(clean_slate: None) -> None:
    _, state = bring_up()
    os.kill(state["pid"], signal.SIGKILL)
    assert wait_gone(state, 5)
    status = lab("status")
    assert "has died" in status.stdout and "lab clean" in status.stdout
    stale_exec = lab("exec", "viewer", "--", "true")
    assert stale_exec.returncode == 2 and "has died" in stale_exec.stderr
    assert leftovers(state), "coturn and signaling outlive their daemon"
    again, new_state = bring_up()
    assert "had died: removed what it left" in again.stderr
    assert leftovers(state) == []
    assert not Path(state["run_directory"]).exists()
    assert lab("down").returncode == 0
    assert what_is_left(new_state) == NOTHING


def test_a_killed_daemon_is_cleaned_up_by_lab_clean(clean_slate: None) -> None:
    # `lab clean` calls this first; calling it alone spares other people's `lab run`s.
    _, state = bring_up("--servers", "mock")
    os.kill(state["pid"], signal.SIGKILL)
    assert wait_gone(state, 5)
    message = clean_up_state()
    assert "had died: removed what it left" in message
    assert what_is_left(state) == NOTHING
    assert clean_up_state() == ""  # and again: nothing to do


def test_lab_clean_stops_a_network_that_is_up(clean_slate: None) -> None:
    _, state = bring_up()
    assert "torn down" in clean_up_state()
    assert what_is_left(state) == NOTHING


def test_down_kills_a_daemon_that_hangs(clean_slate: None, monkeypatch: pytest.MonkeyPatch) -> None:
    _, state = bring_up()
    os.kill(state["pid"], signal.SIGSTOP)  # it cannot act on SIGTERM any more
    monkeypatch.setattr("lab.run.hands_on.teardown.DOWN_TIMEOUT_S", 1.0)
    message = stop(state)
    assert "did not stop in 1 s: killed it" in message
    assert what_is_left(state) == NOTHING
