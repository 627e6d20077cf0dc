"""The delay line's model: what happens to each frame crossing one direction of a link
where the kernel has no netem.

It follows netem (net/sched/sch_netem.c) decision for decision, so a scenario gives the
same figures on either mechanism: a duplicate draw, then a loss event (Gilbert-Elliott),
then the queue limit, then the delay - immediate for a reordered frame, else the fixed
delay plus jitter drawn from netem's distributions (uniform without a table; normal,
pareto and paretonormal as iproute2's tables, cut at 4 sigma). Without reordering by
jitter a frame never leaves before the one ahead of it, as netem does when a rate is set.

Pure: the clock (`now`) and the random numbers (`random.Random`) come from the caller,
so the scheduler is tested with a fake clock. `lab.network.delay_line_run` moves the
frames.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

from lab.core.documents import JsonObject

DISTRIBUTIONS = ("uniform", "normal", "pareto", "paretonormal")
#: netem's tables hold int16 values in units of 1/8192 sigma: nothing beyond ~4 sigma.
TABLE_LIMIT = 32767 / 8192
#: iproute2's pareto table: shape 3, shifted by its mean (1.5) and scaled by 4/3.
PARETO_SHAPE = 3.0
#: Frames due this close to now go out in the same wake-up (saves a timer per frame).
SLACK_S = 0.0001
_NORMAL = NormalDist()


@dataclass(frozen=True)
class BurstLoss:
    """Gilbert-Elliott loss, as netem's `loss gemodel p r 1-h 1-k` (all in percent).

    Without `r_percent` it is 100 - p, as tc makes it: the state then forgets itself
    from one packet to the next, and the loss is plain random loss of p %."""

    p_percent: float  # good -> bad, per frame
    r_percent: float | None = None  # bad -> good, per frame (None: 100 - p)
    bad_loss_percent: float = 100.0  # 1-h: loss in the bad state
    good_loss_percent: float = 0.0  # 1-k: loss in the good state

    def __post_init__(self) -> None:
        if self.r_percent is None:
            object.__setattr__(self, "r_percent", 100.0 - self.p_percent)


@dataclass(frozen=True)
class LineSpec:
    """One direction of a delay line, in the scenario's units (ms, percent)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    jitter_distribution: str = "uniform"
    jitter_reorders: bool = True
    reorder_percent: float = 0.0
    duplicate_percent: float = 0.0
    burst_loss: BurstLoss | None = None
    limit: int = 1000  # frames held at once (netem's `limit`)

    def as_dict(self) -> JsonObject:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> LineSpec:
        loss = doc.get("burst_loss")
        fields = {k: v for k, v in doc.items() if k != "burst_loss"}
        return cls(**fields, burst_loss=BurstLoss(**loss) if loss else None)


def table_value(distribution: str, rng: random.Random) -> float:
    """A draw in units of sigma from one of netem's delay distributions."""
    if distribution == "uniform":
        return 2 * rng.random() - 1  # netem without a table: mu - sigma .. mu + sigma
    if distribution == "normal":
        return max(-TABLE_LIMIT, min(TABLE_LIMIT, rng.gauss(0.0, 1.0)))
    q = rng.random()
    if distribution == "pareto":
        return _pareto(1.0 - q)
    if distribution == "paretonormal":
        # iproute2 mixes the two quantile functions at one index: (normal + 3 pareto) / 4.
        normal = _NORMAL.inv_cdf(min(max(q, 1e-9), 1 - 1e-9))
        return (max(-TABLE_LIMIT, min(TABLE_LIMIT, normal)) + 3 * _pareto(1.0 - q)) / 4
    raise ValueError(f"unknown distribution {distribution!r}")


def _pareto(u: float) -> float:
    value = (max(u, 1e-12) ** (-1.0 / PARETO_SHAPE) - 1.5) * 4.0 / 3.0
    return min(value, TABLE_LIMIT)


class GilbertElliott:
    """netem's loss_gilb_ell: the state at a frame's arrival decides its fate; the
    transition drawn first applies from the next frame on."""

    def __init__(self, model: BurstLoss, rng: random.Random) -> None:
        self.p = model.p_percent / 100
        self.r = (model.r_percent or 0.0) / 100
        self.bad_loss = model.bad_loss_percent / 100
        self.good_loss = model.good_loss_percent / 100
        self.bad = False
        self.rng = rng

    def lost(self) -> bool:
        if self.bad:
            if self.rng.random() < self.r:
                self.bad = False
            return self.rng.random() < self.bad_loss
        if self.rng.random() < self.p:
            self.bad = True
        return self.rng.random() < self.good_loss


