"""The `lab` command line: list, show, validate, run, schema, clean.

Exit status: 0 all expectations held, 1 an expectation did not hold, 2 bad input
(unknown scenario, invalid file, missing tool, not root), 3 the lab itself failed.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from lab.documents import load_document, read_yaml
from lab.errors import EXIT_BAD_INPUT, EXIT_EXPECTATIONS_FAILED, LabError, LabInputError
from lab.scenario import bundled_scenarios, load_scenario
from lab.terminal import console, errors, fail, reported_failures, require_output_dirs
from lab.topology import load_topology

app = typer.Typer(
    help="ice-lab: build a real network for a WebRTC connectivity scenario and watch ICE.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Timing(StrEnum):
    fast = "fast"
    kvs = "kvs"


class Mode(StrEnum):
    stun_turn = "stun-turn"
    turn_only = "turn-only"
    stun_only = "stun-only"
    disabled = "disabled"


class Agent(StrEnum):
    aiortc = "aiortc"
    chromium = "chromium"
    kvs_js = "kvs-js"


class Servers(StrEnum):
    coturn = "coturn"
    mock = "mock"


@app.command("list")
def list_scenarios(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """The bundled scenarios, one line each with what it shows."""
    entries = []
    for path in bundled_scenarios():
        document = read_yaml(path) or {}
        entries.append({"name": path.stem, "description": document.get("description", "")})
    if as_json:
        print(json.dumps(entries, indent=2))
        return
    width = max((len(e["name"]) for e in entries), default=0)
    for entry in entries:
        console.print(
            f"{entry['name']:<{width}}  {entry['description']}", highlight=False, soft_wrap=True
        )


@app.command()
def show(scenario: Annotated[str, typer.Argument(help="scenario name or path")]) -> None:
    """The resolved scenario: its lesson, topology, conditions, servers and expectations."""
    try:
        resolved = load_scenario(scenario).resolved()
    except LabError as exc:
        raise fail(exc) from None
    teaches = resolved.pop("teaches", "")
    if teaches:
        console.print(f"[bold]{resolved['name']}[/bold]: {teaches}\n", highlight=False)
    print(yaml.safe_dump(resolved, sort_keys=False, width=100))


def _kind_of(path: Path, document: Any) -> str:
    if isinstance(document, dict) and "links" in document:
        return "topology"
    return "scenario"


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="scenario or topology files")],
) -> None:
    """Validate scenario and topology files against their JSON Schemas (exit 2 if any fails)."""
    bad = 0
    for path in files:
        try:
            kind = _kind_of(path, read_yaml(path))
            if kind == "topology":
                load_topology(str(path))
            else:
                load_document(path, "scenario")
                load_scenario(str(path))
            console.print(f"ok {path} ({kind})", highlight=False)
        except LabInputError as exc:
            errors.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            bad += 1
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="scenario name or path")],
    json_path: Annotated[Path | None, typer.Option("--json", help="write the result here")] = None,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="write the HTML report here (lab report)")
    ] = None,
    timing: Annotated[Timing | None, typer.Option(help="fast (default) or kvs timeouts")] = None,
    mode: Annotated[Mode | None, typer.Option(help="NAT traversal mode for both peers")] = None,
    viewer_mode: Annotated[Mode | None, typer.Option(help="the viewer's mode")] = None,
    master_mode: Annotated[Mode | None, typer.Option(help="the master's mode")] = None,
    servers: Annotated[Servers | None, typer.Option(help="STUN/TURN server software")] = None,
    viewer: Annotated[
        Agent | None, typer.Option(help="the viewer's ICE agent (default: the scenario's)")
    ] = None,
    master: Annotated[
        Agent | None, typer.Option(help="the master's ICE agent (default: the scenario's)")
    ] = None,
    reveal_host_addresses: Annotated[
        bool, typer.Option(help="browsers announce real host addresses, not mDNS names")
    ] = False,
    viewer_command: Annotated[
        str | None,
        typer.Option(help="run this program as the viewer (its environment: README)"),
    ] = None,
    master_command: Annotated[
        str | None,
        typer.Option(help="run this program as the master (its environment: README)"),
    ] = None,
    keep: Annotated[bool, typer.Option(help="keep the run directory (configs, logs)")] = False,
    log: Annotated[
        str | None, typer.Option(help="kvs: print the lines the KVS C SDK would log")
    ] = None,
    show_server_log: Annotated[
        bool, typer.Option(help="print every request the STUN/TURN server handled")
    ] = False,
    pairs: Annotated[bool, typer.Option(help="also list every pair of both agents")] = False,
    capture: Annotated[
        bool, typer.Option(help="capture every link: a hop trail per check (lab trace)")
    ] = False,
    pcap: Annotated[
        Path | None, typer.Option(help="write one pcapng per link here (implies --capture)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no summary")] = False,
) -> None:
    """Build the scenario's network, run the master and viewer, report what ICE did."""
    from lab.peers.forked import preload_peer_code

    preload_peer_code()  # a zygote imports aiortc while the network is built
    from lab.report import render
    from lab.run import RunOptions, run_scenario

    if log not in (None, "kvs"):
        raise fail(LabInputError(f"--log: unknown log style '{log}' (known: kvs)"))
    options = RunOptions(
        timing=timing.value if timing else None,
        servers=servers.value if servers else None,
        mode=mode.value if mode else None,
        viewer_mode=viewer_mode.value if viewer_mode else None,
        master_mode=master_mode.value if master_mode else None,
        keep_workdir=keep,
        viewer_agent=viewer.value if viewer else None,
        master_agent=master.value if master else None,
        reveal_host_addresses=reveal_host_addresses,
        capture=capture or pcap is not None,
        pcap_dir=pcap,
        viewer_command=_command(viewer_command, "--viewer-command"),
        master_command=_command(master_command, "--master-command"),
    )
    with reported_failures():
        # Said before the run, not after it: the result would have nowhere to go.
        require_output_dirs(json=json_path, html=html_path)
        result = run_scenario(load_scenario(scenario), options)
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2) + "\n")
    if html_path is not None:
        from lab.html.commands import write_html

        try:
            write_html(result, Path(scenario), html_path)
        except LabError as exc:
            raise fail(exc) from None
    if not quiet:
        render(result, console, kvs_log=log == "kvs", server_log=show_server_log, pair_list=pairs)
    if not result["expectations_met"]:
        raise typer.Exit(EXIT_EXPECTATIONS_FAILED)


