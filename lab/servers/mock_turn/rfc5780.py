"""RFC 5780 addressing: the four UDP sockets of a two-address server.

A primary listener (A, p) plus an alternate (B, q) gives sockets A:p, A:q, B:p, B:q.
OTHER-ADDRESS names the socket that differs in both address and port from the one a
request arrived on; CHANGE-REQUEST picks the socket to answer from. Clients such as
`turnutils_natdiscovery` also send to B:p directly (mapping test II), so all four exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Alternate

CHANGE_IP = 0x04
CHANGE_PORT = 0x02

Address = tuple[str, int]


@dataclass(frozen=True)
class Quartet:
    """The addresses and ports of one RFC 5780 socket set."""

    addresses: tuple[str, str]
    ports: tuple[int, int]

    def sockets(self) -> list[Address]:
        return [(a, p) for a in self.addresses for p in self.ports]

    def _flip(self, local: Address, change_ip: bool, change_port: bool) -> Address:
        address, port = local
        if change_ip:
            address = self.addresses[1] if address == self.addresses[0] else self.addresses[0]
        if change_port:
            port = self.ports[1] if port == self.ports[0] else self.ports[0]
        return address, port

    def other_address(self, local: Address) -> Address:
        """OTHER-ADDRESS for a request that arrived on `local`."""
        return self._flip(local, True, True)

    def response_origin(self, local: Address, change_request: int) -> Address:
        """The socket to answer from, honouring CHANGE-REQUEST's flags."""
        return self._flip(
            local, bool(change_request & CHANGE_IP), bool(change_request & CHANGE_PORT)
        )


def quartet_for(primary: Address, alternate: Alternate | None) -> Quartet | None:
    """The socket set of a UDP listener, or None without an alternate (no RFC 5780)."""
    if alternate is None:
        return None
    return Quartet((primary[0], alternate.address), (primary[1], alternate.port))
