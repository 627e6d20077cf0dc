"""A matrix run in shards and merged equals the same matrix run whole (root): real cells on
reused networks, `lab matrix --shard I/2` twice beside one unsharded `lab matrix`, then
`lab merge`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lab.sweeps.matrix import selected_types

from .helpers import LAB, lab, leftovers

pytestmark = pytest.mark.root

#: Direct cells (host-host, srflx-host, ...), peer-reflexive ones, and one relayed
#: (symmetric x symmetric): 9 cells, split 4 and 5.
ROWS = "open,full-cone,symmetric"


def outcome(cell: dict[str, Any]) -> tuple[str, tuple[str, str] | None]:
    """What a cell found: the run's outcome and the viewer's selected pair's types."""
    return cell["result"]["outcome"], selected_types(cell)


def test_two_shards_merged_equal_the_unsharded_matrix(tmp_path: Path) -> None:
    def matrix(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*LAB, "matrix", "--nat", ROWS, "-j", "2", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    paths = [tmp_path / f"shard-{index}.json" for index in range(2)]
    whole_path = tmp_path / "whole.json"
    runs = [
        matrix("--json", str(whole_path)),
        *(matrix("--shard", f"{i}/2", "--json", str(p)) for i, p in enumerate(paths)),
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr
    assert "shard 1/2 (0-based): 5 of the matrix's 9 cells" in outputs[2][0]
    shards = [json.loads(path.read_text()) for path in paths]
    assert [shard["shard"] for shard in shards] == [
        {"index": 0, "count": 2},
        {"index": 1, "count": 2},
    ]
    assert [len(shard["cells"]) for shard in shards] == [4, 5]

    merged_path, page = tmp_path / "merged.json", tmp_path / "merged.html"
    merged_run = lab(
        "merge", *map(str, reversed(paths)), "--json", str(merged_path), "--html", str(page)
    )
    assert merged_run.returncode == 0, merged_run.stderr
    merged, whole = json.loads(merged_path.read_text()), json.loads(whole_path.read_text())
    assert list(merged) == list(whole)  # the same document, field for field
    for field in ("agents", "options", "presets", "agreement"):
        assert merged[field] == whole[field], field
    assert merged["wall_s"] == max(shard["wall_s"] for shard in shards)
    cells = [(c["viewer"], c["master"]) for c in merged["cells"]]
    assert cells == [(c["viewer"], c["master"]) for c in whole["cells"]]
    assert [outcome(c) for c in merged["cells"]] == [outcome(c) for c in whole["cells"]]
    assert all(c["result"]["outcome"] == "connected" and c["reused"] for c in merged["cells"])
    by_cell = dict(zip(cells, merged["cells"], strict=True))
    assert selected_types(by_cell[("open", "open")]) == ("host", "host")
    assert "relay" in selected_types(by_cell[("symmetric", "symmetric")])  # type: ignore[operator]
    assert "9 cells in" in merged_run.stdout and page.read_text().count("cell-open-") >= 3
    assert leftovers() == {"shells": [], "run_dirs": [], "turnservers": []}
