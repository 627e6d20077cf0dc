"""The `lab` command's exit statuses survive its fast exit (os._exit after flushing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lab.commands import _exit_status

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


@pytest.mark.parametrize(
    "command",
    [
        ["run", "home-nat-both", "--json", "/no/such/dir/result.json"],
        ["run", "home-nat-both", "--html", "/no/such/dir/report.html"],
        ["matrix", "--json", "/no/such/dir/matrix.json"],
        ["merge", "shard-0.json", "--json", "/no/such/dir/merged.json"],
        ["compare", "home-nat-both", "--json", "/no/such/dir/compare.json"],
    ],
    ids=["run-json", "run-html", "matrix", "merge", "compare"],
)
def test_an_output_file_in_a_missing_directory_is_refused_before_any_work(
    command: list[str],
) -> None:
    refused = lab(*command)
    assert refused.returncode == 2, refused.stderr
    assert "there is no directory /no/such/dir" in refused.stderr
    assert "Traceback" not in refused.stderr
