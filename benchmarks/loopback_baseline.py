"""Baseline for the speed target: two aiortc peers in one Python process, over loopback.

Prints the seconds from creating the peers to an echoed data channel message. Its
wall time as a process (interpreter start and aiortc import included) is what
`benchmarks/run_speed.py` compares `lab run` against. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import asyncio
import time

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection

# aioice skips 127.0.0.1 when it lists host addresses; loopback is the point here.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


async def connect_and_echo() -> float:
    started = time.perf_counter()
    viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    master = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    echoed = asyncio.Event()
    channel = viewer.createDataChannel("baseline")
    channel.on("open", lambda: channel.send("ping"))
    channel.on("message", lambda message: echoed.set())

    @master.on("datachannel")
    def on_channel(remote: object) -> None:
        remote.on("message", lambda message: remote.send(message))  # type: ignore[attr-defined]

    await viewer.setLocalDescription(await viewer.createOffer())
    await master.setRemoteDescription(viewer.localDescription)
    await master.setLocalDescription(await master.createAnswer())
    await viewer.setRemoteDescription(master.localDescription)
    await asyncio.wait_for(echoed.wait(), 10)
    elapsed = time.perf_counter() - started
    await viewer.close()
    await master.close()
    return elapsed


if __name__ == "__main__":
    print(f"{asyncio.run(connect_and_echo()):.4f}")
