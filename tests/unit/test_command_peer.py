"""A user's program as a peer: its environment, its command line, and what the lab's
servers saw of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.core.errors import LabInputError
from lab.peers.command_peer import (
    ENVIRONMENT,
    command_environment,
    own_observations,
    parse_command,
    wire_seen,
)
from lab.peers.config import IceServerConfig, PeerConfig


def config() -> PeerConfig:
    return PeerConfig(
        role="viewer",
        host="viewer",
        mode="stun-turn",
        signaling_url="wss://m-1.example/?X-Amz-Signature=x",
        client_id="ice-lab-viewer-1",
        ca_file="/run/ice-lab/run-x/ca.pem",
        ice_servers=[
            IceServerConfig(["stun:203.0.113.10:3478"]),
            IceServerConfig(["turn:203.0.113.10:3478"], "u", "p"),
        ],
        timing={"signaling_timeout_s": 8, "check_timeout_s": 4},
        result_path="/tmp/viewer.observations.json",
        service={
            "endpoint_url": "https://kinesisvideo.us-west-2.amazonaws.com",
            "region": "us-west-2",
            "channel_arn": "arn:aws:kinesisvideo:us-west-2:1:channel/c/1",
            "access_key_id": "AKID",
            "secret_access_key": "SECRET",
        },
    )


def test_the_program_gets_what_the_aws_sdks_read_and_the_labs_own_names() -> None:
    environment = command_environment(config(), 17.0, Path("/tmp/obs.json"))
    assert set(ENVIRONMENT) <= set(environment)  # every documented name is given
    assert environment["AWS_ENDPOINT_URL_KINESIS_VIDEO"].startswith("https://kinesisvideo.")
    assert environment["AWS_CA_BUNDLE"] == environment["SSL_CERT_FILE"]
    assert environment["ICELAB_DEADLINE_S"] == "17"
    assert json.loads(environment["ICELAB_ICE_SERVERS"]) == [
        {"urls": ["stun:203.0.113.10:3478"]},
        {"urls": ["turn:203.0.113.10:3478"], "username": "u", "credential": "p"},
    ]


@pytest.mark.parametrize(("text", "words"), [("", "give the program"), ("'open", "quotation")])
def test_a_command_line_that_says_nothing_runnable_is_bad_input(text: str, words: str) -> None:
    with pytest.raises(LabInputError, match=f"--viewer-command: .*{words}"):
        parse_command(text, "--viewer-command")
    assert parse_command("python app.py --name 'a b'", "x") == ["python", "app.py", "--name", "a b"]


def test_the_wire_summary_keeps_the_peers_signaling_and_counts_turn_requests(
    tmp_path: Path,
) -> None:
    log = tmp_path / "signaling.jsonl"
    log.write_text(
        "\n".join(
            json.dumps(e)
            for e in [
                {"t": 1, "event": "connect", "role": "viewer", "client_id": "a"},
                {"t": 2, "event": "message", "role": "viewer", "action": "SDP_OFFER"},
                {"t": 3, "event": "message", "role": "master", "action": "SDP_ANSWER"},
            ]
        )
        + "\nnot json\n"
    )
    requests = [
        {"user": "1:app", "method": "allocate", "outcome": "success"},
        {"user": "1:app", "method": "allocate", "outcome": "error"},
        {"user": None, "method": "allocate", "outcome": "error"},
    ]
    seen = wire_seen("viewer", log, requests)
    assert [e["event"] for e in seen["signaling"]] == ["connect", "message"]
    assert seen["signaling"][1]["action"] == "SDP_OFFER"
    assert seen["turn_requests_by_user"] == {
        "1:app": {"allocate": 1, "allocate error": 1},
        "(none)": {"allocate error": 1},
    }


def test_a_programs_own_observations_are_taken_if_it_wrote_them(tmp_path: Path) -> None:
    path = tmp_path / "viewer.command.json"
    assert own_observations(path) == {}
    path.write_text(json.dumps({"pairs": [], "selected": None, "other": 1}))
    assert own_observations(path) == {"pairs": [], "selected": None}
    path.write_text("{")
    assert "not JSON" in own_observations(path)["command_observations_error"]


def test_the_manual_documents_every_variable_a_program_gets() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "your-own-program.md"
    for name in ENVIRONMENT:
        assert f"| `{name}` |" in page.read_text(), name
