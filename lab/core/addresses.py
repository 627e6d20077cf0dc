"""Addresses as the result and the scenario speak of them."""

from __future__ import annotations

import ipaddress


def family(address: str) -> str:
    """`ipv4` or `ipv6` (an mDNS name, whose address is hidden: `unknown`)."""
    try:
        return f"ipv{ipaddress.ip_address(address).version}"
    except ValueError:
        return "unknown"
