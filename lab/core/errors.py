"""Errors the CLI turns into exit statuses.

`LabInputError` is everything the user can fix (bad file, unknown name, missing
tool, no privilege): exit status 2 with one line. `LabRunError` is the lab failing
to build what the scenario describes: the run stops rather than lie.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_EXPECTATIONS_FAILED = 1
EXIT_BAD_INPUT = 2
#: Stopped by a signal, as shells report it (128 + the signal's number).
EXIT_INTERRUPTED = 130  # Ctrl-C, SIGINT
EXIT_TERMINATED = 143  # SIGTERM


class LabError(Exception):
    """Base class: a message meant for the user, on one line."""


class LabInputError(LabError):
    """Bad input, unknown name, missing tool or privilege: exit status 2."""


class LabRunError(LabError):
    """The lab could not build or run what the scenario asks for."""
