"""Starting the `lab up` daemon and waiting until its network is up.

`lab up` holds the lock while the daemon starts, clears away a dead daemon's leftovers
first, and reads one line from a pipe the daemon writes when it is up (or failed).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from typing import Any

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError, LabRunError
from lab.core.slowdown import scaled
from lab.run.hands_on.processes import daemon_alive
from lab.run.hands_on.state import READY_TIMEOUT_S, read_state, state_lock
from lab.run.hands_on.teardown import DOWN_TIMEOUT_S, purge, stop


def start(scenario: Any, software: str, capture: bool = False) -> tuple[JsonObject, float, str]:
    """Start the daemon and wait until it is up: (state, seconds it took, note)."""
    began = time.monotonic()
    with state_lock():
        note = _clear_the_way()
        read_end, write_end = os.pipe()
        process = _spawn(scenario, software, write_end, capture)
        os.close(write_end)
        try:
            message = _await_ready(read_end, process)
        except BaseException:
            _abandon(process)
            raise
        finally:
            os.close(read_end)
        state = _check_ready(message, process)
    return state, time.monotonic() - began, note


def _clear_the_way() -> str:
    """Refuse if a network is up; remove what a dead one left (and say so, else "")."""
    state = read_state()
    if state is None:
        return ""
    if daemon_alive(state):
        raise LabInputError(already_up(state))
    return stop(state)


def _spawn(
    scenario: Any, software: str, write_end: int, capture: bool = False
) -> subprocess.Popen[bytes]:
    """The daemon, detached (own session, no terminal), reporting on `write_end`."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "lab.run.hands_on",
            "--scenario", str(scenario.source.resolve()),
            "--servers", software,
            "--ready-fd", str(write_end),
            *(["--capture"] if capture else []),
        ],
        pass_fds=(write_end,),
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
    )  # fmt: skip


def _await_ready(read_end: int, process: subprocess.Popen[bytes]) -> JsonObject:
    """The daemon's one-line report, or why none came in time."""
    wait_s = scaled(READY_TIMEOUT_S)
    deadline = time.monotonic() + wait_s
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([read_end], [], [], 0.2)
        if not ready:
            continue
        chunk = os.read(read_end, 4096)
        if not chunk:  # the daemon exited without a word
            status = process.wait(timeout=10)
            return {"ok": False, "error": f"the lab daemon exited (status {status}) before "
                    "the network was up"}  # fmt: skip
        buffer += chunk
        if buffer.endswith(b"\n"):
            return json.loads(buffer)
    return {"ok": False, "error": f"the network was not up after {wait_s:.0f} s"}


def _check_ready(message: JsonObject, process: subprocess.Popen[bytes]) -> JsonObject:
    """The state of the network the daemon reported up; its error (and no daemon) if not."""
    if not message.get("ok"):
        _abandon(process)
        error = message.get("error") or "the lab daemon failed"
        raise (LabInputError if message.get("input") else LabRunError)(error)
    state = read_state()
    if state is None or state.get("pid") != process.pid:
        _abandon(process)
        raise LabRunError("the lab daemon reported ready but wrote no state")
    return state


def _abandon(process: subprocess.Popen[bytes]) -> None:
    """A daemon that failed or is no longer wanted: stop it, then remove what it left."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=DOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    state = read_state()
    if state is not None and state.get("pid") == process.pid:
        purge(state)


def already_up(state: JsonObject) -> str:
    """Why a second `lab up` is refused, and the way out."""
    return (
        f"'{state.get('scenario')}' is already up (since {state.get('started')}, "
        f"pid {state.get('pid')}): run `lab down` first"
    )
