"""Progress of a sweep (`lab matrix`, `lab compare`): many runs in parallel, each a cell.

A 12x12 matrix is minutes of work; without a sign of life a user cannot tell a slow run
from a stuck one. On a terminal the sweep shows one live line: a bar, cells done of the
total, how many are running and how many failed, the time elapsed and an estimate of the
time left (cells still to run at the average pace so far, which already counts the
parallelism). When stderr is not a terminal (CI logs, a pipe) a live display would be
control characters in a file, so each finished cell gets one plain line instead, with
the same counts. Progress goes to stderr: the result (table, JSON) stays alone on stdout.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text


def time_left(elapsed: float, done: int, total: int) -> float | None:
    """Seconds until the last cell finishes at the average pace so far (None before the
    first cell has finished: there is no pace yet)."""
    if done <= 0:
        return None
    return elapsed / done * max(total - done, 0)


def clock(seconds: float | None) -> str:
    """`1:05` (minutes:seconds), `1:02:05` past an hour, `-:--` without a value."""
    if seconds is None:
        return "-:--"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _TimeLeftColumn(ProgressColumn):
    """The estimate from `time_left`: rich's own column measures the rate over a recent
    window only, which swings when cells finish in bursts (they do, `-j` at a time)."""

    def render(self, task: Task) -> Text:
        total = int(task.total or 0)
        left = time_left(task.elapsed or 0.0, int(task.completed), total)
        return Text(f"{clock(left)} left", style="progress.remaining")


class Sweep:
    """Counts cells as they start and finish and shows it: a live line on a terminal, a
    line per finished cell elsewhere. Safe to call from the worker threads."""

    def __init__(self, what: str, total: int, console: Console | None = None) -> None:
        self.what = what
        self.total = total
        self.console = console or Console(stderr=True, highlight=False)
        self.live = self.console.is_terminal and not self.console.is_dumb_terminal
        self.done = 0
        self.running = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Sweep:
        self._started = time.monotonic()
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("cells, {task.fields[running]} running, {task.fields[failed]} failed"),
                TimeElapsedColumn(),
                _TimeLeftColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.what, total=self.total, **self._fields())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _fields(self) -> dict[str, int]:
        return {"running": self.running, "failed": self.failed}

    def _update(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self.done, **self._fields())

    def started(self) -> None:
        """A cell began running."""
        with self._lock:
            self.running += 1
            self._update()

    def finished(self, label: str, outcome: str, failed: bool = False) -> None:
        """A cell ended: `label` names it, `outcome` says what happened, in a few words."""
        with self._lock:
            self.running = max(self.running - 1, 0)
            self.done += 1
            self.failed += int(failed)
            self._update()
            line = self.line(label, outcome, failed)
        if not self.live:
            self.console.print(line, markup=False, soft_wrap=True)
        elif failed:
            self.console.print(line, markup=False, soft_wrap=True, style="red")

    def skipped(self, label: str, reason: str) -> None:
        """A cell that was not run (it never `started`), with the reason."""
        with self._lock:
            self.done += 1
            self._update()
            line = self.line(label, f"not run: {reason}")
        if not self.live:
            self.console.print(line, markup=False, soft_wrap=True)

    def line(self, label: str, outcome: str, failed: bool = False) -> str:
        """`[12/49, 3 running, 0 failed, 0:15 elapsed, 0:46 left] LABEL: OUTCOME`."""
        elapsed = time.monotonic() - self._started
        left = time_left(elapsed, self.done, self.total)
        counts = (
            f"[{self.done}/{self.total}, {self.running} running, {self.failed} failed, "
            f"{clock(elapsed)} elapsed, {clock(left)} left]"
        )
        return f"{counts} {label}: {'FAILED ' if failed else ''}{outcome}"
