"""Every bundled scenario runs for real and meets its expectations; each teaches something
(root). `lab list --json` names them all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.scenario import bundled_scenarios, load_scenario

from .helpers import lab, leftovers, run_scenario

pytestmark = pytest.mark.root


@pytest.mark.parametrize("path", bundled_scenarios(), ids=lambda p: p.stem)
def test_bundled_scenario_meets_its_expectations(tmp_path: Path, path: Path) -> None:
    status, result, output = run_scenario(tmp_path, path.stem)
    unmet = [c for c in result.get("expectations", []) if not c["met"]]
    assert status == 0 and result["expectations_met"], f"{unmet}\n{output}"
    # aiortc drives every pair to a final state; a browser stops checking once it has
    # selected one, and its unfinished pairs are marked so (README, "Browser peers").
    browsers = {p.get("agent") for p in result["peers"].values()} - {"aiortc"}
    unfinished = {"waiting", "in-progress"} if browsers else set()
    assert {p["state"] for p in result["pairs"]} <= {"succeeded", "failed", *unfinished}
    assert leftovers()["shells"] == []


def test_library_lists_every_scenario_with_a_lesson() -> None:
    completed = lab("list", "--json")
    listed = {entry["name"]: entry["description"] for entry in json.loads(completed.stdout)}
    assert set(listed) == {p.stem for p in bundled_scenarios()}
    assert len(listed) >= 14
    for name, description in listed.items():
        assert description, name
        assert load_scenario(name).teaches, f"{name} has no `teaches`"
