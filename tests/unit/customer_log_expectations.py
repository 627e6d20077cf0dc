"""What an expert reads from each customer log fixture, and whether a diagnosis says the same.

The fixtures (`fixtures/customer_logs/*.log`) are excerpts of public C SDK and JS SDK support
threads; each has a sidecar `NAME.yaml` naming its thread and what an expert derives from it
(`expect`). The expectations were written from the logs before `lab diagnose` learned to read
them, and are checked against `lab diagnose --json`'s document, so the same check measures any
version of the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CUSTOMER_LOGS = Path(__file__).parent / "fixtures" / "customer_logs"


def fixtures() -> list[Path]:
    """Every customer log fixture, by name."""
    return sorted(CUSTOMER_LOGS.glob("*.log"))


def expectation(log: Path) -> dict[str, Any]:
    """The sidecar of a fixture: source, reading and `expect`."""
    return yaml.safe_load(log.with_suffix(".yaml").read_text())


def misreadings(document: dict[str, Any] | None, expect: dict[str, Any]) -> list[str]:
    """Where a diagnosis (the --json document; None when the input was refused) differs from
    the expert's reading; an empty list means it was read right."""
    if document is None:
        return [] if expect.get("refused") else ["refused the log"]
    if expect.get("refused"):
        return ["read a log the expert expects refused"]
    peers = document["facts"]["peers"]
    fired = {i["rule"] for i in document["inferences"]}
    codes = {f["data"].get("code") for f in document["findings"] if f["kind"] == "status"}
    wrong = [f"role {r} not found" for r in expect.get("roles", []) if r not in peers]
    wrong += [f"rule {r} did not hold" for r in expect.get("rules", []) if r not in fired]
    wrong += [f"rule {r} held" for r in expect.get("forbidden_rules", []) if r in fired]
    wrong += [f"status {c} not read" for c in expect.get("statuses", []) if c not in codes]
    for role, outcome in (expect.get("outcome") or {}).items():
        got = (peers.get(role) or {}).get("outcome")
        if got != outcome:
            wrong.append(f"{role} outcome {got}, expected {outcome}")
    for role, selected in (expect.get("selected") or {}).items():
        got = (peers.get(role) or {}).get("selected") or {}
        wrong += [
            f"{role} selected {key} {got.get(key)}, expected {value}"
            for key, value in selected.items()
            if got.get(key) != value
        ]
    for role, facts in (expect.get("facts") or {}).items():
        got = peers.get(role) or {}
        wrong += [
            f"{role} {key} {got.get(key)!r}, expected {value!r}"
            for key, value in facts.items()
            if got.get(key) != value
        ]
    return wrong
