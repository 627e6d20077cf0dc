"""Client-facing transports: UDP, TCP and TLS-over-TCP listeners.

Over a stream, STUN messages and ChannelData follow each other with no other framing
(RFC 8656 section 12.5: ChannelData is padded to 4 bytes there), so `StreamFramer`
splits the byte stream by the length fields. Each transport hands whole messages to
a `Handler` with a `Link` that knows how to answer on the same connection.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any, Protocol, cast

from . import codec

Address = tuple[str, int]


class Link(Protocol):
    """Where a client's message came from and how to answer it."""

    transport_name: str
    client: Address
    local: Address
    stream: bool

    def send(self, data: bytes) -> None: ...

    @property
    def five_tuple(self) -> tuple[str, Address, Address]: ...


class Handler(Protocol):
    def on_message(self, link: Link, data: bytes) -> None: ...

    def on_link_closed(self, link: Link) -> None: ...


@dataclass(frozen=True)
class UdpLink:
    endpoint: asyncio.DatagramTransport
    client: Address
    local: Address
    transport_name: str = "udp"
    stream: bool = False

    def send(self, data: bytes) -> None:
        if not self.endpoint.is_closing():
            self.endpoint.sendto(data, self.client)

    @property
    def five_tuple(self) -> tuple[str, Address, Address]:
        return (self.transport_name, self.client, self.local)


@dataclass(frozen=True, eq=False)
class StreamLink:
    connection: asyncio.Transport
    client: Address
    local: Address
    transport_name: str
    stream: bool = True

    def send(self, data: bytes) -> None:
        if not self.connection.is_closing():
            self.connection.write(data)

    @property
    def five_tuple(self) -> tuple[str, Address, Address]:
        return (self.transport_name, self.client, self.local)


def _address(value: Any) -> Address:
    return (value[0], value[1])


class UdpServerProtocol(asyncio.DatagramProtocol):
    """One UDP listening socket; every datagram is one STUN message or ChannelData."""

    def __init__(self, handler: Handler, local: Address) -> None:
        self._handler = handler
        self.local = local
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's selector datagram transport is not a DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.local = _address(transport.get_extra_info("sockname"))

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        assert self.transport is not None
        self._handler.on_message(UdpLink(self.transport, _address(addr), self.local), data)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors for answers to vanished clients: nothing to do."""


class StreamFramer:
    """Splits a TCP byte stream into STUN messages and (padded) ChannelData."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Whole frames now available; raises ValueError on bytes that are neither."""
        self._buffer += data
        frames = []
        while (length := codec.frame_length(self._buffer)) is not None:
            if len(self._buffer) < length:
                break
            frames.append(self._buffer[:length])
            self._buffer = self._buffer[length:]
        return frames


class StreamServerProtocol(asyncio.Protocol):
    """One TCP or TLS client connection."""

    def __init__(self, handler: Handler, transport_name: str) -> None:
        self._handler = handler
        self._transport_name = transport_name
        self._framer = StreamFramer()
        self._link: StreamLink | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._link = StreamLink(
            transport,
            _address(transport.get_extra_info("peername")),
            _address(transport.get_extra_info("sockname")),
            self._transport_name,
        )

    def data_received(self, data: bytes) -> None:
        assert self._link is not None
        try:
            frames = self._framer.feed(data)
        except ValueError:
            self._link.connection.close()
            return
        for frame in frames:
            self._handler.on_message(self._link, frame)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._link is not None:
            self._handler.on_link_closed(self._link)


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    """TLS for `turns:` listeners from the certificate the lab passes (it may be a
    deliberately wrong or expired one: that is the client's problem to notice)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def open_udp(handler: Handler, local: Address) -> UdpServerProtocol:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: UdpServerProtocol(handler, local), local_addr=local
    )
    return protocol


async def open_stream(
    handler: Handler, local: Address, transport_name: str, context: ssl.SSLContext | None
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: StreamServerProtocol(handler, transport_name),
        host=local[0],
        port=local[1],
        ssl=context,
        reuse_address=True,
    )
