"""The server: listeners, request dispatch, faults that act on answers, and shutdown.

Every request goes through one path (`_answer`) so drop/delay faults, the request
log and the retransmission cache treat all methods alike.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aioice import stun

from . import codec, faults
from .binding import answer_binding
from .config import ConfigError, ServerConfig
from .requestlog import RequestLog, RequestRecord
from .rfc5780 import Address, Quartet, quartet_for
from .transports import (
    Link,
    StreamLink,
    UdpServerProtocol,
    open_stream,
    open_udp,
    server_ssl_context,
)
from .turn import Reply, TurnService

logger = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 0.5
TRANSACTION_MEMORY_S = 40.0  # longer than a client's whole retransmission schedule


@dataclass
class _Transaction:
    """A request being answered (`response` None) or answered (kept for retransmits)."""

    started: float
    response: bytes | None = None


class MockTurnServer:
    """A STUN/TURN server with fault injection, interchangeable with coturn in the lab."""

    def __init__(self, config: ServerConfig, log: RequestLog | None = None) -> None:
        self.config = config
        self.log = log or RequestLog(config.request_log)
        self.turn = TurnService(config, self.log)
        self.bound: list[tuple[str, Address]] = []
        self._udp: dict[Address, UdpServerProtocol] = {}
        self._quartets: dict[Address, Quartet] = {}
        self._servers: list[asyncio.Server] = []
        self._links: set[StreamLink] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._transactions: dict[tuple[object, bytes], _Transaction] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.sweep_interval = SWEEP_INTERVAL_S

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind every listener (and the RFC 5780 sockets); raises OSError on failure."""
        try:
            for listener in self.config.listen:
                local = (listener.address, listener.port)
                if listener.transport == "udp":
                    await self._start_udp(local)
                else:
                    await self._start_stream(local, listener.transport)
        except BaseException:
            await self.stop()
            raise
        self._sweeper = asyncio.create_task(self._sweep())

    async def _start_udp(self, local: Address) -> None:
        quartet = quartet_for(local, self.config.alternate)
        if quartet is not None and local[1] == 0:
            raise ConfigError("an 'alternate' needs fixed UDP listener ports")
        for address in quartet.sockets() if quartet else [local]:
            if address in self._udp:
                continue  # shared with an earlier listener's quartet: first one wins
            protocol = await open_udp(self, address)
            self._udp[protocol.local] = protocol
            if quartet is not None:
                self._quartets[protocol.local] = quartet
            self.bound.append(("udp", protocol.local))

    async def _start_stream(self, local: Address, transport: str) -> None:
        context = None
        if transport == "tls":
            assert self.config.tls is not None
            context = server_ssl_context(self.config.tls.cert, self.config.tls.key)
        server = await open_stream(self, local, transport, context)
        self._servers.append(server)
        for sock in server.sockets:
            name = sock.getsockname()
            self.bound.append((transport, (name[0], name[1])))

    async def stop(self) -> None:
        """Close every socket; allocations end with `shutdown` in the request log."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._tasks):
            task.cancel()
        self.turn.end_all("shutdown")
        for protocol in self._udp.values():
            if protocol.transport is not None:
                protocol.transport.close()
        for server in self._servers:
            server.close()
        for link in list(self._links):
            link.connection.close()
        for server in self._servers:
            await server.wait_closed()
        self._udp.clear()
        self._servers.clear()
        self.log.close()

    async def _sweep(self) -> None:
        """Expire allocations and forget old transactions."""
        while True:
            await asyncio.sleep(self.sweep_interval)
            self.turn.expire()
            horizon = time.monotonic() - TRANSACTION_MEMORY_S
            for key, transaction in list(self._transactions.items()):
                if transaction.started < horizon:
                    del self._transactions[key]

    # --- transports.Handler --------------------------------------------------------------

    def on_message(self, link: Link, data: bytes) -> None:
        if isinstance(link, StreamLink):
            self._links.add(link)
        if codec.is_channel_data(data):
            self.turn.channel_data(link, data)
            return
        if not codec.is_stun(data):
            return
        try:
            message = stun.parse_message(data)
        except ValueError:
            return  # not STUN, bad FINGERPRINT, or a method aioice does not know
        if message.message_class == stun.Class.REQUEST:
            self._request(link, data, message)
        elif (
            message.message_class == stun.Class.INDICATION
            and message.message_method == stun.Method.SEND
        ):
            self.turn.send_indication(link, message)

    def on_link_closed(self, link: Link) -> None:
        """RFC 8656 section 2.1: a TCP/TLS connection's allocation ends with it."""
        if isinstance(link, StreamLink):
            self._links.discard(link)
        allocation = self.turn.allocations.get(link.five_tuple)
        if allocation is not None:
            self.turn.end_allocation(allocation, "closed")

    # --- requests ------------------------------------------------------------------------

    def _request(self, link: Link, data: bytes, message: stun.Message) -> None:
        method = codec.METHOD_NAMES.get(message.message_method)
        if method is None or (
            method != "binding" and not self.turn.handles(message.message_method)
        ):
            return
        key = (link.five_tuple, message.transaction_id)
        known = self._transactions.get(key)
        if known is not None:
            if known.response is not None:
                link.send(known.response)  # a retransmission: same answer, no new log line
            return
        if faults.should_drop(self.config.faults, method, link.transport_name):
            self._record(link, method, "dropped", fault="drop")
            return
        self._transactions[key] = _Transaction(time.monotonic())
        task = asyncio.create_task(self._answer(link, data, message, method, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(
        self, link: Link, data: bytes, message: stun.Message, method: str, key: tuple[object, bytes]
    ) -> None:
        delay = faults.delay_for(self.config.faults, method, link.transport_name)
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            reply = await self._reply(link, data, message)
        except Exception:
            logger.exception("failed to answer %s from %s", method, link.client)
            self._transactions.pop(key, None)
            return
        response = codec.finish(reply.message, reply.key, "FINGERPRINT" in message.attributes)
        error = reply.message.attributes.get("ERROR-CODE")
        logger.debug("%s %s from %s: %s", link.transport_name, method, link.client, error or "ok")
        self._record(
            link,
            method,
            "error" if error else "success",
            error_code=error[0] if error else None,
            reason=error[1] if error else None,
            fault=reply.fault or ("delay" if delay > 0 else None),
            peer=reply.peer,
        )
        origin = reply.origin or link.local
        destination = reply.destination or link.client
        if (origin, destination) == (link.local, link.client):
            link.send(response)
        else:
            self._send_udp(origin, destination, response)
        transaction = self._transactions.get(key)  # gone if a delay outlasted its memory
        if method == "binding":
            self._transactions.pop(key, None)  # cheap to recompute; may go elsewhere
        elif transaction is not None:
            transaction.response = response

    def _send_udp(self, origin: Address, destination: Address, data: bytes) -> None:
        """Send from one of our UDP sockets (RFC 5780 answers)."""
        protocol = self._udp.get(origin)
        if protocol is not None and protocol.transport is not None:
            protocol.transport.sendto(data, destination)

    async def _reply(self, link: Link, data: bytes, message: stun.Message) -> Reply:
        if message.message_method != stun.Method.BINDING:
            return await self.turn.handle(link, data, message)
        unknown = codec.unknown_required_attributes(data)
        if unknown:
            error = codec.error_for(message, 420)
            error.attributes["UNKNOWN-ATTRIBUTES"] = unknown
            return Reply(error)
        quartet = None if link.stream else self._quartets.get(link.local)
        answer = answer_binding(message, link.client, link.local, quartet, link.stream)
        return Reply(answer.message, origin=answer.origin, destination=answer.destination)

    def _record(
        self,
        link: Link,
        method: str,
        outcome: str,
        *,
        error_code: int | None = None,
        reason: str | None = None,
        fault: str | None = None,
        peer: Address | None = None,
    ) -> None:
        self.log.request(
            RequestRecord(
                client=codec.format_address(link.client) or "",
                transport=link.transport_name,
                method=method,
                outcome=outcome,
                error_code=error_code,
                reason=reason,
                fault=fault,
                peer=codec.format_address(peer),
            )
        )
