"""The state file of the network `lab up` has up, and the lock that serialises changes.

One network is up at a time: its daemon writes /run/ice-lab/up/state.json, and `lab up`,
`lab down` and `lab clean` take the lock before they look at it or change it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError
from lab.core.lifecycle import RUN_ROOT

STATE_DIR = RUN_ROOT / "up"
STATE_NAME = "state.json"
#: How long `lab up` waits for its daemon to be up (it holds the lock meanwhile).
READY_TIMEOUT_S = 60.0
LOCK_TIMEOUT_S = READY_TIMEOUT_S + 10


def read_state(directory: Path | None = None) -> JsonObject | None:
    """The state of the network that is up (or was, if its daemon died); None if none.

    An unreadable file comes back as a state without a daemon (so it counts as stale).
    """
    path = (directory or STATE_DIR) / STATE_NAME
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"scenario": "?", "pid": 0, "pid_start": None, "hosts": [], "broken": True}
    return state if isinstance(state, dict) else {"scenario": "?", "pid": 0, "broken": True}


def write_state(state: JsonObject, directory: Path | None = None) -> None:
    """Replace the state file atomically (readers never see half a file)."""
    directory = directory or STATE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{STATE_NAME}.{os.getpid()}"
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, directory / STATE_NAME)


def remove_state(directory: Path | None = None, pid: int | None = None) -> bool:
    """Remove the state file; with `pid`, only if it is that daemon's."""
    directory = directory or STATE_DIR
    state = read_state(directory)
    if state is None or (pid is not None and state.get("pid") != pid):
        return False
    with contextlib.suppress(FileNotFoundError):
        (directory / STATE_NAME).unlink()
    return True


@contextlib.contextmanager
def state_lock(directory: Path | None = None, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Serialise `lab up` / `lab down` / `lab clean` (a starting `lab up` holds it).

    The lock is on the state directory itself, so no lock file is left behind.
    """
    directory = directory or STATE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _acquire(fd, timeout)
        yield
    finally:
        os.close(fd)


def _acquire(fd: int, timeout: float) -> None:
    """flock `fd`, polling (so the wait has a deadline and an error that says why)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise LabInputError(
                    "another `lab up`, `lab down` or `lab clean` is busy; try again"
                ) from None
            time.sleep(0.1)
