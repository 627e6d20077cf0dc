"""`lab probe-nat`: RFC 5780 behaviour discovery from a lab host (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `probe-nat` to the CLI."""
