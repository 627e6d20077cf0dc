"""The aiortc peer: a WebRTC peer process in its own namespace; the viewer offers, the
master answers.

Run as `python -m lab.peers.aiortc_peer CONFIG.json` inside a lab host. The peer signals
through the lab's KVS-like server, opens a data channel, echoes a message (so
"connected" means data flowed) and writes what its ICE agent saw to a JSON file.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import aiortc
from aioice import stun
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, rtcicetransport
from aiortc.sdp import candidate_from_sdp

from lab.core.documents import JsonObject
from lab.observations.ice import candidate_record, pair_priority
from lab.peers.agents import run_peer
from lab.peers.call_traffic import CallRecorder, is_call_message, mark_connected
from lab.peers.check_schedule import AIOICE_TICK_S
from lab.peers.config import PeerConfig
from lab.peers.ice_agent import LabConnection, TimedTransaction
from lab.peers.ice_servers import ServerPlan, parse_url, plan_servers
from lab.peers.signaling_client import SignalingClient, SignalingMessage
from lab.peers.timing import derives_timing

log = logging.getLogger("lab.peer")
PING = "ice-lab ping"
DONE = "ice-lab done"  # "I have finished checking my pairs; you may close"
GOODBYE_AFTER_CALL_S = 0.5  # plus finish_checks' own 0.5 s


def server_plan(config: PeerConfig) -> ServerPlan:
    urls = [parse_url(u, s.username, s.password) for s in config.ice_servers for u in s.urls]
    return plan_servers(urls, config.mode)


def install_lab_agent(config: PeerConfig, plan: ServerPlan) -> list[LabConnection]:
    """Make aiortc build LabConnection agents; returns the list they are added to."""
    stun.RETRY_RTO = config.timing["stun_rto_s"]
    stun.Transaction = TimedTransaction  # type: ignore[misc]  (checks: a derived timeout)
    stun.RETRY_MAX = config.timing["stun_retries"]
    context = ssl.create_default_context(cafile=config.ca_file)
    created: list[LabConnection] = []

    def factory(**kwargs: Any) -> LabConnection:
        connection = LabConnection(
            plan=plan,
            gathering_timeout_s=config.timing["gathering_timeout_s"],
            ssl_context=context,
            nomination_wait_s=config.timing.get("nomination_wait_s", 0.2),
            check_pacing_s=config.timing.get("check_pacing_s", AIOICE_TICK_S),
            derived_timing=derives_timing(config.timing),
            other_paces_alike=config.other_agent == "aiortc",
            on_log=log.info,
            **kwargs,
        )
        created.append(connection)
        return connection

    # aiortc offers no hook for its ICE agent; this process runs exactly one peer.
    rtcicetransport.Connection = factory  # type: ignore[misc,assignment]
    return created


class Peer:
    """One side of the call; `run()` returns its observations."""

    def __init__(self, config: PeerConfig) -> None:
        self.config = config
        self.plan = server_plan(config)
        self.connections = install_lab_agent(config, self.plan)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.timing = config.timing
        self.started = time.monotonic()
        self.check_deadline = self.started + config.timing["check_timeout_s"]
        self.connected_s: float | None = None
        self.echo = False
        self.error: str | None = None
        self.ice_states: list[JsonObject] = []
        self.ice_failed = asyncio.Event()
        self.finished = asyncio.Event()  # SIGTERM, or the channel closed
        self.peer_done = asyncio.Event()  # the other peer finished its checks
        self.trickle: asyncio.Task[None] | None = None
        self.early_candidates: list[JsonObject] = []
        self.mdns_candidates: list[Any] = []  # a browser's host candidates, by name
        self.resolving: set[asyncio.Task[None]] = set()  # mDNS names being resolved
        self.call = CallRecorder(config.call) if config.call else None
        self.gathering_states: list[JsonObject] = []
        self.pc.on("iceconnectionstatechange", self._ice_state_changed)
        self.pc.on("icegatheringstatechange", self._gathering_state_changed)

    def _gathering_state_changed(self) -> None:
        self.gathering_states.append({"state": self.pc.iceGatheringState, "at": time.time()})

    def _ice_state_changed(self) -> None:
        log.info("ICE connection state: %s", self.pc.iceConnectionState)
        elapsed = round(time.monotonic() - self.started, 4)
        state = self.pc.iceConnectionState
        self.ice_states.append({"t_s": elapsed, "state": state, "at": time.time()})
        if self.pc.iceConnectionState == "failed":
            self.ice_failed.set()

    async def wait_for(self, signaling: SignalingClient, message_type: str) -> SignalingMessage:
        deadline = self.timing["signaling_timeout_s"]
        async with asyncio.timeout(deadline):
            while True:
                message = await signaling.receive()
                if message.message_type == message_type:
                    return message
                if message.message_type == "ICE_CANDIDATE" and message.payload is not None:
                    self.early_candidates.append(message.payload)  # before the description
                    continue
                log.info("signaling: ignored %s", message.message_type)

    def accept_trickled_candidates(self, signaling: SignalingClient) -> None:
        """Apply the candidates the other peer trickles (a browser does; aiortc puts its
        own in the SDP), until the call ends."""
        self.trickle = asyncio.create_task(self._trickled(signaling))

    async def _trickled(self, signaling: SignalingClient) -> None:
        for payload in self.early_candidates:
            await self.add_remote_candidate(payload)
        while True:
            message = await signaling.receive()
            if message.message_type == "ICE_CANDIDATE" and message.payload is not None:
                await self.add_remote_candidate(message.payload)

    async def add_remote_candidate(self, payload: JsonObject) -> None:
        text = payload.get("candidate") or ""
        if not text:  # end-of-candidates (RFC 8838)
            await self.pc.addIceCandidate(None)
            return
        try:
            candidate = candidate_from_sdp(text.removeprefix("candidate:"))
        except (ValueError, IndexError):
            log.info("ignored a remote candidate aiortc cannot parse: %s", text)
            return
        candidate.sdpMid = payload.get("sdpMid")
        candidate.sdpMLineIndex = payload.get("sdpMLineIndex")
        log.info("remote candidate trickled: %s", text)
        if candidate.ip.endswith(".local"):
            # aioice resolves a browser's mDNS name before it adds the candidate, and gives
            # up after a second where nothing answers for the name; a browser does not hold
            # the candidates trickled after it meanwhile, and neither does this peer.
            self.mdns_candidates.append(candidate)
            resolving = asyncio.create_task(self._add(candidate, text))
            self.resolving.add(resolving)
            resolving.add_done_callback(self.resolving.discard)
            return
        await self._add(candidate, text)

    async def _add(self, candidate: Any, text: str) -> None:
        try:
            await self.pc.addIceCandidate(candidate)
        except ValueError as exc:  # e.g. after end-of-candidates: the call goes on
            log.info("remote candidate refused: %s: %s", text, exc)

    def remaining(self) -> float:
        """Seconds left of the check budget (the C SDK's connectivity check timeout)."""
        return max(0.0, self.check_deadline - time.monotonic())

    async def wait_outcome(self, success: asyncio.Event) -> None:
        """Until data flowed, ICE failed, or the check timeout ran out."""
        self.check_deadline = time.monotonic() + self.timing["check_timeout_s"]
        waits = [asyncio.create_task(e.wait()) for e in (success, self.ice_failed, self.finished)]
        done, pending = await asyncio.wait(
            waits, timeout=self.remaining(), return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        if not done:
            self.error = (
                f"no pair connected within the {self.timing['check_timeout_s']:g} s check timeout"
            )

    async def finish_checks(self, channel: Any) -> None:
        """Drive every pair to a final state within the check budget, then wait (bounded)
        until the other peer has too, so that its checks still get answers."""
        await self.audit_pairs()
        log.info("every pair has its verdict")
        if channel is not None and channel.readyState == "open":
            channel.send(DONE)
            waits = [asyncio.create_task(e.wait()) for e in (self.peer_done, self.finished)]
            await asyncio.wait(
                waits, timeout=self.remaining() + 0.5, return_when=asyncio.FIRST_COMPLETED
            )
            for task in waits:
                task.cancel()

    async def audit_pairs(self) -> None:
        if self.connections:
            pacing = self.timing.get("check_pacing_s", 0.005)
            await self.connections[0].audit_pairs(pacing, budget_s=self.remaining())

    def on_channel_message(self, message: Any) -> None:
        if message == DONE:
            self.peer_done.set()

    async def hold_call(self, channel: Any, sends: bool) -> None:
        """With a `call`: tell the lab the call is up, then keep it going for its duration
        (the viewer sends, the master echoes), watching the selected pair."""
        if self.call is None or self.finished.is_set():
            return
        await self.audit_pairs()  # every pair's verdict from before the network changes
        mark_connected(self.config.result_path, self.config.role)

        def send(message: str) -> bool:
            if channel is None or channel.readyState != "open":
                return False
            channel.send(message)
            return True

        await self.call.run(send, self.selected_pair_text, sends)
        # A short budget for the goodbye: the pairs were all audited before the call, and
        # on a call the network broke the other peer's DONE may never come.
        self.check_deadline = time.monotonic() + GOODBYE_AFTER_CALL_S

    def selected_pair_text(self) -> str | None:
        """The nominated pair as `local-type -> remote-type address:port`, or None."""
        pair = self.connections[0].selected_pair() if self.connections else None
        if pair is None:
            return None
        local, remote = self.connections[0].valid_local(pair), pair.remote_candidate
        return (
            f"{local.type} {local.host}:{local.port} -> {remote.type} {remote.host}:{remote.port}"
        )

    # -- observations -------------------------------------------------------------------

    def observations(self) -> JsonObject:
        connection = self.connections[0] if self.connections else None
        result: JsonObject = {
            "role": self.config.role,
            "host": self.config.host,
            "mode": self.config.mode,
            "agent": "aiortc",
            "software": {"name": "aiortc", "version": aiortc.__version__},
            **proxy_note(self.config.proxy_server),
            "ice_state": self.pc.iceConnectionState,
            "ice_states": list(self.ice_states),
            "connected_s": self.connected_s,
            "echo": self.echo,
            "error": self.error,
            "skipped_servers": [{"url": s.url, "reason": s.reason} for s in self.plan.skipped],
        }
        if self.call is not None:
            result["call"] = self.call.observations() | {
                "gathering": self.gathering_states,
                "consent": connection.consent if connection else [],
            }
        if connection is None:
            return result | {"candidates": [], "pairs": [], "selected": None}
        return (
            result
            | agent_observations(connection)
            | {"unresolved_remote_candidates": self.unresolved(connection)}
        )

    def unresolved(self, connection: LabConnection) -> list[JsonObject]:
        """The mDNS names aioice never resolved into a remote candidate (multicast does not
        cross a router): no pair could be formed with them."""
        # Resolved, the name becomes an address; a check from the same port may have taught
        # the agent that address first, as a peer-reflexive candidate (then it is no
        # evidence of an unresolvable name either).
        # (A server-reflexive candidate often has the same port: a port-preserving NAT.)
        known_ports = {c.port for c in connection.remote_candidates if c.type in ("host", "prflx")}
        return [
            {
                "type": c.type,
                "address": c.ip,
                "port": c.port,
                "reason": "the mDNS name did not resolve from this network",
            }
            for c in self.mdns_candidates
            if c.port not in known_ports
        ]


def proxy_note(proxy_server: str | None) -> JsonObject:
    """The proxy this network forces traffic through, which aiortc cannot use."""
    if not proxy_server:
        return {}
    reason = "aiortc (aioice) has no HTTP CONNECT or SOCKS support: nothing reaches out"
    return {"proxy": {"url": proxy_server, "used": False, "reason": reason}}


#: What the result keeps of the selected pair.
SELECTED_FIELDS = ("local", "remote", "rtt_ms", "rtt_upper_bound")


def agent_observations(connection: LabConnection) -> JsonObject:
    """Candidates, pairs and the selected pair of one aioice agent, as result records."""

    def local(candidate: Any) -> JsonObject:
        origin = connection.origin(candidate)
        return candidate_record(candidate, origin.server, origin.relay_protocol)

    def pair_record(pair: Any) -> JsonObject:
        counters = connection.pair_counters(pair)
        failure = connection.failure(pair)
        return {
            "local": local(connection.valid_local(pair)),
            "local_base": local(pair.local_candidate),
            "remote": candidate_record(pair.remote_candidate),
            "state": connection.final_state(pair) or pair.state.name.lower(),
            "agent_state": pair.state.name.lower(),
            "failure": failure.as_dict() if failure else None,
            "nominated": bool(pair.nominated),
            "priority": pair_priority(
                pair.local_candidate.priority,
                pair.remote_candidate.priority,
                connection.ice_controlling,
            ),
            "checks_sent": counters.requests_sent,
            "responses_received": counters.responses_received,
            "rtt_ms": counters.rtt_ms,
            # Karn's rule: timed from the first send of a check answered only after a
            # retransmission, the value bounds the round trip from above.
            **({"rtt_upper_bound": True} if counters.rtt_ms and not counters.rtt_exact else {}),
        }

    nominated = connection.selected_pair()
    pairs = merge_duplicate_pairs([pair_record(p) for p in connection.all_pairs])
    return {
        "candidates": [local(c) for c in connection.local_candidates],
        "remote_candidates": [candidate_record(c) for c in connection.remote_candidates],
        "gathering_s": round(connection.gathering_s, 4) if connection.gathering_s else None,
        "gathering_errors": [e.__dict__ for e in connection.gathering_errors],
        "pairs": pairs,
        "selected": (
            {k: v for k, v in pair_record(nominated).items() if k in SELECTED_FIELDS}
            if nominated is not None
            else None
        ),
        "ice_role": "controlling" if connection.ice_controlling else "controlled",
    }


def merge_duplicate_pairs(records: list[JsonObject]) -> list[JsonObject]:
    """One record per (local, remote) pair.

    aioice drops unchecked pairs at nomination and makes a new pair object when a check
    later arrives for the same candidates; to the user it is one pair.
    """
    merged: dict[tuple[Any, ...], JsonObject] = {}
    for record in records:
        key = tuple(
            record[side][field] for side in ("local", "remote") for field in ("address", "port")
        ) + (record["local"]["type"],)
        kept = merged.setdefault(key, record)
        if kept is record:
            continue
        if record["state"] == "succeeded" and kept["state"] != "succeeded":
            record = {**record, "nominated": record["nominated"] or kept["nominated"]}
            merged[key] = kept = record
        kept["nominated"] = kept["nominated"] or record["nominated"]
        if kept["state"] == "succeeded":
            kept["failure"] = None
    return list(merged.values())


class Viewer(Peer):
    """Offers, opens the data channel, sends a ping and waits for the echo."""

    async def run(self, signaling: SignalingClient) -> None:
        channel = self.pc.createDataChannel("ice-lab")
        echoed = asyncio.Event()
        channel.on("open", lambda: channel.send(PING))
        # The master closes once it has our DONE; its own DONE may be lost on a lossy
        # link, so its close is the signal to stop waiting for it.
        channel.on("close", self.finished.set)

        @channel.on("message")
        def on_message(message: Any) -> None:
            if message == PING:
                echoed.set()
            elif self.call is not None and is_call_message(message):
                self.call.on_echo(message)
            self.on_channel_message(message)

        await self.pc.setLocalDescription(await self.pc.createOffer())
        await signaling.send_sdp(_description(self.pc), recipient=None)
        log.info("offer sent")
        answer = await self.wait_for(signaling, "SDP_ANSWER")
        log.info("answer received")
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer.payload))
        self.accept_trickled_candidates(signaling)
        await self.wait_outcome(echoed)
        if echoed.is_set():
            log.info("data flowed: the ping came back")
            self.echo = True
            self.connected_s = round(time.monotonic() - self.started, 4)
            await self.hold_call(channel, sends=True)
        await self.finish_checks(channel)


