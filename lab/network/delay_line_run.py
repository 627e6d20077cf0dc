"""The delay line as a program: `python -m lab.network.delay_line_run --near IF --far IF
[--out SPEC] [--in SPEC] [--parent PID]`, run inside a wire's namespace (lab.network.wires).

Two packet sockets, one per interface, carry whole Ethernet frames: what arrives on
`near` (sent by the impaired node) leaves on `far` after the `out` direction's model
(lab.network.delay_line), and the other way round for `in`. A frame keeps its
virtio-net header (PACKET_VNET_HDR), so a TCP segment the sender's veth left for
offload, or a checksum left to compute, passes on unchanged as it would over the bare
link; nothing in the nodes' interfaces has to change.

A frame's delay counts from when the kernel received it (SO_TIMESTAMPNS), not from
when this process got round to reading it, and the process asks for a real-time
scheduling class (SCHED_FIFO, a low priority; else nice -10), so a loaded machine
(CI's two cores running a test suite) delays its frames no longer than configured.

It prints `ready` once both sockets listen, dies with its parent (PR_SET_PDEATHSIG),
ends on SIGTERM or SIGINT, and writes its counters to stderr as it ends.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable

from lab.network.delay_line import DelayLine, Direction, LineSpec

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23  # Linux 4.20: our own sends are not read back
PR_SET_PDEATHSIG = 1
SO_SNDBUFFORCE = 32  # not in the socket module: set buffers beyond rmem_max (root)
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35  # SCM_TIMESTAMPNS too: the receive time, CLOCK_REALTIME
TIMESPEC = struct.Struct("@qq")
ANCILLARY = socket.CMSG_SPACE(TIMESPEC.size)
#: SCHED_FIFO priority: above every ordinary process, below the kernel's own threads.
REALTIME_PRIORITY = 10
#: A frame with its virtio-net header: the largest GSO segment plus 10 bytes.
FRAME_BUFFER = 65536 + 64
SOCKET_BUFFER = 16 * 1024 * 1024
#: Frames read from one socket per wake-up before the timers get a turn.
BATCH = 256


def die_with_parent(parent: int | None) -> None:
    """SIGKILL this process when the lab that started it dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        sys.exit(0)  # the parent died before the prctl: nobody will stop us later


def open_socket(interface: str) -> socket.socket:
    """A non-blocking packet socket on one interface that reads frames others sent."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: reads nothing yet
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((interface, ETH_P_ALL))
    sock.setblocking(False)
    return sock


def raise_priority() -> str:
    """Run before ordinary processes: SCHED_FIFO if allowed, else nice -10, else as is.

    The line sleeps in select() between frames, so the real-time class costs nothing
    idle; flooded, the kernel still keeps 5 % of the CPU for everyone else."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
        return f"SCHED_FIFO {REALTIME_PRIORITY}"
    except OSError:
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
        return "nice -10"
    except OSError:
        return "default"


def arrival_time(ancillary: list[tuple[int, int, bytes]], offset: float) -> float | None:
    """The kernel's receive time of a frame on the monotonic clock (None if not given).

    `offset` is CLOCK_REALTIME minus CLOCK_MONOTONIC, taken just before."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            seconds, nanoseconds = TIMESPEC.unpack_from(data)
            return seconds + nanoseconds / 1e9 - offset
    return None


def build_line(out: LineSpec | None, into: LineSpec | None, seed: int | None) -> DelayLine:
    rng = random.Random(seed)
    directions = {
        key: Direction(spec, random.Random(rng.getrandbits(64))) if spec else None
        for key, spec in (("out", out), ("in", into))
    }
    return DelayLine(directions)


class Wire:
    """The two sockets and the line between them."""

    def __init__(self, near: socket.socket, far: socket.socket, line: DelayLine) -> None:
        self.line = line
        self.inputs = {near.fileno(): (near, "out"), far.fileno(): (far, "in")}
        self.outputs = {"out": far, "in": near}
        self.buffer = bytearray(FRAME_BUFFER)
        self.view = memoryview(self.buffer)
        self.send_errors = 0

    def run(self, stopping: Callable[[], bool] = lambda: False) -> None:
        """Move frames until a signal ends the process (or `stopping()` says so)."""
        readers = list(self.inputs)
        clock = time.monotonic
        while not stopping():
            due = self.line.next_due()
            timeout = None if due is None else max(0.0, due - clock())
            ready, _, _ = select.select(readers, [], [], timeout)
            for fd in ready:
                self.drain(*self.inputs[fd])
            self.line.pop_due(clock(), self.send)

    def drain(self, sock: socket.socket, key: str) -> None:
        now = time.monotonic()
        offset = time.time() - now
        for _ in range(BATCH):
            try:
                size, ancillary, _, _ = sock.recvmsg_into([self.buffer], ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            frame = bytes(self.view[:size])
            arrived = arrival_time(ancillary, offset)
            # A timestamp a little ahead of `now` is clock granularity, not the future.
            at = now if arrived is None else min(arrived, now)
            for passing in self.line.arrive(key, frame, at):
                self.send(key, passing)

    def send(self, key: str, frame: bytes) -> None:
        try:
            self.outputs[key].send(frame)
        except OSError:
            self.send_errors += 1  # a full queue on the far side: lost, as on a wire


def _spec(text: str | None) -> LineSpec | None:
    return LineSpec.from_dict(json.loads(text)) if text else None


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.network.delay_line_run")
    parser.add_argument("--near", required=True, help="interface towards the impaired node")
    parser.add_argument("--far", required=True, help="interface towards the rest of the link")
    parser.add_argument("--out", help="JSON LineSpec for frames from near to far")
    parser.add_argument("--in", dest="into", help="JSON LineSpec for frames from far to near")
    parser.add_argument("--parent", type=int, help="die when this process does")
    parser.add_argument("--seed", type=int, help="seed the random draws (tests)")
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    scheduling = raise_priority()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    line = build_line(_spec(args.out), _spec(args.into), args.seed)
    wire = Wire(open_socket(args.near), open_socket(args.far), line)
    print("ready", flush=True)
    started = time.monotonic()
    try:
        wire.run()
    finally:
        report = {
            "seconds": round(time.monotonic() - started, 3),
            "scheduling": scheduling,
            "waiting": len(line),
            "send_errors": wire.send_errors,
            "directions": line.counters(),
        }
        print(json.dumps(report), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
