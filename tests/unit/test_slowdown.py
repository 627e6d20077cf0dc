"""ICE_LAB_SLOWDOWN: a slow machine's CPU stretches every wait of the lab, never shortens one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest
from rich.console import Console

from lab.core import slowdown
from lab.core.errors import LabInputError
from lab.peers.launch import start_up_s
from lab.peers.timing import PROFILES, derives_timing, for_host, for_links
from lab.report.result import RunResult
from lab.report.summary import render
from lab.sweeps.bounded_run import run_bounded
from tests.result_docs import typed

WAITS = ("stun_rto_s", "gathering_timeout_s", "check_timeout_s", "signaling_timeout_s",
         "nomination_wait_s")  # fmt: skip


def test_unset_means_an_ordinary_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(slowdown.ENV, raising=False)
    assert slowdown.factor() == 1.0
    assert slowdown.scaled(10.0) == 10.0


def test_a_factor_multiplies_the_labs_own_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(slowdown.ENV, "12.5")
    assert slowdown.scaled(10.0) == 125.0


@pytest.mark.parametrize("value", ["fast", "0.5", "0", "-3", "nan", "1e9"])
def test_a_bad_value_is_bad_input_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(slowdown.ENV, value)
    with pytest.raises(LabInputError, match=rf"ICE_LAB_SLOWDOWN='{value}': must be a number"):
        slowdown.factor()


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_wait_of_the_profile_is_multiplied_and_the_pacing_kept(name: str) -> None:
    profile = PROFILES[name]
    slow = for_host(profile, 20)
    for wait in WAITS:
        assert getattr(slow, wait) == pytest.approx(getattr(profile, wait) * 20)
    assert slow.check_pacing_s == profile.check_pacing_s
    assert slow.stun_retries == profile.stun_retries
    assert slow.stun_transaction_s == pytest.approx(profile.stun_transaction_s * 20)
    assert slow.peer_deadline_s == pytest.approx(profile.peer_deadline_s * 20)
    assert slow.as_dict()["slowdown"] == 20


def test_an_ordinary_machine_keeps_the_profile_unchanged() -> None:
    profile = for_links(PROFILES["fast"], added_rtt_ms=100)
    assert for_host(profile, 1.0) is profile
    assert {f.name for f in fields(profile)} >= set(WAITS) | {"slowdown"}


def test_a_slowed_profile_no_longer_derives_its_timing() -> None:
    """Round trips measured on a slow CPU say nothing about the network's: the fast
    profile's derived check timing (check_schedule) is for ordinary machines only."""
    assert derives_timing(PROFILES["fast"].as_dict())
    assert not derives_timing(for_host(PROFILES["fast"], 4).as_dict())


def test_a_browsers_start_up_allowance_is_stretched(monkeypatch: pytest.MonkeyPatch) -> None:
    class Config:
        agent = "firefox"

    monkeypatch.delenv(slowdown.ENV, raising=False)
    ordinary = start_up_s({"viewer": Config(), "master": Config()})  # type: ignore[dict-item]
    monkeypatch.setenv(slowdown.ENV, "10")
    assert start_up_s({"viewer": Config()}) == pytest.approx(ordinary * 10)  # type: ignore[dict-item]


def test_the_result_records_the_slowdown_and_the_summary_says_it() -> None:
    result = typed({"timing_profile": "fast"})
    assert "slowdown" not in result.to_json()
    result.slowdown = 20.0
    document = result.to_json()
    assert document["slowdown"] == 20.0
    assert RunResult.from_json(document).slowdown == 20.0
    console = Console(record=True, width=200)
    render(result, console)
    assert "timing fast, slowdown 20)" in console.export_text()


def test_the_workload_runs_with_the_standard_library_alone() -> None:
    """scripts/vm-check.sh runs it with the system's python3 in the VM and on the host,
    before any virtualenv: it must need nothing the lab installs."""
    out = subprocess.run(
        [sys.executable, "-S", "-m", "lab.core.slowdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert 0 < float(out) < 60


def _detect_virt_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    """A systemd-detect-virt on PATH that answers as it does in such a VM."""
    tool = tmp_path / "systemd-detect-virt"
    tool.write_text(f"#!/bin/sh\necho {answer}\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")


def test_a_failed_run_on_an_emulated_cpu_points_at_the_slowdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(slowdown.ENV, raising=False)
    _detect_virt_says(tmp_path, monkeypatch, "qemu")
    hint = slowdown.hint_for_failed_run()
    assert hint is not None and "emulated" in hint
    assert re.search(r"took \d+\.\d\d s here, .* with ICE_LAB_SLOWDOWN=\d+ ", hint), hint
    monkeypatch.setenv(slowdown.ENV, "20")
    assert slowdown.hint_for_failed_run() is None  # already said


@pytest.mark.parametrize("answer", ["kvm", "none", "docker"])
def test_no_hint_where_the_cpu_is_the_machines_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    monkeypatch.delenv(slowdown.ENV, raising=False)
    _detect_virt_says(tmp_path, monkeypatch, answer)
    assert slowdown.hint_for_failed_run() is None


def test_a_sweeps_run_gets_the_stretched_time_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`lab matrix --fresh` and `lab compare` bound each child run; on a slow machine the
    child's own waits are longer, and so is its bound."""
    monkeypatch.setenv(slowdown.ENV, "3")
    started = time.monotonic()
    done = run_bounded([sys.executable, "-c", "import time; time.sleep(0.2); print('x')"], 0.1)
    assert not done.timed_out and done.returncode == 0  # 0.2 s < 0.1 s x 3
    done = run_bounded(["sleep", "5"], 0.1)
    assert done.timed_out and done.error() == "timed out after 0.3 s"
    assert time.monotonic() - started < 4


def test_the_factor_against_this_projects_machines_is_a_whole_number_of_at_least_one() -> None:
    assert slowdown.factor_against_reference(0.6) == 15  # make vm-check's VM, 0.04 s here
    assert slowdown.factor_against_reference(0.86) == 22
    assert slowdown.factor_against_reference(0.01) == 1  # a faster machine gets no slowdown
    out = subprocess.run(
        [sys.executable, "-S", "-m", "lab.core.slowdown", "--factor"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert float(out) >= 1 and float(out).is_integer()


@pytest.mark.root
@pytest.mark.parametrize(
    "command",
    [["run", "home-nat-both"], ["matrix", "--nat", "open"], ["compare", "home-nat-both"]],
    ids=["run", "matrix", "compare"],
)
def test_a_bad_slowdown_is_one_line_and_exit_2_before_anything_is_built(
    command: list[str],
) -> None:
    """Said by the command itself, not by a sweep's cell (a traceback, once)."""
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    done = subprocess.run(
        [sys.executable, "-m", "lab", *command],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {slowdown.ENV: "abc"},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: ICE_LAB_SLOWDOWN='abc': must be a number from 1 to 1000, how many times slower "
        "this machine's CPU is than an ordinary one"
    ]
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert after == before
