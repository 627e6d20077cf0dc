"""`lab matrix`: every viewer x master NAT combination (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `matrix` to the CLI."""
