"""Checks a result document that a run inside the VM wrote, after it was copied back.

scripts/vm-check.sh calls it for each run: a copy that is empty, cut short or from another
agent must fail the check, not pass it because the run's exit status was 0.

    python3 scripts/vm/check_result.py RESULT.json AGENT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def problems(result: dict, agent: str) -> list[str]:
    """What is wrong with the result for a run whose viewer was `agent`, or nothing."""
    found = []
    if result.get("outcome") != "connected":
        found.append(f"outcome is {result.get('outcome')!r}, not 'connected'")
    if result.get("expectations_met") is not True:
        unmet = [e.get("check") for e in result.get("expectations", []) if not e.get("met")]
        found.append(f"expectations not met: {unmet}")
    viewer = result.get("peers", {}).get("viewer", {})
    if viewer.get("agent") != agent:
        found.append(f"the viewer's agent is {viewer.get('agent')!r}, not {agent!r}")
    selected = result.get("selected", {}).get("viewer")
    if not selected:
        found.append("the viewer selected no candidate pair")
    return found


def describe(result: dict) -> str:
    """One line: scenario, agents, the viewer's selected pair and its round trip."""
    peers = result.get("peers", {})
    selected = result.get("selected", {}).get("viewer") or {}
    local = selected.get("local", {}).get("type", "?")
    remote = selected.get("remote", {}).get("type", "?")
    software = peers.get("viewer", {}).get("software", {})
    return (
        f"{result.get('scenario')}: {result.get('outcome')}, viewer "
        f"{peers.get('viewer', {}).get('agent')} {software.get('version', '')}".rstrip()
        + f", master {peers.get('master', {}).get('agent')}, selected {local}/{remote}"
        f" rtt {selected.get('rtt_ms')} ms"
    )


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: check_result.py RESULT.json AGENT", file=sys.stderr)
        return 2
    path, agent = Path(argv[1]), argv[2]
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        print(f"vm-check: {path}: not a result document ({error})", file=sys.stderr)
        return 1
    found = problems(result, agent)
    for problem in found:
        print(f"vm-check: {path.name}: {problem}", file=sys.stderr)
    if not found:
        print(f"vm-check: {describe(result)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
