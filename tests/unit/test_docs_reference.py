"""The generated reference pages under docs/reference/ match what the code would generate now."""

from __future__ import annotations

import pytest

from scripts.docs.generate import COMMAND, PAGES, render
from scripts.docs.sources import REPO


@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_committed_page_is_what_the_code_generates(page: str) -> None:
    committed = (REPO / page).read_text() if (REPO / page).exists() else ""
    assert committed == render(page), f"{page} is stale: regenerate it with `{COMMAND}`"


def test_every_command_has_a_section_in_the_cli_reference() -> None:
    page = render("docs/reference/cli.md")
    for command in ("run", "diagnose", "matrix", "compare", "explain", "trace", "up", "exec"):
        assert f"\n## lab {command}\n" in page


def test_the_scenario_library_lists_every_bundled_scenario() -> None:
    page = render("docs/reference/scenarios.md")
    for path in sorted((REPO / "scenarios").glob("*.yaml")):
        assert f"\n## {path.stem}\n" in page, path.name
