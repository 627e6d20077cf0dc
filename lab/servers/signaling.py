"""A signaling server modelled on Kinesis Video Streams with WebRTC (see the shared KVS facts).

One channel, one master, up to 10 viewers, WebSocket over TLS. Clients identify with the
query string (`X-Amz-ChannelARN`, plus `X-Amz-ClientId` for a viewer), send
`{"action", "recipientClientId", "messagePayload", "correlationId"}` and receive
`{"senderClientId", "messageType", "messagePayload"}` (the master's messages carry no
sender id). A refused send comes back as a STATUS_RESPONSE only when it carried a
correlationId, as the service does; otherwise it is only logged. A viewer's messages
wait up to the message TTL for a master that is not connected yet; a master naming a
viewer that is not connected gets an error. A newer connection with the same identity
replaces the older one, which gets GO_AWAY and is closed.

Run: `python -m lab.servers.signaling --listen ADDR --port PORT --cert C --key K
--channel-arn ARN [--log FILE.jsonl] [--message-ttl 60]`; prints `READY addr:port` once
listening (port 0 picks a free port, and the line names it) and exits 0 on SIGTERM/SIGINT.
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
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, Protocol, TextIO
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Request, Response, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Role = Literal["master", "viewer"]

ACTIONS = frozenset({"SDP_OFFER", "SDP_ANSWER", "ICE_CANDIDATE"})
MAX_PAYLOAD_BYTES = 10 * 1024  # decoded messagePayload
MAX_VIEWERS = 10
# Per socket, per sliding second: the service counts SDP offers and answers together.
RATE_LIMITS = {"ICE_CANDIDATE": 20, "SDP": 5}
RATE_WINDOW_S = 1.0
DEFAULT_MESSAGE_TTL_S = 60.0
# Larger than any valid send, so an oversize payload gets a STATUS_RESPONSE, not a 1009 close.
MAX_FRAME_BYTES = 256 * 1024
CLOSE_TIMEOUT_S = 2.0  # an unresponsive client must not hold up a replacement or shutdown
# Client ids and correlation ids: 1-256 of [a-zA-Z0-9_.-]; client ids may not start with
# AWS_ (the service's pattern is `^(?!(?i)AWS_.*)`, so the prefix check ignores case).
IDENTIFIER = re.compile(r"[a-zA-Z0-9_.-]{1,256}")
RESERVED_PREFIX = "aws_"
MASTER_KEY = "master"  # the key of the master's slot; viewers are keyed "viewer:<id>"

GO_AWAY = json.dumps({"messageType": "GO_AWAY"})


class HandshakeRejected(Exception):
    """A refused WebSocket handshake: answered with an HTTP status and a one-line reason."""

    def __init__(self, status: HTTPStatus, error_type: str, reason: str) -> None:
        super().__init__(f"{error_type}: {reason}")
        self.status = status
        self.error_type = error_type
        self.reason = reason


class SignalingError(Exception):
    """A refused send: a STATUS_RESPONSE if the send had a correlationId, else only logged."""

    def __init__(
        self,
        error_type: str,
        description: str,
        correlation_id: str | None = None,
        status_code: int = 400,
    ) -> None:
        super().__init__(description)
        self.error_type = error_type
        self.description = description
        self.correlation_id = correlation_id
        self.status_code = status_code


@dataclass(frozen=True)
class Identity:
    """Who a connection is: the master, or a viewer with its client id."""

    role: Role
    client_id: str | None = None

    @property
    def key(self) -> str:
        """The channel slot this identity occupies; a newer connection for it replaces the older."""
        return MASTER_KEY if self.role == "master" else f"viewer:{self.client_id}"


@dataclass(frozen=True)
class ClientMessage:
    """One validated client send; `payload` stays base64, as it is relayed untouched."""

    action: str
    recipient: str | None
    payload: str
    correlation_id: str | None
    payload_bytes: int


def valid_client_id(client_id: str) -> bool:
    """The service's X-Amz-ClientId rule: 1-256 of [a-zA-Z0-9_.-], not starting with AWS_."""
    return bool(IDENTIFIER.fullmatch(client_id)) and not client_id.lower().startswith(
        RESERVED_PREFIX
    )


