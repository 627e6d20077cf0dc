"""`lab diagnose` end to end (root): a real run's `--log kvs` output, cut to an excerpt and
redacted as a customer would paste it, is diagnosed back to a scenario that reproduces it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .helpers import lab

pytestmark = pytest.mark.root


def excerpt(output: str) -> str:
    """The gathering errors, the C SDK lines and the summary, public addresses redacted."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("viewer: what the KVS C SDK"))
    kept = [line for line in lines[:start] if "gathering error" in line] + lines[start:]
    kept = [line for line in kept if not re.match(r"^\s*(ok|FAIL)\s", line)]
    return "\n".join(
        re.sub(r"\b(198\.51\.100|203\.0\.113)\.\d+\b", "XXX.XXX.XXX.XXX", line) for line in kept
    )


def test_a_redacted_kvs_log_excerpt_is_reproduced(tmp_path: Path) -> None:
    produced = lab("run", "udp-blocked-both", "--log", "kvs")
    assert produced.returncode == 0, produced.stdout + produced.stderr
    log = tmp_path / "ticket-4711.log"
    log.write_text("[app] camera up\n" + excerpt(produced.stdout) + "\n")
    assert "XXX.XXX.XXX.XXX" in log.read_text() and "198.51.100" not in log.read_text()

    scenario, report = tmp_path / "diagnosed.yaml", tmp_path / "diagnosis.json"
    diagnosed = lab("diagnose", str(log), "-o", str(scenario), "--run", "--json", str(report))
    output = diagnosed.stdout + diagnosed.stderr
    assert diagnosed.returncode == 0, output
    assert "reproduced: yes" in output
    document = json.loads(report.read_text())
    assert document["verdict"]["reproduced"] is True
    assert {(i["rule"], i["role"]) for i in document["inferences"]} == {
        ("udp-blocked", "viewer"),
        ("udp-blocked", "master"),
    }
    fields = {(c["role"], c["field"]): c["match"] for c in document["verdict"]["checks"]}
    assert fields[("viewer", "outcome")] and fields[("viewer", "selected pair")]
    assert fields[("viewer", "relay protocol")] and fields[("master", "status code")]
    assert all(f["line"] >= 1 and f["text"] for f in document["findings"])
    assert lab("validate", str(scenario)).returncode == 0