@app.command()
def schema(kind: Annotated[str, typer.Argument(help="result, scenario or topology")]) -> None:
    """Print a JSON Schema shipped with the lab."""
    from lab.documents import load_schema

    try:
        print(json.dumps(load_schema(kind), indent=2))
    except LabError as exc:
        raise fail(exc) from None


def _command(text: str | None, where: str) -> list[str] | None:
    """A --viewer/--master-command as argv (bad input: exit 2 naming the option)."""
    if text is None:
        return None
    from lab.peers.command_peer import parse_command

    try:
        return parse_command(text, where)
    except LabError as exc:
        raise fail(exc) from None


@app.command()
def clean() -> None:
    """Remove what a crashed run left behind: the lab's namespaces, processes and files."""
    from lab.cleanup import clean as clean_lab
    from lab.preflight import require_root
    from lab.run import RUN_ROOT

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


def _register_extensions() -> None:
    """Commands that live in their own modules (each imports its heavy parts lazily)."""
    from lab import compare, hands_on, matrix, probe
    from lab import matrix_shards as shards
    from lab.capture import commands as capture
    from lab.diagnose import command as diagnose
    from lab.html import commands as html_reports

    for module in (hands_on, probe, matrix, shards, compare, diagnose, capture, html_reports):
        module.register(app)


_register_extensions()


def main() -> None:
    """The `lab` command. It leaves with os._exit once its output is flushed: by then every
    run has torn down what it built, and the interpreter's own clean-up of the libraries
    a run imported (nothing the lab needs) takes about 0.2 s of every invocation."""
    try:
        app(prog_name="lab")
        status = 0
    except SystemExit as leaving:
        status = _exit_status(leaving.code)
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
