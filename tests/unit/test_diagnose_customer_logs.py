"""`lab diagnose` over the corpus of real customer logs: each is read as an expert reads it.

The fixtures are excerpts of public KVS SDK support threads (fixtures/customer_logs/, each
with its thread and the expert's reading); the command runs as a user runs it (the CLI,
--json) and its document is checked against the expectation, which was written from the
log before the reader learned it (customer_log_expectations.py).
"""

from __future__ import annotations

import json

import pytest
from customer_log_expectations import expectation, fixtures, misreadings
from typer.testing import CliRunner

from lab.commands import app


@pytest.mark.parametrize("log", fixtures(), ids=lambda p: p.stem)
def test_lab_diagnose_reads_the_customer_log_as_the_expert(log, tmp_path):
    report = tmp_path / "diagnosis.json"
    result = CliRunner().invoke(app, ["diagnose", str(log), "--json", str(report)])
    assert result.exit_code == 0, result.output
    document = json.loads(report.read_text())
    assert misreadings(document, expectation(log)["expect"]) == []
    # every rule that held names the lines it stands on, and the output shows them
    lines = log.read_text().splitlines()
    for inference in document["inferences"]:
        assert inference["evidence_lines"], inference["rule"]
        assert all(1 <= n <= len(lines) for n in inference["evidence_lines"])
    assert ("evidence: lines" in result.output) == bool(document["inferences"])


def test_the_corpus_is_large_enough_and_names_its_threads():
    logs = fixtures()
    assert len(logs) >= 12
    for log in logs:
        sidecar = expectation(log)
        assert sidecar["source"] and sidecar["reading"] and "expect" in sidecar
        assert "github.com" in sidecar["source"] or "issue 24" in sidecar["source"]


def test_the_issue_s_three_cases_are_read_as_the_expert_reads_them():
    """Issue 24: the socket-check-only log, the master whose TURN TCP never connects, the
    camera on one LAN with a slow host-prflx pair."""
    names = {log.stem for log in fixtures()}
    assert {
        "c-249-turn-tcp-socket-check-only",
        "issue24-master-turn-tcp-stuck-no-pair",
        "issue24-camera-same-lan-host-prflx-339ms",
    } <= names


def test_every_sdk_line_is_kept_an_unknown_one_by_its_component(tmp_path):
    log = tmp_path / "verbose.log"
    log.write_text(
        "2022-06-11 06:02:53 VERBOSE stepStateMachine(): State Machine - Current state: "
        "0x0000000000000002, Next state: 0x0000000000000002\n"
        "2022-06-11 06:02:53.120 DEBUG   iceCandidatePairCheckConnection(): remote ip:x, port:1\n"
        "2022-06-11 06:02:54 INFO    sendLwsMessage(): something the table does not know\n"
        "an application's own line\n"
    )
    report = tmp_path / "d.json"
    result = CliRunner().invoke(app, ["diagnose", str(log), "--json", str(report)])
    assert result.exit_code == 0, result.output
    others = [f for f in json.loads(report.read_text())["findings"] if f["kind"] == "other"]
    assert [(f["line"], f["data"]["component"], f["data"]["level"]) for f in others] == [
        (1, "state_machine", "VERBOSE"),
        (2, "ice", "DEBUG"),
        (3, "signaling", "INFO"),
    ]
    assert "by component: " in result.output


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (bytes(range(256)) * 4, "binary data"),
        (b"", "the file is empty"),
        (b"Dear support,\nthe camera does not connect since Tuesday.\nThanks\n", "found nothing"),
    ],
)
def test_what_is_no_log_exits_2_naming_what_was_expected(tmp_path, content, said):
    path = tmp_path / "ticket.log"
    path.write_bytes(content)
    result = CliRunner().invoke(app, ["diagnose", str(path)])
    assert result.exit_code == 2
    assert said in result.output and "KVS C SDK log" in result.output
