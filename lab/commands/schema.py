"""`lab schema`: the JSON Schemas of the lab's documents (result, scenario, topology)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from lab.core.errors import LabError
from lab.core.terminal import fail


def register(app: typer.Typer) -> None:
    @app.command()
    def schema(kind: Annotated[str, typer.Argument(help="result, scenario or topology")]) -> None:
        """Print a JSON Schema shipped with the lab."""
        from lab.core.documents import load_schema

        try:
            print(json.dumps(load_schema(kind), indent=2))
        except LabError as exc:
            raise fail(exc) from None
