"""The KVS-like signaling server and its client: pure validation, the channel with fake
connections, and the real server as a subprocess on loopback (wss with a run CA)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from websockets.exceptions import ConnectionClosed

from lab.peers.signaling_client import (
    SignalingClient,
    SignalingMessage,
    SignalingRejected,
    decode_payload,
    encode_payload,
)
from lab.peers.signaling_url import channel_url
from lab.servers.certificates import ServerCertificate, issue_server_certificate, make_ca
from lab.servers.signaling import (
    Channel,
    ClientMessage,
    EventLog,
    HandshakeRejected,
    Identity,
    RateLimiter,
    SignalingError,
    parse_identity,
    relayed_message,
    status_response,
    validate_client_message,
)

ARN = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/ice-lab/1700000000000"
OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 2 2 IN IP4 0.0.0.0\r\n"}
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}
T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 5.0) -> T:
    """Run a test coroutine with a deadline, so a bug fails the test instead of hanging it."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def send_text(action: str, payload: str, **fields: Any) -> str:
    return json.dumps({"action": action, "messagePayload": payload, **fields})


# --- pure parsing and validation -------------------------------------------------------


def test_identity_master_and_viewer() -> None:
    assert parse_identity(f"/?X-Amz-ChannelARN={ARN}", ARN) == Identity("master")
    viewer = parse_identity(f"/?X-Amz-ChannelARN={ARN}&X-Amz-ClientId=viewer-1.a_b", ARN)
    assert viewer == Identity("viewer", "viewer-1.a_b")
    assert viewer.key != Identity("master").key


def test_identity_parses_the_clients_url() -> None:
    """The client's URL (percent-encoded ARN) is what the server parses."""
    url = channel_url("wss://192.0.2.1:443", ARN, "v1")
    assert parse_identity(url.removeprefix("wss://192.0.2.1:443"), ARN) == Identity("viewer", "v1")
    master = channel_url("wss://192.0.2.1:443", ARN, None)
    assert parse_identity(master.removeprefix("wss://192.0.2.1:443"), ARN) == Identity("master")


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 400),
        ("X-Amz-ChannelARN=", 400),
        ("X-Amz-ChannelARN=arn:aws:kinesisvideo:us-west-2:1:channel/other/1", 403),
    ],
)
def test_identity_refuses_missing_or_wrong_channel(query: str, status: int) -> None:
    with pytest.raises(HandshakeRejected) as refused:
        parse_identity(f"/?{query}", ARN)
    assert refused.value.status == status


@pytest.mark.parametrize(
    "client_id",
    ["", "a" * 257, "has space", "slash/no", "AWS_viewer", "aws_viewer", "caf%C3%A9"],
)
def test_identity_refuses_bad_client_ids(client_id: str) -> None:
    """Empty must not fall back to master; AWS_ is reserved whatever its case."""
    with pytest.raises(HandshakeRejected) as refused:
        parse_identity(f"/?X-Amz-ChannelARN={ARN}&X-Amz-ClientId={client_id}", ARN)
    assert refused.value.status == 400
    assert "X-Amz-ClientId" in refused.value.reason


def test_identity_accepts_longest_client_id_and_refuses_two() -> None:
    assert parse_identity(f"/?X-Amz-ChannelARN={ARN}&X-Amz-ClientId={'a' * 256}", ARN).client_id
    with pytest.raises(HandshakeRejected):
        parse_identity(f"/?X-Amz-ChannelARN={ARN}&X-Amz-ClientId=a&X-Amz-ClientId=b", ARN)


def test_valid_message_keeps_payload_and_correlation() -> None:
    payload = encode_payload(CANDIDATE)
    message = validate_client_message(
        send_text("ICE_CANDIDATE", payload, recipientClientId="v1", correlationId="c-1")
    )
    assert message == ClientMessage(
        "ICE_CANDIDATE", "v1", payload, "c-1", len(json.dumps(CANDIDATE, separators=(",", ":")))
    )
    assert decode_payload(message.payload) == CANDIDATE


