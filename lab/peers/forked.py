"""Start a peer by forking the lab process into a node's network namespace.

A new Python process spends about half a second importing aiortc before it can
gather a candidate; the lab imports it once, in the background while the network
is built, and forks each peer from there (`setns` into the node's namespace), so a
peer starts in milliseconds. The child is its own session, so it is stopped by pid
and process group like any process the lab started.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

CLONE_NEWNET = 0x40000000
_preload: threading.Thread | None = None


def preload_peer_code() -> None:
    """Import the peer's code (aiortc) in a background thread; `fork_peer` waits for it."""
    global _preload
    if _preload is None:
        _preload = threading.Thread(target=_import_agent, name="preload-aiortc", daemon=True)
        _preload.start()


def _import_agent() -> None:
    import lab.peers.agent  # noqa: F401


def _enter_namespace(namespace_pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/proc/{namespace_pid}/ns/net", "rb") as namespace:
        if libc.setns(namespace.fileno(), CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into the namespace of pid {namespace_pid} failed")


class ForkedProcess:
    """The subset of subprocess.Popen the lab uses (pid, poll, wait), for a forked child."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.005)
        assert self.returncode is not None
        return self.returncode


def fork_peer(namespace_pid: int, log_path: Path, main: Callable[[], None]) -> ForkedProcess:
    """Run `main` in a child process inside the namespace of `namespace_pid`."""
    if _preload is not None:
        _preload.join()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pid = os.fork()
    if pid:
        os.close(log)
        return ForkedProcess(pid)
    _run_child(namespace_pid, log, main)  # never returns
    raise AssertionError("unreachable")


def _run_child(namespace_pid: int, log: int, main: Callable[[], None]) -> None:
    status = 1
    try:
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        _enter_namespace(namespace_pid)
        main()
        status = 0
    except BaseException:  # the child must never return into the parent's code
        import traceback

        traceback.print_exc()
    finally:
        os._exit(status)
