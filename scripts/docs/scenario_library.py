"""The scenario library page, from the bundled scenario files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scripts.docs.sources import SCENARIO_DIR


def scenario_library_page() -> str:
    """Every bundled scenario: what it shows, its topology and what it teaches."""
    scenarios = [(path.stem, _read(path)) for path in sorted(SCENARIO_DIR.glob("*.yaml"))]
    rows = ["| scenario | what it shows |", "|---|---|"]
    for name, doc in scenarios:
        rows.append(f"| [`{name}`](#{name}) | {_line(doc.get('description'))} |")
    sections = [_section(name, doc) for name, doc in scenarios]
    return "\n".join(
        [
            "# Scenario library",
            "",
            "The bundled scenarios (`scenarios/*.yaml`). `lab list` prints them; `lab show NAME`",
            "prints one resolved, with its topology, conditions and expectations; `sudo lab run",
            "NAME` runs it. Every one runs in CI and must meet its expectations. `lab matrix`",
            "runs every combination of NAT presets instead ([Matrix rows](matrix.md)).",
            "",
            *rows,
            "",
            *sections,
        ]
    )


def _read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def _section(name: str, doc: dict[str, Any]) -> str:
    lines = [f"## {name}", "", _line(doc.get("description")), ""]
    if doc.get("teaches"):
        lines += [_line(doc["teaches"]), ""]
    facts = [f"topology `{doc.get('topology', '?')}`"]
    agents = _agents(doc)
    if agents:
        facts.append(agents)
    if doc.get("call"):
        facts.append("an ongoing call with events")
    lines += ["; ".join(facts).capitalize() + f". Run it: `sudo .venv/bin/lab run {name}`.", ""]
    return "\n".join(lines)


def _agents(doc: dict[str, Any]) -> str:
    peers = doc.get("peers") or {}
    named = [
        f"the {role} in {peer['agent']}"
        for role, peer in peers.items()
        if isinstance(peer, dict) and peer.get("agent")
    ]
    return ", ".join(named)


def _line(text: Any) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")