def test_payload_limit_is_10_kb_decoded() -> None:
    at_limit = base64.b64encode(b"x" * 10240).decode()
    assert validate_client_message(send_text("SDP_OFFER", at_limit)).payload_bytes == 10240
    over = base64.b64encode(b"x" * 10241).decode()
    with pytest.raises(SignalingError) as refused:
        validate_client_message(send_text("SDP_OFFER", over, correlationId="big"))
    assert (refused.value.error_type, refused.value.correlation_id) == (
        "InvalidArgumentException",
        "big",
    )


@pytest.mark.parametrize(
    ("raw", "correlation_id"),
    [
        ("not json", None),
        ("[1, 2]", None),
        (send_text("SDP_PRANSWER", "e30=", correlationId="c7"), "c7"),
        (send_text("SDP_OFFER", "not base64!", correlationId="c8"), "c8"),
        (json.dumps({"action": "SDP_OFFER", "correlationId": "c9"}), "c9"),
        (send_text("SDP_OFFER", "e30=", correlationId="bad id"), "bad id"),
    ],
)
def test_invalid_messages_are_refused_with_their_correlation(
    raw: str, correlation_id: str | None
) -> None:
    with pytest.raises(SignalingError) as refused:
        validate_client_message(raw)
    assert refused.value.correlation_id == correlation_id


def test_master_messages_carry_no_sender_id() -> None:
    message = validate_client_message(send_text("SDP_ANSWER", encode_payload(ANSWER)))
    from_master = json.loads(relayed_message(Identity("master"), message))
    from_viewer = json.loads(relayed_message(Identity("viewer", "v1"), message))
    assert "senderClientId" not in from_master
    assert from_viewer["senderClientId"] == "v1"
    assert from_master["messageType"] == from_viewer["messageType"] == "SDP_ANSWER"
    assert decode_payload(from_master["messagePayload"]) == ANSWER


def test_status_response_shape() -> None:
    document = json.loads(status_response(SignalingError("InvalidArgumentException", "d", "c1")))
    assert document == {
        "messageType": "STATUS_RESPONSE",
        "statusResponse": {
            "correlationId": "c1",
            "errorType": "InvalidArgumentException",
            "statusCode": "400",
            "description": "d",
        },
    }


def test_rate_limits_slide_over_one_second() -> None:
    limiter = RateLimiter()
    assert all(limiter.allow("ICE_CANDIDATE", 10.0 + i / 100) for i in range(20))
    assert not limiter.allow("ICE_CANDIDATE", 10.5)
    assert limiter.allow("ICE_CANDIDATE", 11.0)  # the first send left the window
    # Offers and answers share the SDP limit of 5, independent of candidates.
    assert all(limiter.allow(a, 10.0) for a in ["SDP_OFFER"] * 3 + ["SDP_ANSWER"] * 2)
    assert not limiter.allow("SDP_ANSWER", 10.9)
    assert not limiter.allow("SDP_OFFER", 10.9)


def test_payload_round_trip_is_compact_base64_json() -> None:
    encoded = encode_payload(CANDIDATE)
    assert base64.b64decode(encoded) == json.dumps(CANDIDATE, separators=(",", ":")).encode()
    assert decode_payload(encoded) == CANDIDATE
    assert channel_url("wss://h:443", "arn:x/1", "v") == (
        "wss://h:443/?X-Amz-ChannelARN=arn%3Ax%2F1&X-Amz-ClientId=v"
    )


# --- the channel, with fake connections ----------------------------------------------


