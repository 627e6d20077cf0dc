"""How many times slower this machine's CPU is than the machines the lab's limits were set on.

Every limit the lab puts on its own parts (a server's readiness, a node's configuration, a
browser's start, a peer's life) and every budget of the timing profile was chosen on
ordinary x86 machines. On a CPU many times slower (QEMU emulating one without KVM, a
small ARM board) those limits run out before the parts are slow in any way that matters,
and a run fails for the machine rather than for the network. `ICE_LAB_SLOWDOWN=N` tells
the lab that its CPU is N times slower: it multiplies those limits by N and records N in
the result. It never shortens a limit.

`python3 -m lab.core.slowdown` prints the seconds a fixed CPU-bound workload takes here,
with the standard library only; the same figure on two machines gives the factor between
them (`scripts/vm-check.sh` measures the VM against the host this way). With `--factor` it
prints the factor against this project's own machines instead, for when no second machine
is at hand.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time

from lab.core.errors import LabInputError

ENV = "ICE_LAB_SLOWDOWN"
#: Above this the value is surely a mistake (an emulated CPU is 10-50 times slower).
MAX_FACTOR = 1000.0
#: workload_s() on this project's machines (two cores of a cloud x86 server): 0.035-0.046 s
#: on 2026-12-07, and 0.60-0.86 s in `make vm-check`'s VM on QEMU's emulated CPU.
REFERENCE_WORKLOAD_S = 0.04


def factor() -> float:
    """ICE_LAB_SLOWDOWN as a number (1 when unset); bad input names the variable."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 1.0 <= value <= MAX_FACTOR:
        raise LabInputError(
            f"{ENV}={text!r}: must be a number from 1 to {MAX_FACTOR:g}, how many times slower "
            "this machine's CPU is than an ordinary one"
        )
    return value


def scaled(seconds: float) -> float:
    """A limit of the lab's own, stretched by the machine's slowdown."""
    return seconds * factor()


def emulated_cpu() -> bool:
    """Whether this machine is a VM whose CPU QEMU emulates (no KVM under it), the commonest
    slow machine: systemd-detect-virt says `qemu` there and `kvm` under hardware KVM."""
    detect = shutil.which("systemd-detect-virt")
    if detect is None:
        return False
    found = subprocess.run([detect, "--vm"], capture_output=True, text=True, check=False)
    return found.stdout.strip() == "qemu"


def factor_against_reference(seconds: float) -> float:
    """How many times slower than this project's machines a workload_s() of `seconds` is:
    a whole number, at least 1 (an estimate; a factor measured against a machine of your
    own is better)."""
    return float(max(1, round(seconds / REFERENCE_WORKLOAD_S)))


def hint_for_failed_run() -> str | None:
    """What to tell the user whose run failed on an emulated CPU without ICE_LAB_SLOWDOWN:
    the lab's limits, not the network, may be what ran out, and the factor to try (the
    workload measured now, in about a second there)."""
    if os.environ.get(ENV, "").strip() or not emulated_cpu():
        return None
    seconds = workload_s()
    return (
        f"note: this machine's CPU is emulated (QEMU without KVM): the lab's CPU workload took "
        f"{seconds:.2f} s here, about {REFERENCE_WORKLOAD_S:g} s on an ordinary machine, and "
        "the lab's limits may have run out before the network did; run it again with "
        f"{ENV}={factor_against_reference(seconds):g} "
        "(docs/reference/run-output.md, 'On a slow machine')"
    )


def workload_s(rounds: int = 3) -> float:
    """The best of `rounds` timings of a fixed CPU-bound job: interpreted Python (what the
    aiortc peers and the lab spend their time in) and hashing (C code)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        total = 0
        for number in range(300_000):
            total += number * number % 7
        hashlib.sha256(bytes(4_000_000)).digest()
        best = min(best, time.perf_counter() - start)
    return best


if __name__ == "__main__":
    import sys

    measured = workload_s()
    if sys.argv[1:] == ["--factor"]:
        print(f"{factor_against_reference(measured):g}")
    else:
        print(f"{measured:.4f}")
