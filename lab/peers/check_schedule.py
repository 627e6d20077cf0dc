"""When the lab's aioice agent checks, nominates and gives up: derived from what the
pairs have shown (their round trips, how many there are), not from constants.

aioice starts one check every 20 ms; the lab's profiles ask for a pace of their own
(`check_pacing_s`, RFC 8445's Ta). The controlling agent waits after a first pair works
so that better pairs may finish (regular nomination): long enough for the other agent,
pacing the same way, to have sent its first check on every pair, and for that check's
triggered answer to come back; never longer than the profile's `nomination_wait_s`.
Once a pair has worked, checks retransmit after a few of the longest round trip measured
to the STUN servers or on that pair (at most the profile's timeout, which holds until
then). Once the call is up, the pairs that never answered are checked once more, with a
timeout from the round trips the working pairs measured: a pair that stays silent for
several round trips is not a pair that works. Only the fast profile derives
(lab/peers/timing.py DERIVED); the kvs profile keeps the C SDK's constants.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

#: aioice's own check pacing (connect() sleeps this long between two checks).
AIOICE_TICK_S = 0.02
#: Round trips a pair may take to answer after the other agent's first check opened
#: the way: its check, our triggered check, and the answer, with room for a busy CPU.
SETTLE_ROUND_TRIPS = 4
#: The shortest retransmission timeout derived from round trips: a round trip measured
#: on a busy two-core machine is noisy below ten milliseconds.
MIN_RTO_S = 0.015
#: A derived retransmission timeout is this many round trips (RFC 5389's RTO is a few).
RTO_ROUND_TRIPS = 4


def checks_per_tick(pacing_s: float) -> int:
    """How many checks to start at each aioice tick to pace them `pacing_s` apart."""
    if pacing_s <= 0:
        return 1
    return max(1, math.floor(AIOICE_TICK_S / pacing_s + 1e-9))


def paced_interval_s(pacing_s: float) -> float:
    """The interval between two checks that the tick and checks_per_tick give."""
    return AIOICE_TICK_S / checks_per_tick(pacing_s)


def nomination_deadline(
    *,
    checking_started: float,
    pairs: int,
    pacing_s: float,
    round_trips_s: Iterable[float],
    first_success: float,
    wait_cap_s: float,
    stun_rto_s: float,
) -> float:
    """When to nominate the best pair that has worked, if better pairs are still pending.

    By `checking_started + pairs x interval` the other agent (pacing alike, and started
    no later: the answerer checks before its answer leaves) has sent a first check on
    every pair; a pair that can work then answers within a few round trips, or after one
    retransmission of ours. Bounded by `first_success + wait_cap_s` (the profile's wait).
    """
    rtt_s = max(round_trips_s, default=0.0)
    all_sent = checking_started + pairs * paced_interval_s(pacing_s)
    derived = all_sent + SETTLE_ROUND_TRIPS * rtt_s + stun_rto_s
    return min(derived, first_success + wait_cap_s)


def derived_rto_s(round_trips_s: Iterable[float], profile_rto_s: float) -> float:
    """A retransmission timeout of a few of the longest round trip measured, at least
    MIN_RTO_S, at most the profile's (without a measured round trip, the profile's)."""
    measured = [rtt for rtt in round_trips_s if rtt > 0]
    if not measured:
        return profile_rto_s
    derived = RTO_ROUND_TRIPS * max(measured)
    return min(profile_rto_s, max(MIN_RTO_S, derived))


def transaction_s(rto_s: float, retries: int) -> float:
    """How long a STUN transaction lasts before it gives up (all sends, doubling RTO)."""
    return rto_s * (2 ** (retries + 1) - 1)
