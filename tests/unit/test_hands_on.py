"""Hands-on mode's pure parts: the state file, telling a live daemon from a dead one,
what `lab status` and `lab up` print, and the `lab exec` command line (no root)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lab.commands.hands_on import command_line
from lab.core.errors import LabInputError
from lab.core.lifecycle import RUN_ROOT
from lab.core.processes import parse_start_time, start_time
from lab.run.hands_on.display import describe, next_steps, status_document
from lab.run.hands_on.launch import already_up
from lab.run.hands_on.processes import daemon_alive, marked_processes
from lab.run.hands_on.state import STATE_DIR, read_state, remove_state, state_lock, write_state
from lab.run.hands_on.teardown import leftovers


def state_of(pid: int, started: int | None, **extra: object) -> dict:
    return {
        "status": "up",
        "scenario": "symmetric-both",
        "pid": pid,
        "pid_start": started,
        "started": "2026-11-24T10:00:00+00:00",
        "token": "feedface",
        "peers": {"viewer": "viewer", "master": "master"},
        "hosts": [
            {"name": "viewer", "role": "peer", "addresses": ["192.168.2.10"], "shell_pid": 1},
            {"name": "viewer-gw", "role": "nat", "addresses": ["192.168.2.1", "198.51.100.2"]},
        ],
        "servers": {
            "stun_turn": {
                "host": "turn",
                "software": "coturn",
                "addresses": ["203.0.113.10", "203.0.113.11"],
                "urls": ["stun:203.0.113.10:3478"],
                "secret": "s",
                "username": "1:hands-on",
                "password": "p",
                "credentials_expire": "later",
            },
            "signaling": {"host": "signaling", "url": "wss://203.0.113.20:443"},
        },
        **extra,
    }


def test_the_state_directory_is_under_the_run_root() -> None:
    assert STATE_DIR == RUN_ROOT / "up"


def test_state_round_trip_and_removal_only_by_its_daemon(tmp_path: Path) -> None:
    assert read_state(tmp_path) is None
    write_state({"pid": 42, "scenario": "x"}, tmp_path)
    assert read_state(tmp_path) == {"pid": 42, "scenario": "x"}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary left
    assert not remove_state(tmp_path, pid=43)  # another daemon's: kept
    assert read_state(tmp_path) is not None
    assert remove_state(tmp_path, pid=42)
    assert read_state(tmp_path) is None
    assert not remove_state(tmp_path)


def test_an_unreadable_state_counts_as_a_dead_daemon(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{half a fi")
    state = read_state(tmp_path)
    assert state is not None and state["broken"]
    assert not daemon_alive(state)
    assert status_document(state)["up"] is False


def test_start_time_parsing_copes_with_odd_process_names() -> None:
    fields = ["S"] + [str(n) for n in range(4, 22)] + ["123456", "0"]
    assert parse_start_time("77 (a) b (c) " + " ".join(fields)) == 123456
    fields[0] = "Z"
    assert parse_start_time("77 (zombie) " + " ".join(fields)) is None


def test_a_daemon_is_alive_only_with_its_own_start_time() -> None:
    me = os.getpid()
    assert daemon_alive(state_of(me, start_time(me)))
    assert not daemon_alive(state_of(me, (start_time(me) or 0) + 1))
    assert not daemon_alive(state_of(0, None))


def test_status_document_shapes() -> None:
    assert status_document(None) == {"up": False}
    dead = status_document(state_of(os.getpid(), 1))
    assert dead == {"up": False, "stale": {"scenario": "symmetric-both", "pid": os.getpid()}}
    live = status_document(state_of(os.getpid(), start_time(os.getpid())))
    assert live["up"] is True and live["scenario"] == "symmetric-both"
    assert live["hosts"] == [
        {"name": "viewer", "role": "peer", "addresses": ["192.168.2.10"]},
        {"name": "viewer-gw", "role": "nat", "addresses": ["192.168.2.1", "198.51.100.2"]},
    ]
    assert "token" not in live


def test_summary_names_hosts_servers_and_next_steps() -> None:
    state = state_of(1, 1)
    text = "\n".join(describe(state) + next_steps(state))
    assert "viewer-gw  nat        192.168.2.1, 198.51.100.2" in text
    assert "TURN username 1:hands-on  password p" in text
    assert "signaling on signaling: wss://203.0.113.20:443" in text
    assert "sudo lab exec viewer -- ping -c1 203.0.113.10" in text
    assert "sudo lab exec viewer-gw -- nft list ruleset" in text
    assert "sudo lab down" in text


def test_already_up_message_names_scenario_pid_and_the_way_out() -> None:
    message = already_up(state_of(4321, 1))
    assert "'symmetric-both' is already up" in message
    assert "pid 4321" in message and "2026-11-24T10:00:00" in message
    assert "lab down" in message


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["--", "ip", "addr"], ["ip", "addr"]),
        (["ping", "-c1", "x"], ["ping", "-c1", "x"]),
        (["--", "sh", "-c", "echo -- a"], ["sh", "-c", "echo -- a"]),
    ],
)
def test_exec_command_line(given: list[str], expected: list[str]) -> None:
    assert command_line(given) == expected


def test_exec_without_a_command_opens_a_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/bash")
    assert command_line(None) == ["/bin/bash"]
    assert command_line(["--"]) == ["/bin/bash"]


def test_the_lock_lets_one_holder_in(tmp_path: Path) -> None:
    busy = pytest.raises(LabInputError, match="is busy")
    # flock conflicts between two opens of the file, even in one process
    with state_lock(tmp_path), busy, state_lock(tmp_path, timeout=0.3):
        pass
    with state_lock(tmp_path, timeout=0.3):
        pass  # released


def test_marked_processes_are_found_by_their_token() -> None:
    env = dict(os.environ, ICELAB_UP="cafe0123")
    child = subprocess.Popen(["sleep", "30"], env=env)
    try:
        assert child.pid in marked_processes("cafe0123")
        assert child.pid in marked_processes(None)
        assert child.pid not in marked_processes("cafe")
        state = state_of(0, None, token="cafe0123")
        assert leftovers(state) == [child.pid]
    finally:
        child.kill()
        child.wait()
    assert leftovers(state_of(0, None, token="cafe0123")) == []


def test_exec_refuses_when_nothing_is_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lab.commands import app

    monkeypatch.setattr("lab.run.hands_on.state.STATE_DIR", tmp_path)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    result = CliRunner().invoke(app, ["exec", "viewer", "--", "ip", "addr"])
    assert result.exit_code == 2
    assert "nothing is up; start one with `lab up SCENARIO`" in result.output
    status = CliRunner().invoke(app, ["status", "--json"])
    assert status.exit_code == 0 and '"up": false' in status.output


def test_up_refuses_bad_input_before_building_anything() -> None:
    from typer.testing import CliRunner

    from lab.commands import app

    result = CliRunner().invoke(app, ["up", "symmetric-both", "--servers", "nginx"])
    assert result.exit_code == 2
    assert "unknown software 'nginx'" in result.output
