"""`lab run`: build a scenario's network, run the master and the viewer, report what ICE did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lab.commands.options import Agent, Mode, Servers, Timing
from lab.core import slowdown
from lab.core.errors import EXIT_EXPECTATIONS_FAILED, LabError, LabInputError
from lab.core.terminal import console, fail, reported_failures, require_output_dirs
from lab.scenario.scenario import load_scenario


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        scenario: Annotated[str, typer.Argument(help="scenario name or path")],
        json_path: Annotated[
            Path | None, typer.Option("--json", help="write the result here")
        ] = None,
        html_path: Annotated[
            Path | None, typer.Option("--html", help="write the HTML report here (lab report)")
        ] = None,
        timing: Annotated[
            Timing | None, typer.Option(help="fast (default) or kvs timeouts")
        ] = None,
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
            typer.Option(help="run this program as the viewer (docs/how-to/your-own-program.md)"),
        ] = None,
        master_command: Annotated[
            str | None,
            typer.Option(help="run this program as the master (docs/how-to/your-own-program.md)"),
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
        from lab.run.programs import preload_programs

        preload_programs()  # a zygote imports aiortc while the network is built
        from lab.report.summary import render
        from lab.run.pipeline import run_scenario
        from lab.run.plan import RunOptions

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
            json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        if html_path is not None:
            from lab.commands.html_reports import write_html

            try:
                write_html(result.to_json(), Path(scenario), html_path)
            except LabError as exc:
                raise fail(exc) from None
        if not quiet:
            render(
                result, console, kvs_log=log == "kvs", server_log=show_server_log, pair_list=pairs
            )
        if not result.expectations_met:
            if hint := slowdown.hint_for_failed_run():
                console.print(hint, style="yellow", highlight=False)
            raise typer.Exit(EXIT_EXPECTATIONS_FAILED)


def _command(text: str | None, where: str) -> list[str] | None:
    """A --viewer/--master-command as argv (bad input: exit 2 naming the option)."""
    if text is None:
        return None
    from lab.peers.command_peer import parse_command

    try:
        return parse_command(text, where)
    except LabError as exc:
        raise fail(exc) from None
