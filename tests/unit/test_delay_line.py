"""The delay line without root: its model decision by decision on a fake clock (delay,
jitter distributions, order, reordering, duplication, Gilbert-Elliott loss, queue limit),
and its loop moving frames between two sockets in real time."""

from __future__ import annotations

import random
import socket
import statistics
import threading
import time

import pytest

from lab.network.delay_line import (
    TABLE_LIMIT,
    BurstLoss,
    DelayLine,
    Direction,
    LineSpec,
    table_value,
)
from lab.network.delay_line_run import Wire, build_line


def direction(seed: int = 1, **spec: object) -> Direction:
    """A seeded direction; its queue is unbounded unless the test sets `limit`."""
    spec.setdefault("limit", 10**9)
    return Direction(LineSpec(**spec), random.Random(seed))  # type: ignore[arg-type]


def delays_ms(line: Direction, count: int = 20_000, gap_s: float = 0.001) -> list[float]:
    """The delay of `count` frames arriving `gap_s` apart (each leaves before the next)."""
    result = []
    for n in range(count):
        now = n * gap_s
        (due,) = line.admit(now)
        line.left()
        result.append((due - now) * 1000)
    return result


def test_a_fixed_delay_is_exact() -> None:
    line = direction(delay_ms=100)
    assert line.admit(1.0) == [pytest.approx(1.1)]
    assert all(d == pytest.approx(100) for d in delays_ms(line, 100))


def test_uniform_jitter_stays_within_one_jitter_either_side() -> None:
    drawn = delays_ms(direction(delay_ms=100, jitter_ms=20))
    assert 80 <= min(drawn) < 81 and 119 < max(drawn) <= 120
    assert statistics.mean(drawn) == pytest.approx(100, abs=0.5)
    assert statistics.stdev(drawn) == pytest.approx(20 / 3**0.5, rel=0.03)


def test_normal_jitter_has_the_jitter_as_its_standard_deviation_cut_at_four() -> None:
    drawn = delays_ms(direction(delay_ms=100, jitter_ms=10, jitter_distribution="normal"))
    assert statistics.mean(drawn) == pytest.approx(100, abs=0.3)
    assert statistics.stdev(drawn) == pytest.approx(10, rel=0.03)
    assert min(drawn) >= 100 - 10 * TABLE_LIMIT and max(drawn) <= 100 + 10 * TABLE_LIMIT


@pytest.mark.parametrize("distribution", ["pareto", "paretonormal"])
def test_pareto_jitter_is_centred_with_a_long_tail_upwards(distribution: str) -> None:
    rng = random.Random(7)
    values = [table_value(distribution, rng) for _ in range(50_000)]
    assert statistics.mean(values) == pytest.approx(0, abs=0.06)
    assert max(values) <= TABLE_LIMIT
    assert max(values) > 2 > -min(values)  # the tail is on the late side


def test_no_delay_is_ever_negative() -> None:
    drawn = delays_ms(direction(delay_ms=5, jitter_ms=10, jitter_distribution="normal"))
    assert min(drawn) == 0 and max(drawn) > 5


def test_jitter_reorders_unless_told_to_keep_the_order() -> None:
    def inversions(line: Direction) -> int:
        dues = [line.admit(n * 0.001)[0] for n in range(2000)]  # 1 ms apart, 10 ms jitter
        return sum(b < a for a, b in zip(dues, dues[1:], strict=False))

    assert inversions(direction(delay_ms=50, jitter_ms=10)) > 500
    assert inversions(direction(delay_ms=50, jitter_ms=10, jitter_reorders=False)) == 0


def test_reordering_sends_that_share_at_once() -> None:
    line = direction(delay_ms=50, reorder_percent=25)
    drawn = delays_ms(line, 10_000)
    immediate = sum(d == 0 for d in drawn)
    assert immediate == line.counters.reordered
    assert 2300 < immediate < 2700
    assert all(d == pytest.approx(50) for d in drawn if d)


def test_duplicates_get_a_delay_of_their_own() -> None:
    line = direction(delay_ms=50, jitter_ms=5, duplicate_percent=10)
    copies = [line.admit(n * 0.01) for n in range(10_000)]
    twice = [c for c in copies if len(c) == 2]
    assert 900 < len(twice) < 1100
    assert line.counters.duplicated == len(twice)
    assert all(a != b for a, b in twice)


def test_gilbert_elliott_loses_in_bursts_as_netem_does() -> None:
    """p 1 %, r 25 %, everything lost in the bad state: p / (p + r) = 3.85 % lost, in
    bursts of 1 / r = 4 packets on average."""
    line = direction(burst_loss=BurstLoss(p_percent=1, r_percent=25))
    fates = []
    for n in range(200_000):
        dues = line.admit(n * 1e-4)
        fates.append(bool(dues))
        for _ in dues:
            line.left()
    lost = fates.count(False)
    assert lost == line.counters.lost
    assert lost / len(fates) == pytest.approx(1 / 26, rel=0.1)
    bursts = [len(run) for run in "".join("x" if f else "." for f in fates).split("x") if run]
    assert statistics.mean(bursts) == pytest.approx(4, rel=0.1)


