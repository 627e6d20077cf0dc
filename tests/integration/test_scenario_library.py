"""Every bundled scenario runs for real and meets its expectations; each teaches something
(root). `lab list --json` names them all."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from lab.core.documents import schema_errors
from lab.report.result import RunResult
from lab.scenario.scenario import bundled_scenarios, load_scenario

from .helpers import lab, leftovers, run_scenario

pytestmark = pytest.mark.root


#: Runs at once: most of a run is waiting (timeouts, calls, delayed links), and the
#: scenarios' expectations hold under the load of two others (`lab compare -j 2` too).
PARALLEL_RUNS = 3


@pytest.fixture(scope="module")
def library_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every bundled scenario's (status, result, output), run PARALLEL_RUNS at once."""
    directory = tmp_path_factory.mktemp("library")
    names = [path.stem for path in bundled_scenarios()]
    with ThreadPoolExecutor(max_workers=PARALLEL_RUNS) as pool:
        runs = pool.map(lambda name: run_scenario(directory, name), names)
        return dict(zip(names, runs, strict=True))


@pytest.mark.parametrize("path", bundled_scenarios(), ids=lambda p: p.stem)
def test_bundled_scenario_meets_its_expectations(library_runs: dict[str, Any], path: Path) -> None:
    status, result, output = library_runs[path.stem]
    unmet = [c for c in result.get("expectations", []) if not c["met"]]
    assert status == 0 and result["expectations_met"], f"{unmet}\n{output}"
    # aiortc drives every pair to a final state; a browser stops checking once it has
    # selected one, and its unfinished pairs are marked so (README, "Browser peers").
    browsers = {p.get("agent") for p in result["peers"].values()} - {"aiortc"}
    unfinished = {"waiting", "in-progress"} if browsers else set()
    assert {p["state"] for p in result["pairs"]} <= {"succeeded", "failed", *unfinished}
    assert leftovers()["shells"] == []
    # The typed result and the schema agree: the document reads back and writes out the
    # same, and validates.
    assert RunResult.from_json(result).to_json() == result
    assert schema_errors(result, "result") == []


def test_library_lists_every_scenario_with_a_lesson() -> None:
    completed = lab("list", "--json")
    listed = {entry["name"]: entry["description"] for entry in json.loads(completed.stdout)}
    assert set(listed) == {p.stem for p in bundled_scenarios()}
    assert len(listed) >= 14
    for name, description in listed.items():
        assert description, name
        assert load_scenario(name).teaches, f"{name} has no `teaches`"
