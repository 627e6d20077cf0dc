"""An aioice Connection that gathers through every STUN/TURN URL and records what it sees.

aiortc on its own uses only the first STUN and the first TURN URL and drops the
rest silently; it also has no API to observe connectivity checks. The lab needs
both, so this subclass replaces candidate gathering (one relay per usable TURN URL,
each failure kept as a gathering error) and counts every check and its round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aioice import ice, stun, turn
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import (
    CandidatePair,
    Connection,
    StunProtocol,
    TransportPolicy,
    candidate_pair_priority,
)

from lab.core.documents import JsonObject
from lab.peers import check_schedule
from lab.peers.ice_servers import ServerPlan, ServerUrl


@dataclass
class GatheringError:
    url: str
    reason: str
    elapsed_s: float


@dataclass
class CheckCounters:
    """Connectivity checks on one pair, as RTCIceCandidatePairStats counts them."""

    requests_sent: int = 0
    responses_received: int = 0
    error_responses: int = 0
    rtt_ms: float | None = None
    mapped: tuple[str, int] | None = None  # XOR-MAPPED-ADDRESS of the first success
    first_sent: dict[bytes, float] = field(default_factory=dict)
    resent: set[bytes] = field(default_factory=set)
    rtt_exact: bool = False  # rtt_ms came from a check that was sent only once

    def sample_rtt(self, tid: bytes) -> None:
        """Karn's rule: a response to a retransmitted check cannot say which send it
        answers, so it gives only an upper bound (from the first send), kept until a
        check answered on its first send gives the real round trip."""
        if self.rtt_exact:
            return
        elapsed_ms = round((time.monotonic() - self.first_sent[tid]) * 1000, 2)
        exact = tid not in self.resent
        if exact or self.rtt_ms is None:
            self.rtt_ms, self.rtt_exact = elapsed_ms, exact


@dataclass
class PairFailure:
    """Why a pair failed: timeout, icmp_unreachable, turn_error, policy, error_response."""

    reason: str
    message: str
    code: int | None = None
    phrase: str | None = None

    def as_dict(self) -> JsonObject:
        failure: JsonObject = {"reason": self.reason, "message": self.message}
        if self.code is not None:
            failure["code"] = self.code
            failure["phrase"] = self.phrase
        return failure


@dataclass
class CandidateOrigin:
    server: str | None
    relay_protocol: str | None


class ObservedStunProtocol(StunProtocol):
    """A StunProtocol that reports every Binding request and response to its Connection."""

    receiver: LabConnection
    turn_error: tuple[int, str] | None = None

    def error_received(self, exc: Exception) -> None:
        # A relayed send whose ChannelBind was refused (e.g. 403 Forbidden IP) lands here.
        if isinstance(exc, stun.TransactionFailed):
            self.turn_error = tuple(exc.response.attributes.get("ERROR-CODE", (0, "")))  # type: ignore[assignment]
        super().error_received(exc)

    def send_stun(self, message: stun.Message, addr: tuple[str, int]) -> None:
        if message.message_class == stun.Class.REQUEST:
            self.receiver.note_request(self, addr, message.transaction_id)
        super().send_stun(message, addr)

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        try:
            message = stun.parse_message(data)  # type: ignore[arg-type]
        except ValueError:
            message = None
        if message is not None and message.message_class in (stun.Class.RESPONSE, stun.Class.ERROR):
            self.receiver.note_response(
                self,
                (addr[0], addr[1]),
                message.transaction_id,
                error=message.message_class == stun.Class.ERROR,
                mapped=message.attributes.get("XOR-MAPPED-ADDRESS"),
            )
        super().datagram_received(data, addr)


#: Nominations by the controlling agent within this long of its first are one round of
#: aggressive nomination (nICEr's come within about 0.15 s); a later one renominates.
AGGRESSIVE_ROUND_S = 1.0


class CheckTimeout:
    """The retransmission timeout connectivity checks use in this process (one agent per
    peer process): derived by the agent (check_schedule.py), None for the profile's."""

    rto_s: float | None = None


