"""The hands-on commands of the CLI: `lab up`, `lab exec`, `lab status`, `lab down`.

Each command checks its input and turns LabErrors into the CLI's exit statuses; the
work is done by lab.run.hands_on.launch (up), lab.run.hands_on.teardown (down) and
lab.run.hands_on.display (what they print).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from lab.core.documents import JsonObject
from lab.core.errors import LabError, LabInputError, LabRunError
from lab.core.lifecycle import Terminated, interrupted_status
from lab.core.processes import is_same_process
from lab.observations.capture.capture import require_capture_tools
from lab.run.hands_on.display import NOTHING_UP, say, status_document, status_lines, up_lines
from lab.run.hands_on.launch import start
from lab.run.hands_on.processes import MARK, daemon_alive
from lab.run.hands_on.state import read_state, state_lock
from lab.run.hands_on.teardown import stop


def register(app: typer.Typer) -> None:
    """Add the hands-on commands to the CLI."""

    @app.command()
    def up(
        scenario: Annotated[str, typer.Argument(help="scenario name or path")],
        servers: Annotated[
            str | None, typer.Option(help="STUN/TURN server software: coturn or mock")
        ] = None,
        capture: Annotated[
            bool, typer.Option(help="capture every link until `lab down` (then: lab pcap)")
        ] = False,
    ) -> None:
        """Build a scenario's network and servers and keep them up (see `lab exec`)."""
        from lab.core.terminal import fail

        try:
            loaded, software = checked_up_input(scenario, servers)
            if capture:
                require_capture_tools()
            state, took, note = start(loaded, software, capture)
        except LabError as exc:
            raise fail(exc) from None
        except (KeyboardInterrupt, Terminated) as interruption:
            say("interrupted: nothing is up", err=True)
            raise typer.Exit(interrupted_status(interruption)) from None
        if note:
            say(note, err=True)
        say(*up_lines(state, took))

    @app.command(
        "exec",
        context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    )
    def exec_(
        host: Annotated[
            str, typer.Argument(metavar="HOST", help="a host of the network that is up")
        ],
        command: Annotated[
            list[str] | None,
            typer.Argument(metavar="-- CMD...", help="the command (default: a shell)"),
        ] = None,
    ) -> None:
        """Run a command in a host's namespace: `lab exec viewer -- ip addr`."""
        from lab.core.terminal import fail

        try:
            state, shell_pid = exec_target(host)
        except LabError as exc:
            raise fail(exc) from None
        exec_in(shell_pid, with_resolver(state, host, command_line(command)), state["token"])

    @app.command()
    def status(
        as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    ) -> None:
        """What `lab up` has up: scenario, hosts with roles and addresses, servers."""
        state = read_state()
        if as_json:
            print(json.dumps(status_document(state), indent=2))
        else:
            say(*status_lines(state))

    @app.command()
    def down() -> None:
        """Tear down what `lab up` started (nothing up: says so, exit status 0)."""
        from lab.core.terminal import fail

        try:
            said = take_down()
        except LabError as exc:
            raise fail(exc) from None
        say(said)


def checked_up_input(scenario: str, servers: str | None) -> tuple[Any, str]:
    """`lab up`'s scenario and server software, refused before anything is built if the
    input is bad or the machine lacks what the scenario needs."""
    from lab.run.preflight import require_impairment_support, require_root, require_tools
    from lab.scenario.scenario import load_scenario

    if servers not in (None, "coturn", "mock"):
        raise LabInputError(f"--servers: unknown software '{servers}' (coturn or mock)")
    require_root()
    loaded = load_scenario(scenario)
    turn = loaded.stun_turn
    software = servers or (turn.software if turn else "none")
    if turn and turn.faults and software != "mock":
        raise LabInputError(
            f"{loaded.source}: servers.stun_turn.faults: fault injection needs the "
            "mock server (software: mock or --servers mock)"
        )
    require_tools(need_coturn=software == "coturn")
    require_impairment_support(loaded)
    return loaded, software


def exec_target(host: str) -> tuple[JsonObject, int]:
    """The state of the network that is up and the namespace shell of its `host`."""
    from lab.run.preflight import require_root

    require_root()
    state = read_state()
    if state is None:
        raise LabInputError(NOTHING_UP)
    if not daemon_alive(state):
        raise LabInputError(
            f"the `lab up` of '{state.get('scenario')}' (pid {state.get('pid')}) has "
            "died: run `lab clean` (or `lab up` again)"
        )
    if state.get("status") != "up":
        raise LabInputError(f"'{state.get('scenario')}' is still starting; try again")
    hosts = {h["name"]: h for h in state.get("hosts", [])}
    if host not in hosts:
        known = ", ".join(hosts)
        raise LabInputError(f"unknown host '{host}' in {state['scenario']} (hosts: {known})")
    shell = hosts[host]
    if not is_same_process(shell["shell_pid"], shell.get("shell_start")):
        raise LabRunError(f"host '{host}' is gone (its namespace shell exited)")
    return state, shell["shell_pid"]


def command_line(command: list[str] | None) -> list[str]:
    """`lab exec HOST -- CMD...`: the command after the `--` (a shell if none)."""
    argv = list(command or [])
    if argv[:1] == ["--"]:
        argv = argv[1:]
    return argv or [os.environ.get("SHELL") or "/bin/sh"]


def with_resolver(state: JsonObject, host: str, argv: list[str]) -> list[str]:
    """`argv` run with the host's resolv.conf of the run (lab/network/resolver.py), so
    that names resolve through the lab's DNS as they do for the run's own processes."""
    from lab.network.resolver import command_prefix, node_directory

    directory = node_directory(Path(state.get("run_directory", "/nonexistent")), host)
    return [*command_prefix(directory), *argv] if directory else argv


def exec_in(shell_pid: int, argv: list[str], token: str) -> NoReturn:
    """Become `argv` in the namespaces of `shell_pid`, marked as that network's (so
    `lab down` finds it); its exit status and stdin are the caller's own."""
    from lab.core.terminal import fail

    env = dict(os.environ, **{MARK: token})
    try:
        os.execvpe("mnexec", ["mnexec", "-a", str(shell_pid), *argv], env)
    except OSError as exc:
        raise fail(LabInputError(f"cannot run mnexec: {exc}")) from None


def take_down() -> str:
    """Stop the network that is up, under the lock; the line `lab down` prints."""
    from lab.run.preflight import require_root

    require_root()
    began = time.monotonic()
    with state_lock():
        state = read_state()
        if state is None:
            return "nothing is up"
        how = stop(state)
    return f"down: {how} in {time.monotonic() - began:.1f} s"
