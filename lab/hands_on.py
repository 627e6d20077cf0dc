"""Hands-on mode: `lab up`, `lab exec`, `lab status`, `lab down` (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the hands-on commands to the CLI."""
