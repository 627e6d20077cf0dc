"""The signaling node's HTTPS listener: one TLS port for the service's HTTP APIs and its
WebSocket endpoint, as the service has everything on 443.

A request that asks for a WebSocket (GET with `Upgrade: websocket`) is passed, bytes
untouched, to the signaling server (websockets) on a socket only this process knows; any
other request is read whole (Content-Length body) and answered by the `answer` callback.
websockets cannot be that front itself: its HTTP parser refuses any request with a
body, and every API call is a POST with a JSON body.

HTTP/1.1 with keep-alive, as boto3 (urllib3) keeps its connections; no chunked request
bodies (no SDK sends them for these APIs); an idle connection is closed after a minute.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from http import HTTPStatus

from lab.servers import cors
from lab.servers.sigv4 import ReceivedRequest

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024  # the APIs' inputs are a few hundred bytes
IDLE_TIMEOUT_S = 60.0
TLS_SHUTDOWN_TIMEOUT_S = 2.0  # a client that never answers close_notify holds nothing long
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def serialize(self, keep_alive: bool) -> bytes:
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = ""
        lines = [f"HTTP/1.1 {self.status} {phrase}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines += [
            f"Content-Length: {len(self.body)}",
            f"Date: {formatdate(usegmt=True)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


class BadRequest(Exception):
    """A request the listener cannot read: answered with its status, then closed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    """Method, target, version and header lines of a request head (up to the empty line)."""
    try:
        text = head.decode("latin-1")
        request_line, *header_lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        raise BadRequest(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise BadRequest(505, f"unsupported protocol {version}")
    headers = []
    for line in header_lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, f"malformed header line {line!r}")
        headers.append((name, value.strip()))
    return method, target, version, headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in headers if k.lower() == name]
    return values[-1] if values else None


def wants_websocket(method: str, headers: list[tuple[str, str]]) -> bool:
    upgrade = (_header(headers, "upgrade") or "").lower()
    return method == "GET" and "websocket" in upgrade


def keeps_alive(version: str, headers: list[tuple[str, str]]) -> bool:
    connection = (_header(headers, "connection") or "").lower()
    if version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


def body_length(headers: list[tuple[str, str]]) -> int:
    if _header(headers, "transfer-encoding") is not None:
        raise BadRequest(501, "chunked request bodies are not supported")
    length = _header(headers, "content-length") or "0"
    if not length.isdigit():
        raise BadRequest(400, "bad Content-Length")
    if int(length) > MAX_BODY_BYTES:
        raise BadRequest(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    return int(length)


class HttpsFront:
    """Serve `answer` for API requests, and hand WebSocket upgrades to `websocket_socket`."""

    def __init__(
        self, answer: Callable[[ReceivedRequest], HttpResponse], websocket_socket: str
    ) -> None:
        self.answer = answer
        self.websocket_socket = websocket_socket
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self, host: str, port: int, context: ssl.SSLContext) -> asyncio.Server:
        return await asyncio.start_server(
            self._connection,
            host,
            port,
            ssl=context,
            limit=MAX_HEAD_BYTES,
            ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT_S,
        )

    async def close_connections(self) -> None:
        """End what is still open (at shutdown, once the WebSocket side said goodbye): an
        idle keep-alive connection is owed no goodbye, so it is cut, and its task ends."""
        tasks = list(self._connections)
        for writer in self._connections.values():
            writer.transport.abort()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            await self._serve(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            del self._connections[task]
            writer.close()  # TLS close_notify goes out; the transport finishes on its own

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT_S):
                    head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                await self._refuse(writer, BadRequest(431, "request head too large"))
                return
            except asyncio.IncompleteReadError:
                return  # the client closed between requests
            try:
                method, target, version, headers = parse_head(head[:-4])
                if wants_websocket(method, headers):
                    await self._pass_to_websocket(head, reader, writer)
                    return
                body = await reader.readexactly(body_length(headers))
            except BadRequest as exc:
                await self._refuse(writer, exc)
                return
            if cors.is_preflight(method, headers):  # unsigned: answered before SigV4
                response = HttpResponse(200, cors.preflight_headers())
            else:
                response = self.answer(ReceivedRequest(method, target, headers, body))
            response = replace(response, headers=response.headers + cors.response_headers(headers))
            keep_alive = keeps_alive(version, headers)
            writer.write(response.serialize(keep_alive))
            await writer.drain()
            if not keep_alive:
                return

    @staticmethod
    async def _refuse(writer: asyncio.StreamWriter, error: BadRequest) -> None:
        body = f"{error}\n".encode()
        response = HttpResponse(error.status, [("Content-Type", "text/plain")], body)
        writer.write(response.serialize(keep_alive=False))
        await writer.drain()

    async def _pass_to_websocket(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Relay the connection to the WebSocket server until either side closes it."""
        inner_reader, inner_writer = await asyncio.open_unix_connection(self.websocket_socket)
        inner_writer.write(head)
        try:
            await asyncio.gather(_pump(reader, inner_writer), _pump(inner_reader, writer))
        finally:
            inner_writer.close()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then close the sink so the other direction ends too."""
    try:
        while chunk := await source.read(CHUNK_BYTES):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        sink.close()
