"""Start the lab's own Python programs (peers, the signaling server) by forking a
pre-loaded process into a node's network namespace.

A new interpreter spends about half a second of CPU importing aiortc, botocore and the
signaling server before it can do anything. The lab forks a zygote as soon as a command
starts: it imports them on the other core while the lab imports its own code and builds
the network (a thread would share the lab's GIL and slow both), then forks each program
on request (`setns` into the node's namespace), so it starts in milliseconds, and the
modules a peer and a server share are imported once per run, not once per process.

A request names a function (`module:function`) and its arguments; the file descriptors
for the program's stdout and stderr travel with it (SCM_RIGHTS), so the caller reads a
server's READY line from a pipe as from any process it started. The program is its own
session, stopped by pid and process group like any process the lab started; the lab
watches it through a pidfd, as it is the zygote's child. The zygote ends when the lab
closes its socket (or dies: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
MAX_REQUEST_BYTES = 1 << 16


class Zygote:
    """The pre-loaded process and the socket to it (requests with their descriptors)."""

    def __init__(self, preloads: Sequence[str]) -> None:
        self.channel, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.preloads = tuple(preloads)
        self.pid = os.fork()
        if self.pid == 0:
            self.channel.close()
            _zygote_main(child_end, self.preloads)  # never returns
        child_end.close()

    def fork(
        self,
        namespace_pid: int,
        target: str,
        args: Sequence[Any] = (),
        *,
        stdout: int,
        stderr: int,
    ) -> int:
        """Run `target(*args)` (`module:function`) in the namespace of `namespace_pid`,
        with `stdout` and `stderr` as its fds 1 and 2; returns its pid once the zygote has
        forked it."""
        request = {"namespace_pid": namespace_pid, "target": target, "args": list(args)}
        socket.send_fds(self.channel, [json.dumps(request).encode()], [stdout, stderr])
        reply = self.channel.recv(64)
        if not reply:
            raise RuntimeError("the lab's zygote ended before starting the program")
        return int(reply)


_zygote: Zygote | None = None


def start_zygote(preloads: Sequence[str]) -> None:
    """Start the zygote now (once per process), importing `preloads` (module names)
    while the caller goes on."""
    global _zygote
    if _zygote is None:
        _zygote = Zygote(preloads)


def zygote() -> Zygote:
    """The zygote start_zygote started; one that imports nothing if none was."""
    start_zygote(())
    assert _zygote is not None
    return _zygote


def _zygote_main(channel: socket.socket, preloads: Sequence[str]) -> None:
    status = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the lab handles Ctrl-C and tears down
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the lab's handler, if inherited
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # programs are reaped by the kernel
        for name in preloads:
            # Between two modules, a request that needs only those loaded so far (a server
            # asked for while aiortc is still to come) is served at once.
            while select.select([channel], [], [], 0)[0]:
                if not _serve_one(channel):
                    return
            # A module that cannot be imported fails the program that needs it, in its
            # own stderr (the lab reports it), not the zygote.
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
        while _serve_one(channel):
            pass
        status = 0
    finally:
        os._exit(status)


def _serve_one(channel: socket.socket) -> bool:
    """Fork the program of the next request; False once the lab has closed the socket."""
    message, fds, _, _ = socket.recv_fds(channel, MAX_REQUEST_BYTES, 2)
    if not message:
        return False
    pid = os.fork()
    if pid == 0:
        channel.close()
        _run_child(json.loads(message), fds)
    for fd in fds:
        os.close(fd)
    channel.send(f"{pid}".encode())
    return True


def _function(name: str) -> Callable[..., Any]:
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


def _enter_namespace(namespace_pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/proc/{namespace_pid}/ns/net", "rb") as namespace:
        if libc.setns(namespace.fileno(), CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into the namespace of pid {namespace_pid} failed")


def _run_child(request: dict[str, Any], fds: list[int]) -> None:
    status = 1
    try:
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        # The zygote's sys.stdout may not write to fd 1 (a test runner's capture).
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        _enter_namespace(request["namespace_pid"])
        returned = _function(request["target"])(*request["args"])
        status = returned if isinstance(returned, int) else 0
    except BaseException:  # the child must never return into the zygote's code
        # Lazy: only a child that failed prints a traceback.
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(status)


class ForkedProcess:
    """The subset of subprocess.Popen the lab uses (pid, poll, wait, stdout) for a
    program that is not the lab's own child: its exit is seen through a pidfd, its status
    is not."""

    def __init__(self, pid: int, args: Sequence[str] = (), stdout: Any = None) -> None:
        self.pid = pid
        self.args = list(args)  # as Popen's: the program (`module:function`) and its arguments
        self.stdout = stdout
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
