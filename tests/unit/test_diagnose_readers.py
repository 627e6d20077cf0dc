"""The readers of `lab diagnose`: C SDK logs, the lab's output, the JS console, JSON dumps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.core.errors import LabInputError
from lab.report.diagnose.facts import summarize
from lab.report.diagnose.read_js import read_js_log
from lab.report.diagnose.read_json import read_internals
from lab.report.diagnose.read_kvs import read_kvs_log
from lab.report.diagnose.sniff import read_artifact

FIXTURES = Path(__file__).parent / "fixtures" / "diagnose"


def kinds(findings, kind):
    return [f for f in findings if f.kind == kind]


def test_sdk_candidate_line_with_timestamp_level_and_redaction():
    line = (
        "2026-12-02 14:03:11.530 DEBUG   iceAgentLogNewCandidate(): New local ice candidate "
        "discovered. Id: Qe7LmW2k. Ip: XXX.XXX.XXX.XXX:50432. Type: srflx. Protocol: UDP."
    )
    (finding,) = read_kvs_log("app: started\n" + line + "\nother app line 0x1234")
    assert finding.kind == "candidate" and finding.line == 2
    assert finding.data.pop("at_s") > 0  # the time stamp, for the timings
    assert finding.data == {
        "side": "local",
        "id": "Qe7LmW2k",
        "type": "srflx",
        "address": "XXX.XXX.XXX.XXX",
        "port": 50432,
        "protocol": "udp",
    }
    assert finding.text == line


def test_sdk_turn_error_status_and_states():
    text = (FIXTURES / "handmade-c-sdk-master-403-forbidden-ip.log").read_text()
    found = read_kvs_log(text)
    (error,) = kinds(found, "turn_error")
    assert (error.data["code"], error.data["phrase"]) == (403, "Forbidden IP")
    assert {s.data["code"] for s in kinds(found, "status")} == {"0x5a000027"}
    assert kinds(found, "status")[0].data["name"] == "STATUS_TURN_CONNECTION_PEER_NOT_USABLE"
    assert [r.data["role"] for r in kinds(found, "role")] == ["master", "master"]
    (selected,) = kinds(found, "selected")
    assert selected.data["local"] == "srflx" and selected.data["rtt_ms"] == 31.0


def test_sdk_selected_detail_lines_give_the_relay_protocol():
    facts = summarize(
        read_kvs_log((FIXTURES / "handmade-c-sdk-master-udp-blocked-vpn.log").read_text()),
        "kvs-log",
    )
    sel = facts.peers["master"].selected
    assert (sel["local"], sel["remote"], sel["relay_protocol"]) == ("relay", "srflx", "tcp")


def test_turn_state_failure_and_encountered_error():
    found = read_kvs_log((FIXTURES / "handmade-c-sdk-viewer-turn-tcp-timeout.log").read_text())
    assert [
        s.data["from"] for s in kinds(found, "turn_state") if s.data["to"] == "TURN_STATE_FAILED"
    ] == ["TURN_STATE_CHECK_SOCKET_CONNECTION"]
    facts = summarize(found, "kvs-log")
    assert list(facts.peers) == ["viewer"]  # "Nominating candidate pair": the controlling agent
    assert facts.peers["viewer"].tcp_turn_timed_out()


def test_encountered_error_marks_the_failure():
    facts = summarize(
        read_kvs_log((FIXTURES / "handmade-c-sdk-master-no-turn-0x5a00000d.log").read_text()),
        "kvs-log",
    )
    peer = facts.peers["master"]
    assert peer.outcome == "failed" and "0x5a00000d" in peer.statuses
    assert peer.local_types == {"host": 1, "srflx": 1} and peer.remote_types == {
        "host": 1,
        "srflx": 1,
    }


def test_lab_output_wrapped_at_80_columns_is_joined():
    found = read_kvs_log((FIXTURES / "lab-symmetric-both-80-columns-wrapped.txt").read_text())
    states = [(f.role, f.data["to"]) for f in kinds(found, "agent_state")]
    assert ("viewer", "ICE_AGENT_STATE_READY") in states and (
        "master",
        "ICE_AGENT_STATE_READY",
    ) in states
    sdk_selected = [f for f in kinds(found, "selected") if "Round trip time" in f.text]
    assert [f.data["local"] for f in sdk_selected] == ["prflx", "relay"]


def test_lab_output_sections_tables_grid_and_summary():
    found = read_kvs_log((FIXTURES / "lab-turn-credentials-expired.txt").read_text())
    errors = kinds(found, "gathering_error")
    assert {e.role for e in errors} == {"viewer", "master"} and {
        e.data["code"] for e in errors
    } == {401}
    assert [o.data["outcome"] for o in kinds(found, "outcome")] == ["failed"]
    assert kinds(found, "outcome")[0].role is None  # the run's outcome, not one peer's
    # expectation lines ("ok   viewer has a gathering error ...") are not findings
    assert not [f for f in found if f.text.startswith(("ok ", "FAIL"))]


def test_lab_grid_403_cells_on_a_redacted_excerpt():
    found = read_kvs_log(
        (FIXTURES / "lab-turn-forbidden-private-peers-excerpt-redacted.txt").read_text()
    )
    errors = kinds(found, "turn_error")
    assert len(errors) == 3 and {(e.role, e.data["code"], e.data["local"]) for e in errors} == {
        ("viewer", 403, "relay")
    }


def test_js_console_log():
    found = read_js_log((FIXTURES / "handmade-js-sdk-viewer-console-symmetric.log").read_text())
    facts = summarize(found, "js-console", default_role="viewer")
    peer = facts.peers["viewer"]
    assert peer.local_types == {"host": 1, "srflx": 1, "relay": 1}
    assert peer.remote_types == {"host": 1, "srflx": 1}
    assert peer.outcome == "connected"
    assert (peer.selected["local"], peer.selected["remote"]) == ("relay", "srflx")
    assert len(kinds(found, "ice_server")) == 4


def test_webrtc_internals_dump_series_and_update_log():
    path = FIXTURES / "webrtc-internals-symmetric-viewer-from-chromium-report.json"
    raw = path.read_text()
    found = read_internals(json.loads(raw), raw)
    assert kinds(found, "role")[0].data["role"] == "viewer"
    (selected,) = kinds(found, "selected")
    assert (selected.data["local"], selected.data["remote"], selected.data["relay_protocol"]) == (
        "relay",
        "srflx",
        "udp",
    )
    assert selected.line > 1  # points into the dump


def test_webrtc_internals_candidate_error():
    doc = {
        "PeerConnections": {
            "1-1": {
                "updateLog": [
                    {"type": "createAnswer", "value": ""},
                    {
                        "type": "icecandidateerror",
                        "value": "url: turn:203.0.113.10:443?transport=udp\naddress: 192.168.1.4\n"
                        "port: 5000\nhost_candidate: 192.168.1.4:5000\nerror_text: Unauthorized\n"
                        "error_code: 401",
                    },
                ],
                "stats": {},
            }
        }
    }
    found = read_internals(doc, json.dumps(doc))
    (error,) = kinds(found, "gathering_error")
    assert error.role == "master" and error.data["code"] == 401


def test_chromium_peer_report_role_from_file_name():
    fmt, found = read_artifact(FIXTURES / "viewer.chromium-report-symmetric-viewer.json")
    assert fmt == "chromium-report"
    facts = summarize(found, fmt, default_role="master")
    assert list(facts.peers) == ["viewer"] and facts.peers["viewer"].outcome == "connected"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary"),
        (b"hello\nnothing about ICE here\n", "found nothing"),
        (b'{"foo": 1}', "JSON without PeerConnections"),
        (b'{"PeerConnections": ', "invalid JSON"),
    ],
)
def test_unreadable_input_names_file_and_expected_formats(tmp_path, content, message):
    path = tmp_path / "ticket.log"
    path.write_bytes(content)
    with pytest.raises(LabInputError) as caught:
        read_artifact(path)
    text = str(caught.value)
    assert str(path) in text and message in text
    assert "webrtc-internals" in text or "JSON" in text


def test_socket_connect_failure_counts_as_a_server_tried():
    text = (
        "2026-12-02 10:00:00.001 DEBUG   iceAgentLogNewCandidate(): New local ice candidate "
        "discovered. Id: a. Ip: 192.168.1.2:4000. Type: host. Protocol: UDP.\n"
        "2026-12-02 10:00:00.002 ERROR   socketConnect(): "
        "connect() failed with errno Connection refused\n"
    )
    found = read_kvs_log(text)
    (error,) = kinds(found, "socket_error")
    assert error.data == {"reason": "Connection refused"} and error.line == 2
    peer = summarize(found, "kvs-log").peers["master"]
    assert peer.refused() and peer.socket_errors[0]["line"] == 2


def test_timings_from_the_sdk_time_stamps():
    text = (FIXTURES / "handmade-c-sdk-master-no-turn-0x5a00000d.log").read_text()
    peer = summarize(read_kvs_log(text), "kvs-log").peers["master"]
    # first candidate 18:20:01.310, gathering completed .378; checks 01.610 -> FAILED 11.613
    assert peer.timings == {"gathering_s": 0.068, "checks_s": 10.003}


def test_the_selected_pair_line_s_remote_type_wins_over_a_sample_s_detail_line():
    """Some samples print the local candidate's type on their 'Remote Candidate type' line."""
    text = (
        "2026-12-02 10:00:01 DEBUG   iceAgentReadyStateSetup(): Selected pair a_b, local "
        "candidate type: srflx. remote candidate type: relay. Round trip time 80 ms\n"
        "2026-12-02 10:00:01 DEBUG   logSelectedIceCandidatesInformation(): Remote Candidate "
        "type: srflx\n"
    )
    selected = summarize(read_kvs_log(text), "kvs-log").peers["master"].selected
    assert (selected["local"], selected["remote"], selected["rtt_ms"]) == ("srflx", "relay", 80.0)
