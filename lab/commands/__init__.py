"""The `lab` command line: one module per verb, each with a `register(app)`; nothing in the
lab imports this package (pyproject's import-linter contracts keep it so).

Exit status: 0 all expectations held, 1 an expectation did not hold, 2 bad input
(unknown scenario, invalid file, missing tool, not root), 3 the lab itself failed,
130 Ctrl-C, 143 SIGTERM.

A command imports the stages it runs inside its own function: `lab --help`, `lab list`
or `lab status` then load only the command line (0.4 s on a loaded two-core machine)
rather than Mininet, aiortc and botocore as well (1.1-1.2 s, measured side by side).
"""

from __future__ import annotations

import os
import sys

from lab.run.programs import preload_programs

#: The verbs that run peers: for them the zygote (lab/core/zygote.py) starts before the
#: command line is even imported, so that aiortc and the signaling server are loaded on
#: the other core by the time the network is built.
RUNS_PEERS = frozenset({"run", "diagnose"})
if len(sys.argv) > 1 and sys.argv[1] in RUNS_PEERS:
    preload_programs()

import typer  # noqa: E402

from lab.commands import (  # noqa: E402
    capture,
    clean,
    compare,
    diagnose,
    hands_on,
    html_reports,
    matrix,
    merge,
    probe_nat,
    run,
    scenarios,
    schema,
)
from lab.core.lifecycle import Terminated, interrupted_status, raise_on_sigterm  # noqa: E402

app = typer.Typer(
    help="ice-lab: build a real network for a WebRTC connectivity scenario and watch ICE.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# The order of `lab --help`.
for verb in (scenarios, run, schema, clean, hands_on, probe_nat, matrix, merge, compare, diagnose):
    verb.register(app)
for verb in (capture, html_reports):
    verb.register(app)


def main() -> None:
    """The `lab` command. It leaves with os._exit once its output is flushed: by then every
    run has torn down what it built, and the interpreter's own clean-up of the libraries
    a run imported (nothing the lab needs) takes about 0.2 s of every invocation.

    SIGTERM raises Terminated from the start, so a command stopped at any moment tears
    down what it built and exits 143 (Ctrl-C: 130)."""
    raise_on_sigterm()
    try:
        app(prog_name="lab")
        status = 0
    except SystemExit as leaving:
        status = _exit_status(leaving.code)
    except (KeyboardInterrupt, Terminated) as interruption:
        status = interrupted_status(interruption)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # what sys.exit("message") does
    return 1
