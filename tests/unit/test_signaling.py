"""The KVS-like signaling server: identities, message validation, and a real server on
127.0.0.1 relaying offers, answers and candidates as the service does."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus

from lab.peers.signaling_client import SignalingClient, channel_url, decode_payload, encode_payload
from lab.servers.certificates import issue_server_certificate, make_ca
from lab.servers.signaling import (
    RateLimiter,
    SignalingError,
    outgoing,
    parse_identity,
    validate_client_message,
)

ARN = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/test/1"


def test_identity_from_query_string() -> None:
    assert parse_identity(f"/?X-Amz-ChannelARN={ARN}", ARN).role == "master"
    viewer = parse_identity(f"/?X-Amz-ChannelARN={ARN}&X-Amz-ClientId=v-1", ARN)
    assert (viewer.role, viewer.client_id) == ("viewer", "v-1")
    for bad in ("AWS_x", "has space", "x" * 257):
        with pytest.raises(ValueError):
            parse_identity(f"/?X-Amz-ChannelARN={ARN}&X-Amz-ClientId={bad}", ARN)
    with pytest.raises(ValueError):
        parse_identity("/?X-Amz-ChannelARN=other", ARN)


def test_message_validation() -> None:
    payload = encode_payload({"type": "offer", "sdp": "v=0"})
    message = validate_client_message(
        json.dumps({"action": "SDP_OFFER", "messagePayload": payload})
    )
    assert message.action == "SDP_OFFER" and decode_payload(message.payload)["sdp"] == "v=0"
    with pytest.raises(SignalingError, match="unknown action"):
        validate_client_message(json.dumps({"action": "HELLO", "messagePayload": payload}))
    big = base64.b64encode(b"x" * (10 * 1024 + 1)).decode()
    with pytest.raises(SignalingError, match="10 KB"):
        validate_client_message(json.dumps({"action": "SDP_OFFER", "messagePayload": big}))


def test_master_messages_carry_no_sender_id() -> None:
    master = parse_identity(f"/?X-Amz-ChannelARN={ARN}", ARN)
    viewer = parse_identity(f"/?X-Amz-ChannelARN={ARN}&X-Amz-ClientId=v", ARN)
    message = validate_client_message(
        json.dumps({"action": "SDP_ANSWER", "messagePayload": "e30="})
    )
    assert "senderClientId" not in json.loads(outgoing(master, message))
    assert json.loads(outgoing(viewer, message))["senderClientId"] == "v"


def test_rate_limit_is_five_sdp_per_second() -> None:
    limiter = RateLimiter()
    assert all(limiter.allow("SDP_OFFER", 0.1 * i) for i in range(5))
    assert not limiter.allow("SDP_OFFER", 0.5)
    assert limiter.allow("SDP_OFFER", 1.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    directory = tmp_path_factory.mktemp("signaling")
    certificate = issue_server_certificate(
        directory, "signaling", ["127.0.0.1"], make_ca(directory)
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lab.servers.signaling", "--listen", "127.0.0.1",
         "--port", str(port), "--cert", str(certificate.cert), "--key", str(certificate.key),
         "--channel-arn", ARN],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().decode().startswith("READY")
    yield f"wss://127.0.0.1:{port}", str(certificate.ca)
    process.terminate()
    assert process.wait(timeout=5) == 0


def connect(server: tuple[str, str], client_id: str | None):  # type: ignore[no-untyped-def]
    endpoint, ca = server
    return SignalingClient.connect(channel_url(endpoint, ARN, client_id), ca_file=ca, timeout=3)


async def receive(client: SignalingClient):  # type: ignore[no-untyped-def]
    return await asyncio.wait_for(client.receive(), 3)


def test_offer_answer_and_candidate_are_relayed(server: tuple[str, str]) -> None:
    async def scenario() -> None:
        master = await connect(server, None)
        viewer = await connect(server, "viewer-1")
        await viewer.send_sdp({"type": "offer", "sdp": "v=0 offer"}, recipient="ignored")
        offer = await receive(master)
        assert (offer.message_type, offer.sender_client_id) == ("SDP_OFFER", "viewer-1")
        assert offer.payload == {"type": "offer", "sdp": "v=0 offer"}
        await master.send_sdp({"type": "answer", "sdp": "v=0 answer"}, recipient="viewer-1")
        answer = await receive(viewer)
        assert answer.message_type == "SDP_ANSWER" and answer.sender_client_id is None
        candidate = {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host", "sdpMid": "0"}
        await master.send_candidate(candidate, recipient="viewer-1")
        assert (await receive(viewer)).payload == candidate
        await viewer.close()
        await master.close()

    asyncio.run(scenario())


def test_offer_waits_for_a_master_that_connects_later(server: tuple[str, str]) -> None:
    async def scenario() -> None:
        viewer = await connect(server, "early")
        await viewer.send_sdp({"type": "offer", "sdp": "v=0 early"}, recipient=None)
        master = await connect(server, None)
        offer = await receive(master)
        assert offer.payload["sdp"] == "v=0 early"
        await viewer.close()
        await master.close()

    asyncio.run(scenario())


def test_errors_come_back_as_status_response(server: tuple[str, str]) -> None:
    async def scenario() -> None:
        master = await connect(server, None)
        await master.send_sdp({"type": "answer", "sdp": "v=0"}, recipient=None)
        status = await receive(master)
        assert status.message_type == "STATUS_RESPONSE"
        assert status.status["statusCode"] == "400" and status.status["correlationId"]
        await master.close()

    asyncio.run(scenario())


def test_newer_connection_replaces_the_older_one(server: tuple[str, str]) -> None:
    async def scenario() -> None:
        first = await connect(server, "same")
        second = await connect(server, "same")
        assert (await receive(first)).message_type == "GO_AWAY"
        await second.close()

    asyncio.run(scenario())


def test_invalid_client_id_is_refused_at_the_handshake(server: tuple[str, str]) -> None:
    with pytest.raises(InvalidStatus):
        asyncio.run(connect(server, "AWS_reserved"))
