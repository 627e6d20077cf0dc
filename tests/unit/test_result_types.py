"""The typed result and its one serializer: a document reads back and writes out the
same (the schema stays the contract), and the lab's single definitions of a candidate's
sameness and text hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.core.documents import schema_errors
from lab.core.errors import LabInputError
from lab.observations.ice import Candidate, CandidatePair
from lab.report.result import RunResult, load_result

FIXTURES = Path(__file__).parent / "fixtures"
#: Saved results of real runs (aiortc, Chromium, kvs-js, a capture, a call) the tests keep.
SAVED = sorted(p for p in FIXTURES.rglob("*.json") if '"expectations_met"' in p.read_text())


@pytest.mark.parametrize("path", SAVED, ids=lambda p: p.name)
def test_a_saved_result_reads_back_and_writes_out_unchanged(path: Path) -> None:
    document = json.loads(path.read_text())
    result = RunResult.from_json(document)
    assert result.to_json() == document
    assert schema_errors(result.to_json(), "result") == schema_errors(document, "result")


def test_there_are_saved_results_to_check() -> None:
    assert len(SAVED) >= 2


def test_a_candidate_is_its_transport_address() -> None:
    srflx = Candidate("srflx", "udp", "198.51.100.2", 5000, server="stun:203.0.113.10:3478")
    learned = Candidate("prflx", "udp", "198.51.100.2", 5000)
    assert srflx.same_as(learned)  # a check's peer-reflexive find is that srflx candidate
    assert not srflx.same_as(Candidate("srflx", "tcp", "198.51.100.2", 5000))
    assert not srflx.same_as(Candidate("srflx", "udp", "198.51.100.2", 5001))


def test_a_candidate_reads_the_same_everywhere() -> None:
    assert Candidate("relay", "udp", "203.0.113.10", 50349, "tls").text() == (
        "relay 203.0.113.10:50349/tls"
    )
    assert Candidate("host", "tcp", "10.0.0.5", 9).text() == "host 10.0.0.5:9 (tcp)"
    assert Candidate("host", "udp", "2001:db8:2::10", 1).text() == "host [2001:db8:2::10]:1"


def test_keys_the_classes_do_not_model_ride_along() -> None:
    record = {
        "agent": "viewer", "local": {"type": "host", "protocol": "udp", "address": "10.0.0.1",
        "port": 1, "relay_protocol": None, "server": None, "priority": 7, "url": "x"},
        "remote": {"type": "host", "protocol": "udp", "address": "10.0.0.2", "port": 2,
        "relay_protocol": None, "server": None}, "state": "failed", "nominated": False,
        "rtt_ms": None, "checks_sent": 3, "failure": {"reason": "timeout", "message": "m"},
    }  # fmt: skip
    pair = CandidatePair.from_json(record)
    assert pair.local.priority == 7 and pair.checks_sent == 3
    assert pair.failure == {"reason": "timeout", "message": "m"}
    assert pair.to_json() == record


def test_a_file_that_is_no_result_is_bad_input_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"scenario": "s"}')
    with pytest.raises(LabInputError, match="x.json: not a lab run result"):
        load_result(path)
