"""The kvs-js agent's pure parts: what its page is told, what it reports, when it is
available; and the service's CORS answers a browser page needs (a real TLS front)."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import pytest

from lab.core.errors import LabInputError
from lab.peers import agents, chromium_browser, kvs_js_peer
from lab.peers.config import IceServerConfig, PeerConfig
from lab.servers import cors
from lab.servers.certificates import issue_server_certificate, make_ca
from lab.servers.https_front import HttpResponse, HttpsFront
from lab.servers.sigv4 import ReceivedRequest

ARN = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/ice-lab-home-nat-both/1"
SERVICE = {
    "endpoint_url": "https://kinesisvideo.us-west-2.amazonaws.com",
    "region": "us-west-2",
    "channel_arn": ARN,
    "access_key_id": "AKIDEXAMPLE",
    "secret_access_key": "secret",
}
TIMING = {"stun_rto_s": 0.03, "stun_retries": 3, "signaling_timeout_s": 8.0}
TIMING |= {"check_timeout_s": 4.0}


def peer_config(mode: str = "stun-turn", service: dict[str, str] | None = SERVICE) -> PeerConfig:
    servers = [
        IceServerConfig(["stun:203.0.113.10:3478"]),
        IceServerConfig(["turn:203.0.113.10:3478?transport=udp"], "user", "pass"),
    ]
    return PeerConfig(
        role="viewer",
        host="viewer",
        mode=mode,
        signaling_url="wss://example/",
        client_id="ice-lab-viewer-1",
        ca_file="/ca.pem",
        ice_servers=servers,
        timing=TIMING,
        result_path="/tmp/viewer.observations.json",
        agent="kvs-js",
        service=service,
    )


def test_the_channel_name_is_what_the_sample_describes() -> None:
    assert kvs_js_peer.channel_name(ARN) == "ice-lab-home-nat-both"
    assert kvs_js_peer.channel_name(ARN.replace("ice-lab-home-nat-both", "a/b")) == "a/b"
    for bad in ("arn:aws:kinesisvideo:us-west-2:1:stream/x/1", "channel/x", "nonsense"):
        with pytest.raises(ValueError, match="not a signaling channel ARN"):
            kvs_js_peer.channel_name(bad)


def test_the_page_gets_the_service_credentials_mode_and_the_runs_stun() -> None:
    config = kvs_js_peer.kvs_page_config(peer_config())
    assert config["channel_name"] == "ice-lab-home-nat-both"
    assert config["endpoint"] == SERVICE["endpoint_url"]
    assert (config["region"], config["access_key_id"]) == ("us-west-2", "AKIDEXAMPLE")
    assert config["nat_traversal"] == "stun-turn"
    assert config["stun_urls"] == ["stun:203.0.113.10:3478"]  # TURN comes from the service
    assert config["timing"]["signaling_timeout_s"] == 8.0
    assert kvs_js_peer.kvs_page_config(peer_config("turn-only"))["stun_urls"] == []
    assert kvs_js_peer.kvs_page_config(peer_config("disabled"))["stun_urls"] == []


def test_without_the_services_access_key_the_page_is_not_started() -> None:
    with pytest.raises(ValueError, match="no access key"):
        kvs_js_peer.kvs_page_config(peer_config(service=None))


def test_software_names_the_sdk_the_aws_clients_and_the_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, version in (("amazon-kinesis-video-streams-webrtc", "2.9.0"),):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "package.json").write_text(json.dumps({"version": version}))
    monkeypatch.setattr(kvs_js_peer, "MODULES", tmp_path)
    browser = {"name": "chromium", "version": "156.0"}
    software = kvs_js_peer.software(None, browser)  # the page did not say: package.json
    assert (software["name"], software["version"]) == (
        "amazon-kinesis-video-streams-webrtc",
        "2.9.0",
    )
    assert software["browser"] == browser
    assert software["aws_sdk"] == {"name": "@aws-sdk/client-kinesis-video", "version": ""}
    assert kvs_js_peer.software("2.9.1", browser)["version"] == "2.9.1"


def test_the_sdk_record_keeps_the_calls_endpoints_and_ice_servers() -> None:
    report: dict[str, Any] = {
        "service_calls": [{"operation": "DescribeSignalingChannel", "ok": True}],
        "endpoints": {"WSS": "wss://m", "HTTPS": "https://r"},
        "channel_arn": ARN,
        "ice_server_uris": ["turn:t:443?transport=udp"],
    }
    record = kvs_js_peer.sdk_record(report)
    assert record["calls"] == report["service_calls"]
    assert record["endpoints"]["WSS"] == "wss://m" and record["channel_arn"] == ARN
    assert kvs_js_peer.sdk_record({}) == {
        "calls": [],
        "endpoints": {},
        "channel_arn": None,
        "ice_server_uris": [],
        "browser_errors": [],
    }


def test_a_failed_fetch_is_explained_by_what_the_browser_logged() -> None:
    errors = kvs_js_peer.BrowserErrors()
    url = "https://kinesisvideo.us-west-2.amazonaws.com/describeSignalingChannel"
    lost = {"level": "error", "text": "Failed to load resource: net::ERR_NAME_NOT_RESOLVED"}
    errors.event("Log.entryAdded", {"entry": lost | {"url": url}}, "session")
    errors.event("Log.entryAdded", {"entry": {"level": "warning", "text": "slow"}}, "session")
    errors.event("Runtime.consoleAPICalled", {"args": []}, "session")
    assert errors.entries == [f"Failed to load resource: net::ERR_NAME_NOT_RESOLVED ({url})"]
    failed = "DescribeSignalingChannel: TypeError: Failed to fetch"
    assert kvs_js_peer.explained(failed, errors.entries) == f"{failed} ({errors.entries[0]})"
    assert kvs_js_peer.explained(failed, ["Uncaught ReferenceError: x"]) == failed
    assert kvs_js_peer.explained("ICE failed", errors.entries) == "ICE failed"
    assert kvs_js_peer.explained(None, errors.entries) is None


def test_the_agent_is_bad_input_without_the_sdk_or_the_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chromium_browser, "chromium_binary", lambda: "/usr/bin/true")
    monkeypatch.setattr(kvs_js_peer, "ASSETS", (tmp_path / "kvs-webrtc.min.js",))
    with pytest.raises(LabInputError, match=r"--viewer: the kvs-js agent needs the KVS JavaScript"):
        agents.require_agent("kvs-js", "--viewer")
    (tmp_path / "kvs-webrtc.min.js").write_text("")
    agents.require_agent("kvs-js", "--viewer")
    monkeypatch.setattr(chromium_browser, "chromium_binary", lambda: None)
    with pytest.raises(LabInputError, match="kvs-js agent needs Chromium"):
        agents.require_agent("kvs-js", "s.yaml: peers.viewer.agent")


def test_cors_headers_only_for_pages() -> None:
    assert cors.is_preflight("OPTIONS", [("Access-Control-Request-Method", "POST")])
    assert not cors.is_preflight("OPTIONS", [])
    assert not cors.is_preflight("POST", [("Access-Control-Request-Method", "POST")])
    assert cors.response_headers([("Content-Type", "application/json")]) == []
    headers = dict(cors.response_headers([("Origin", "null")]))
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "x-amzn-ErrorType" in headers["Access-Control-Expose-Headers"].split(",")
    allowed = dict(cors.preflight_headers())["Access-Control-Allow-Headers"].lower().split(",")
    for header in ("authorization", "x-amz-date", "amz-sdk-invocation-id", "amz-sdk-request"):
        assert header in allowed


async def exchange(port: int, ca: Path, request: bytes) -> tuple[int, dict[str, str]]:
    context = ssl.create_default_context(cafile=str(ca))
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(request)
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    writer.close()
    headers = dict(line.split(": ", 1) for line in head[1:] if line)
    return int(head[0].split()[1]), headers


def test_the_front_answers_a_preflight_before_sigv4_and_lets_pages_read_answers(
    tmp_path: Path,
) -> None:
    certificate = issue_server_certificate(tmp_path, "signaling", ["127.0.0.1"], make_ca(tmp_path))
    answered: list[str] = []

    def answer(request: ReceivedRequest) -> HttpResponse:
        answered.append(request.method)  # the SigV4 check and the API live behind this
        return HttpResponse(403, [("x-amzn-ErrorType", "MissingAuthenticationTokenException")])

    async def scenario() -> list[tuple[int, dict[str, str]]]:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert, certificate.key)
        server = await HttpsFront(answer, "\0unused").start("127.0.0.1", 0, context)
        port = server.sockets[0].getsockname()[1]
        preflight = (
            b"OPTIONS /describeSignalingChannel HTTP/1.1\r\nHost: x\r\nOrigin: null\r\n"
            b"Access-Control-Request-Method: POST\r\n"
            b"Access-Control-Request-Headers: authorization,x-amz-date\r\n\r\n"
        )
        page_call = b"POST /describeSignalingChannel HTTP/1.1\r\nHost: x\r\nOrigin: null\r\n\r\n"
        sdk_call = b"POST /describeSignalingChannel HTTP/1.1\r\nHost: x\r\n\r\n"
        try:
            return [
                await exchange(port, certificate.ca, r) for r in (preflight, page_call, sdk_call)
            ]
        finally:
            server.close()

    (preflight, preflight_headers), (page, page_headers), (sdk, sdk_headers) = asyncio.run(
        scenario()
    )
    assert answered == ["POST", "POST"]  # the preflight never reached the SigV4 check
    assert preflight == 200 and preflight_headers["Access-Control-Allow-Methods"] == "POST"
    assert preflight_headers["Access-Control-Allow-Origin"] == "*"
    assert page == 403 and page_headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in sdk_headers and sdk == 403