@dataclass
class Counters:
    """What one direction did, for the log and the benchmark."""

    received: int = 0
    sent: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    overflowed: int = 0


class Direction:
    """One direction's state: random draws, loss state, queue length, last due time."""

    def __init__(self, spec: LineSpec, rng: random.Random) -> None:
        if spec.jitter_distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown jitter distribution {spec.jitter_distribution!r}")
        self.spec = spec
        self.rng = rng
        self.delay_s = spec.delay_ms / 1000
        self.jitter_s = spec.jitter_ms / 1000
        self.reorder = spec.reorder_percent / 100
        self.duplicate = spec.duplicate_percent / 100
        self.loss = GilbertElliott(spec.burst_loss, rng) if spec.burst_loss else None
        self.queued = 0
        self.last_due = -math.inf
        self.counters = Counters()

    def admit(self, now: float) -> list[float]:
        """Due times for the copies of a frame arriving at `now`: none if it is lost or
        the queue is full, two if it is duplicated (netem_enqueue's order)."""
        self.counters.received += 1
        copies = 1
        if self.duplicate and self.rng.random() < self.duplicate:
            copies += 1
            self.counters.duplicated += 1
        if self._lost():
            copies -= 1
        dues = self._enqueue(now) if copies else []
        # netem sends the copy through itself again, duplication off: a loss draw and a
        # delay of its own.
        if copies == 2 and not self._lost():
            dues += self._enqueue(now)
        return dues

    def _lost(self) -> bool:
        if self.loss is None or not self.loss.lost():
            return False
        self.counters.lost += 1
        return True

    def _enqueue(self, now: float) -> list[float]:
        if self.queued >= self.spec.limit:
            self.counters.overflowed += 1
            return []
        self.queued += 1
        return [self.due(now)]

    def due(self, now: float) -> float:
        """When a frame arriving at `now` leaves."""
        if self.reorder and self.rng.random() < self.reorder:
            self.counters.reordered += 1
            return now  # netem sends it at once, ahead of everything queued
        delay = self.delay_s
        if self.jitter_s:
            delay += self.jitter_s * table_value(self.spec.jitter_distribution, self.rng)
        due = now + max(0.0, delay)
        if not self.spec.jitter_reorders:
            due = max(due, self.last_due)
        self.last_due = max(self.last_due, due)
        return due

    def left(self) -> None:
        """A frame of this direction was sent."""
        self.queued -= 1
        self.counters.sent += 1


@dataclass(order=True)
class _Waiting:
    due: float
    seq: int
    key: str = field(compare=False)
    frame: bytes = field(compare=False)


class DelayLine:
    """Frames of both directions waiting on the line, in the order they are due.

    `directions` maps a key ("out", "in") to its model, or to None for a direction the
    line passes on at once (impaired by netem, or not at all).
    """

    def __init__(
        self, directions: Mapping[str, Direction | None], slack_s: float = SLACK_S
    ) -> None:
        self.directions = dict(directions)
        self.slack_s = slack_s
        self._heap: list[_Waiting] = []
        self._seq = itertools.count()

    def arrive(self, key: str, frame: bytes, now: float) -> list[bytes]:
        """Take a frame in; returns it at once if its direction has no model."""
        direction = self.directions[key]
        if direction is None:
            return [frame]
        for due in direction.admit(now):
            heapq.heappush(self._heap, _Waiting(due, next(self._seq), key, frame))
        return []

    def next_due(self) -> float | None:
        return self._heap[0].due if self._heap else None

    def pop_due(self, now: float, send: Callable[[str, bytes], None]) -> int:
        """Hand every frame due by `now` (plus the slack) to `send`; returns how many."""
        count = 0
        limit = now + self.slack_s
        while self._heap and self._heap[0].due <= limit:
            waiting = heapq.heappop(self._heap)
            direction = self.directions[waiting.key]
            assert direction is not None
            direction.left()
            send(waiting.key, waiting.frame)
            count += 1
        return count

    def __len__(self) -> int:
        return len(self._heap)

    def counters(self) -> dict[str, dict[str, int]]:
        return {k: asdict(d.counters) for k, d in self.directions.items() if d is not None}
