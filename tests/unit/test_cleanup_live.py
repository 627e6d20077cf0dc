"""`lab clean` tells a run in progress (its owner lives) from a crashed one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from lab.core.processes import start_time
from lab.network.build import OWNER, PROCESS_RECORD
from lab.run.cleanup import live_runs, recorded_processes


def write_run(root: Path, name: str, entries: list[dict]) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / PROCESS_RECORD).write_text("".join(json.dumps(e) + "\n" for e in entries))
    return run


def test_a_run_whose_owner_lives_is_in_progress_and_a_dead_owners_run_is_not(
    tmp_path: Path,
) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        me = {"pid": os.getpid(), "start": start_time(os.getpid()), "what": OWNER}
        server = {"pid": child.pid, "start": start_time(child.pid), "what": "turn: turnserver"}
        alive = write_run(tmp_path, "run-alive", [me, server])
        gone = {"pid": 999_999_999, "start": 1, "what": OWNER}
        write_run(tmp_path, "run-crashed", [gone, server])
        live = live_runs(tmp_path)
        assert live.directories == {alive}
        assert live.pids == {child.pid}
        # The owner itself may ask to see its own runs as not live (a test's leftovers).
        assert live_runs(tmp_path, except_owner=os.getpid()).directories == set()
        # The owner line is not a process to kill.
        assert os.getpid() not in recorded_processes(tmp_path)
    finally:
        child.kill()
        child.wait()


def test_a_record_cut_short_by_a_crash_is_no_live_run(tmp_path: Path) -> None:
    run = write_run(tmp_path, "run-cut", [])
    (run / PROCESS_RECORD).write_text('{"pid": 1, "start": 1, "what": "owner"}\n{"pid": 2, "st')
    assert live_runs(tmp_path).directories == set()


def test_a_shell_not_yet_in_its_namespace_does_not_make_lab_clean_kill_the_machine() -> None:
    """Until mnexec unshares, a starting Mininet shell carries the lab's tag in the
    machine's own namespace; `lab clean` once killed every process on the machine then
    (the namespace's members). Such a shell is no lab shell yet, and the machine's own
    namespace never has members to kill."""
    import sys

    from lab.network.build import namespace_members
    from lab.run.cleanup import SHELL_TAG, lab_shells

    starting = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", SHELL_TAG.decode() + "x"]
    )
    try:
        assert starting.pid not in lab_shells()
        assert namespace_members({os.readlink("/proc/self/ns/net")}) == []
    finally:
        starting.kill()
        starting.wait()