def parse_identity(path: str, channel_arn: str) -> Identity:
    """Who is connecting, from the request's query string; HandshakeRejected if refused.

    A query without X-Amz-ClientId is the master; with one, a viewer.
    """
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)
    arns = query.get("X-Amz-ChannelARN", [])
    if len(arns) != 1 or not arns[0]:
        raise HandshakeRejected(
            HTTPStatus.BAD_REQUEST, "InvalidArgumentException", "X-Amz-ChannelARN is required"
        )
    if arns[0] != channel_arn:
        raise HandshakeRejected(
            HTTPStatus.FORBIDDEN, "AccessDeniedException", f"no access to channel {arns[0]}"
        )
    client_ids = query.get("X-Amz-ClientId")
    if client_ids is None:
        return Identity("master")
    if len(client_ids) != 1 or not valid_client_id(client_ids[0]):
        raise HandshakeRejected(
            HTTPStatus.BAD_REQUEST,
            "InvalidArgumentException",
            "X-Amz-ClientId must be 1-256 characters of [a-zA-Z0-9_.-], not starting with AWS_",
        )
    return Identity("viewer", client_ids[0])


def _correlation_id(document: dict[str, Any]) -> str | None:
    """The send's correlationId if it is one a STATUS_RESPONSE can echo."""
    value = document.get("correlationId")
    return value if isinstance(value, str) and value else None


def _payload_size(payload: Any, correlation_id: str | None) -> int:
    """The decoded size of a messagePayload; SignalingError unless it is base64 within 10 KB."""
    if not isinstance(payload, str) or not payload:
        raise SignalingError(
            "InvalidArgumentException", "messagePayload is required", correlation_id
        )
    try:
        size = len(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError):
        raise SignalingError(
            "InvalidArgumentException", "messagePayload is not base64", correlation_id
        ) from None
    if size > MAX_PAYLOAD_BYTES:
        raise SignalingError(
            "InvalidArgumentException",
            f"messagePayload is {size} bytes decoded; the limit is {MAX_PAYLOAD_BYTES}",
            correlation_id,
        )
    return size


def validate_client_message(raw: str | bytes) -> ClientMessage:
    """Parse one client send; SignalingError (with the correlationId, if any) if refused."""
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SignalingError("InvalidArgumentException", "message is not JSON") from None
    if not isinstance(document, dict):
        raise SignalingError("InvalidArgumentException", "message is not a JSON object")
    correlation_id = _correlation_id(document)
    if correlation_id is not None and not IDENTIFIER.fullmatch(correlation_id):
        raise SignalingError(
            "InvalidArgumentException",
            "correlationId must be 1-256 characters of [a-zA-Z0-9_.-]",
            correlation_id,
        )
    action = document.get("action")
    if action not in ACTIONS:
        raise SignalingError(
            "InvalidArgumentException", f"unknown action {action!r}", correlation_id
        )
    recipient = document.get("recipientClientId")
    if recipient is not None and not isinstance(recipient, str):
        raise SignalingError(
            "InvalidArgumentException", "recipientClientId must be a string", correlation_id
        )
    size = _payload_size(document.get("messagePayload"), correlation_id)
    return ClientMessage(
        action, recipient or None, document["messagePayload"], correlation_id, size
    )


def relayed_message(sender: Identity, message: ClientMessage) -> str:
    """What the recipient receives; like the service, the master's messages carry no sender id."""
    document: dict[str, Any] = {"messageType": message.action, "messagePayload": message.payload}
    if sender.role == "viewer":
        document["senderClientId"] = sender.client_id
    return json.dumps(document, separators=(",", ":"))


def status_response(error: SignalingError) -> str:
    """The STATUS_RESPONSE for a refused send that carried a correlationId."""
    return json.dumps(
        {
            "messageType": "STATUS_RESPONSE",
            "statusResponse": {
                "correlationId": error.correlation_id,
                "errorType": error.error_type,
                "statusCode": str(error.status_code),  # the service sends it as a string
                "description": error.description,
            },
        },
        separators=(",", ":"),
    )


def rate_bucket(action: str) -> str:
    """Which per-socket limit an action counts against."""
    return "ICE_CANDIDATE" if action == "ICE_CANDIDATE" else "SDP"


class RateLimiter:
    """Sliding-window counts of one socket's sends; refused sends do not count."""

    def __init__(self, limits: dict[str, int] | None = None, window_s: float = RATE_WINDOW_S):
        self.limits = limits or RATE_LIMITS
        self.window_s = window_s
        self.sent: dict[str, deque[float]] = {}

    def allow(self, action: str, now: float) -> bool:
        bucket = rate_bucket(action)
        window = self.sent.setdefault(bucket, deque())
        while window and now - window[0] >= self.window_s:
            window.popleft()
        if len(window) >= self.limits[bucket]:
            return False
        window.append(now)
        return True


