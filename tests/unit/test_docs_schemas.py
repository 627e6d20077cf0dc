"""Editors validate the bundled scenarios and topologies as they are typed: each file names its
JSON Schema on its first line for the YAML language server, the schemas are ones it can use,
and the lab still reads the files (the line is a YAML comment)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scripts.docs.sources import SCENARIO_DIR, SCHEMA_DIR, TOPOLOGY_DIR, lab_app

MODELINE = re.compile(r"^# yaml-language-server: \$schema=(?P<path>\S+)$")
BUNDLED = [(p, "scenario") for p in sorted(SCENARIO_DIR.glob("*.yaml"))] + [
    (p, "topology") for p in sorted(TOPOLOGY_DIR.glob("*.yaml"))
]
#: Keywords the YAML language server's draft-07 validator would not apply.
AFTER_DRAFT_7 = {
    "prefixItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "dependentRequired",
    "dependentSchemas",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
    "$anchor",
    "minContains",
    "maxContains",
}


@pytest.mark.parametrize(("path", "kind"), BUNDLED, ids=lambda v: getattr(v, "name", v))
def test_the_first_line_names_the_schema_by_relative_path(path: Path, kind: str) -> None:
    first = path.read_text().splitlines()[0]
    match = MODELINE.match(first)
    assert match, f"{path.name}: first line is not a yaml-language-server $schema line"
    target = (path.parent / match["path"]).resolve()
    assert target == (SCHEMA_DIR / f"{kind}.schema.json").resolve(), first


@pytest.mark.parametrize("kind", ["scenario", "topology", "result"])
def test_the_schema_declares_its_draft_and_id_and_needs_nothing_after_draft_7(kind: str) -> None:
    schema = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())
    assert schema["$schema"].startswith("https://json-schema.org/draft/")
    assert schema["$id"].endswith(f"/{kind}.schema.json")
    assert not _keywords(schema) & AFTER_DRAFT_7


def test_lab_validate_accepts_every_bundled_file_with_its_schema_line() -> None:
    files = [str(path) for path, _ in BUNDLED]
    result = CliRunner().invoke(lab_app(), ["validate", *files])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == len(files)


def _keywords(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set(node)
        for key, value in node.items():
            if key not in ("properties", "$defs"):
                found |= _keywords(value)
            else:
                found |= set().union(*(_keywords(v) for v in value.values()))
        return found
    if isinstance(node, list):
        return set().union(*(_keywords(v) for v in node)) if node else set()
    return set()
