"""`lab compare` on real runs: aiortc and Chromium on both sides of two scenarios (root).

Eight runs, two at a time (about 20 s): every agent combination connects across two
home NATs and, behind two symmetric NATs, only through a relay.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from .helpers import lab, leftovers

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium"),
]
COMBOS = ["aiortc/aiortc", "chromium/chromium", "chromium/aiortc", "aiortc/chromium"]


def involves_relay(cell: dict[str, Any]) -> bool:
    """Either side's selected pair has a relay candidate at either end."""
    pairs = [p for p in cell["selected"].values() if p]
    return any("relay" in (p["local"], p["remote"]) for p in pairs)


def test_every_agent_combination_connects_and_relays_where_it_must(tmp_path: Path) -> None:
    path = tmp_path / "compare.json"
    completed = lab(
        "compare", "home-nat-both", "symmetric-both", "--agents", "aiortc,chromium",
        "--json", str(path), timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    document = json.loads(path.read_text())
    assert [c["name"] for c in document["combos"]] == COMBOS
    rows = {row["scenario"]: row for row in document["scenarios"]}
    assert list(rows) == ["home-nat-both", "symmetric-both"]
    for scenario, row in rows.items():
        assert list(row["cells"]) == COMBOS
        for name, cell in row["cells"].items():
            assert cell["error"] is None, (scenario, name, cell["error"])
            assert cell["outcome"] == "connected", (scenario, name)
            viewer, master = name.split("/")
            for role, agent in (("viewer", viewer), ("master", master)):
                software = cell["software"][role]
                assert software["name"] == agent, (scenario, name, role)
                if agent == "chromium":
                    assert software["version"][:1].isdigit(), software
    for name, cell in rows["symmetric-both"]["cells"].items():
        assert involves_relay(cell), (name, cell["selected"])
    for combo in COMBOS:
        assert combo in completed.stdout
    assert "differences from aiortc/aiortc:" in completed.stdout
    assert leftovers() == {"shells": [], "run_dirs": [], "turnservers": []}
