"""`lab matrix`: every viewer x master network combination, judged against libwebrtc."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lab.core import slowdown
from lab.sweeps.matrix import (
    cell_agents,
    cells_without_result,
    default_jobs,
    matrix_document,
    matrix_options,
    parse_rows,
    print_matrix,
    run_cells,
    run_cells_reused,
)


def register(app: typer.Typer) -> None:
    """Add `matrix` to the CLI."""

    @app.command()
    def matrix(
        nat: Annotated[
            str,
            typer.Option(
                help="comma-separated rows, or groups: nats (default), firewalls, proxies, "
                "all (libwebrtc's twelve configurations)"
            ),
        ] = "nats",
        json_path: Annotated[Path | None, typer.Option("--json", help="save every cell")] = None,
        jobs: Annotated[int, typer.Option("-j", "--jobs", help="cells run at once")] = 0,
        servers: Annotated[str | None, typer.Option(help="coturn or mock")] = None,
        timing: Annotated[str | None, typer.Option(help="fast or kvs")] = None,
        viewer: Annotated[
            str | None, typer.Option(help="the viewer's agent: aiortc (default), chromium, firefox")
        ] = None,
        master: Annotated[
            str | None, typer.Option(help="the master's agent: aiortc (default), chromium, firefox")
        ] = None,
        fresh: Annotated[
            bool,
            typer.Option(
                "--fresh",
                help="each cell its own `lab run` (network and servers built per cell): "
                "slower, nothing shared between cells",
            ),
        ] = False,
        shard: Annotated[
            str | None,
            typer.Option(
                help="I/N: run only slice I of N, 0-based (0/4 to 3/4: Kubernetes' "
                "JOB_COMPLETION_INDEX as it is); `lab merge` joins the slices' --json files",
            ),
        ] = None,
    ) -> None:
        """Run every viewer x master network combination; show each pair beside libwebrtc's.

        Each cell is a real run, checked against libwebrtc's own connectivity matrix."""
        import time

        from rich.console import Console

        from lab.core.errors import LabError
        from lab.core.lifecycle import Terminated, interrupted_status, sigterm_raises
        from lab.core.terminal import EXIT_LAB_FAILED, fail, require_output_dirs
        from lab.run.preflight import require_root
        from lab.sweeps.progress import Sweep
        from lab.sweeps.shards import parse_shard, shard_cells, shard_summary
        from lab.sweeps.workers import Options as SweepOptions

        try:
            require_output_dirs(json=json_path)
            presets = parse_rows(nat)
            slice_ = None if shard is None else parse_shard(shard)
            agents = cell_agents(viewer, master)
            require_root()
            slowdown.factor()  # a bad ICE_LAB_SLOWDOWN: said here, not by a cell
        except LabError as exc:
            raise fail(exc) from None
        extra = [
            *(["--servers", servers] if servers else []),
            *(["--timing", timing] if timing else []),
            *(["--viewer", viewer] if viewer else []),
            *(["--master", master] if master else []),
        ]
        combos = [(v, m) for v in presets for m in presets]
        if slice_ is not None:
            combos = shard_cells(combos, slice_)
        started = time.monotonic()
        workers = jobs or default_jobs(agents, fresh)
        try:
            with sigterm_raises(), Sweep("matrix", len(combos)) as sweep:
                if not combos:
                    cells = []  # more shards than cells: this one has none
                elif fresh:
                    cells = run_cells(combos, extra, workers, agents, sweep)
                else:
                    options = SweepOptions(servers, timing, viewer, master)
                    cells = run_cells_reused(combos, extra, workers, agents, sweep, options)
        except (KeyboardInterrupt, Terminated) as interruption:
            Console(stderr=True).print("interrupted: cells in progress tore their networks down")
            raise typer.Exit(interrupted_status(interruption)) from None
        wall_s = round(time.monotonic() - started, 1)
        options = matrix_options(servers, timing, fresh)
        document = matrix_document(agents, presets, cells, wall_s, options)
        if slice_ is not None:
            document["shard"] = slice_.record()
        print_matrix(document, absent="missing" if slice_ is None else "other shard")
        if slice_ is not None:
            summary = shard_summary(slice_, len(cells), len(presets) ** 2)
            Console(highlight=False).print(summary, markup=False)
        if json_path is not None:
            json_path.write_text(json.dumps(document, indent=2) + "\n")
        broken = cells_without_result(cells)
        if broken:
            Console(stderr=True, highlight=False).print(
                f"{len(broken)} cell(s) could not run (each entry's error says why): "
                + ", ".join(broken),
                markup=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_LAB_FAILED)
