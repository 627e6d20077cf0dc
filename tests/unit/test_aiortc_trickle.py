"""The aiortc peer adds a browser's trickled candidates as a browser would: a host
candidate named by mDNS, which aioice resolves for up to a second when nothing answers,
does not hold up the server-reflexive and relay candidates trickled after it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from lab.peers.aiortc_peer import Peer

MDNS = "candidate:1 1 udp 2113937151 0b5a8c1e-0f45-4a0f-9d7b-2f1f1d0e3c11.local 56708 typ host"
SRFLX = "candidate:2 1 udp 1677729535 198.51.100.2 56708 typ srflx raddr 0.0.0.0 rport 0"


class SlowMdnsConnection:
    """addIceCandidate as aioice does it: an mDNS name waits for its resolution."""

    def __init__(self) -> None:
        self.added: list[str] = []
        self.resolved = asyncio.Event()

    async def addIceCandidate(self, candidate: Any) -> None:  # noqa: N802 (aiortc's name)
        if candidate.ip.endswith(".local"):
            await self.resolved.wait()
        self.added.append(candidate.ip)


def test_an_unanswered_mdns_name_does_not_hold_up_later_candidates() -> None:
    async def trickle() -> list[str]:
        pc = SlowMdnsConnection()
        peer = SimpleNamespace(pc=pc, mdns_candidates=[], resolving=set())
        peer._add = lambda candidate, text: Peer._add(peer, candidate, text)
        for text in (MDNS, SRFLX):
            payload = {"candidate": text, "sdpMLineIndex": 0}
            await asyncio.wait_for(Peer.add_remote_candidate(peer, payload), 1)
        added_meanwhile = list(pc.added)
        pc.resolved.set()
        await asyncio.gather(*peer.resolving)
        assert pc.added == ["198.51.100.2", "0b5a8c1e-0f45-4a0f-9d7b-2f1f1d0e3c11.local"]
        assert [c.ip for c in peer.mdns_candidates] == [pc.added[1]]
        return added_meanwhile

    assert asyncio.run(trickle()) == ["198.51.100.2"]