class Master(Peer):
    """Answers the viewer's offer and echoes every data channel message."""

    async def run(self, signaling: SignalingClient) -> None:
        connected = asyncio.Event()
        self.channel: Any = None
        self.pc.on("datachannel", lambda channel: self._serve(channel, connected))
        offer = await self.wait_for(signaling, "SDP_OFFER")
        log.info("offer received")
        await self.pc.setRemoteDescription(RTCSessionDescription(**offer.payload))
        self.accept_trickled_candidates(signaling)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await signaling.send_sdp(_description(self.pc), recipient=offer.sender_client_id)
        log.info("answer sent")
        await self.wait_outcome(connected)
        if connected.is_set():
            log.info("data flowed: echoed the ping")
            self.connected_s = round(time.monotonic() - self.started, 4)
            await self.hold_call(self.channel, sends=False)
        await self.finish_checks(self.channel)

    def _serve(self, channel: Any, connected: asyncio.Event) -> None:
        self.channel = channel

        def on_message(message: Any) -> None:
            if message == PING:
                channel.send(PING)
                self.echo = True
                connected.set()
            elif is_call_message(message):
                channel.send(message)
            self.on_channel_message(message)

        channel.on("message", on_message)
        channel.on("close", self.finished.set)


def _description(pc: RTCPeerConnection) -> dict[str, str]:
    return {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp}


async def observe(config: PeerConfig) -> JsonObject:
    """Run this peer's side of the call; return what its ICE agent saw."""
    peer: Peer = Viewer(config) if config.role == "viewer" else Master(config)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, peer.finished.set)
    signaling: SignalingClient | None = None
    log.info("%s started", config.role)
    try:
        signaling = await SignalingClient.connect(
            config.signaling_url,
            ca_file=config.ca_file,
            timeout=config.timing["signaling_timeout_s"],
        )
        log.info("signaling connected")
        await peer.run(signaling)
    except TimeoutError:
        peer.error = peer.error or "timed out waiting for the other peer"
    except Exception as exc:  # the run must still report what was observed
        log.exception("peer failed")
        peer.error = f"{type(exc).__name__}: {exc}"
    observations = peer.observations()
    if peer.trickle is not None:
        peer.trickle.cancel()
    await peer.pc.close()
    if signaling is not None:
        await signaling.close()
    return observations


def main() -> None:
    run_peer(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