class FakeConnection:
    """Records what the channel sends; refuses sends once closed, like a real socket."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, message: str) -> None:
        if self.closed is not None:
            raise ConnectionClosed(None, None)
        self.sent.append(json.loads(message))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)

    def types(self) -> list[str]:
        return [m["messageType"] for m in self.sent]


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def message(action: str, payload: dict[str, Any], recipient: str | None = None) -> ClientMessage:
    return validate_client_message(
        send_text(action, encode_payload(payload), recipientClientId=recipient)
    )


def test_held_messages_expire_after_the_ttl() -> None:
    async def scenario() -> tuple[FakeConnection, FakeConnection]:
        clock = Clock()
        channel = Channel(ttl_s=5.0, clock=clock)
        await channel.route(Identity("viewer", "old"), message("SDP_OFFER", OFFER))
        clock.now += 4.0
        await channel.route(Identity("viewer", "new"), message("SDP_OFFER", OFFER))
        clock.now += 2.0  # the first offer is 6 s old: expired; the second 2 s: kept
        master = FakeConnection()
        await channel.join(Identity("master"), master)
        later = FakeConnection()
        await channel.join(Identity("master"), later)  # held messages go out only once
        await asyncio.sleep(0)  # the replaced master's GO_AWAY goes out in the background
        return master, later

    master, later = run(scenario())
    assert master.types() == ["SDP_OFFER", "GO_AWAY"]
    assert master.sent[0]["senderClientId"] == "new"
    assert master.closed is not None
    assert later.sent == []


def test_a_newer_held_offer_overwrites_the_older() -> None:
    async def scenario() -> FakeConnection:
        channel = Channel()
        viewer = Identity("viewer", "v1")
        newer = {"type": "offer", "sdp": "newer"}
        for msg in (message("SDP_OFFER", OFFER), message("ICE_CANDIDATE", CANDIDATE)):
            await channel.route(viewer, msg)
        await channel.route(viewer, message("SDP_OFFER", newer))
        master = FakeConnection()
        await channel.join(Identity("master"), master)
        return master

    master = run(scenario())
    assert master.types() == ["ICE_CANDIDATE", "SDP_OFFER"]
    assert decode_payload(master.sent[1]["messagePayload"])["sdp"] == "newer"


def test_channel_takes_ten_viewers_and_lets_them_reconnect() -> None:
    async def scenario() -> Channel:
        channel = Channel()
        for index in range(10):
            await channel.join(Identity("viewer", f"v{index}"), FakeConnection())
        await channel.join(Identity("viewer", "v3"), FakeConnection())  # replaces itself
        await asyncio.sleep(0)
        with pytest.raises(HandshakeRejected) as refused:
            await channel.join(Identity("viewer", "v10"), FakeConnection())
        assert refused.value.error_type == "ClientLimitExceededException"
        await channel.join(Identity("master"), FakeConnection())  # the master has its own slot
        return channel

    assert run(scenario()).viewer_count() == 10


def test_master_must_name_a_connected_viewer() -> None:
    async def scenario() -> list[SignalingError]:
        channel = Channel()
        errors = []
        for recipient in (None, "ghost"):
            with pytest.raises(SignalingError) as refused:
                await channel.route(Identity("master"), message("SDP_ANSWER", ANSWER, recipient))
            errors.append(refused.value)
        return errors

    missing, ghost = run(scenario())
    assert "recipientClientId" in missing.description
    assert ghost.error_type == "InvalidClientException" and "ghost" in ghost.description


def test_event_log_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with path.open("w") as stream:
        log = EventLog(stream, clock=lambda: 12.5)
        log.record("connect", Identity("viewer", "v1"))
        log.record("error", None, error="bad", recipient=None)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"t": 12.5, "event": "connect", "role": "viewer", "client_id": "v1"},
        {"t": 12.5, "event": "error", "error": "bad"},
    ]


# --- the real server, as a subprocess on loopback --------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerCertificate]:
    directory = tmp_path_factory.mktemp("signaling-tls")
    yield issue_server_certificate(directory, "signaling", ["127.0.0.1"], make_ca(directory))


@dataclass
class Server:
    endpoint: str
    ca: str
    log: Path

    async def connect(self, client_id: str | None, arn: str = ARN) -> SignalingClient:
        url = channel_url(self.endpoint, arn, client_id)
        return await SignalingClient.connect(url, ca_file=self.ca, timeout=2.0)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    async def events_once(self, event: str, count: int) -> list[dict[str, Any]]:
        """The log once it holds `count` events of a kind: the server logs asynchronously."""
        while sum(e["event"] == event for e in self.events()) < count:
            await asyncio.sleep(0.01)
        return self.events()


@asynccontextmanager
async def signaling_server(cert: ServerCertificate, *extra: str) -> AsyncIterator[Server]:
    """The server on a free loopback port; on exit, SIGTERM must end it with status 0."""
    log = cert.cert.parent / f"signaling-{os.urandom(4).hex()}.jsonl"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lab.servers.signaling",
        "--listen", "127.0.0.1", "--port", "0",
        "--cert", str(cert.cert), "--key", str(cert.key),
        "--channel-arn", ARN, "--log", str(log), *extra,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        ready = (await asyncio.wait_for(process.stdout.readline(), 3.0)).decode()
        assert ready.startswith("READY 127.0.0.1:"), ready
        yield Server(f"wss://{ready.split()[1]}", str(cert.ca), log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(process.wait(), 3.0)
    assert status == 0


async def receive(client: SignalingClient) -> SignalingMessage:
    return await asyncio.wait_for(client.receive(), 2.0)


async def expect_closed(client: SignalingClient) -> None:
    with pytest.raises(ConnectionClosed):
        await receive(client)


def with_server(
    certificate: ServerCertificate, test: Callable[[Server], Awaitable[None]], *extra: str
) -> None:
    async def scenario() -> None:
        async with signaling_server(certificate, *extra) as server:
            await test(server)

    run(scenario(), timeout=8.0)


def test_offer_answer_and_candidates_are_relayed(certificate: ServerCertificate) -> None:
    async def test(server: Server) -> None:
        async with await server.connect(None) as master, await server.connect("viewer-1") as viewer:
            # A viewer's recipient is ignored: its messages always go to the master.
            await viewer.send_sdp(OFFER, recipient="someone-else")
            offer = await receive(master)
            assert (offer.message_type, offer.sender_client_id, offer.payload) == (
                "SDP_OFFER",
                "viewer-1",
                OFFER,
            )
            await master.send_sdp(ANSWER, recipient=offer.sender_client_id)
            answer = await receive(viewer)
            assert (answer.message_type, answer.sender_client_id, answer.payload) == (
                "SDP_ANSWER",
                None,
                ANSWER,
            )
            await viewer.send_candidate(CANDIDATE, recipient=None)
            assert (await receive(master)).payload == CANDIDATE
            await master.send_candidate(CANDIDATE, recipient="viewer-1")
            from_master = await receive(viewer)
            assert (from_master.message_type, from_master.payload) == ("ICE_CANDIDATE", CANDIDATE)
        events = await server.events_once("disconnect", 2)
        messages = [
            (e["role"], e["action"], e.get("recipient")) for e in events if e["event"] == "message"
        ]
        assert messages == [
            ("viewer", "SDP_OFFER", None),
            ("master", "SDP_ANSWER", "viewer-1"),
            ("viewer", "ICE_CANDIDATE", None),
            ("master", "ICE_CANDIDATE", "viewer-1"),
        ]
        assert (
            sorted(e["event"] for e in events)
            == ["connect"] * 2 + ["disconnect"] * 2 + ["message"] * 4
        )
        assert all(isinstance(e["t"], float) for e in events)

    with_server(certificate, test)


def test_bad_identities_are_refused_in_the_handshake(certificate: ServerCertificate) -> None:
    async def test(server: Server) -> None:
        with pytest.raises(SignalingRejected) as bad_id:
            await server.connect("AWS_viewer")
        assert bad_id.value.status == 400 and "X-Amz-ClientId" in bad_id.value.reason
        with pytest.raises(SignalingRejected) as wrong_arn:
            await server.connect("v1", arn=ARN.replace("ice-lab", "other"))
        assert wrong_arn.value.status == 403
        assert [e["event"] for e in server.events()] == ["error", "error"]

    with_server(certificate, test)


def test_refused_sends_answer_only_when_correlated(certificate: ServerCertificate) -> None:
    async def test(server: Server) -> None:
        async with await server.connect(None) as master, await server.connect("v1") as viewer:
            big = {"candidate": "x" * 11000, "sdpMid": "0", "sdpMLineIndex": 0}
            # Without a correlationId a refused send is only logged ...
            await viewer.connection.send(send_text("ICE_CANDIDATE", encode_payload(big)))
            await viewer.connection.send("not json")
            # ... with one, it comes back as a STATUS_RESPONSE, and nothing is relayed.
            correlation_id = await viewer.send_candidate(big, recipient=None)
            status = await receive(viewer)
            assert status.message_type == "STATUS_RESPONSE" and status.status is not None
            assert status.status["correlationId"] == correlation_id
            assert status.status["errorType"] == "InvalidArgumentException"
            assert status.status["statusCode"] == "400"
            ghost = await master.send_sdp(ANSWER, recipient="ghost")
            not_connected = await receive(master)
            assert not_connected.status is not None
            assert not_connected.status["correlationId"] == ghost
            assert "ghost" in not_connected.status["description"]
            await viewer.send_candidate(CANDIDATE, recipient=None)
            assert (await receive(master)).payload == CANDIDATE  # not the oversize one
        errors = [e for e in server.events() if e["event"] == "error"]
        assert len(errors) == 4

    with_server(certificate, test)


def test_rate_limits_answer_with_status(certificate: ServerCertificate) -> None:
    async def test(server: Server) -> None:
        async with await server.connect(None) as master, await server.connect("v1") as viewer:
            for _ in range(21):
                await viewer.send_candidate(CANDIDATE, recipient=None)
            for _ in range(20):
                assert (await receive(master)).message_type == "ICE_CANDIDATE"
            limited = await receive(viewer)
            assert limited.status is not None
            assert limited.status["correlationId"] == "21"
            assert limited.status["errorType"] == "ClientLimitExceededException"
            for _ in range(6):
                await master.send_sdp(ANSWER, recipient="v1")
            for _ in range(5):
                assert (await receive(viewer)).message_type == "SDP_ANSWER"
            sdp_limited = await receive(master)
            assert sdp_limited.status is not None
            assert sdp_limited.status["errorType"] == "ClientLimitExceededException"
            assert sdp_limited.status["correlationId"] == "6"

    with_server(certificate, test)


def test_offer_waits_for_the_master(certificate: ServerCertificate) -> None:
    async def test(server: Server) -> None:
        async with await server.connect("early") as viewer:
            await viewer.send_sdp(OFFER, recipient=None)
            await viewer.send_candidate(CANDIDATE, recipient=None)
            await asyncio.sleep(0.05)  # the master connects after the server held the offer
            async with await server.connect(None) as master:
                offer, candidate = await receive(master), await receive(master)
                assert (offer.message_type, offer.sender_client_id, offer.payload) == (
                    "SDP_OFFER",
                    "early",
                    OFFER,
                )
                assert (candidate.message_type, candidate.payload) == ("ICE_CANDIDATE", CANDIDATE)
                await master.send_sdp(ANSWER, recipient="early")
                assert (await receive(viewer)).payload == ANSWER
        held = [e for e in server.events() if e["event"] == "message" and e.get("held")]
        assert [e["action"] for e in held] == ["SDP_OFFER", "ICE_CANDIDATE"]

    with_server(certificate, test)


def test_held_offer_expires_after_message_ttl(certificate: ServerCertificate) -> None:
    async def test(server: Server) -> None:
        async with await server.connect("late") as viewer:
            await viewer.send_sdp(OFFER, recipient=None)
            await asyncio.sleep(0.15)  # past the 0.1 s TTL
            async with await server.connect(None) as master:
                # Held messages go out as the master joins, before anything sent later:
                # so if the expired offer were delivered, it would come first.
                await viewer.send_candidate(CANDIDATE, recipient=None)
                assert (await receive(master)).message_type == "ICE_CANDIDATE"
        expired = [e for e in server.events() if e.get("error") == "message TTL expired"]
        assert [(e["client_id"], e["action"]) for e in expired] == [("late", "SDP_OFFER")]

    with_server(certificate, test, "--message-ttl", "0.1")


def test_newer_connection_replaces_the_older(certificate: ServerCertificate) -> None:
    async def test(server: Server) -> None:
        master = await server.connect(None)
        first = await server.connect("same")
        second = await server.connect("same")
        assert (await receive(first)).message_type == "GO_AWAY"
        await expect_closed(first)
        await master.send_sdp(ANSWER, recipient="same")
        assert (await receive(second)).payload == ANSWER
        newer_master = await server.connect(None)
        assert (await receive(master)).message_type == "GO_AWAY"
        await expect_closed(master)
        await second.send_sdp(OFFER, recipient=None)
        assert (await receive(newer_master)).payload == OFFER
        for client in (second, newer_master):
            await client.close()

    with_server(certificate, test)
