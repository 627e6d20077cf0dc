"""`lab merge`: the shards of one `lab matrix --shard I/N` run as one matrix document."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lab.sweeps.shards import _cell_names, _write, merge_documents


def register(app: typer.Typer) -> None:
    """Add `merge` to the CLI."""

    @app.command()
    def merge(
        results: Annotated[
            list[Path], typer.Argument(help="the shards' `lab matrix --shard I/N --json` files")
        ],
        json_path: Annotated[
            Path | None, typer.Option("--json", help="save the merged matrix document")
        ] = None,
        html: Annotated[
            Path | None, typer.Option("--html", help="also write the matrix's HTML report")
        ] = None,
        allow_partial: Annotated[
            bool,
            typer.Option(
                "--allow-partial", help="merge even if cells are in no shard (marked missing)"
            ),
        ] = False,
    ) -> None:
        """Join `lab matrix --shard` documents into the one matrix an unsharded run makes."""
        from lab.commands.html_reports import read_json, write_html
        from lab.core.errors import LabError
        from lab.core.terminal import console, fail, require_output_dirs
        from lab.sweeps.matrix import print_matrix

        try:
            require_output_dirs(json=json_path, html=html)
            merged = merge_documents([(p, read_json(p)) for p in results], allow_partial)
            if html is not None:
                write_html(merged, json_path or Path("the merged matrix"), html)
            if json_path is not None:
                _write(json_path, merged)
        except LabError as exc:
            raise fail(exc) from None
        print_matrix(merged, absent="missing")
        if merged.get("missing"):
            names = _cell_names([(c["viewer"], c["master"]) for c in merged["missing"]])
            console.print(f"missing (--allow-partial): {names}", markup=False, soft_wrap=True)
        console.print(
            f"merged {len(results)} shard document(s); the time is the longest shard's",
            highlight=False,
        )
