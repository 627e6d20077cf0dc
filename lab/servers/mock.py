"""The lab's mock STUN/TURN server as the run's server: its configuration, from the scenario.

The mock listens where coturn would (UDP and TCP 3478, TLS 443, RFC 5780 on the
second address) so `--servers mock` and `--servers coturn` are interchangeable;
the scenario's `faults` turn on what coturn cannot do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.servers.coturn import REALM, STUN_TURN_PORT, TLS_PORT

ALL_TRANSPORTS = ("udp", "tcp", "tls")


def mock_config(
    addresses: tuple[str, ...],
    cert: Path,
    key: Path,
    secret: str,
    denied_peers: tuple[str, ...],
    faults: dict[str, Any],
    request_log: Path,
) -> dict[str, Any]:
    """The mock server's JSON configuration (pure: unit-tested)."""
    primary = addresses[0]
    ports = {"udp": STUN_TURN_PORT, "tcp": STUN_TURN_PORT, "tls": TLS_PORT}
    transports = faults.get("transports", ALL_TRANSPORTS)
    config: dict[str, Any] = {
        "listen": [{"address": primary, "port": ports[t], "transport": t} for t in transports],
        "relay_address": primary,
        "realm": REALM,
        "auth": {"mode": "rest", "secret": secret},
        "tls": {"cert": str(cert), "key": str(key)},
        "faults": {
            "forbid_peers": list(denied_peers),
            **{k: faults[k] for k in ("credentials", "quota", "drop", "delay") if k in faults},
        },
        "request_log": str(request_log),
    }
    if len(addresses) > 1:
        config["alternate"] = {"address": addresses[1], "port": STUN_TURN_PORT + 1}
    return config
