"""The mock server's configuration from a scenario, coturn log parsing, KVS status codes."""

from __future__ import annotations

from pathlib import Path

from lab.report.kvs_sdk import kvs_status
from lab.servers.mock import mock_config
from lab.servers.requestlog import parse_coturn_log
from tests.result_docs import typed


def test_mock_listens_where_coturn_does(tmp_path: Path) -> None:
    config = mock_config(
        ("203.0.113.10", "203.0.113.11"),
        tmp_path / "c",
        tmp_path / "k",
        "s",
        (),
        {},
        tmp_path / "l",
    )
    listen = {(x["address"], x["port"], x["transport"]) for x in config["listen"]}
    assert listen == {
        ("203.0.113.10", 3478, "udp"),
        ("203.0.113.10", 443, "udp"),
        ("203.0.113.10", 3478, "tcp"),
        ("203.0.113.10", 443, "tls"),
        ("203.0.113.11", 3478, "tcp"),
        ("203.0.113.11", 443, "tls"),
    }
    # UDP on the second address comes from the RFC 5780 socket set.
    assert config["alternate"] == {"address": "203.0.113.11", "port": 3479}


def test_mock_faults_and_transports_come_from_the_scenario(tmp_path: Path) -> None:
    faults = {"transports": ["tls"], "quota": 1, "delay": [{"method": "allocate", "seconds": 1}]}
    config = mock_config(
        ("203.0.113.10",),
        tmp_path / "c",
        tmp_path / "k",
        "s",
        ("10.0.0.0/8",),
        faults,
        tmp_path / "l",
    )
    assert {x["transport"] for x in config["listen"]} == {"tls"}
    assert config["faults"] == {
        "forbid_peers": ["10.0.0.0/8"],
        "quota": 1,
        "delay": [{"method": "allocate", "seconds": 1}],
    }
    assert "alternate" not in config


SESSION = "session 000000000000000001: realm <ice-lab>"
COTURN_LOG = "\n".join(
    [
        f"1: : {SESSION} user <>: incoming packet message processed, error 401: Unauthorized",
        f"1: : {SESSION} user <1:v>: incoming packet ALLOCATE processed, success",
        f"2: : {SESSION} user <1:v>: incoming packet CHANNEL_BIND processed, "
        "error 403: Forbidden IP",
        "2: : session 000000000000000001: peer 192.168.1.10:5000 lifetime updated: 600",
    ]
)


def test_coturn_log_becomes_request_entries() -> None:
    entries = parse_coturn_log(COTURN_LOG)
    assert [(e["method"], e["outcome"], e["error_code"]) for e in entries] == [
        ("allocate", "error", 401),
        ("allocate", "success", None),
        ("channel_bind", "error", 403),
    ]
    assert entries[2]["reason"] == "Forbidden IP" and entries[2]["client"] == "session 1"


def candidate(kind: str) -> dict:
    return {"type": kind, "address": "1.1.1.1", "port": 1, "protocol": "udp"}


def result(pairs: list[dict], candidates: list[dict] | None = None) -> dict:
    return {
        "outcome": "failed",
        "peers": {
            "viewer": {"candidates": [candidate("host")] if candidates is None else candidates}
        },
        "pairs": pairs,
    }


def pair(state: str, local: str = "host", failure: dict | None = None) -> dict:
    return {"agent": "viewer", "state": state, "local": candidate(local), "failure": failure}


def test_kvs_status_codes() -> None:
    assert kvs_status(typed({"outcome": "connected"})) is None
    assert kvs_status(typed(result([], candidates=[])))["code"] == "0x5a00000b"
    before_ice = result([], candidates=[])
    before_ice["peers"]["viewer"]["error"] = "gaierror: [Errno -3] Temporary failure"
    assert kvs_status(typed(before_ice)) is None  # a signaling failure: no ICE status at all
    assert kvs_status(typed(result([])))["code"] == "0x5a00000e"
    assert kvs_status(typed(result([pair("failed")])))["code"] == "0x5a00000d"
    assert kvs_status(typed(result([pair("succeeded")])))["code"] == "0x5a000013"
    # A browser's pair that worked reads in-progress while its next check is out.
    answered = {**pair("in-progress"), "checks_sent": 138, "responses_received": 38}
    assert kvs_status(typed(result([answered])))["code"] == "0x5a000013"
    unanswered = {**pair("in-progress"), "checks_sent": 5, "responses_received": 0}
    assert kvs_status(typed(result([unanswered])))["code"] == "0x5a00000d"
    refused = {"reason": "turn_error", "code": 403}
    assert kvs_status(typed(result([pair("failed", "relay", refused)])))["code"] == "0x5a000027"
