"""`lab diagnose FILE [-o scenario.yaml] [--run] [--json OUT]`: the command and its output."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from lab.core.errors import LabError


def diagnose_file(path: Path) -> dict[str, Any]:
    """Findings, facts, inferences and the scenario for one artifact (pure but for reading)."""
    from lab.report.diagnose.facts import summarize
    from lab.report.diagnose.rules import infer
    from lab.report.diagnose.scenario_writer import build
    from lab.report.diagnose.sniff import read_artifact

    fmt, findings = read_artifact(path)
    # the C SDK mostly runs on the camera (master); a browser is mostly the viewer
    facts = summarize(findings, fmt, default_role="master" if fmt == "kvs-log" else "viewer")
    inferences = infer(facts)
    return {
        "input": str(path),
        "format": fmt,
        "findings": findings,
        "facts": facts,
        "inferences": inferences,
        "scenario": build(facts, inferences, path),
    }


def check_scenario(doc: dict[str, Any], path: Path) -> None:
    """Validate the written scenario as `lab validate` would (schema, then cross-checks)."""
    from lab.core.documents import schema_errors
    from lab.network.topology import load_topology
    from lab.scenario.scenario import build_scenario

    problems = schema_errors(doc, "scenario")
    if problems:
        raise LabError(f"{path}: the diagnosed scenario is invalid: {problems[0]}")
    build_scenario(doc, load_topology(doc["topology"], relative_to=path), path)


def write_scenario(doc: dict[str, Any], path: Path) -> None:
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
    path.write_text("# written by lab diagnose\n" + text)


def run_and_judge(diagnosis: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the written scenario with lab.run.pipeline and compare the result with the artifact."""
    from lab.peers.forked import preload_peer_code
    from lab.report.diagnose.verdict import verdict
    from lab.run.pipeline import RunOptions, run_scenario
    from lab.scenario.scenario import load_scenario

    preload_peer_code()
    result = run_scenario(load_scenario(str(path)), RunOptions())
    return result, verdict(diagnosis["facts"], result)


def to_json(diagnosis: dict[str, Any], verdict: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "input": diagnosis["input"],
        "format": diagnosis["format"],
        "findings": [f.as_dict() for f in diagnosis["findings"]],
        "facts": diagnosis["facts"].as_dict(),
        "unknowns": diagnosis["facts"].unknowns,
        "inferences": [i.as_dict() for i in diagnosis["inferences"]],
        "scenario": diagnosis["scenario"],
        "verdict": verdict,
    }


def render(diagnosis: dict[str, Any], out: Any) -> None:
    """Findings with their lines, the unknowns, and each inference with its reasoning."""
    from lab.report.diagnose.sniff import FORMATS

    facts = diagnosis["facts"]
    out.print(
        f"{diagnosis['input']}: {FORMATS[diagnosis['format']]}; peer(s): "
        f"{', '.join(facts.peers)} ({facts.role_source})",
        highlight=False,
        markup=False,
    )
    out.print("findings", style="bold")
    for f in diagnosis["findings"]:
        role = f"{f.role}: " if f.role else ""
        out.print(
            f"  {f.line:>5}  {role}{f.kind}: {_brief(f)}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    for role, peer in facts.peers.items():
        if peer.timings:
            spans = ", ".join(f"{k.removesuffix('_s')} {v:.3f} s" for k, v in peer.timings.items())
            out.print(f"timings ({role}, from the log's time stamps): {spans}", highlight=False)
    if facts.unknowns:
        out.print("unknown (the artifact does not say)", style="bold")
        for gap in facts.unknowns:
            out.print(f"  - {gap}", highlight=False, markup=False)
    out.print("inferences", style="bold")
    if not diagnosis["inferences"]:
        out.print("  no rule held: the scenario is the baseline (two homes, cone NATs)")
    for i in diagnosis["inferences"]:
        d = i.as_dict()
        out.print(
            f"  {d['rule']} ({d['role']}): {d['reasoning']}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        out.print(f"    advice: {d['advice']}", highlight=False, markup=False, soft_wrap=True)


def _brief(f: Any) -> str:
    d = f.data
    if f.kind == "candidate":
        where = f"{d.get('address') or '?'}:{d.get('port') or '?'}"
        relay = f"/{d['relay_protocol']}" if d.get("relay_protocol") else ""
        return f"{d.get('side', 'local')} {d['type']} {where}{relay}"
    if f.kind == "status":
        return f"{d['code']} {d['name']}"
    if f.kind in ("turn_error",):
        return f"{d['code']} {d['phrase']}"
    if f.kind == "gathering_error":
        return f"{d['url']}: {d['reason']}"
    if f.kind == "selected":
        return " -> ".join(str(d.get(k) or "?") for k in ("local", "remote")) + (
            f" over {d['relay_protocol']}" if d.get("relay_protocol") else ""
        )
    shown = {k: v for k, v in d.items() if k not in ("how", "at_s")}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or f.text[:80]


def render_verdict(verdict: dict[str, Any], advice: list[str], out: Any) -> None:
    out.print("verdict (artifact vs run)", style="bold")
    for c in verdict["checks"]:
        mark = {True: "yes", False: "NO ", None: " ? "}[c["match"]]
        out.print(
            f"  {mark} {c['role']} {c['field']}: artifact {c['artifact']}, run {c['run']}",
            highlight=False,
            markup=False,
        )
    out.print(f"reproduced: {'yes' if verdict['reproduced'] else 'no'}", highlight=False)
    for text in dict.fromkeys(advice):
        out.print(f"advice: {text}", highlight=False, markup=False, soft_wrap=True)


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
        if verdict is not None and not verdict["reproduced"]:
            raise typer.Exit(1)


def _scenario_and_run(
    diagnosis: dict[str, Any], output: Path | None, run: bool, out: Any
) -> dict[str, Any] | None:
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
            "outcome": result["outcome"],
            "selected": result["selected"],
            "kvs_status": result.get("kvs_status"),
        },
    }