class Connection(Protocol):
    """What the channel needs of a client connection (a websockets ServerConnection, or a fake)."""

    async def send(self, message: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class EventLog:
    """The `--log` JSON-lines file: one flushed line per event, so a killed server loses none."""

    def __init__(self, stream: TextIO | None, clock: Callable[[], float] = time.time) -> None:
        self.stream = stream
        self.clock = clock

    def record(self, event: str, identity: Identity | None, **fields: Any) -> None:
        if self.stream is None:
            return
        entry: dict[str, Any] = {"t": self.clock(), "event": event}
        if identity is not None:
            entry |= {"role": identity.role, "client_id": identity.client_id}
        entry |= {k: v for k, v in fields.items() if v is not None}
        self.stream.write(json.dumps(entry) + "\n")
        self.stream.flush()


@dataclass
class Held:
    """A viewer's message waiting for the master to connect."""

    sender: Identity
    action: str
    text: str
    expires_at: float


async def _send_quietly(connection: Connection, text: str) -> bool:
    """Send, reporting instead of raising if the connection closed meanwhile."""
    try:
        await connection.send(text)
    except ConnectionClosed:
        return False
    return True


class Channel:
    """The connected clients of the signaling channel and the messages waiting for the master."""

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_MESSAGE_TTL_S,
        log: EventLog | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.log = log or EventLog(None)
        self.clock = clock
        self.clients: dict[str, Connection] = {}
        self.held: list[Held] = []
        self._closing: set[asyncio.Task[None]] = set()

    def viewer_count(self) -> int:
        return sum(1 for key in self.clients if key != MASTER_KEY)

    def check_capacity(self, identity: Identity) -> None:
        """Refuse an 11th viewer; a reconnecting viewer replaces itself, so it always fits."""
        if identity.role != "viewer" or identity.key in self.clients:
            return
        if self.viewer_count() >= MAX_VIEWERS:
            raise HandshakeRejected(
                HTTPStatus.BAD_REQUEST,
                "ClientLimitExceededException",
                f"the channel already has {MAX_VIEWERS} viewers",
            )

    def is_current(self, identity: Identity, connection: Connection) -> bool:
        """False for a connection that a newer one with the same identity replaced."""
        return self.clients.get(identity.key) is connection

    async def join(self, identity: Identity, connection: Connection) -> None:
        """Register a connection, replacing (GO_AWAY, close) any older one with its identity."""
        self.check_capacity(identity)
        older = self.clients.get(identity.key)
        self.clients[identity.key] = connection
        self.log.record("connect", identity, replaced=True if older is not None else None)
        if older is not None:
            self._retire(identity, older)
        if identity.role == "master":
            await self._release_held(connection)

    def leave(self, identity: Identity, connection: Connection, **fields: Any) -> None:
        """Forget a closed connection, unless a newer one already took its slot."""
        if self.is_current(identity, connection):
            del self.clients[identity.key]
        self.log.record("disconnect", identity, **fields)

    def _retire(self, identity: Identity, older: Connection) -> None:
        """GO_AWAY then close, in the background so the newer connection is not held up."""

        async def go_away() -> None:
            await _send_quietly(older, GO_AWAY)
            await older.close(1000, "replaced by a newer connection with the same identity")

        task = asyncio.get_running_loop().create_task(go_away())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def route(self, sender: Identity, message: ClientMessage) -> None:
        """Relay a send: a viewer's always goes to the master, the master's to the named viewer."""
        text = relayed_message(sender, message)
        if sender.role == "viewer":
            held = await self._to_master(sender, message, text)
            recipient = None
        else:
            recipient = self._viewer_recipient(message)
            held = False
            if not await _send_quietly(self.clients[f"viewer:{recipient}"], text):
                raise self._not_connected(recipient, message)
        self.log.record(
            "message",
            sender,
            action=message.action,
            recipient=recipient,
            bytes=message.payload_bytes,
            correlation_id=message.correlation_id,
            held=held or None,
        )

    def _viewer_recipient(self, message: ClientMessage) -> str:
        """The viewer a master's send names; SignalingError if none or not connected."""
        recipient = message.recipient
        if recipient is None:
            raise SignalingError(
                "InvalidArgumentException",
                "the master must name the recipient viewer (recipientClientId)",
                message.correlation_id,
            )
        if f"viewer:{recipient}" not in self.clients:
            raise self._not_connected(recipient, message)
        return recipient

    @staticmethod
    def _not_connected(recipient: str, message: ClientMessage) -> SignalingError:
        return SignalingError(
            "InvalidClientException",
            f"recipient {recipient} is not connected",
            message.correlation_id,
            status_code=404,
        )

    async def _to_master(self, sender: Identity, message: ClientMessage, text: str) -> bool:
        """Send to the master, or hold for it up to the TTL; True if held."""
        master = self.clients.get(MASTER_KEY)
        if master is not None and await _send_quietly(master, text):
            return False
        self._hold(Held(sender, message.action, text, self.clock() + self.ttl_s))
        return True

    def _hold(self, held: Held) -> None:
        """Queue for the master; like the service, a newer undelivered SDP of the same kind
        from the same sender overwrites the older one."""
        self._drop_expired()
        if held.action != "ICE_CANDIDATE":
            self.held = [h for h in self.held if (h.sender, h.action) != (held.sender, held.action)]
        self.held.append(held)

    def _drop_expired(self) -> None:
        now = self.clock()
        for held in self.held:
            if held.expires_at <= now:
                self.log.record(
                    "error", held.sender, action=held.action, error="message TTL expired"
                )
        self.held = [h for h in self.held if h.expires_at > now]

    async def _release_held(self, master: Connection) -> None:
        """Deliver what viewers sent while no master was connected, oldest first."""
        self._drop_expired()
        waiting, self.held = self.held, []
        for index, held in enumerate(waiting):
            if not await _send_quietly(master, held.text):
                self.held = waiting[index:] + self.held  # the master left again: keep the rest
                return

    async def go_away_all(self) -> None:
        """Tell every client the server is going away (as the service does before closing)."""
        await asyncio.gather(*(_send_quietly(c, GO_AWAY) for c in list(self.clients.values())))


class SignalingServer:
    """The WebSocket side: handshake checks, one receive loop per connection, rate limits."""

    def __init__(self, channel_arn: str, channel: Channel) -> None:
        self.channel_arn = channel_arn
        self.channel = channel

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse the handshake (HTTP 400/403, with a reason) for a bad ARN, id, or full channel."""
        try:
            self.channel.check_capacity(parse_identity(request.path, self.channel_arn))
        except HandshakeRejected as exc:
            self.channel.log.record("error", None, error=str(exc), path=request.path)
            return connection.respond(exc.status, f"{exc}\n")
        return None

    async def handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None  # process_request accepted it
        identity = parse_identity(connection.request.path, self.channel_arn)
        try:
            await self.channel.join(identity, connection)
        except HandshakeRejected as exc:  # another viewer took the last place meanwhile
            self.channel.log.record("error", identity, error=str(exc))
            await connection.close(1008, exc.reason)
            return
        limiter = RateLimiter()
        try:
            async for raw in connection:
                await self.receive(identity, connection, raw, limiter)
        except ConnectionClosed:
            pass
        finally:
            self.channel.leave(
                identity,
                connection,
                code=connection.close_code,
                reason=connection.close_reason or None,
            )

    async def receive(
        self,
        identity: Identity,
        connection: ServerConnection,
        raw: str | bytes,
        limiter: RateLimiter,
    ) -> None:
        """Handle one client send; a refusal becomes a STATUS_RESPONSE only with a correlationId."""
        action: str | None = None
        try:
            message = validate_client_message(raw)
            action = message.action
            if not self.channel.is_current(identity, connection):
                raise SignalingError("InvalidClientException", "connection was replaced")
            if not limiter.allow(message.action, time.monotonic()):
                raise SignalingError(
                    "ClientLimitExceededException",
                    f"more than {RATE_LIMITS[rate_bucket(message.action)]} "
                    f"{rate_bucket(message.action)} sends in a second",
                    message.correlation_id,
                )
            await self.channel.route(identity, message)
        except SignalingError as exc:
            self.channel.log.record(
                "error",
                identity,
                action=action,
                error=exc.description,
                correlation_id=exc.correlation_id,
            )
            if exc.correlation_id is not None:
                await _send_quietly(connection, status_response(exc))


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def positive_seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="KVS-like signaling server for ice-lab")
    parser.add_argument("--listen", required=True, help="address to listen on")
    parser.add_argument("--port", type=int, default=443, help="port (0: any free port)")
    parser.add_argument("--cert", required=True, help="PEM certificate chain")
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--channel-arn", required=True, help="the one channel served")
    parser.add_argument("--log", help="JSON-lines event log")
    parser.add_argument(
        "--message-ttl",
        type=positive_seconds,
        default=DEFAULT_MESSAGE_TTL_S,
        help="seconds a viewer's message waits for the master (KVS: 5-120, default 60)",
    )
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT, announcing readiness with one READY line on stdout."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with contextlib.ExitStack() as files:
        stream = files.enter_context(open(args.log, "a")) if args.log else None  # noqa: SIM115
        channel = Channel(ttl_s=args.message_ttl, log=EventLog(stream))
        server = SignalingServer(args.channel_arn, channel)
        async with serve(
            server.handler,
            args.listen,
            args.port,
            ssl=tls_context(args.cert, args.key),
            process_request=server.process_request,
            max_size=MAX_FRAME_BYTES,
            close_timeout=CLOSE_TIMEOUT_S,
        ) as listening:
            port = listening.sockets[0].getsockname()[1]
            print(f"READY {args.listen}:{port}", flush=True)
            await stop.wait()
            await channel.go_away_all()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(run(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
