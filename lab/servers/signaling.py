"""A signaling server modelled on Kinesis Video Streams with WebRTC (see shared KVS facts).

One channel, one master, up to 10 viewers, WebSocket over TLS. Clients identify with
the query string (`X-Amz-ChannelARN`, and `X-Amz-ClientId` for a viewer), send
`{"action", "recipientClientId", "messagePayload", "correlationId"}` and receive
`{"senderClientId", "messageType", "messagePayload", "statusResponse"}`; payloads are
base64 JSON. Errors come back as STATUS_RESPONSE only for sends with a correlationId,
as the service does. Messages for a client not yet connected wait up to a TTL.

Run: `python -m lab.servers.signaling --listen ADDR --port 443 --cert C --key K
--channel-arn ARN [--log FILE.jsonl] [--message-ttl 60]`; prints `READY addr:port`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import json
import re
import signal
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Request, Response, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

ACTIONS = ("SDP_OFFER", "SDP_ANSWER", "ICE_CANDIDATE")
MAX_PAYLOAD_BYTES = 10 * 1024
MAX_VIEWERS = 10
RATE_LIMITS = {"ICE_CANDIDATE": 20, "SDP_OFFER": 5, "SDP_ANSWER": 5}  # per socket per second
CLIENT_ID = re.compile(r"^[a-zA-Z0-9_.-]{1,256}$")
MASTER = ""  # the master's identity key; viewers are keyed by client id


class SignalingError(Exception):
    """A refused send: becomes a STATUS_RESPONSE when the send had a correlationId."""

    def __init__(self, error_type: str, status: int, description: str) -> None:
        super().__init__(description)
        self.error_type = error_type
        self.status = status
        self.description = description


@dataclass(frozen=True)
class Identity:
    role: str  # master | viewer
    client_id: str | None

    @property
    def key(self) -> str:
        return MASTER if self.role == "master" else f"viewer:{self.client_id}"


@dataclass(frozen=True)
class ClientMessage:
    action: str
    recipient: str | None
    payload: str
    correlation_id: str | None


def parse_identity(path: str, channel_arn: str) -> Identity:
    """Who is connecting, from the request path's query string; ValueError if refused."""
    query = parse_qs(urlsplit(path).query)
    arn = query.get("X-Amz-ChannelARN", [None])[0]
    if arn != channel_arn:
        raise ValueError("unknown or missing X-Amz-ChannelARN")
    client_id = query.get("X-Amz-ClientId", [None])[0]
    if client_id is None:
        return Identity("master", None)
    if not CLIENT_ID.match(client_id) or client_id.startswith("AWS_"):
        raise ValueError("X-Amz-ClientId must be 1-256 of [a-zA-Z0-9_.-], not starting AWS_")
    return Identity("viewer", client_id)


def validate_client_message(raw: str | bytes) -> ClientMessage:
    """Parse one client send; SignalingError if the service would refuse it."""
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SignalingError("InvalidArgumentException", 400, "message is not JSON") from None
    if not isinstance(document, dict):
        raise SignalingError("InvalidArgumentException", 400, "message is not a JSON object")
    action = document.get("action")
    if action not in ACTIONS:
        raise SignalingError("InvalidArgumentException", 400, f"unknown action {action!r}")
    payload = document.get("messagePayload")
    if not isinstance(payload, str):
        raise SignalingError("InvalidArgumentException", 400, "messagePayload missing")
    try:
        decoded = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise SignalingError("InvalidArgumentException", 400, "payload is not base64") from None
    if len(decoded) > MAX_PAYLOAD_BYTES:
        raise SignalingError("InvalidArgumentException", 400, "payload exceeds 10 KB")
    return ClientMessage(
        action, document.get("recipientClientId"), payload, document.get("correlationId")
    )


def outgoing(sender: Identity, message: ClientMessage) -> str:
    """What the recipient receives; the master's messages carry no sender id."""
    document: dict[str, Any] = {"messageType": message.action, "messagePayload": message.payload}
    if sender.role == "viewer":
        document["senderClientId"] = sender.client_id
    return json.dumps(document)


def status_response(correlation_id: str, error: SignalingError) -> str:
    return json.dumps(
        {
            "messageType": "STATUS_RESPONSE",
            "statusResponse": {
                "correlationId": correlation_id,
                "errorType": error.error_type,
                "statusCode": str(error.status),
                "description": error.description,
            },
        }
    )


class RateLimiter:
    """Sliding one-second windows per action, as the service limits each socket."""

    def __init__(self) -> None:
        self.sent: dict[str, deque[float]] = {}

    def allow(self, action: str, now: float) -> bool:
        window = self.sent.setdefault(action, deque())
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= RATE_LIMITS[action]:
            return False
        window.append(now)
        return True


@dataclass
class Pending:
    expires_at: float
    text: str


