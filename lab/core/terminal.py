"""What every command prints with and how it fails: the consoles and the one-line error.

Commands live in their own modules and register on the Typer app (`lab/commands/__init__.py`); they
import this, never the command line itself, so no module imports `lab.commands` back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from lab.core.errors import EXIT_BAD_INPUT, LabError, LabInputError
from lab.core.lifecycle import Terminated, interrupted_status

EXIT_LAB_FAILED = 3

console = Console()
errors = Console(stderr=True)


def fail(error: LabError) -> typer.Exit:
    """Print one line and pick the exit status for this kind of error."""
    errors.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT if isinstance(error, LabInputError) else EXIT_LAB_FAILED)


def require_output_dirs(**outputs: object) -> None:
    """Refuse, before any work, an output file whose directory does not exist (a sweep
    would otherwise end in a traceback after its minutes of cells). Keywords are option
    names without dashes (`json=`, `html=`); None means the option was not given."""
    for option, path in outputs.items():
        if path is not None and not (folder := Path(str(path)).parent).is_dir():
            raise LabInputError(f"--{option} {path}: there is no directory {folder}")


@contextmanager
def reported_failures() -> Iterator[None]:
    """Around the work of a command that builds a network: a LabError becomes its one
    line and exit status; Ctrl-C (130) or SIGTERM (143) once the network is torn down."""
    try:
        yield
    except LabError as exc:
        raise fail(exc) from None
    except (KeyboardInterrupt, Terminated) as interruption:
        errors.print("interrupted: the lab network was torn down")
        raise typer.Exit(interrupted_status(interruption)) from None