class TimedTransaction(stun.Transaction):
    """A STUN transaction that, for a connectivity check sent with retransmissions, waits
    CheckTimeout.rto_s before its first retransmission; every other one (gathering, the
    TURN client's requests, consent checks) keeps the profile's RETRY_RTO. aioice has no
    per-transaction timeout, so this sets its private delay after construction."""

    def __init__(
        self,
        request: stun.Message,
        addr: tuple[str, int],
        protocol: Any,
        retransmissions: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(request, addr, protocol, retransmissions, **kwargs)
        is_check = request.message_method == stun.Method.BINDING and (
            "PRIORITY" in request.attributes
        )
        if is_check and retransmissions != 0 and CheckTimeout.rto_s is not None:
            self._Transaction__timeout_delay = CheckTimeout.rto_s


class LabConnection(Connection):
    """aioice's ICE agent, gathering through a ServerPlan and keeping observations."""

    def __init__(
        self,
        *,
        plan: ServerPlan,
        gathering_timeout_s: float,
        ssl_context: ssl.SSLContext | None,
        nomination_wait_s: float = 0.2,
        check_pacing_s: float = check_schedule.AIOICE_TICK_S,
        derived_timing: bool = False,
        other_paces_alike: bool = False,
        on_log: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> None:
        if plan.relay_only:
            kwargs["transport_policy"] = TransportPolicy.RELAY
        super().__init__(**kwargs)
        self.plan = plan
        self.gathering_timeout_s = gathering_timeout_s
        self.ssl_context = ssl_context
        self.gathering_errors: list[GatheringError] = []
        self.origins: dict[tuple[str, int, str], CandidateOrigin] = {}
        self.checks: dict[tuple[int, tuple[str, int]], CheckCounters] = {}
        self.all_pairs: list[CandidatePair] = []
        self.audited: dict[int, str] = {}
        self.in_flight: dict[int, asyncio.Task[None]] = {}
        self.expired: set[int] = set()  # pairs still unanswered when the check budget ran out
        self.audit_over = False  # the check budget has run out: every pair has its verdict
        self.nomination_wait_s = nomination_wait_s
        self.check_pacing_s = check_pacing_s
        #: Timeouts and the nomination wait from what the agent measures (the profile's
        #: constants stay the bounds); off for the C SDK's faithful profile.
        self.derived_timing = derived_timing
        CheckTimeout.rto_s = None  # a new agent starts from the profile's timeout
        #: The other agent is the lab's aiortc too: it paces its checks like this one, so
        #: the nomination wait can end once it has checked every pair (check_schedule.py).
        self.other_paces_alike = other_paces_alike and derived_timing
        self.checking_started: float | None = None
        #: Round trips to the STUN servers while gathering (answered on their first send).
        self.server_round_trips_s: list[float] = []
        self.first_success: float | None = None
        self.first_nominated_at: float | None = None  # by the other agent, when controlled
        self._nomination_task: asyncio.Task[None] | None = None
        self._nomination_timer: asyncio.TimerHandle | None = None
        self.gathering_s: float | None = None
        self.on_log = on_log or (lambda line: None)
        self._kept: tuple[list[Candidate], CandidatePair | None] | None = None
        #: Consent freshness (RFC 7675): each check on the nominated pair, and the expiry.
        self.consent: list[JsonObject] = []

    # -- gathering ----------------------------------------------------------------------

    async def get_component_candidates(
        self, component: int, addresses: list[str], timeout: int = 5
    ) -> list[Candidate]:
        started = time.monotonic()
        host_protocols = await self._host_protocols(component, addresses)
        candidates = [p.local_candidate for p in host_protocols]
        self._protocols += host_protocols
        jobs: dict[asyncio.Task[Any], ServerUrl] = {}
        for server in self.plan.stun:
            # As aioice itself: STUN from IPv4 host sockets only (the lab looks server names
            # up as IPv4, and an IPv6 socket cannot send to an IPv4 server).
            for protocol in host_protocols:
                if ipaddress.ip_address(protocol.local_candidate.host).version == 4:
                    jobs[asyncio.create_task(self._srflx(protocol, server))] = server
        for server in self.plan.turn:
            jobs[asyncio.create_task(self._relay(component, server))] = server
        if jobs:
            done, pending = await asyncio.wait(jobs, timeout=self.gathering_timeout_s)
            for task in pending:
                task.cancel()
                self._gathering_error(jobs[task], "no answer before the gathering timeout", started)
            for task in done:
                candidates += self._collect(task, jobs[task], started)
        self.gathering_s = time.monotonic() - started
        return candidates

    async def _host_protocols(self, component: int, addresses: list[str]) -> list[StunProtocol]:
        loop = asyncio.get_running_loop()
        protocols = []
        for address in addresses:
            if ipaddress.ip_address(address).is_loopback:
                continue
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: ObservedStunProtocol(self), local_addr=(address, 0)
            )
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, turn.UDP_SOCKET_BUFFER_SIZE)
            host, port = transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", host),
                component=component,
                transport="udp",
                priority=candidate_priority(component, "host"),
                host=host,
                port=port,
                type="host",
            )
            protocols.append(protocol)
        return protocols

    async def _srflx(self, protocol: StunProtocol, server: ServerUrl) -> tuple[Candidate, None]:
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        address = await _resolved(server)
        sent = time.monotonic()
        response, _ = await protocol.request(request, address)
        if (elapsed_s := time.monotonic() - sent) < stun.RETRY_RTO:  # answered on its first send
            self.server_round_trips_s.append(elapsed_s)
        local = protocol.local_candidate
        mapped_host, mapped_port = response.attributes["XOR-MAPPED-ADDRESS"]
        candidate = Candidate(
            foundation=candidate_foundation("srflx", "udp", local.host),
            component=local.component,
            transport="udp",
            priority=candidate_priority(local.component, "srflx"),
            host=mapped_host,
            port=mapped_port,
            type="srflx",
            related_address=local.host,
            related_port=local.port,
        )
        return candidate, None

    async def _relay(self, component: int, server: ServerUrl) -> tuple[Candidate, StunProtocol]:
        use_tls = server.relay_protocol == "tls"
        _, protocol = await turn.create_turn_endpoint(
            lambda: ObservedStunProtocol(self),
            server_addr=server.address,
            username=server.username,
            password=server.password,
            ssl=self.ssl_context if use_tls else False,
            transport=server.transport or "udp",
        )
        host, port = protocol.transport.get_extra_info("sockname")[:2]
        related = protocol.transport.get_extra_info("related_address")
        if self._transport_policy == TransportPolicy.RELAY:
            # RFC 9429 section 3.5.3: do not reveal the host address in relay-only mode.
            related = ("0.0.0.0", 9)
        protocol.local_candidate = Candidate(
            # The server URL is part of the foundation: relays through different servers
            # or transports are different candidates to pair and to report.
            foundation=candidate_foundation("relay", server.relay_protocol or "udp", host),
            component=component,
            transport="udp",
            priority=candidate_priority(component, "relay"),
            host=host,
            port=port,
            type="relay",
            related_address=related[0],
            related_port=related[1],
        )
        return protocol.local_candidate, protocol

    def _collect(
        self, task: asyncio.Task[Any], server: ServerUrl, started: float
    ) -> list[Candidate]:
        error = task.exception()
        if error is not None:
            self._gathering_error(server, describe_error(error), started)
            return []
        candidate, protocol = task.result()
        key = (candidate.host, candidate.port, candidate.type)
        if candidate.type == "srflx" and any(
            (c.host, c.port, c.type) == key for c in self._local_candidates
        ):
            return []
        self.origins[key] = CandidateOrigin(server.url, server.relay_protocol)
        if protocol is not None:
            self._protocols.append(protocol)
        return [candidate]

    def _gathering_error(self, server: ServerUrl, reason: str, started: float) -> None:
        error = GatheringError(server.url, reason, round(time.monotonic() - started, 3))
        self.gathering_errors.append(error)
        self.on_log(f"gathering error for {server.url}: {reason}")

    # -- checks -------------------------------------------------------------------------

    def _counters(self, protocol: StunProtocol, addr: tuple[str, int]) -> CheckCounters:
        return self.checks.setdefault((id(protocol), addr), CheckCounters())

    def note_request(self, protocol: StunProtocol, addr: tuple[str, int], tid: bytes) -> None:
        counters = self._counters(protocol, addr)
        counters.requests_sent += 1
        if tid in counters.first_sent:
            counters.resent.add(tid)
        else:
            counters.first_sent[tid] = time.monotonic()

    def note_response(
        self,
        protocol: StunProtocol,
        addr: tuple[str, int],
        tid: bytes,
        error: bool = False,
        mapped: tuple[str, int] | None = None,
    ) -> None:
        counters = self.checks.get((id(protocol), addr))
        if counters is None or tid not in counters.first_sent:
            return
        if error:
            counters.error_responses += 1
            return
        counters.responses_received += 1
        if counters.mapped is None and mapped is not None:
            counters.mapped = (mapped[0], mapped[1])
        counters.sample_rtt(tid)

    def pair_counters(self, pair: CandidatePair) -> CheckCounters:
        return self.checks.get((id(pair.protocol), pair.remote_addr), CheckCounters())

    def sort_check_list(self) -> None:
        # Keep every pair ever formed: aioice drops unchecked pairs at nomination.
        super().sort_check_list()
        self._remember_pairs()

    def _pair_remote_candidate(self, remote_candidate: Candidate) -> None:
        super()._pair_remote_candidate(remote_candidate)
        self._remember_pairs()

    def _remember_pairs(self) -> None:
        known = {id(p) for p in self.all_pairs}
        self.all_pairs += [p for p in self._check_list if id(p) not in known]

    # -- regular nomination (RFC 8445 section 8.1.1) ----------------------------------------
    #
    # aioice's controlling agent nominates aggressively: whichever pair answers first wins,
    # often a relay. Browsers and the KVS C SDK check first, then nominate the best pair
    # that worked; so does the lab, so the selected pair is the one a customer would get.

    def _priority(self, pair: CandidatePair) -> int:
        return candidate_pair_priority(
            pair.local_candidate, pair.remote_candidate, self.ice_controlling
        )

    async def check_start(self, pair: CandidatePair) -> None:
        # aioice cancels every check still running once ICE completes; shielded, a check
        # runs to its verdict instead, and finishing the pairs does not start it again.
        task = asyncio.ensure_future(self._check(pair))
        self.in_flight[id(pair)] = task
        await asyncio.shield(task)

    async def _check(self, pair: CandidatePair) -> None:
        if not self.ice_controlling or self.remote_is_lite:
            return await super().check_start(pair)
        assert self.remote_password is not None
        self.check_state(pair, CandidatePair.State.IN_PROGRESS)
        request = self.build_request(pair, nominate=False)
        try:
            _, addr = await pair.protocol.request(
                request, pair.remote_addr, integrity_key=self.remote_password.encode("utf8")
            )
        except stun.TransactionError as exc:
            if exc.response and exc.response.error_code == 487:
                self.switch_role(ice_controlling=False)  # role conflict: the peer controls
                return await self._check(pair)
            addr = None
        state = CandidatePair.State.SUCCEEDED if addr == pair.remote_addr else None
        self.check_state(pair, state or CandidatePair.State.FAILED)
        self.check_complete(pair)
        self._consider_nomination()

    def _check_periodic(self) -> bool:
        """aioice starts one check per 20 ms tick; at a faster pace, the tick's other
        checks start between it and the next (check_schedule.checks_per_tick)."""
        if self.checking_started is None:
            self.checking_started = time.monotonic()
        busy = super()._check_periodic()
        if busy:
            loop = asyncio.get_running_loop()
            interval_s = check_schedule.paced_interval_s(self.check_pacing_s)
            for step in range(1, check_schedule.checks_per_tick(self.check_pacing_s)):
                loop.call_later(step * interval_s, self._start_next_check)
        return busy

    def check_state(self, pair: CandidatePair, state: CandidatePair.State) -> None:
        super().check_state(pair, state)
        if state == CandidatePair.State.SUCCEEDED and CheckTimeout.rto_s is None:
            self._derive_check_timeout(pair)

    def _derive_check_timeout(self, first_success: CandidatePair) -> None:
        """Once a pair has worked (the other agent answers, and its answer's round trip
        crosses the far side's links), the checks started from then on retransmit after a
        few of the longest round trip measured to the STUN servers or on that pair (its
        bound, if it was answered only after a retransmission): a pair that cannot work
        then fails in a few hundred milliseconds. Before, the profile's timeout (stretched
        for the scenario's delays) holds: the other agent may not be checking yet, and a
        delay on its link is in no round trip to a server."""
        if not self.derived_timing:
            return
        pair_rtt_ms = self.pair_counters(first_success).rtt_ms
        round_trips = self.server_round_trips_s + ([pair_rtt_ms / 1000] if pair_rtt_ms else [])
        derived_s = check_schedule.derived_rto_s(round_trips, stun.RETRY_RTO)
        CheckTimeout.rto_s = derived_s
        if derived_s != stun.RETRY_RTO:
            self.on_log(
                f"checks retransmit after {derived_s * 1000:.0f} ms (profile "
                f"{stun.RETRY_RTO * 1000:.0f} ms), from round trips of "
                f"{max(round_trips) * 1000:.1f} ms at most"
            )

    def _start_next_check(self) -> None:
        """Start the best pair no check has started yet: Waiting first, then Frozen (as
        aioice's own tick picks)."""
        if self._check_list_done:
            return
        for state in (CandidatePair.State.WAITING, CandidatePair.State.FROZEN):
            for pair in self._check_list:
                if pair.state == state and pair.task is None:
                    self.check_start_task(pair)
                    return

    def check_complete(self, pair: CandidatePair) -> None:
        """aioice's controlled agent takes each newly nominated pair as the selected one.
        An agent that nominates aggressively (Firefox's nICEr) nominates several pairs at
        once: of those, the selected pair is the highest-priority one (RFC 5245 section
        8.1.1). A nomination after that round is a renomination (a browser moving the
        call to another pair), which the controlled agent follows."""
        previous = self._nominated.get(pair.component)
        super().check_complete(pair)
        if self.ice_controlling or self._nominated.get(pair.component) is not pair:
            return
        now = time.monotonic()
        if previous is None:
            self.first_nominated_at = now
            return
        started = self.first_nominated_at
        one_round = started is not None and now - started <= AGGRESSIVE_ROUND_S
        if previous is not pair and one_round and self._priority(previous) > self._priority(pair):
            self.on_log(f"keeping the higher-priority nominated pair, not {pair}")
            self._nominated[pair.component] = previous

    def _check_list_maybe_fail(self) -> None:
        succeeded = any(p.state == CandidatePair.State.SUCCEEDED for p in self._check_list)
        if self.ice_controlling and not self._nominated and succeeded:
            self._consider_nomination()  # a working pair exists: nominate, do not fail
            return
        super()._check_list_maybe_fail()

    def _consider_nomination(self) -> None:
        """Nominate the best succeeded pair once no better pair is still being checked."""
        if not self.ice_controlling or self._nominated or self._nomination_task is not None:
            return
        succeeded = [p for p in self._check_list if p.state == CandidatePair.State.SUCCEEDED]
        if not succeeded:
            return
        best = max(succeeded, key=self._priority)
        better_pending = [
            p
            for p in self._check_list
            if self._priority(p) > self._priority(best)
            and p.state not in (CandidatePair.State.SUCCEEDED, CandidatePair.State.FAILED)
        ]
        if not better_pending:
            self._start_nomination(best)
        elif self._nomination_timer is None:
            loop = asyncio.get_running_loop()
            wait_s = max(0.0, self._nomination_deadline() - time.monotonic())
            self._nomination_timer = loop.call_later(wait_s, self._nominate_now)

    def _nomination_deadline(self) -> float:
        """The profile's wait after the first pair worked; shorter where the other agent
        paces like this one and every pair has had its chance (check_schedule.py)."""
        now = time.monotonic()
        self.first_success = self.first_success or now
        cap = self.first_success + self.nomination_wait_s
        if not self.other_paces_alike or self.checking_started is None:
            return cap
        return check_schedule.nomination_deadline(
            checking_started=self.checking_started,
            pairs=len(self.all_pairs),
            pacing_s=self.check_pacing_s,
            round_trips_s=self.exact_round_trips_s(),
            first_success=self.first_success,
            wait_cap_s=self.nomination_wait_s,
            stun_rto_s=CheckTimeout.rto_s or stun.RETRY_RTO,
        )

    def exact_round_trips_s(self) -> list[float]:
        """The round trips (seconds) measured by checks answered on their first send."""
        return [c.rtt_ms / 1000 for c in self.checks.values() if c.rtt_exact and c.rtt_ms]

    def _nominate_now(self) -> None:
        """The nomination wait is over: take the best pair that has worked so far."""
        succeeded = [p for p in self._check_list if p.state == CandidatePair.State.SUCCEEDED]
        if succeeded and not self._nominated and self._nomination_task is None:
            self._start_nomination(max(succeeded, key=self._priority))

    def _start_nomination(self, pair: CandidatePair) -> None:
        if self._nomination_timer is not None:
            self._nomination_timer.cancel()
        self._nomination_task = asyncio.create_task(self._nominate(pair))

    async def _nominate(self, pair: CandidatePair) -> None:
        assert self.remote_password is not None
        self.on_log(f"nominating {pair.local_candidate} -> {pair.remote_candidate}")
        request = self.build_request(pair, nominate=True)
        try:
            await pair.protocol.request(
                request, pair.remote_addr, integrity_key=self.remote_password.encode("utf8")
            )
        except stun.TransactionError:
            self._nomination_task = None
            self.check_state(pair, CandidatePair.State.FAILED)
            self.check_complete(pair)  # the next best pair, or failure
            return
        pair.nominated = True
        self.check_complete(pair)

    # -- driving every pair to a final state ------------------------------------------------

    def final_state(self, pair: CandidatePair) -> str | None:
        if id(pair) in self.audited:
            return self.audited[id(pair)]
        if pair.state in (CandidatePair.State.SUCCEEDED, CandidatePair.State.FAILED):
            return pair.state.name.lower()
        if self.audit_over:  # born after the audit (a late check): no verdict in the budget
            self.expired.add(id(pair))
            return "failed"
        return None

    async def query_consent(self) -> None:
        """aioice's consent freshness loop (RFC 7675), the same checks at the same times,
        recording each one and the expiry: aioice itself only logs the expiry and closes,
        which aiortc reports as ICE `closed`, a state that has other causes too."""
        assert self.remote_password is not None
        key = self.remote_password.encode("utf8")
        failures = 0
        while True:
            await asyncio.sleep(ice.CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
            for pair in self._nominated.values():
                sent_at = time.time()
                try:
                    request = self.build_request(pair, nominate=False)
                    await pair.protocol.request(
                        request, pair.remote_addr, integrity_key=key, retransmissions=0
                    )
                    failures = 0
                except stun.TransactionError:
                    failures += 1
                self.consent.append({"at": sent_at, "answered": failures == 0})
                if failures >= ice.CONSENT_FAILURES:
                    self.consent.append({"at": time.time(), "expired": True})
                    self.on_log(f"consent to send expired after {failures} unanswered checks")
                    self._query_consent_task = None
                    await self.close()
                    return

    async def close(self) -> None:
        """Keep what the agent found before aioice forgets it: close() clears the local
        candidates and the nominated pair, and the other peer closing the call can close
        this agent before this peer has reported."""
        if self._kept is None:
            self._kept = (self.local_candidates, self._nominated.get(1))
        await super().close()

    @property
    def local_candidates(self) -> list[Candidate]:
        if self._kept is not None:
            return list(self._kept[0])
        return Connection.local_candidates.fget(self)  # type: ignore[attr-defined]

    def selected_pair(self) -> CandidatePair | None:
        """The nominated pair (component 1), also after the agent has been closed."""
        return self._kept[1] if self._kept is not None else self._nominated.get(1)

    async def audit_pairs(self, pacing_s: float, budget_s: float) -> None:
        """Check every pair the agent left unfinished, without nominating it.

        aioice stops checking once a pair is nominated (RFC 8445 allows it), which leaves
        the other pairs waiting or in progress; the lab needs each pair's verdict. Checks
        still unanswered when the budget runs out count as failed (no response in time).
        """
        if self.remote_password is not None and self._kept is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._time_selected_pair(), timeout=budget_s)
                audit_s = self._audit_budget(pacing_s, budget_s)
                await asyncio.wait_for(self._audit_all(pacing_s), timeout=audit_s)
        for pair in self.all_pairs:
            if self.final_state(pair) is None:
                self.audited[id(pair)] = "failed"
                self.expired.add(id(pair))
        self.audit_over = True

    def _audit_budget(self, pacing_s: float, budget_s: float) -> float:
        """What is left of the check budget, for the faithful profile. With derived
        timing, the audit's checks retransmit after a few of the round trips the pairs
        measured, and the audit lasts one such transaction (plus its pacing): a pair
        silent for that long on links that answered within it is not a pair that works."""
        if not self.derived_timing:
            return budget_s
        rto_s = check_schedule.derived_rto_s(self.exact_round_trips_s(), stun.RETRY_RTO)
        CheckTimeout.rto_s = rto_s
        unfinished = sum(1 for p in self.all_pairs if self.final_state(p) is None)
        transaction_s = check_schedule.transaction_s(rto_s, stun.RETRY_MAX)
        audit_s = min(budget_s, transaction_s + unfinished * pacing_s + rto_s)
        self.on_log(
            f"auditing {unfinished} unfinished pairs: retransmission timeout "
            f"{rto_s * 1000:.0f} ms, {audit_s:.3f} s at most"
        )
        return audit_s

    async def _time_selected_pair(self) -> None:
        """A round trip for the selected pair when its checks gave only a bound: the first
        checks often die at a NAT the other side has not opened yet, and a response to a
        retransmission cannot say which send it answers (Karn's rule). One more check on
        the pair, sent once, times the path itself; unanswered, the bound stays, marked."""
        pair = self.selected_pair()
        if pair is None or self.pair_counters(pair).rtt_exact:
            return
        assert self.remote_password is not None
        request = self.build_request(pair, nominate=False)
        with contextlib.suppress(stun.TransactionError, ConnectionError, OSError):
            await pair.protocol.request(
                request, pair.remote_addr, integrity_key=self.remote_password.encode("utf8"),
                retransmissions=0,
            )  # fmt: skip

    async def _audit_all(self, pacing_s: float) -> None:
        tasks = []
        try:
            running = [t for i, t in self.in_flight.items() if not t.done()]
            for pair in list(self.all_pairs):
                if self.final_state(pair) is None and id(pair) not in self.in_flight:
                    tasks.append(asyncio.create_task(self._audit(pair)))
                    await asyncio.sleep(pacing_s)
            await asyncio.gather(*tasks, *running, return_exceptions=True)
        finally:
            for task in tasks:
                task.cancel()

    async def _audit(self, pair: CandidatePair) -> None:
        assert self.remote_password is not None
        request = self.build_request(pair, nominate=False)
        try:
            _, addr = await pair.protocol.request(
                request, pair.remote_addr, integrity_key=self.remote_password.encode("utf8")
            )
        except (stun.TransactionError, ConnectionError, OSError):
            self.audited[id(pair)] = "failed"
            return
        self.audited[id(pair)] = "succeeded" if addr == pair.remote_addr else "failed"

    def failure(self, pair: CandidatePair) -> PairFailure | None:
        """Why a failed pair failed, from what its checks and its TURN client saw."""
        if self.final_state(pair) != "failed":
            return None
        counters = self.pair_counters(pair)
        protocol = pair.protocol
        turn_error = getattr(protocol, "turn_error", None)
        if pair.local_candidate.type == "relay" and turn_error and _binding_failed(pair):
            code, phrase = turn_error
            return PairFailure(
                "turn_error",
                f"the TURN server refused to relay to {pair.remote_addr[0]}: {code} {phrase}",
                code,
                phrase,
            )
        if counters.error_responses:
            return PairFailure(
                "error_response", "the remote agent answered the check with an error"
            )
        if id(pair) in self.expired:
            return PairFailure(
                "timeout",
                f"no response to {counters.requests_sent} check(s) within the check timeout",
            )
        if counters.responses_received == 0:
            return PairFailure(
                "timeout",
                f"no response to {counters.requests_sent} check(s): a NAT or firewall "
                "on the path dropped them",
            )
        return PairFailure("timeout", "responses came from an unexpected address")

    def valid_local(self, pair: CandidatePair) -> Candidate:
        """The local candidate of the valid pair (RFC 8445 section 7.2.5.3.2).

        A check sent from a host base through a NAT comes back mapped to the NAT's public
        address: the valid pair's local candidate is then the server-reflexive candidate
        with that address, or a peer-reflexive one if the NAT mapped it anew (what
        getStats() and the C SDK's "local candidate type" report).
        """
        base = pair.local_candidate
        mapped = self.pair_counters(pair).mapped
        if mapped is None or mapped == (base.host, base.port) or base.type == "relay":
            return base
        for candidate in self._local_candidates:
            if (candidate.host, candidate.port) == mapped:
                return candidate
        return Candidate(
            foundation=candidate_foundation("prflx", "udp", base.host),
            component=base.component,
            transport="udp",
            priority=candidate_priority(base.component, "prflx"),
            host=mapped[0],
            port=mapped[1],
            type="prflx",
            related_address=base.host,
            related_port=base.port,
        )

    def origin(self, candidate: Candidate) -> CandidateOrigin:
        return self.origins.get(
            (candidate.host, candidate.port, candidate.type), CandidateOrigin(None, None)
        )


