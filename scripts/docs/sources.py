"""Where the reference pages come from: the one place that names the lab's modules."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import typer

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "lab" / "core" / "schemas"
SCENARIO_DIR = REPO / "scenarios"
TOPOLOGY_DIR = REPO / "topologies"


def lab_app() -> typer.Typer:
    """The Typer app of the `lab` command."""
    from lab.commands import app

    return app


def kvs_sdk() -> ModuleType:
    """The module holding the KVS C SDK's status codes and agent states."""
    from lab.report import kvs_sdk

    return kvs_sdk


def diagnose_rules() -> ModuleType:
    """The module holding `lab diagnose`'s rule table."""
    from lab.report.diagnose import rules

    return rules


def schema(kind: str) -> dict[str, Any]:
    """A JSON Schema shipped with the lab (scenario, topology, result)."""
    return json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())
