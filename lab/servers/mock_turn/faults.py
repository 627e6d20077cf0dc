"""Fault decisions as pure functions of the configured faults and one request.

Kept free of I/O so the unit tests can pin exactly which request each fault hits.
"""

from __future__ import annotations

import ipaddress

from .config import Faults, Rule


def _matches(rule: Rule, method: str, transport: str) -> bool:
    return rule.method == method and rule.transport in (None, transport)


def should_drop(faults: Faults, method: str, transport: str) -> bool:
    """Never answer (or relay) this request: the client sees only timeouts."""
    return any(_matches(rule, method, transport) for rule in faults.drop)


def delay_for(faults: Faults, method: str, transport: str) -> float:
    """Seconds to hold the answer back; the longest matching rule wins."""
    return max(
        (rule.seconds for rule in faults.delay if _matches(rule, method, transport)),
        default=0.0,
    )


def is_forbidden_peer(faults: Faults, peer_ip: str) -> bool:
    """A cloud TURN service's '403 Forbidden IP' for peers in private ranges."""
    address = ipaddress.ip_address(peer_ip)
    return any(address in network for network in faults.forbid_peers)


def quota_reached(faults: Faults, active_allocations: int) -> bool:
    """True when one more allocation would exceed the server-wide quota."""
    return faults.quota is not None and active_allocations >= faults.quota
