"""`lab clean` during another run (root): the crashed run's remains go, the live run
goes on to its end and cleans up after itself."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from lab.core.lifecycle import RUN_ROOT
from tests.integration.helpers import LAB, lab, leftovers

pytestmark = pytest.mark.root


def test_lab_clean_leaves_a_run_in_progress_alone(tmp_path: Path) -> None:
    result_path = tmp_path / "result.json"
    running = subprocess.Popen(
        [*LAB, "run", "call-link-outage", "--json", str(result_path), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not list(RUN_ROOT.glob("run-*/viewer.connected")):  # the call is up
            assert running.poll() is None, running.communicate()
            assert time.monotonic() < deadline, "the run never connected"
            time.sleep(0.1)
        cleaned = lab("clean")
        assert cleaned.returncode == 0, cleaned.stderr
        assert "left alone" in cleaned.stdout
        _, stderr = running.communicate(timeout=60)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 0, stderr
    result = json.loads(result_path.read_text())
    # Killing it would have cut the call: every message came back.
    assert result["call"]["messages_echoed"] == result["call"]["messages_sent"] > 0
    assert leftovers() == {"shells": [], "run_dirs": [], "turnservers": []}
