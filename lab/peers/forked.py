"""Start a peer by forking a pre-loaded process into a node's network namespace.

A new Python process spends about half a second importing aiortc before it can
gather a candidate. The lab forks a zygote as soon as a run starts: it imports
aiortc on the other core while the lab imports its own code and builds the
network (a thread would share the lab's GIL and slow both), then forks each peer on
request (`setns` into the node's namespace), so a peer starts in milliseconds.

The peer is its own session, stopped by pid and process group like any process the
lab started; the lab watches it through a pidfd, as it is the zygote's child. The
zygote ends when the lab closes its pipe (or dies: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import select
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1


class Zygote:
    """The pre-loaded process and the two pipes to it (requests, peer pids)."""

    def __init__(self) -> None:
        request_read, self.requests = os.pipe()
        self.replies, reply_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self.requests)
            os.close(self.replies)
            _zygote_main(request_read, reply_write)  # never returns
        os.close(request_read)
        os.close(reply_write)

    def fork_peer(self, namespace_pid: int, log_path: Path, config_path: Path) -> int:
        """Ask for a peer; returns its pid once the zygote has forked it."""
        request = {"namespace_pid": namespace_pid, "log": str(log_path), "config": str(config_path)}
        os.write(self.requests, (json.dumps(request) + "\n").encode())
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = os.read(self.replies, 64)
            if not chunk:
                raise RuntimeError("the peer zygote ended before starting the peer")
            reply += chunk
        return int(reply)


_zygote: Zygote | None = None


def preload_peer_code() -> None:
    """Start the zygote now, so aiortc is imported by the time the network is built."""
    global _zygote
    if _zygote is None:
        _zygote = Zygote()


def _zygote_main(requests: int, replies: int) -> None:
    status = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the lab handles Ctrl-C and tears down
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the lab's handler, if inherited
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # peers are reaped by the kernel
        # Lazy: the zygote loads these once, after its fork from the lab; each peer forked from
        # it then finds them loaded.
        import lab.network.resolver  # noqa: F401  (and jsonschema: every peer enters its resolver)
        import lab.peers.aiortc_peer  # noqa: F401  (pre-loads aiortc for every fork)
        from lab.peers.agents import run_peer

        with os.fdopen(requests, "rb", buffering=0) as stream:
            for line in iter(stream.readline, b""):
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    os.close(replies)
                    stream.close()
                    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    peer = functools.partial(run_peer, Path(request["config"]))
                    _run_child(request["namespace_pid"], log, peer)
                os.write(replies, f"{pid}\n".encode())
        status = 0
    finally:
        os._exit(status)


def _enter_namespace(namespace_pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/proc/{namespace_pid}/ns/net", "rb") as namespace:
        if libc.setns(namespace.fileno(), CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into the namespace of pid {namespace_pid} failed")


class ForkedProcess:
    """The subset of subprocess.Popen the lab uses (pid, poll, wait) for a peer that is
    not the lab's own child: its exit is seen through a pidfd, its status is not."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone
            self._pidfd, self.returncode = None, 0

    def poll(self) -> int | None:
        if self.returncode is None and self._exited(0):
            self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not self._exited(timeout):
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            self.returncode = 0
        return self.returncode

    def _exited(self, timeout: float | None) -> bool:
        assert self._pidfd is not None
        readable, _, _ = select.select([self._pidfd], [], [], timeout)
        if readable:
            os.close(self._pidfd)
            self._pidfd = None
        return bool(readable)


def fork_peer(namespace_pid: int, log_path: Path, config_path: Path) -> ForkedProcess:
    """Run the peer described by `config_path` inside the namespace of `namespace_pid`."""
    preload_peer_code()
    assert _zygote is not None
    return ForkedProcess(_zygote.fork_peer(namespace_pid, log_path, config_path))


def _run_child(namespace_pid: int, log: int, main: Callable[[], None]) -> None:
    status = 1
    try:
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        _enter_namespace(namespace_pid)
        main()
        status = 0
    except BaseException:  # the child must never return into the zygote's code
        # Lazy: only a child that failed prints a traceback.
        import traceback

        traceback.print_exc()
    finally:
        os._exit(status)
