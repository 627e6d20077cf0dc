"""TURN allocations (RFC 8656): relayed socket, lifetime, permissions and channels.

State changes take `now` (monotonic seconds) as an argument so lifetimes and expiry
are unit-tested without sleeping; only `open_relay` touches the network.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import codec
from .config import Lifetimes

Address = tuple[str, int]
FiveTuple = tuple[str, Address, Address]  # transport, client address, server address


def desired_lifetime(requested: int | None, lifetimes: Lifetimes) -> int:
    """RFC 8656 sections 7.2 and 8: min(requested, max), never below the default;
    0 (only meaningful in Refresh) deletes the allocation."""
    if requested == 0:
        return 0
    if requested is None:
        return lifetimes.allocation_default
    return max(min(requested, lifetimes.allocation_max), lifetimes.allocation_default)


@dataclass
class Channel:
    peer: Address
    expires_at: float


@dataclass
class Allocation:
    """One client's allocation; `link` is the client connection data goes back on."""

    five_tuple: FiveTuple
    username: str | None
    transaction_id: bytes
    relayed: Address
    expires_at: float
    lifetimes: Lifetimes
    permissions: dict[str, float] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    relay: asyncio.DatagramTransport | None = None
    link: Any = None

    def refresh(self, lifetime: int, now: float) -> None:
        self.expires_at = now + lifetime

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def time_left(self, now: float) -> int:
        return max(0, math.ceil(self.expires_at - now))

    def permit(self, peer_ip: str, now: float) -> None:
        """Install or refresh a permission (300 s, RFC 8656 section 9)."""
        self.permissions[peer_ip] = now + self.lifetimes.permission

    def is_permitted(self, peer_ip: str, now: float) -> bool:
        return self.permissions.get(peer_ip, 0.0) > now

    def bind_channel(self, number: int, peer: Address, now: float) -> str | None:
        """Bind or refresh a channel (600 s) and its peer's permission.

        Returns why the binding is refused (RFC 8656 section 11.2: a number bound to
        another peer, or a peer bound to another number), None on success.
        """
        if not codec.CHANNEL_MIN <= number <= codec.CHANNEL_MAX:
            return "Channel number out of range"
        current = self.channels.get(number)
        if current is not None and current.expires_at > now and current.peer != peer:
            return "Channel bound to another peer"
        other = self.channel_of(peer, now)
        if other is not None and other != number:
            return "Peer bound to another channel"
        self.channels[number] = Channel(peer, now + self.lifetimes.channel)
        self.permit(peer[0], now)
        return None

    def peer_of(self, number: int, now: float) -> Address | None:
        channel = self.channels.get(number)
        return channel.peer if channel is not None and channel.expires_at > now else None

    def channel_of(self, peer: Address, now: float) -> int | None:
        for number, channel in self.channels.items():
            if channel.peer == peer and channel.expires_at > now:
                return number
        return None

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()


class AllocationTable:
    """Allocations by 5-tuple: at most one per client connection (RFC 8656 section 2.2)."""

    def __init__(self) -> None:
        self._by_tuple: dict[FiveTuple, Allocation] = {}

    def __len__(self) -> int:
        return len(self._by_tuple)

    def get(self, five_tuple: FiveTuple) -> Allocation | None:
        return self._by_tuple.get(five_tuple)

    def add(self, allocation: Allocation) -> None:
        self._by_tuple[allocation.five_tuple] = allocation

    def remove(self, five_tuple: FiveTuple) -> Allocation | None:
        allocation = self._by_tuple.pop(five_tuple, None)
        if allocation is not None:
            allocation.close()
        return allocation

    def expired(self, now: float) -> list[Allocation]:
        return [a for a in self._by_tuple.values() if a.expired(now)]

    def all(self) -> list[Allocation]:
        return list(self._by_tuple.values())


class RelayProtocol(asyncio.DatagramProtocol):
    """The relayed socket: hands every peer datagram to the server's callback."""

    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._on_datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        """ICMP errors from peers (port unreachable) are normal; nothing to do."""


async def open_relay(
    address: str, on_datagram: Callable[[bytes, Address], None]
) -> asyncio.DatagramTransport:
    """Bind a relayed UDP socket on the server's relay address, ephemeral port."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: RelayProtocol(on_datagram), local_addr=(address, 0)
    )
    return transport
