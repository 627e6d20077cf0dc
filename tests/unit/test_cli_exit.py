"""The `lab` command's exit statuses survive its fast exit (os._exit after flushing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lab.cli import _exit_status

ROOT = Path(__file__).resolve().parents[2]


def lab(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lab", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (2, 2), (130, 130), ("no", 1)])
def test_exit_status_follows_sys_exit(code: object, status: int) -> None:
    assert _exit_status(code) == status


def test_output_is_flushed_before_the_fast_exit() -> None:
    listed = lab("list", "--json")
    assert listed.returncode == 0
    assert '"name": "enterprise-firewall"' in listed.stdout  # the whole document, not a cut


def test_bad_input_still_exits_2_with_its_message(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    validated = lab("validate", str(broken))
    assert validated.returncode == 2
    assert f"{broken}: line" in validated.stderr
