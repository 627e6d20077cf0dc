"""The package's shape, checked: a handful of entries at the top of lab/ named after the
run's stages, and imports inside functions only where they are meant to be lazy.

(`make lint` runs lint-imports for the layers and cycles: pyproject's contracts.)"""

from __future__ import annotations

import ast
from pathlib import Path

LAB = Path(__file__).resolve().parents[2] / "lab"


def test_lab_has_at_most_twelve_entries_named_after_the_run() -> None:
    entries = sorted(p.name for p in LAB.iterdir() if p.name != "__pycache__")
    assert len(entries) <= 12, entries
    stages = ["scenario", "network", "servers", "peers", "observations", "report", "run"]
    assert set(stages) <= set(entries)


def lazy_imports(path: Path) -> list[tuple[int, bool]]:
    """(line, explained) for each import inside a function: explained when a comment on
    its line, or above the block of imports it opens, says why it is lazy."""
    text = path.read_text()
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for statement in ast.walk(node):
            if isinstance(statement, ast.Import | ast.ImportFrom):
                line = statement.lineno - 1
                first = line
                while first > 0 and lines[first - 1].lstrip().startswith(("import ", "from ")):
                    first -= 1
                explained = "#" in lines[line] or lines[first - 1].lstrip().startswith("#")
                found.append((statement.lineno, explained))
    return found


def test_every_lazy_import_below_the_commands_says_why() -> None:
    """The commands import each stage inside the command that runs it (`lab --help` stays
    quick: lab/commands/__init__.py); anywhere else an import inside a function must say
    what its laziness saves, or it belongs at the top of the module."""
    unexplained = [
        f"{path.relative_to(LAB.parent)}:{line}"
        for path in sorted(LAB.rglob("*.py"))
        if "commands" not in path.parts and "page" not in path.parts
        for line, explained in lazy_imports(path)
        if not explained
    ]
    assert unexplained == []
