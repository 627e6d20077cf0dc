"""`lab matrix` on real runs: a 2x2 grid of cells, saved as JSON (root)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.matrix import cell_documents, describe_cell

from .helpers import lab

pytestmark = pytest.mark.root


def test_matrix_runs_every_combination_and_saves_each_result(tmp_path: Path) -> None:
    path = tmp_path / "matrix.json"
    completed = lab(
        "matrix", "--nat", "port-restricted-cone,symmetric", "--json", str(path), "-j", "2"
    )
    assert completed.returncode == 0, completed.stderr
    cells = json.loads(path.read_text())["cells"]
    assert {(c["viewer"], c["master"]) for c in cells} == {
        (v, m)
        for v in ("port-restricted-cone", "symmetric")
        for m in ("port-restricted-cone", "symmetric")
    }
    by_pair = {(c["viewer"], c["master"]): c for c in cells}
    assert all(c["result"]["outcome"] == "connected" for c in cells)
    # Cone to cone connects directly; a symmetric NAT on either side needs a relay.
    assert describe_cell(by_pair[("port-restricted-cone", "port-restricted-cone")]) == "srflx-srflx"
    for combo in [("symmetric", "symmetric"), ("symmetric", "port-restricted-cone")]:
        assert "relay" in describe_cell(by_pair[combo])
    assert "srflx-srflx" in completed.stdout


def test_unknown_preset_is_bad_input() -> None:
    completed = lab("matrix", "--nat", "open,sideways")
    assert completed.returncode == 2 and "sideways" in completed.stderr


def test_cell_documents_place_the_carrier_nat_outside_the_home_nat() -> None:
    topology, scenario = cell_documents("symmetric-then-cone", "open")
    assert scenario["conditions"]["viewer-home"] == {"nat": "port-restricted-cone"}
    assert scenario["conditions"]["viewer-cgn"] == {"nat": "symmetric"}
    assert topology["nodes"]["viewer-home"]["gateway"].startswith("100.64.")
    assert "master-home" not in topology["nodes"]
