"""HTML reports of real runs and a real matrix, opened in headless Chromium (root).

Each page must load without an exception or console error, fetch nothing but itself,
and hold the topology, the pair grid and the timeline (a matrix: its grid of cells).
The screenshots stay in pytest's temporary directory as artifacts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab.sweeps.matrix import matrix_document
from lab.sweeps.matrix_cells import GROUPS

from .helpers import lab, leftovers
from .report_browser import open_report

pytestmark = pytest.mark.root

RESULT_QUERIES = {
    "boxes": "document.querySelectorAll('svg.topology-svg g.box').length",
    "path": "Array.from(document.querySelectorAll('g.box.on-path')).map(b => b.dataset.node)",
    "grids": "document.querySelectorAll('table.grid').length",
    "pairs": "document.querySelectorAll('td.pair[data-index]').length",
    "selected": "document.querySelectorAll('td.pair.selected').length",
    "timeline": "document.querySelectorAll('.timeline-svg circle').length",
    "checks": "document.querySelectorAll('.checks-svg rect').length",
    "explained": "document.querySelector('section.explain').innerText",
    # a click on a failed pair shows its detail, with the hop that dropped it
    "detail": """(() => {
        const cell = document.querySelector('td.pair.failed');
        cell.click();
        return document.querySelector('.detail').innerText;
    })()""",
}


def _run(tmp: Path, scenario: str) -> tuple[dict[str, Any], Path, str]:
    page, path = tmp / f"{scenario}.html", tmp / f"{scenario}.json"
    completed = lab("run", scenario, "--capture", "--json", str(path), "--html", str(page), "-q")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(path.read_text()), page, completed.stdout


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("html-reports")


def _check_result_page(page: Path, shot: Path) -> dict[str, Any]:
    seen = open_report(page, shot, RESULT_QUERIES)
    assert seen.errors == []
    assert seen.requests == [page.resolve().as_uri()]  # self-contained: nothing fetched
    assert shot.stat().st_size > 10_000
    answers = seen.answers
    assert answers["boxes"] >= 5 and answers["grids"] == 2 and answers["pairs"] > 4
    assert answers["selected"] == 2  # one selected pair per agent
    assert answers["timeline"] >= 4
    assert answers["checks"] >= answers["pairs"] // 2  # --capture: each check on the wire
    assert "dropped at:" in answers["detail"]
    return answers


def test_enterprise_firewall_report_in_a_browser(artifacts: Path) -> None:
    result, page, _ = _run(artifacts, "enterprise-firewall")
    answers = _check_result_page(page, artifacts / "enterprise-firewall.png")
    assert {"viewer", "office-gw", "turn", "master"} <= set(answers["path"])
    assert "office-gw's firewall dropped the checks (outbound)" in answers["explained"]
    assert leftovers() == {"shells": [], "run_dirs": [], "turnservers": []}


def test_symmetric_both_report_and_explain(artifacts: Path) -> None:
    result, page, _ = _run(artifacts, "symmetric-both")
    answers = _check_result_page(page, artifacts / "symmetric-both.png")
    assert "turn" in answers["path"]
    explained = lab("explain", str(artifacts / "symmetric-both.json"))
    assert explained.returncode == 0, explained.stderr
    srflx = next(
        line
        for line in explained.stdout.splitlines()
        if line.strip().startswith("- viewer: host -> the other's srflx")
    )
    assert "viewer-gw's symmetric mapping" in srflx
    assert "master-gw's port-restricted filter" in srflx
    assert srflx.strip()[2:] in answers["explained"].replace("\n", " ")


def test_matrix_report_in_a_browser(artifacts: Path) -> None:
    """A real 2x2 matrix, and the 7x7 page its cells fill (every preset row)."""
    path = artifacts / "matrix.json"
    completed = lab(
        "matrix", "--nat", "port-restricted-cone,symmetric", "--json", str(path), "-j", "2"
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    real = json.loads(path.read_text())
    presets = list(GROUPS["nats"])
    cells = [
        {**real["cells"][(i + j) % len(real["cells"])], "viewer": v, "master": m}
        for i, v in enumerate(presets)
        for j, m in enumerate(presets)
    ]
    full = artifacts / "matrix-7x7.json"
    full.write_text(json.dumps(matrix_document(real["agents"], presets, cells, 0.0)))
    for name, document in (("matrix", path), ("matrix-7x7", full)):
        page = artifacts / f"{name}.html"
        written = lab("report", str(document), "-o", str(page))
        assert written.returncode == 0, written.stderr
        seen = open_report(
            page,
            artifacts / f"{name}.png",
            {
                "cells": "document.querySelectorAll('#matrix-grid td').length",
                "coloured": "document.querySelectorAll('#matrix-grid td.relay').length",
                "report": """(() => {
                    document.querySelector('#matrix-grid td a').click();
                    const shown = document.querySelector('.cell-report:target');
                    return shown && shown.querySelectorAll('td.pair[data-index]').length;
                })()""",
            },
        )
        assert seen.errors == []
        side = 2 if name == "matrix" else 7
        assert seen.answers["cells"] == side * side
        assert seen.answers["coloured"] >= 1  # symmetric x symmetric relays
        assert seen.answers["report"] > 0  # a cell's own report, inside the page


def test_report_refuses_what_is_not_a_document(tmp_path: Path) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": 1}')
    completed = lab("report", str(bad), "-o", str(tmp_path / "out.html"))
    assert completed.returncode == 2
    assert f"{bad}: not a result, matrix or compare document" in completed.stderr
    assert not (tmp_path / "out.html").exists()
