"""Taking a `lab up` network down, whether its daemon is alive or died and left things.

A live daemon gets SIGTERM and tears down its own network; whatever is still there
after that (or after a crash) is SIGKILLed: the network's marked processes, its
recorded namespace shells and every process in their namespaces.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from lab.core.documents import JsonObject
from lab.core.errors import LabError, LabRunError
from lab.core.lifecycle import RUN_ROOT
from lab.core.processes import is_same_process, start_time
from lab.run.hands_on.processes import daemon_alive, marked_processes
from lab.run.hands_on.state import read_state, remove_state, state_lock

DOWN_TIMEOUT_S = 20.0


def leftovers(state: JsonObject) -> list[int]:
    """Processes of that network still alive: its daemon, its marked processes (servers,
    `lab exec` commands) and its recorded namespace shells."""
    alive = {p for p in marked_processes(state.get("token") or "-") if start_time(p) is not None}
    if daemon_alive(state):
        alive.add(int(state["pid"]))
    for host in state.get("hosts", []):
        if is_same_process(host.get("shell_pid", 0), host.get("shell_start")):
            alive.add(host["shell_pid"])
    return sorted(alive)


def purge(state: JsonObject | None, any_mark: bool = False) -> list[int]:
    """SIGKILL what a network left: its marked processes, its recorded shells, and every
    process in their namespaces. Removes its state file and run directory too."""
    # Lazy: `lab status` and `lab exec` import this module and start in about 0.1 s;
    # Mininet (lab.network.build) is needed only to take a network down.
    from lab.network.build import namespace_members, namespaces_of, sigkill

    ours = set(marked_processes(None)) if any_mark else set()
    if state is not None:
        ours |= set(leftovers(state))
    targets = (ours | set(namespace_members(namespaces_of(ours)))) - {os.getpid()}
    killed = sigkill(sorted(targets))
    if state is not None:
        _remove_run_directory(state)
        remove_state(pid=state.get("pid"))
    return killed


def _remove_run_directory(state: JsonObject) -> None:
    """Remove the network's run directory (only ever a `run-*` under the run root)."""
    path = Path(state.get("run_directory") or "/nonexistent")
    if path.parent == RUN_ROOT and path.name.startswith("run-"):
        shutil.rmtree(path, ignore_errors=True)


def wait_gone(state: JsonObject, timeout: float) -> bool:
    """Wait until the daemon has exited; True if it did within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while daemon_alive(state):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_no_leftovers(state: JsonObject, timeout: float = 3.0) -> list[int]:
    """SIGKILLed processes take a moment to go: wait for that network's to be gone."""
    deadline = time.monotonic() + timeout
    while (left := leftovers(state)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def stop(state: JsonObject) -> str:
    """Tear down the network of `state` (live or stale); say what happened.

    Raises LabRunError if anything of it is still alive afterwards.
    """
    how = _stop_daemon(state)
    killed = purge(state)
    if killed:
        how += f" (killed {len(killed)} leftover process(es))"
    left = wait_no_leftovers(state)
    if left:
        raise LabRunError(f"{how}, but processes {left} are still alive")
    return how


def _stop_daemon(state: JsonObject) -> str:
    """SIGTERM a live daemon and wait for it; say how it went (purge() does the rest)."""
    name, pid = state.get("scenario", "?"), state.get("pid")
    if not daemon_alive(state):
        return f"the `lab up` of '{name}' (pid {pid}) had died: removed what it left"
    os.kill(int(state["pid"]), signal.SIGTERM)
    if wait_gone(state, DOWN_TIMEOUT_S):
        return f"'{name}' (pid {pid}) torn down"
    # purge() kills it, and what it had not torn down yet
    return f"'{name}' (pid {pid}) did not stop in {DOWN_TIMEOUT_S:.0f} s: killed it"


def clean_up_state() -> str:
    """For `lab clean`: tear down a network that is up or remove what a dead one left.

    Never raises: `lab clean` goes on with the rest whatever happens here.
    """
    messages = []
    try:
        with state_lock():
            state = read_state()
            if state is not None:
                messages.append(stop(state))
            stray = purge(None, any_mark=True)  # e.g. a daemon killed before it wrote state
            if stray:
                messages.append(f"killed {len(stray)} process(es) of a `lab up` without state")
    except LabError as exc:
        messages.append(f"could not stop it: {exc}")
    return "; ".join(messages)