def _binding_failed(pair: CandidatePair) -> bool:
    """Did the relay's TURN client fail to bind a channel to the pair's remote address?"""
    transport = pair.protocol.transport
    # aioice keeps the TURN client inside its transport (name-mangled attribute).
    client = getattr(transport, "_TurnTransport__inner_protocol", None)
    failed = getattr(client, "peer_to_failed_channel", {})
    return pair.remote_addr in failed


async def _resolved(server: ServerUrl) -> tuple[str, int]:
    """The STUN server's address: its name looked up once, through the host's resolver
    (a failed lookup is a gathering error of its own, as in libwebrtc, not a timeout)."""
    if _is_address(server.host):
        return server.address
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        server.host, server.port, family=socket.AF_INET, type=socket.SOCK_DGRAM
    )
    return infos[0][4][0], server.port


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def describe_error(error: BaseException) -> str:
    """One phrase for why a STUN/TURN server gave no candidate."""
    if isinstance(error, socket.gaierror):
        # libwebrtc's words ("STUN host lookup received error."), with the resolver's.
        return f"host lookup received error: {error.strerror}"
    if isinstance(error, stun.TransactionFailed):
        code, phrase = error.response.attributes.get("ERROR-CODE", (0, ""))
        return f"TURN error {code} {phrase}".strip()
    if isinstance(error, stun.TransactionTimeout):
        return "timeout: no response"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {error.reason or error}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, OSError):
        return f"{error.strerror or error}"
    return f"{type(error).__name__}: {error}"
