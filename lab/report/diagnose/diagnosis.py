"""One artifact's diagnosis: findings, facts, inferences and the scenario, and its JSON.

`lab diagnose` (lab/commands/diagnose.py) renders it, writes the scenario and, with
`--run`, hands the scenario to the run pipeline; everything that only reads lives here.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.core.documents import JsonObject, schema_errors
from lab.core.errors import LabError
from lab.network.topology import load_topology
from lab.report.diagnose.facts import summarize
from lab.report.diagnose.rules import infer
from lab.report.diagnose.scenario_writer import build
from lab.report.diagnose.sniff import read_artifact
from lab.scenario.scenario import build_scenario


def diagnose_file(path: Path) -> JsonObject:
    """Findings, facts, inferences and the scenario for one artifact (pure but for reading)."""
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


def check_scenario(doc: JsonObject, path: Path) -> None:
    """Validate the written scenario as `lab validate` would (schema, then cross-checks)."""
    problems = schema_errors(doc, "scenario")
    if problems:
        raise LabError(f"{path}: the diagnosed scenario is invalid: {problems[0]}")
    build_scenario(doc, load_topology(doc["topology"], relative_to=path), path)


def write_scenario(doc: JsonObject, path: Path) -> None:
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
    path.write_text("# written by lab diagnose\n" + text)


def to_json(diagnosis: JsonObject, verdict: JsonObject | None) -> JsonObject:
    """The document `--json` writes: findings, facts, unknowns, inferences, scenario, verdict."""
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
