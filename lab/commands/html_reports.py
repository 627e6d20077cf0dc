"""`lab report DOCUMENT -o FILE.html` and `lab explain RESULT` on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from lab.core.errors import LabError, LabInputError
from lab.core.terminal import console, fail
from lab.report.result import RunResult


def read_json(path: Path) -> Any:
    """The JSON document in `path`; bad input is a LabInputError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabInputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabInputError(
            f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def write_html(document: Any, source: Path, out: Path) -> None:
    """Render the page first, then write it: a bad document leaves no file behind."""
    from lab.report.html.render import render_document

    try:
        page = render_document(document, str(source))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise LabInputError(f"{source}: {_shape_error(document, exc)}") from None
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise LabInputError(f"{out}: cannot write the report ({exc.strerror or exc})") from None


def _shape_error(document: Any, exc: Exception) -> str:
    """What in the document the page could not use: the schema's word when it has one."""
    from lab.core.documents import schema_errors
    from lab.report.html.render import kind_of

    errors = schema_errors(document, "result") if kind_of(document) == "result" else []
    return errors[0] if errors else f"a field the report needs is missing or malformed ({exc!r})"


def _result(path: Path, document: Any) -> RunResult:
    """The saved result `document` (read from `path`) as the typed result; bad input names
    the file, and the field when the result schema has a word for it."""
    from lab.report.html.render import kind_of

    if kind_of(document) != "result":
        raise LabInputError(
            f"{path}: not a result document (a result has `peers` and `pairs`; "
            "`lab run --json` writes one)"
        )
    try:
        return RunResult.from_json(document)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise LabInputError(f"{path}: {_shape_error(document, exc)}") from None


def register(app: typer.Typer) -> None:
    """Add `report` and `explain` to the CLI."""

    @app.command()
    def report(
        document: Annotated[
            Path, typer.Argument(help="a result (lab run --json), matrix or compare document")
        ],
        output: Annotated[Path, typer.Option("-o", "--output", help="the HTML file to write")],
    ) -> None:
        """One self-contained HTML page: topology, pair grid, timeline and explanation.

        A matrix or compare document gives a page with its grid of cells."""
        try:
            write_html(read_json(document), document, output)
        except LabError as exc:
            raise fail(exc) from None
        console.print(f"wrote {output}", highlight=False)

    @app.command()
    def explain(
        result: Annotated[Path, typer.Argument(help="a result document (lab run --json)")],
    ) -> None:
        """Why each candidate exists, why pairs failed, why the selected pair won."""
        from lab.report.explain import explain_text

        try:
            document = read_json(result)
            typed = _result(result, document)
            try:
                text = explain_text(typed)
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                raise LabInputError(f"{result}: {_shape_error(document, exc)}") from None
        except LabError as exc:
            raise fail(exc) from None
        console.print(text, highlight=False, markup=False, soft_wrap=True)
