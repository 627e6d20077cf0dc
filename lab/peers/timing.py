"""Timing profiles: how long a peer waits for servers and candidate pairs.

`kvs` uses the C SDK's budgets so a run lasts as long as it would for a customer;
`fast` (the default) shortens STUN retransmissions so a scenario whose pairs fail
still ends in seconds. Both are recorded in the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from lab.core.documents import JsonObject
from lab.peers.check_schedule import transaction_s


@dataclass(frozen=True)
class TimingProfile:
    name: str
    stun_rto_s: float  # first STUN retransmission timeout (aioice RETRY_RTO)
    stun_retries: int  # retransmissions after the first send (aioice RETRY_MAX)
    gathering_timeout_s: float  # per STUN/TURN server
    check_timeout_s: float  # connectivity checks: no pair by then -> failed
    signaling_timeout_s: float  # waiting for the other peer's description
    check_pacing_s: float  # between starting two checks (RFC 8445's Ta)
    nomination_wait_s: float  # after a pair works, how long better pairs may still finish
    slowdown: float = 1.0  # the machine's (lab/core/slowdown.py): every budget multiplied by it

    @property
    def stun_transaction_s(self) -> float:
        """How long a STUN transaction waits before giving up (all sends, doubling RTO)."""
        return transaction_s(self.stun_rto_s, self.stun_retries)

    def as_dict(self) -> JsonObject:
        return asdict(self)

    @property
    def peer_deadline_s(self) -> float:
        """Longest a peer process may live; the runner kills it a little after."""
        checks = self.check_timeout_s * 2  # connecting, then finishing every pair
        start_and_exit = 2 * self.slowdown
        return self.gathering_timeout_s * 2 + self.signaling_timeout_s + checks + start_and_exit


PROFILES: dict[str, TimingProfile] = {
    # Emulated links answer in well under a millisecond: four sends 30, 60 and 120 ms
    # apart, then 240 ms more -> a STUN transaction gives up after 0.45 s.
    "fast": TimingProfile("fast", 0.03, 3, 0.5, 4.0, 8.0, 0.005, 0.2),
    # The C SDK: gathering 10 s, connectivity checks 10 s (KVS.md).
    "kvs": TimingProfile("kvs", 0.5, 6, 10.0, 10.0, 30.0, 0.05, 0.5),
}


#: Profiles whose agent derives its check timing from what it measures (round trips,
#: the number of pairs: lab/peers/check_schedule.py). `kvs` keeps the C SDK's constants.
DERIVED = frozenset({"fast"})


def derives_timing(timing: JsonObject) -> bool:
    """Whether an agent with this (profile) timing derives its check timing: a DERIVED
    profile on links without added delay. A delay the scenario adds on one path (a far
    TURN server, a radio link) is in no round trip measured on another, so a stretched
    profile keeps its stretched constants."""
    base = PROFILES.get(timing.get("name", ""))
    return (
        timing.get("name") in DERIVED
        and base is not None
        and timing["stun_rto_s"] <= base.stun_rto_s
    )


#: Profiles stretched for impaired links. `kvs` keeps the C SDK's values whatever the
#: links do: it shows what a customer's device would do on them.
STRETCHED = frozenset({"fast"})
#: Check budget on lossy links: ICE itself copes (30 ms STUN RTO), but the data channel
#: behind it retransmits DTLS flights after 1, 2, 4 s and SCTP chunks after 3, 6, 12 s
#: (aiortc's initial RTO), so one unlucky chain of losses costs 10-20 s.
LOSSY_CHECK_TIMEOUT_S = 30.0
#: STUN retransmissions on lossy links: at 10-15 % loss each way a transaction's four
#: sends all fail about once in 200, enough to lose the one nomination check of a run;
#: six sends make that about once in 2000 (a failing pair then gives up after 1.9 s).
LOSSY_STUN_RETRIES = 5


def for_host(profile: TimingProfile, slowdown: float) -> TimingProfile:
    """The profile on a machine whose CPU is `slowdown` times slower (lab/core/slowdown.py):
    every wait multiplied, so a STUN answer or a handshake that a slow CPU delays is not
    taken for a lost one. The check pacing stays: it is how fast checks go out, not a
    wait. A profile so stretched no longer derives its timing (derives_timing)."""
    if slowdown <= 1.0:
        return profile
    return replace(
        profile,
        stun_rto_s=round(profile.stun_rto_s * slowdown, 3),
        gathering_timeout_s=round(profile.gathering_timeout_s * slowdown, 3),
        check_timeout_s=round(profile.check_timeout_s * slowdown, 3),
        signaling_timeout_s=round(profile.signaling_timeout_s * slowdown, 3),
        nomination_wait_s=round(profile.nomination_wait_s * slowdown, 3),
        slowdown=slowdown,
    )


def for_links(
    profile: TimingProfile, added_rtt_ms: float = 0, loss_percent: float = 0
) -> TimingProfile:
    """The profile stretched for links that add up to `added_rtt_ms` to a round trip (the
    scenario sums every impaired interface of every node: no path can cross more) and
    lose packets (`loss_percent`, the worst interface's).

    Delay: the first STUN retransmission waits at least twice the added round trip (else
    every check would time out before its answer could arrive); the budgets built on
    STUN transactions (gathering, checks) grow with it, signaling gets the longer
    gathering plus 20 round trips (TCP, TLS and WebSocket handshakes), and nomination
    waits four. Loss: the check budget becomes LOSSY_CHECK_TIMEOUT_S and STUN gets
    LOSSY_STUN_RETRIES retransmissions. Only profiles in
    STRETCHED change; without delay or loss the profile is returned unchanged.
    """
    if profile.name not in STRETCHED or (added_rtt_ms <= 0 and loss_percent <= 0):
        return profile
    stretched = profile
    rtt_s = max(0.0, added_rtt_ms) / 1000
    rto_s = max(profile.stun_rto_s, 2 * rtt_s)
    if rto_s > profile.stun_rto_s:
        longer = replace(profile, stun_rto_s=round(rto_s, 3))
        extra_s = longer.stun_transaction_s - profile.stun_transaction_s
        stretched = replace(
            longer,
            gathering_timeout_s=round(profile.gathering_timeout_s + extra_s, 3),
            check_timeout_s=round(profile.check_timeout_s + 2 * extra_s, 3),
            signaling_timeout_s=round(profile.signaling_timeout_s + 2 * extra_s + 20 * rtt_s, 3),
            nomination_wait_s=round(max(profile.nomination_wait_s, 4 * rtt_s), 3),
        )
    if loss_percent > 0:
        check_s = max(stretched.check_timeout_s, LOSSY_CHECK_TIMEOUT_S)
        retries = max(stretched.stun_retries, LOSSY_STUN_RETRIES)
        stretched = replace(stretched, check_timeout_s=check_s, stun_retries=retries)
    return stretched
