"""The progress of a sweep: a live line on a terminal, a plain line per cell elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from lab.sweeps.progress import Sweep, clock, time_left


def test_time_left_is_the_average_pace_times_the_cells_left() -> None:
    assert time_left(10.0, 0, 49) is None
    assert time_left(10.0, 5, 49) == 88.0
    assert time_left(10.0, 49, 49) == 0.0


def test_clock() -> None:
    assert (clock(None), clock(5.4), clock(65), clock(3725)) == ("-:--", "0:05", "1:05", "1:02:05")


def test_not_on_a_terminal_each_finished_cell_is_one_line_with_the_counts() -> None:
    output = io.StringIO()
    with Sweep("matrix", 3, Console(file=output, width=300)) as sweep:
        assert not sweep.live
        sweep.started()
        sweep.started()
        sweep.finished("viewer open x master open", "host-host")
        sweep.finished("viewer open x master symmetric", "error (boom)", failed=True)
        sweep.skipped("viewer a x master b", "cannot")
    lines = output.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("[1/3, 1 running, 0 failed, 0:00 elapsed, 0:00 left]")
    assert lines[0].endswith("viewer open x master open: host-host")
    assert lines[1].startswith("[2/3, 0 running, 1 failed,")
    assert lines[1].endswith("FAILED error (boom)")
    assert lines[2].endswith("viewer a x master b: not run: cannot")


def test_on_a_terminal_a_live_line_shows_done_running_failed_and_time() -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=160)
    with Sweep("matrix", 4, console) as sweep:
        assert sweep.live
        sweep.started()
        sweep.finished("viewer open x master open", "host-host")
        sweep.started()
        sweep.finished("viewer x x master y", "error", failed=True)
    text = output.getvalue()
    assert "matrix" in text and "2/4" in text
    assert "cells, 0 running, 1 failed" in text and "left" in text
    # Only failed cells get a line of their own on a terminal; the bar says the rest.
    assert "viewer x x master y: FAILED error" in text
    assert "viewer open x master open" not in text
