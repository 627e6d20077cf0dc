"""Timing profiles: how long a peer waits for servers and candidate pairs.

`kvs` uses the C SDK's budgets so a run lasts as long as it would for a customer;
`fast` (the default) shortens STUN retransmissions so a scenario whose pairs fail
still ends in seconds. Both are recorded in the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def peer_deadline_s(self) -> float:
        """Longest a peer process may live; the runner kills it a little after."""
        checks = self.check_timeout_s * 2  # connecting, then finishing every pair
        return self.gathering_timeout_s * 2 + self.signaling_timeout_s + checks + 2


PROFILES: dict[str, TimingProfile] = {
    # Emulated links answer in well under a millisecond: four sends 30, 60 and 120 ms
    # apart, then 240 ms more -> a STUN transaction gives up after 0.45 s.
    "fast": TimingProfile("fast", 0.03, 3, 0.5, 4.0, 8.0, 0.005, 0.2),
    # The C SDK: gathering 10 s, connectivity checks 10 s (KVS.md).
    "kvs": TimingProfile("kvs", 0.5, 6, 10.0, 10.0, 30.0, 0.05, 0.5),
}
