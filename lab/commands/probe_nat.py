"""`lab probe-nat`: measure a host's NAT behaviour (RFC 5780) against what the scenario declares."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from lab.core.errors import LabInputError
from lab.run.probe import measure, probe_report, render_probe


def register(app: typer.Typer) -> None:
    """Add `probe-nat` to the CLI."""

    @app.command("probe-nat")
    def probe_nat(
        scenario: Annotated[str, typer.Argument(help="scenario name or path")],
        host: Annotated[str, typer.Option(help="the node to probe from")],
        servers: Annotated[str, typer.Option(help="STUN server software: coturn or mock")] = "",
        json_output: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
        rto: Annotated[float, typer.Option(help="seconds to wait per try (3 tries)")] = 0.1,
    ) -> None:
        """Measure the NAT behaviour from HOST (RFC 5780); exit 1 if it is not the scenario's.

        Mapping, filtering, hairpinning and port preservation, beside what is declared."""
        from lab.core.terminal import reported_failures
        from lab.scenario.scenario import load_scenario

        with reported_failures():
            loaded = load_scenario(scenario)
            software = servers or (loaded.stun_turn.software if loaded.stun_turn else "coturn")
            if software not in ("coturn", "mock"):
                raise LabInputError(f"--servers: unknown software '{software}' (coturn, mock)")
            report = probe_report(loaded, host, measure(loaded, host, software, rto))
        if json_output:
            print(json.dumps(report, indent=2))
        else:
            render_probe(report)
        if not report["matches"]:
            raise typer.Exit(1)
