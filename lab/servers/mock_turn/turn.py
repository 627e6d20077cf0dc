"""TURN methods (RFC 8656): Allocate, Refresh, CreatePermission, ChannelBind, and
relaying through Send/Data indications and ChannelData.

Handlers return a `Reply` (message, signing key, fault, peer) and never send: the
server logs, delays or caches the answer uniformly for every method.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aioice import stun

from . import codec, faults
from .allocation import Address, Allocation, AllocationTable, desired_lifetime, open_relay
from .config import ServerConfig
from .credentials import AuthResult, Nonces, authenticate
from .requestlog import RequestLog
from .transports import Link


@dataclass
class Reply:
    """An answer to one request, and what the request log should say about it."""

    message: stun.Message
    key: bytes | None = None
    fault: str | None = None
    peer: Address | None = None
    origin: Address | None = None  # Binding with CHANGE-REQUEST: answer from this socket
    destination: Address | None = None  # Binding with RESPONSE-PORT: answer to this port


Handler = Callable[[Link, bytes, stun.Message, AuthResult], Awaitable[Reply]]


def _is_ipv4(address: Address) -> bool:
    return ipaddress.ip_address(address[0]).version == 4


class TurnService:
    """Allocations of one server and the TURN methods that act on them."""

    def __init__(self, config: ServerConfig, log: RequestLog) -> None:
        self.config = config
        self.log = log
        self.allocations = AllocationTable()
        self.nonces = Nonces()
        self.clock: Callable[[], float] = time.monotonic
        self.wallclock: Callable[[], float] = time.time
        self._handlers: dict[stun.Method, Handler] = {
            stun.Method.ALLOCATE: self._allocate,
            stun.Method.REFRESH: self._refresh,
            stun.Method.CREATE_PERMISSION: self._create_permission,
            stun.Method.CHANNEL_BIND: self._channel_bind,
        }

    def handles(self, method: stun.Method) -> bool:
        return method in self._handlers

    async def handle(self, link: Link, data: bytes, request: stun.Message) -> Reply:
        """Authenticate, then run the method's handler."""
        result = authenticate(
            request,
            self.config.auth,
            self.config.faults.credentials,
            self.config.realm,
            self.nonces,
            self.wallclock(),
        )
        if not result.ok:
            return self._auth_error(request, result)
        unknown = codec.unknown_required_attributes(data)
        if unknown:
            error = codec.error_for(request, 420)
            error.attributes["UNKNOWN-ATTRIBUTES"] = unknown
            return Reply(error, result.key)
        return await self._handlers[request.message_method](link, data, request, result)

    def _auth_error(self, request: stun.Message, result: AuthResult) -> Reply:
        """401/438 carry REALM and a fresh NONCE and are unsigned (RFC 8489 9.2.4)."""
        assert result.error is not None
        error = codec.error_for(request, result.error, result.reason)
        if result.error in (401, 438):
            error.attributes["REALM"] = self.config.realm
            error.attributes["NONCE"] = self.nonces.issue(self.wallclock())
        return Reply(error, fault=result.fault)

    def _owned(self, link: Link, request: stun.Message, auth: AuthResult) -> Allocation | Reply:
        """The link's allocation, or the 437/441 error for a request that needs one."""
        allocation = self.allocations.get(link.five_tuple)
        if allocation is None:
            return Reply(codec.error_for(request, 437), auth.key)
        if allocation.username != auth.username:
            return Reply(codec.error_for(request, 441), auth.key)
        return allocation

    def _allocate_checks(self, link: Link, request: stun.Message, auth: AuthResult) -> Reply | None:
        """RFC 8656 section 7.2 checks, in order; None when an allocation may be made."""
        attrs = request.attributes
        existing = self.allocations.get(link.five_tuple)
        if existing is not None:
            if existing.transaction_id == request.transaction_id:
                return self._allocate_success(request, existing, link, auth)
            return Reply(codec.error_for(request, 437), auth.key)
        if "REQUESTED-TRANSPORT" not in attrs:
            return Reply(codec.error_for(request, 400, "Missing REQUESTED-TRANSPORT"), auth.key)
        if attrs["REQUESTED-TRANSPORT"] >> 24 != codec.UDP_PROTOCOL:
            return Reply(codec.error_for(request, 442), auth.key)
        if attrs.get("REQUESTED-ADDRESS-FAMILY", codec.IPV4_FAMILY) != codec.IPV4_FAMILY:
            return Reply(codec.error_for(request, 440), auth.key)
        if "RESERVATION-TOKEN" in attrs and "EVEN-PORT" in attrs:
            return Reply(
                codec.error_for(request, 400, "RESERVATION-TOKEN with EVEN-PORT"), auth.key
            )
        if faults.quota_reached(self.config.faults, len(self.allocations)):
            return Reply(codec.error_for(request, 486), auth.key, fault="quota")
        return None

    async def _allocate(
        self, link: Link, data: bytes, request: stun.Message, auth: AuthResult
    ) -> Reply:
        refused = self._allocate_checks(link, request, auth)
        if refused is not None:
            return refused
        holder: list[Allocation] = []

        def from_peer(payload: bytes, peer: Address) -> None:
            if holder:  # datagrams can arrive before the allocation is complete
                self._from_peer(holder[0], payload, peer)

        try:
            relay = await open_relay(self.config.relay_address, from_peer)
        except OSError:
            return Reply(codec.error_for(request, 508), auth.key)
        refused = self._allocate_checks(link, request, auth)  # raced with another Allocate?
        if refused is not None:
            relay.close()
            return refused
        now = self.clock()
        lifetime = desired_lifetime(request.attributes.get("LIFETIME"), self.config.lifetimes)
        sockname = relay.get_extra_info("sockname")
        allocation = Allocation(
            five_tuple=link.five_tuple,
            username=auth.username,
            transaction_id=request.transaction_id,
            relayed=(sockname[0], sockname[1]),
            expires_at=now + lifetime,
            lifetimes=self.config.lifetimes,
            relay=relay,
            link=link,
        )
        holder.append(allocation)
        self.allocations.add(allocation)
        return self._allocate_success(request, allocation, link, auth)

    def _allocate_success(
        self, request: stun.Message, allocation: Allocation, link: Link, auth: AuthResult
    ) -> Reply:
        response = codec.response_for(
            request,
            {
                "XOR-RELAYED-ADDRESS": allocation.relayed,
                "LIFETIME": allocation.time_left(self.clock()),
                "XOR-MAPPED-ADDRESS": link.client,
            },
        )
        return Reply(response, auth.key)

    async def _refresh(
        self, link: Link, data: bytes, request: stun.Message, auth: AuthResult
    ) -> Reply:
        allocation = self._owned(link, request, auth)
        if isinstance(allocation, Reply):
            return allocation
        lifetime = desired_lifetime(request.attributes.get("LIFETIME"), self.config.lifetimes)
        if lifetime == 0:
            self.end_allocation(allocation, "deleted")
        else:
            allocation.refresh(lifetime, self.clock())
        return Reply(codec.response_for(request, {"LIFETIME": lifetime}), auth.key)

    def _check_peer(self, request: stun.Message, peer: Address, auth: AuthResult) -> Reply | None:
        """443 for a non-IPv4 peer, 403 Forbidden IP for a forbidden one."""
        if not _is_ipv4(peer):
            return Reply(codec.error_for(request, 443), auth.key, peer=peer)
        if faults.is_forbidden_peer(self.config.faults, peer[0]):
            return Reply(codec.error_for(request, 403), auth.key, fault="forbid_peers", peer=peer)
        return None

    async def _create_permission(
        self, link: Link, data: bytes, request: stun.Message, auth: AuthResult
    ) -> Reply:
        allocation = self._owned(link, request, auth)
        if isinstance(allocation, Reply):
            return allocation
        peers = codec.xor_peer_addresses(data, request.transaction_id)
        if not peers:
            return Reply(codec.error_for(request, 400, "Missing XOR-PEER-ADDRESS"), auth.key)
        for peer in peers:
            refused = self._check_peer(request, peer, auth)
            if refused is not None:
                return refused
        now = self.clock()
        for peer in peers:
            allocation.permit(peer[0], now)
        return Reply(codec.response_for(request), auth.key, peer=peers[0])

    async def _channel_bind(
        self, link: Link, data: bytes, request: stun.Message, auth: AuthResult
    ) -> Reply:
        allocation = self._owned(link, request, auth)
        if isinstance(allocation, Reply):
            return allocation
        number = request.attributes.get("CHANNEL-NUMBER")
        peer = request.attributes.get("XOR-PEER-ADDRESS")
        if number is None or peer is None:
            reason = "Missing CHANNEL-NUMBER or XOR-PEER-ADDRESS"
            return Reply(codec.error_for(request, 400, reason), auth.key, peer=peer)
        refused = self._check_peer(request, peer, auth)
        if refused is not None:
            return refused
        problem = allocation.bind_channel(number, peer, self.clock())
        if problem is not None:
            return Reply(codec.error_for(request, 400, problem), auth.key, peer=peer)
        return Reply(codec.response_for(request), auth.key, peer=peer)

    # --- relaying: no answers, no log lines, only per-allocation counts ---------------------

    def send_indication(self, link: Link, message: stun.Message) -> None:
        """Client -> peer through a Send indication (needs a permission)."""
        allocation = self.allocations.get(link.five_tuple)
        peer = message.attributes.get("XOR-PEER-ADDRESS")
        payload = message.attributes.get("DATA")
        if allocation is None or peer is None or payload is None:
            return
        self._to_peer(allocation, payload, peer, "send_indications")

    def channel_data(self, link: Link, data: bytes) -> None:
        """Client -> peer through ChannelData on a bound channel."""
        allocation = self.allocations.get(link.five_tuple)
        unpacked = codec.unpack_channel_data(data)
        if allocation is None or unpacked is None:
            return
        peer = allocation.peer_of(unpacked[0], self.clock())
        if peer is None:
            allocation.counts["channel_data_unbound"] += 1
            return
        self._to_peer(allocation, unpacked[1], peer, "channel_data_to_peer")

    def _to_peer(self, allocation: Allocation, payload: bytes, peer: Address, kind: str) -> None:
        if not allocation.is_permitted(peer[0], self.clock()):
            allocation.counts["to_peer_no_permission"] += 1
            return
        if faults.should_drop(self.config.faults, "send", allocation.five_tuple[0]):
            allocation.counts["to_peer_dropped_by_fault"] += 1
            return
        allocation.counts[kind] += 1
        relay = allocation.relay
        if relay is not None:
            self._later("send", allocation, lambda: relay.sendto(payload, peer))

    def _from_peer(self, allocation: Allocation, payload: bytes, peer: Address) -> None:
        """Peer -> client: ChannelData when a channel is bound, else a Data indication."""
        now = self.clock()
        if not allocation.is_permitted(peer[0], now):
            allocation.counts["from_peer_no_permission"] += 1
            return
        if faults.should_drop(self.config.faults, "data", allocation.five_tuple[0]):
            allocation.counts["from_peer_dropped_by_fault"] += 1
            return
        link = allocation.link
        channel = allocation.channel_of(peer, now)
        if channel is not None:
            allocation.counts["channel_data_to_client"] += 1
            frame = codec.pack_channel_data(channel, payload, pad=link.stream)
        else:
            allocation.counts["data_indications"] += 1
            message = stun.Message(stun.Method.DATA, stun.Class.INDICATION)
            message.attributes["XOR-PEER-ADDRESS"] = peer
            message.attributes["DATA"] = payload
            frame = bytes(message)
        self._later("data", allocation, lambda: link.send(frame))

    def _later(self, method: str, allocation: Allocation, action: Callable[[], None]) -> None:
        """Relay now, or after the configured delay for `send`/`data`."""
        delay = faults.delay_for(self.config.faults, method, allocation.five_tuple[0])
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, action)
        else:
            action()

    # --- lifecycle -----------------------------------------------------------------------

    def end_allocation(self, allocation: Allocation, end: str) -> None:
        """Free the relayed socket and log the allocation's relayed-traffic counts."""
        if self.allocations.remove(allocation.five_tuple) is None:
            return
        transport, client, _ = allocation.five_tuple
        self.log.allocation_end(
            client=codec.format_address(client) or "",
            transport=transport,
            relay=codec.format_address(allocation.relayed) or "",
            end=end,
            counts=dict(allocation.counts),
        )

    def expire(self) -> None:
        for allocation in self.allocations.expired(self.clock()):
            self.end_allocation(allocation, "expired")

    def end_all(self, end: str) -> None:
        for allocation in self.allocations.all():
            self.end_allocation(allocation, end)