def test_gilbert_elliott_defaults_are_tcs_plain_random_loss() -> None:
    """tc's defaults: r = 100 - p, 1-h 100 %, 1-k 0 %: each packet lost with p, whatever
    happened to the one before."""
    assert BurstLoss(p_percent=5).r_percent == 95
    plain = direction(burst_loss=BurstLoss(p_percent=5))
    fates = [bool(plain.admit(0)) for _ in range(200_000)]
    lost = fates.count(False)
    assert lost / len(fates) == pytest.approx(0.05, rel=0.1)
    after_a_loss = [b for a, b in zip(fates, fates[1:], strict=False) if not a]
    assert after_a_loss.count(False) / len(after_a_loss) == pytest.approx(0.05, rel=0.2)


def test_gilbert_elliott_loses_in_the_good_state_too() -> None:
    good_only = direction(burst_loss=BurstLoss(0, good_loss_percent=20))
    lost = sum(not good_only.admit(0) for _ in range(10_000))
    assert 1800 < lost < 2200


def test_a_full_queue_drops_what_arrives() -> None:
    line = direction(delay_ms=100, limit=3)
    assert all(line.admit(0) for _ in range(3))
    assert line.admit(0) == [] and line.counters.overflowed == 1
    line.left()
    assert line.admit(0)


def test_the_line_hands_out_frames_in_due_order_on_a_fake_clock() -> None:
    out = direction(delay_ms=100)
    into = direction(delay_ms=50)
    line = DelayLine({"out": out, "in": into})
    sent: list[tuple[str, bytes]] = []
    assert line.arrive("out", b"a", now=0.0) == []
    assert line.arrive("in", b"b", now=0.01) == []
    assert line.arrive("out", b"c", now=0.02) == []
    assert line.next_due() == pytest.approx(0.06)
    assert line.pop_due(0.059, lambda k, f: sent.append((k, f))) == 0  # not yet
    assert line.pop_due(0.0599999, lambda k, f: sent.append((k, f))) == 1  # within slack
    assert line.pop_due(0.2, lambda k, f: sent.append((k, f))) == 2
    assert sent == [("in", b"b"), ("out", b"a"), ("out", b"c")]
    assert line.next_due() is None and len(line) == 0
    assert line.counters()["out"]["sent"] == 2 and out.queued == 0


def test_a_direction_without_a_model_passes_frames_at_once() -> None:
    line = DelayLine({"out": None, "in": direction(delay_ms=10)})
    assert line.arrive("out", b"x", now=0) == [b"x"]
    assert len(line) == 0 and "out" not in line.counters()


def test_a_spec_survives_its_trip_through_the_command_line() -> None:
    spec = LineSpec(
        delay_ms=20,
        jitter_ms=3,
        jitter_distribution="pareto",
        jitter_reorders=False,
        reorder_percent=1,
        duplicate_percent=2,
        burst_loss=BurstLoss(1, 30, 90, 0.5),
        limit=4000,
    )
    assert LineSpec.from_dict(spec.as_dict()) == spec
    assert LineSpec.from_dict(LineSpec().as_dict()) == LineSpec()


# -- the loop, in real time ---------------------------------------------------------------


def test_the_loop_delays_one_direction_and_passes_the_other() -> None:
    """Socket pairs stand in for the packet sockets on `near` and `far`."""
    node, near = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    neighbour, far = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for sock in (near, far):
        sock.setblocking(False)
    wire = Wire(near, far, build_line(LineSpec(delay_ms=50), None, seed=1))
    stop = threading.Event()
    loop = threading.Thread(target=wire.run, args=(stop.is_set,), daemon=True)
    loop.start()
    try:
        neighbour.settimeout(2)
        node.settimeout(2)
        sent = time.monotonic()
        node.send(b"out-frame")
        assert neighbour.recv(100) == b"out-frame"
        out_ms = (time.monotonic() - sent) * 1000
        sent = time.monotonic()
        neighbour.send(b"in-frame")
        assert node.recv(100) == b"in-frame"
        in_ms = (time.monotonic() - sent) * 1000
    finally:
        stop.set()
        node.send(b"wake")  # the loop looks at `stop` once select returns
        loop.join(timeout=5)
    assert 50 <= out_ms < 70, out_ms
    assert in_ms < 20, in_ms
    assert wire.line.counters()["out"]["sent"] >= 1
