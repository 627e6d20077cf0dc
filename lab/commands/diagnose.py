"""`lab diagnose FILE [-o scenario.yaml] [--run] [--json OUT]`: the command and its output."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from lab.core.documents import JsonObject
from lab.report.diagnose.diagnosis import check_scenario, diagnose_file, to_json, write_scenario
from lab.report.diagnose.render import render, render_verdict
from lab.report.result import RunResult


def run_and_judge(diagnosis: JsonObject, path: Path) -> tuple[RunResult, JsonObject]:
    """Run the written scenario with lab.run.pipeline and compare the result with the artifact."""
    from lab.report.diagnose.verdict import verdict
    from lab.run.pipeline import run_scenario
    from lab.run.plan import RunOptions
    from lab.run.programs import preload_programs
    from lab.scenario.scenario import load_scenario

    preload_programs()
    result = run_scenario(load_scenario(str(path)), RunOptions())
    return result, verdict(diagnosis["facts"], result)


def register(app: typer.Typer) -> None:
    """Add `diagnose` to the CLI."""

    @app.command()
    def diagnose(
        artifact: Annotated[
            Path, typer.Argument(help="a C SDK log, JS console log or webrtc-internals dump")
        ],
        output: Annotated[
            Path | None, typer.Option("-o", "--output", help="write the scenario here")
        ] = None,
        run: Annotated[
            bool,
            typer.Option("--run", help="run the scenario and say if it reproduced the artifact"),
        ] = False,
        json_path: Annotated[
            Path | None, typer.Option("--json", help="write findings, inferences and verdict")
        ] = None,
    ) -> None:
        """Read a customer's log, infer the network, write a scenario and (--run) reproduce it."""
        from lab.core.terminal import console, reported_failures, require_output_dirs

        with reported_failures():
            require_output_dirs(output=output, json=json_path)
            diagnosis = diagnose_file(artifact)
            render(diagnosis, console)
            verdict = _scenario_and_run(diagnosis, output, run, console)
        if json_path is not None:
            json_path.write_text(json.dumps(to_json(diagnosis, verdict), indent=2) + "\n")
        if verdict is not None and verdict["reproduced"] is not True:
            raise typer.Exit(1)  # not reproduced, or nothing the run could be compared on


def _scenario_and_run(
    diagnosis: JsonObject, output: Path | None, run: bool, out: Any
) -> JsonObject | None:
    if output is None and not run:
        return None
    with tempfile.TemporaryDirectory(prefix="lab-diagnose-") as scratch:
        path = output or Path(scratch) / "diagnosed.yaml"
        check_scenario(diagnosis["scenario"], path)
        write_scenario(diagnosis["scenario"], path)
        if output is not None:
            out.print(
                f"scenario written: {output} (lab run {output})", highlight=False, markup=False
            )
        if not run:
            return None
        result, verdict = run_and_judge(diagnosis, path)
    render_verdict(verdict, [i.rule.advice for i in diagnosis["inferences"]], out)
    return {
        **verdict,
        "result": {
            "outcome": result.outcome,
            "selected": {role: s and s.to_json() for role, s in result.selected.items()},
            "kvs_status": result.kvs_status,
        },
    }
