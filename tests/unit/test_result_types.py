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


def test_a_round_trip_timed_across_a_retransmission_reads_as_a_bound_everywhere() -> None:
    from rich.console import Console

    from lab.report.explain import explain_text
    from lab.report.summary import pair_grid
    from tests.result_docs import typed

    host = {"type": "srflx", "address": "198.51.100.2", "port": 1}
    other = {"type": "srflx", "address": "198.51.100.18", "port": 2}
    bound = {"local": host, "remote": other, "rtt_ms": 212.9, "rtt_upper_bound": True}
    result = typed({
        "peers": {"viewer": {"candidates": [host]}, "master": {"candidates": [other]}},
        "pairs": [{"agent": "viewer", **bound, "state": "succeeded", "nominated": True}],
        "selected": {"viewer": bound},
    })  # fmt: skip
    assert result.selected["viewer"].rtt_text() == "≤ 212.9 ms"
    assert result.pairs[0].rtt_text() == "≤ 212.9 ms"
    console = Console(record=True, width=120)
    console.print(pair_grid(result))
    assert "≤212.9" in console.export_text()
    assert "at most 212.9 ms" in explain_text(result)
    assert "retransmission" in explain_text(result)
    exact = typed({"selected": {"viewer": {**bound, "rtt_upper_bound": False, "rtt_ms": 0.5}}})
    assert exact.selected["viewer"].rtt_text() == "0.5 ms"
