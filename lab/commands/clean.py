"""`lab clean`: remove what a crashed run left behind, and only the lab's own."""

from __future__ import annotations

import typer

from lab.core.errors import LabError
from lab.core.terminal import console, fail


def register(app: typer.Typer) -> None:
    @app.command()
    def clean() -> None:
        """Remove what a crashed run left behind: the lab's namespaces, processes and files."""
        from lab.core.lifecycle import RUN_ROOT
        from lab.run.cleanup import clean as clean_lab
        from lab.run.preflight import require_root

        try:
            require_root()
        except LabError as exc:
            raise fail(exc) from None
        report = clean_lab(RUN_ROOT)
        for path in report.live_runs:
            console.print(f"left alone (its lab process still runs): {path}", highlight=False)
        if report.up:
            console.print(f"lab up: {report.up}", highlight=False, markup=False, soft_wrap=True)
        if not report.anything:
            console.print("nothing to clean")
            return
        console.print(
            f"killed {len(report.processes)} process(es) and {len(report.shells)} namespace "
            f"shell(s); removed {len(report.directories)} run director(ies)"
            + (f" and {len(report.sockets)} WireGuard socket(s)" if report.sockets else "")
        )
