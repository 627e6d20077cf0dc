"""Which STUN/TURN URLs a peer uses, and why it skips the others.

The service's NAT traversal modes decide the servers: stun-turn (all), turn-only
(TURN with the relay transport policy), stun-only, disabled (host candidates only).
Every URL the lab cannot use is kept with its reason, never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

URL = re.compile(
    r"^(?P<scheme>stuns?|turns?):(?P<host>[^:?]+)(?::(?P<port>[0-9]+))?"
    r"(?:\?transport=(?P<transport>udp|tcp))?$"
)


@dataclass(frozen=True)
class ServerUrl:
    url: str
    scheme: str
    host: str
    port: int
    transport: str | None  # None for STUN
    username: str | None = None
    password: str | None = None

    @property
    def is_turn(self) -> bool:
        return self.scheme.startswith("turn")

    @property
    def relay_protocol(self) -> str | None:
        """How the peer reaches the TURN server: udp, tcp or tls."""
        if not self.is_turn:
            return None
        return "tls" if self.scheme == "turns" else self.transport

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


@dataclass(frozen=True)
class SkippedUrl:
    url: str
    reason: str


def parse_url(url: str, username: str | None = None, password: str | None = None) -> ServerUrl:
    match = URL.match(url)
    if match is None:
        raise ValueError(f"not a STUN/TURN URL: {url}")
    scheme = match["scheme"]
    default_port = 5349 if scheme in ("stuns", "turns") else 3478
    transport = match["transport"]
    if scheme.startswith("turn") and transport is None:
        transport = "tcp" if scheme == "turns" else "udp"
    return ServerUrl(
        url=url,
        scheme=scheme,
        host=match["host"],
        port=int(match["port"] or default_port),
        transport=transport if scheme.startswith("turn") else None,
        username=username,
        password=password,
    )


@dataclass(frozen=True)
class ServerPlan:
    stun: tuple[ServerUrl, ...]
    turn: tuple[ServerUrl, ...]
    skipped: tuple[SkippedUrl, ...]
    relay_only: bool


def plan_servers(servers: list[ServerUrl], mode: str) -> ServerPlan:
    """Split the configured URLs into the ones this mode uses and the ones it skips."""
    stun: list[ServerUrl] = []
    turn: list[ServerUrl] = []
    skipped: list[SkippedUrl] = []
    for server in servers:
        reason = _skip_reason(server, mode)
        if reason:
            skipped.append(SkippedUrl(server.url, reason))
        elif server.is_turn:
            turn.append(server)
        else:
            stun.append(server)
    return ServerPlan(tuple(stun), tuple(turn), tuple(skipped), relay_only=mode == "turn-only")


def _skip_reason(server: ServerUrl, mode: str) -> str | None:
    if mode == "disabled":
        return "mode disabled: no ICE servers, host candidates only"
    if server.scheme == "stuns":
        return "STUN over TLS is not used by WebRTC agents"
    if not server.is_turn and mode == "turn-only":
        return "mode turn-only: no STUN"
    if server.is_turn and mode == "stun-only":
        return "mode stun-only: no TURN"
    if server.scheme == "turns" and server.transport == "udp":
        return "TURN over DTLS is not supported (the C SDK skips turns over UDP too)"
    return None
