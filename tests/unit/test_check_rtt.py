"""Round-trip times of connectivity checks follow Karn's rule: a response to a
retransmitted check is timed from its first send and only until a check answered on
its first send gives the real figure (found under emulated delay, where timing from
the last send gave 14 ms on an 80 ms path)."""

from __future__ import annotations

import pytest

from lab.peers import ice_agent
from lab.peers.ice_agent import CheckCounters


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ice_agent.time, "monotonic", fake)
    return fake


def send(counters: CheckCounters, tid: bytes) -> None:
    counters.requests_sent += 1
    if tid in counters.first_sent:
        counters.resent.add(tid)
    else:
        counters.first_sent[tid] = ice_agent.time.monotonic()


def test_a_retransmitted_check_is_timed_from_its_first_send(clock: Clock) -> None:
    counters = CheckCounters()
    send(counters, b"a")
    clock.now += 0.06
    send(counters, b"a")  # retransmitted before the 80 ms answer came
    clock.now += 0.02
    counters.sample_rtt(b"a")
    assert counters.rtt_ms == 80.0 and counters.rtt_exact is False


def test_a_clean_sample_replaces_the_upper_bound_and_then_stays(clock: Clock) -> None:
    counters = CheckCounters()
    send(counters, b"a")
    send(counters, b"a")
    clock.now += 0.2
    counters.sample_rtt(b"a")
    send(counters, b"b")
    clock.now += 0.08
    counters.sample_rtt(b"b")
    assert counters.rtt_ms == 80.0 and counters.rtt_exact is True
    send(counters, b"c")
    clock.now += 0.5
    counters.sample_rtt(b"c")
    assert counters.rtt_ms == 80.0  # the first clean sample is the pair's rtt
