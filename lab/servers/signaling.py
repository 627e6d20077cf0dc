"""A signaling server modelled on Kinesis Video Streams with WebRTC (see the shared KVS facts).

WebSocket over TLS: a master and up to 10 viewers per channel. Clients identify with the
query string (`X-Amz-ChannelARN`, plus `X-Amz-ClientId` for a viewer), send
`{"action", "recipientClientId", "messagePayload", "correlationId"}` and receive
`{"senderClientId", "messageType", "messagePayload"}` (the master's messages carry no
sender id). A refused send comes back as a STATUS_RESPONSE only when it carried a
correlationId, as the service does; otherwise it is only logged. A viewer's messages
wait up to the message TTL for a master that is not connected yet; a master naming a
viewer that is not connected gets an error. A newer connection with the same identity
replaces the older one, which gets GO_AWAY and is closed.

On the same port, the service's HTTP APIs (`control_plane.py`): the control plane's
signaling-channel calls and GetIceServerConfig, so boto3 and the SDKs can create
channels, find this endpoint and get TURN credentials. With an access key
(`--service-config`), every API request and WebSocket handshake must carry a SigV4
signature made with it (`sigv4.py`; a presigned URL for the WebSocket), or it is refused
with HTTP 403 as the service refuses it.

Run: `python -m lab.servers.signaling --listen ADDR --port PORT --cert C --key K
--channel-arn ARN [--service-config FILE.json] [--region R] [--endpoint-host HOST]
[--log FILE.jsonl] [--message-ttl 60]`; prints `READY addr:port` once listening (port 0
picks a free port, and the line names it) and exits 0 on SIGTERM/SIGINT. The channel
ARN is the run's own channel, there from the start.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import json
import os
import re
import secrets
import signal
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, Protocol, TextIO
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Request, Response, ServerConnection, unix_serve
from websockets.exceptions import ConnectionClosed

from lab.core.documents import JsonObject
from lab.servers.channels import ChannelRecord, ChannelRegistry, valid_client_id
from lab.servers.control_plane import (
    ApiResponse,
    Endpoints,
    ServiceApi,
    TurnServers,
    read_service_config,
)
from lab.servers.credentials import AccessKey
from lab.servers.https_front import HttpResponse, HttpsFront
from lab.servers.sigv4 import ReceivedRequest, SignatureRefused, preload, verify

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
# Correlation ids: 1-256 of [a-zA-Z0-9_.-] (client ids too: channels.valid_client_id).
IDENTIFIER = re.compile(r"[a-zA-Z0-9_.-]{1,256}")
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


def requested_channel(path: str) -> str:
    """The X-Amz-ChannelARN a connection asks for; HandshakeRejected if there is not one."""
    arns = parse_qs(urlsplit(path).query, keep_blank_values=True).get("X-Amz-ChannelARN", [])
    if len(arns) != 1 or not arns[0]:
        raise HandshakeRejected(
            HTTPStatus.BAD_REQUEST, "InvalidArgumentException", "X-Amz-ChannelARN is required"
        )
    return arns[0]


def parse_identity(path: str, channels: str | Container[str]) -> Identity:
    """Who is connecting, from the request's query string; HandshakeRejected if refused.

    `channels`: the ARNs that may be connected to (one ARN, or the channel registry).
    A query without X-Amz-ClientId is the master; with one, a viewer.
    """
    arn = requested_channel(path)
    if arn not in ({channels} if isinstance(channels, str) else channels):
        raise HandshakeRejected(
            HTTPStatus.FORBIDDEN, "AccessDeniedException", f"no access to channel {arn}"
        )
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)
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


def _correlation_id(document: JsonObject) -> str | None:
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
    document: JsonObject = {"messageType": message.action, "messagePayload": message.payload}
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
        entry: JsonObject = {"t": self.clock(), "event": event}
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

    async def close_all(self, reason: str) -> None:
        """GO_AWAY and close every client: the channel is gone."""
        clients = list(self.clients.values())
        await self.go_away_all()
        await asyncio.gather(*(c.close(1000, reason) for c in clients))


class SignalingServer:
    """The WebSocket side: SigV4 and identity checks in the handshake, one receive loop per
    connection, rate limits; and the HTTP APIs, answered by `api` after the same SigV4.

    One `Channel` of connected clients per signaling channel of the registry, made when
    its first client connects; deleting a channel closes its clients.
    """

    def __init__(
        self,
        registry: ChannelRegistry,
        *,
        log: EventLog | None = None,
        key: AccessKey | None = None,
        region: str = "us-west-2",
        api: ServiceApi | None = None,
    ) -> None:
        self.registry = registry
        self.log = log or EventLog(None)
        self.key = key
        self.region = region
        self.api = api
        self.channels: dict[str, Channel] = {}
        self._closing: set[asyncio.Task[None]] = set()
        registry.on_delete = self.drop

    def channel(self, arn: str) -> Channel:
        """The connected clients of a channel of the registry."""
        channel = self.channels.get(arn)
        if channel is None:
            record = self.registry.by_arn(arn)
            ttl_s = record.message_ttl_s if record is not None else DEFAULT_MESSAGE_TTL_S
            channel = self.channels[arn] = Channel(ttl_s=ttl_s, log=self.log)
        return channel

    def drop(self, record: ChannelRecord) -> None:
        """A deleted channel's clients get GO_AWAY and are closed, in the background."""
        channel = self.channels.pop(record.arn, None)
        if channel is None:
            return
        task = asyncio.get_running_loop().create_task(channel.close_all("channel deleted"))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def authenticate(self, request: ReceivedRequest) -> None:
        """SigV4 with the run's access key, if the server has one; SignatureRefused if not."""
        if self.key is not None:
            verify(request, self.key, self.region)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse the handshake (HTTP 403 for SigV4, 400/403 for a bad ARN or id, or a full
        channel) with the error type and a reason."""
        received = ReceivedRequest(
            getattr(request, "method", "GET"), request.path, list(request.headers.raw_items())
        )
        try:
            self.authenticate(received)
            identity = parse_identity(request.path, self.registry)
            self.channel(requested_channel(request.path)).check_capacity(identity)
        except SignatureRefused as exc:
            return self._refuse(connection, request, exc.status, str(exc), exc.error_header)
        except HandshakeRejected as exc:
            return self._refuse(connection, request, exc.status, str(exc), exc.error_type)
        return None

    def _refuse(
        self,
        connection: ServerConnection,
        request: Request,
        status: int,
        reason: str,
        error_type: str,
    ) -> Response:
        self.log.record("error", None, error=reason, path=request.path)
        response = connection.respond(status, f"{reason}\n")
        response.headers["x-amzn-ErrorType"] = error_type
        return response

    async def handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None  # process_request accepted it
        path = connection.request.path
        identity = parse_identity(path, self.registry)
        channel = self.channel(requested_channel(path))
        try:
            await channel.join(identity, connection)
        except HandshakeRejected as exc:  # another viewer took the last place meanwhile
            self.log.record("error", identity, error=str(exc))
            await connection.close(1008, exc.reason)
            return
        limiter = RateLimiter()
        try:
            async for raw in connection:
                await self.receive(channel, identity, connection, raw, limiter)
        except ConnectionClosed:
            pass
        finally:
            channel.leave(
                identity,
                connection,
                code=connection.close_code,
                reason=connection.close_reason or None,
            )

    async def receive(
        self,
        channel: Channel,
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
            if not channel.is_current(identity, connection):
                raise SignalingError("InvalidClientException", "connection was replaced")
            if not limiter.allow(message.action, time.monotonic()):
                raise SignalingError(
                    "ClientLimitExceededException",
                    f"more than {RATE_LIMITS[rate_bucket(message.action)]} "
                    f"{rate_bucket(message.action)} sends in a second",
                    message.correlation_id,
                )
            await channel.route(identity, message)
        except SignalingError as exc:
            self.log.record(
                "error",
                identity,
                action=action,
                error=exc.description,
                correlation_id=exc.correlation_id,
            )
            if exc.correlation_id is not None:
                await _send_quietly(connection, status_response(exc))

    def answer(self, request: ReceivedRequest) -> HttpResponse:
        """An HTTP API request (control plane, GetIceServerConfig): SigV4, then the call."""
        try:
            self.authenticate(request)
        except SignatureRefused as exc:
            self.log.record("error", None, error=str(exc), path=request.path)
            response = ApiResponse(exc.status, {"message": exc.message}, exc.error_header)
            return HttpResponse(response.status, response.headers(), response.body())
        assert self.api is not None  # set before the server says READY
        operation, response = self.api.answer(request.method, request.path, request.body)
        self.log.record(
            "api",
            None,
            operation=operation or request.path,
            status=response.status,
            error=response.error_type,
            message=(response.document.get("Message") or response.document.get("message"))
            if response.error_type
            else None,
        )
        return HttpResponse(response.status, response.headers(), response.body())

    async def go_away_all(self) -> None:
        await asyncio.gather(*(c.go_away_all() for c in self.channels.values()))


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
    parser.add_argument(
        "--channel-arn", required=True, help="the run's channel, there from the start"
    )
    parser.add_argument(
        "--service-config",
        help="JSON: the access key SigV4 is checked with and the TURN server "
        "GetIceServerConfig hands out (control_plane.service_config); none: no SigV4",
    )
    parser.add_argument("--region", help="the service's region (default: the channel ARN's)")
    parser.add_argument(
        "--endpoint-host",
        help="how GetSignalingChannelEndpoint names this server (default: --listen)",
    )
    parser.add_argument(
        "--endpoint-https-host",
        help="the HTTPS endpoint's name, if not --endpoint-host (the service's r-<8hex>.)",
    )
    parser.add_argument("--log", help="JSON-lines event log")
    parser.add_argument(
        "--message-ttl",
        type=positive_seconds,
        default=DEFAULT_MESSAGE_TTL_S,
        help="seconds a viewer's message waits for the master (KVS: 5-120, default 60)",
    )
    return parser.parse_args(argv)


def _service_config(path: str | None) -> tuple[AccessKey | None, TurnServers | None]:
    if path is None:
        return None, None
    with open(path) as stream:
        return read_service_config(json.load(stream))


async def run(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT, announcing readiness with one READY line on stdout.

    The HTTPS front listens on the address and port; the WebSocket server behind it on an
    abstract Unix socket, which exists only in this network namespace and needs no file.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    key, turn = _service_config(args.service_config)
    region = args.region or args.channel_arn.split(":")[3]
    registry = ChannelRegistry(region)
    registry.add(args.channel_arn, args.message_ttl)
    inner_socket = f"\0ice-lab-signaling-{os.getpid()}-{secrets.token_hex(4)}"
    with contextlib.ExitStack() as files:
        stream = files.enter_context(open(args.log, "a")) if args.log else None  # noqa: SIM115
        server = SignalingServer(registry, log=EventLog(stream), key=key, region=region)
        front = HttpsFront(server.answer, inner_socket)
        async with unix_serve(
            server.handler,
            inner_socket,
            process_request=server.process_request,
            max_size=MAX_FRAME_BYTES,
            close_timeout=CLOSE_TIMEOUT_S,
        ):
            listening = await front.start(args.listen, args.port, tls_context(args.cert, args.key))
            port = listening.sockets[0].getsockname()[1]
            endpoints = Endpoints(args.endpoint_host or args.listen, port, args.endpoint_https_host)
            server.api = ServiceApi(registry, endpoints, turn)
            print(f"READY {args.listen}:{port}", flush=True)
            if key is not None:
                # botocore's signer takes 0.2 s to import: after READY it overlaps with the
                # lab starting its peers (before READY it would lengthen every run's
                # server start by as much); a handshake arriving meanwhile waits for it.
                preload()
            await stop.wait()
            listening.close()
            await server.go_away_all()
        # Leaving unix_serve closed every WebSocket (their close frames went out through
        # the front); now end the front's own connections.
        await front.close_connections()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(run(parse_args(argv)))
    return 0


def forked_main(*argv: str) -> int:
    """The server forked from the lab's zygote (lab/core/zygote.py), its arguments as on
    the command line."""
    return main(argv)


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's module teardown: with botocore loaded it takes 60-80 ms, which
    # every run's tear-down would wait for; the log is closed and the output flushed.
    os._exit(status)
