"""`lab compare`: the same scenarios under different ICE agents, side by side."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from lab.core import slowdown
from lab.sweeps.compare import (
    DEFAULT_AGENTS,
    DEFAULT_JOBS,
    choose_combos,
    compare_document,
    exit_status,
    passthrough,
    render_table,
    report_lines,
    resolve_scenarios,
    run_all,
)


def register(app: typer.Typer) -> None:
    """Add `compare` to the CLI."""

    @app.command()
    def compare(
        scenarios: Annotated[
            list[str] | None, typer.Argument(help="scenario names or paths (default: all bundled)")
        ] = None,
        agents: Annotated[
            str | None,
            typer.Option(
                help="comma-separated agents; every viewer x master pair of them "
                f"(default: {DEFAULT_AGENTS})"
            ),
        ] = None,
        combos: Annotated[
            str | None,
            typer.Option(help="explicit VIEWER/MASTER pairs instead, e.g. chromium/aiortc"),
        ] = None,
        json_path: Annotated[
            Path | None, typer.Option("--json", help="save the comparison")
        ] = None,
        jobs: Annotated[
            int, typer.Option("-j", "--jobs", min=1, help="runs at once")
        ] = DEFAULT_JOBS,
        timing: Annotated[str | None, typer.Option(help="fast or kvs")] = None,
        servers: Annotated[str | None, typer.Option(help="coturn or mock")] = None,
    ) -> None:
        """Run scenarios under each viewer/master agent pair and show where the agents differ."""
        from rich.console import Console

        from lab.core.errors import LabError
        from lab.core.lifecycle import Terminated, interrupted_status
        from lab.core.terminal import fail, require_output_dirs
        from lab.peers.agents import require_agent
        from lab.run.preflight import require_root

        try:
            require_output_dirs(json=json_path)
            chosen = choose_combos(agents, combos)
            extra = passthrough({"--timing": timing, "--servers": servers})
            names = resolve_scenarios(scenarios)
            for agent in dict.fromkeys(a for c in chosen for a in (c.viewer, c.master)):
                require_agent(agent, "--combos" if combos is not None else "--agents")
            require_root()
            slowdown.factor()  # a bad ICE_LAB_SLOWDOWN: said here, not by a cell
        except LabError as exc:
            raise fail(exc) from None
        from lab.sweeps.progress import Sweep

        started = time.monotonic()
        try:
            with Sweep("compare", len(names) * len(chosen)) as sweep:
                rows = run_all(names, chosen, extra, jobs, sweep)
        except (KeyboardInterrupt, Terminated) as interruption:
            Console(stderr=True).print("interrupted: runs in progress tore their networks down")
            raise typer.Exit(interrupted_status(interruption)) from None
        document = compare_document(chosen, rows, round(time.monotonic() - started, 1))
        console = Console(highlight=False)
        width = max(len(name) for name in names) + 4 + 24 * len(chosen)
        console.width = max(console.width, width)  # cells are not truncated
        console.print(render_table(document))
        for line in report_lines(document):
            console.print(line, markup=False, soft_wrap=True)
        if json_path is not None:
            json_path.write_text(json.dumps(document, indent=2) + "\n")
        raise typer.Exit(exit_status(rows))
