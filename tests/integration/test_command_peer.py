"""A user's own program as the viewer (root): the example application, written against
the real service with boto3, SigV4 and aiortc, joins a lab run through the emulated
control plane and signaling, and the result says what the lab saw of it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.integration.helpers import LAB, lab, leftovers, run_scenario

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
APP = f"{LAB[0]} {ROOT / 'examples' / 'kvs_viewer_app.py'}"


def test_the_example_app_fetches_its_ice_servers_and_connects(tmp_path: Path) -> None:
    status, result, output = run_scenario(tmp_path, "home-nat-both", "--viewer-command", APP)
    assert status == 0 and result["outcome"] == "connected", output
    viewer = result["peers"]["viewer"]
    assert viewer["agent"] == "command"
    command = viewer["command"]
    assert command["exit_status"] == 0 and command["output"][-1].startswith("connected")
    assert any("m-" in line and "r-" in line for line in command["output"])  # endpoints
    actions = [e.get("action") for e in command["wire"]["signaling"]]
    assert "SDP_OFFER" in actions
    # The app allocated relays with GetIceServerConfig's credentials (the channel's ARN
    # in the user name), not with the lab's own.
    users = command["wire"]["turn_requests_by_user"]
    assert any(
        b"v1:arn:aws:kinesisvideo" in base64.b64decode(user.split(":", 1)[1] + "==")
        for user in users
        if ":" in user and not user.endswith("home-nat-both")
    )
    # The lab's master saw the app's checks and selected a pair with it.
    assert result["selected"]["master"] is not None
    assert leftovers() == {"shells": [], "run_dirs": [], "turnservers": []}


def test_a_program_that_fails_fails_the_run_and_says_how(tmp_path: Path) -> None:
    status, result, output = run_scenario(
        tmp_path, "home-nat-both", "--viewer-command", "sh -c 'echo cannot reach it; exit 3'"
    )
    assert status == 1 and result["outcome"] == "failed", output
    viewer = result["peers"]["viewer"]
    assert viewer["command"]["exit_status"] == 3
    assert viewer["error"] == "the command exited with status 3: cannot reach it"


def test_an_empty_command_is_bad_input() -> None:
    completed = lab("run", "home-nat-both", "--viewer-command", " ")
    assert completed.returncode == 2
    assert "--viewer-command: give the program to run" in completed.stderr
