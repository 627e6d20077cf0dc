"""A run's lifecycle: its private directory under RUN_ROOT, SIGTERM as an exception so
`finally` blocks tear the lab down, and the stopwatch of its phases."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from lab.core.errors import EXIT_INTERRUPTED, EXIT_TERMINATED

RUN_ROOT = Path("/run/ice-lab")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so `finally` blocks tear the lab down."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def raise_on_sigterm() -> None:
    """From now on SIGTERM raises Terminated in the main thread, so whatever is being
    built is torn down by its `finally` blocks (the `lab` command does this first)."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def interrupted_status(interruption: BaseException) -> int:
    """The exit status of a command stopped by Ctrl-C (130) or SIGTERM (143)."""
    return EXIT_TERMINATED if isinstance(interruption, Terminated) else EXIT_INTERRUPTED


@contextmanager
def sigterm_raises() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def run_directory(keep: bool) -> Iterator[Path]:
    """A private directory for the run's configs, certificates and logs.

    A kept directory is renamed `kept-*` when the run ends, so `lab clean` (which
    removes `run-*` directories, the debris of crashed runs) leaves it alone.
    """
    RUN_ROOT.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="run-", dir=RUN_ROOT))
    try:
        yield path
    finally:
        if keep:
            kept = path.with_name("kept-" + path.name.removeprefix("run-"))
            path.rename(kept)
            print(f"run directory kept: {kept}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


class Stopwatch:
    """Records how long each phase of a run took, for `timings.phases` in the result."""

    def __init__(self, phases: dict[str, float]) -> None:
        self.phases = phases
        self.last = time.monotonic()

    def __call__(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(now - self.last, 3)
        self.last = now
