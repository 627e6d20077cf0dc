"""`lab list`, `lab show`, `lab validate`: the scenarios and their documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from lab.core.documents import load_document, read_yaml
from lab.core.errors import EXIT_BAD_INPUT, LabError, LabInputError
from lab.core.terminal import console, errors, fail
from lab.network.topology import load_topology
from lab.scenario.scenario import bundled_scenarios, load_scenario


def register(app: typer.Typer) -> None:
    @app.command("list")
    def list_scenarios(
        as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    ) -> None:
        """The bundled scenarios, one line each with what it shows."""
        entries = []
        for path in bundled_scenarios():
            document = read_yaml(path) or {}
            entries.append({"name": path.stem, "description": document.get("description", "")})
        if as_json:
            print(json.dumps(entries, indent=2))
            return
        width = max((len(e["name"]) for e in entries), default=0)
        for entry in entries:
            console.print(
                f"{entry['name']:<{width}}  {entry['description']}", highlight=False, soft_wrap=True
            )

    @app.command()
    def show(scenario: Annotated[str, typer.Argument(help="scenario name or path")]) -> None:
        """The resolved scenario: its lesson, topology, conditions, servers and expectations."""
        try:
            resolved = load_scenario(scenario).resolved()
        except LabError as exc:
            raise fail(exc) from None
        teaches = resolved.pop("teaches", "")
        if teaches:
            console.print(f"[bold]{resolved['name']}[/bold]: {teaches}\n", highlight=False)
        print(yaml.safe_dump(resolved, sort_keys=False, width=100))

    def _kind_of(path: Path, document: Any) -> str:
        if isinstance(document, dict) and "links" in document:
            return "topology"
        return "scenario"

    @app.command()
    def validate(
        files: Annotated[list[Path], typer.Argument(help="scenario or topology files")],
    ) -> None:
        """Validate scenario and topology files against their JSON Schemas (exit 2 if any fails)."""
        bad = 0
        for path in files:
            try:
                kind = _kind_of(path, read_yaml(path))
                if kind == "topology":
                    load_topology(str(path))
                else:
                    load_document(path, "scenario")
                    load_scenario(str(path))
                console.print(f"ok {path} ({kind})", highlight=False)
            except LabInputError as exc:
                errors.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
                bad += 1
        if bad:
            raise typer.Exit(EXIT_BAD_INPUT)