@dataclass
class Channel:
    """The connected clients of one signaling channel and the messages waiting for them."""

    ttl_s: float
    log: TextIO | None = None
    clients: dict[str, ServerConnection] = field(default_factory=dict)
    pending: dict[str, list[Pending]] = field(default_factory=dict)

    def record(self, event: str, identity: Identity | None, **fields: Any) -> None:
        if self.log is None:
            return
        entry = {"t": time.time(), "event": event}
        if identity is not None:
            entry |= {"role": identity.role, "client_id": identity.client_id}
        self.log.write(json.dumps(entry | fields) + "\n")
        self.log.flush()

    async def join(self, identity: Identity, connection: ServerConnection) -> None:
        viewers = [k for k in self.clients if k != MASTER]
        if identity.role == "viewer" and identity.key not in self.clients and len(viewers) >= 10:
            raise SignalingError("ClientLimitExceededException", 400, "channel has 10 viewers")
        older = self.clients.get(identity.key)
        self.clients[identity.key] = connection
        if older is not None:
            # A newer connection with the same identity replaces the older one.
            await _send_quietly(older, json.dumps({"messageType": "GO_AWAY"}))
            await older.close(1000, "replaced by a newer connection")
        self.record("connect", identity)
        now = time.monotonic()
        for waiting in self.pending.pop(identity.key, []):
            if waiting.expires_at > now:
                await _send_quietly(connection, waiting.text)

    def leave(self, identity: Identity, connection: ServerConnection) -> None:
        if self.clients.get(identity.key) is connection:
            del self.clients[identity.key]
        self.record("disconnect", identity)

    def recipient_key(self, sender: Identity, message: ClientMessage) -> str:
        if sender.role == "viewer":
            return MASTER  # a viewer's recipient is ignored: it always talks to the master
        if not message.recipient:
            raise SignalingError("InvalidArgumentException", 400, "the master must name a viewer")
        return f"viewer:{message.recipient}"

    async def deliver(self, sender: Identity, message: ClientMessage) -> None:
        key = self.recipient_key(sender, message)
        text = outgoing(sender, message)
        target = self.clients.get(key)
        if target is None:
            self.pending.setdefault(key, []).append(Pending(time.monotonic() + self.ttl_s, text))
        else:
            await _send_quietly(target, text)
        self.record(
            "message",
            sender,
            action=message.action,
            recipient=message.recipient if sender.role == "master" else None,
            bytes=len(message.payload),
            queued=target is None,
        )


async def _send_quietly(connection: ServerConnection, text: str) -> None:
    with contextlib.suppress(ConnectionClosed):
        await connection.send(text)


class SignalingServer:
    def __init__(self, channel_arn: str, channel: Channel) -> None:
        self.channel_arn = channel_arn
        self.channel = channel

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse the WebSocket handshake for a wrong channel or client id."""
        try:
            parse_identity(request.path, self.channel_arn)
        except ValueError as exc:
            self.channel.record("error", None, error=str(exc), path=request.path)
            return connection.respond(HTTPStatus.FORBIDDEN, f"{exc}\n")
        return None

    async def handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        identity = parse_identity(connection.request.path, self.channel_arn)
        try:
            await self.channel.join(identity, connection)
        except SignalingError as exc:
            await connection.close(4000, exc.description)
            return
        limiter = RateLimiter()
        try:
            async for raw in connection:
                await self.receive(identity, connection, raw, limiter)
        except ConnectionClosed:
            pass
        finally:
            self.channel.leave(identity, connection)

    async def receive(
        self,
        identity: Identity,
        connection: ServerConnection,
        raw: str | bytes,
        limiter: RateLimiter,
    ) -> None:
        correlation_id = _correlation_id(raw)
        try:
            message = validate_client_message(raw)
            if not limiter.allow(message.action, time.monotonic()):
                raise SignalingError("LimitExceededException", 429, "rate limit exceeded")
            await self.channel.deliver(identity, message)
        except SignalingError as exc:
            self.channel.record("error", identity, error=exc.description)
            if correlation_id:
                await _send_quietly(connection, status_response(correlation_id, exc))


def _correlation_id(raw: str | bytes) -> str | None:
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return document.get("correlationId") if isinstance(document, dict) else None


async def serve_forever(args: argparse.Namespace) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    log = open(args.log, "a") if args.log else None  # noqa: SIM115 - lives as long as the server
    server = SignalingServer(args.channel_arn, Channel(args.message_ttl, log))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(
        server.handle,
        args.listen,
        args.port,
        ssl=context,
        process_request=server.check_request,
        max_size=64 * 1024,
    ):
        print(f"READY {args.listen}:{args.port}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="KVS-like signaling server for ice-lab")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--channel-arn", required=True)
    parser.add_argument("--log")
    parser.add_argument("--message-ttl", type=float, default=60.0)
    asyncio.run(serve_forever(parser.parse_args()))


if __name__ == "__main__":
    main()
