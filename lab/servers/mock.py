"""The lab's mock STUN/TURN server as the run's server: its configuration, from the scenario.

The mock listens where coturn would (UDP and TCP 3478, TLS and UDP 443, on both
addresses, with RFC 5780 across them) so `--servers mock` and `--servers coturn` are
interchangeable; the scenario's `faults` turn on what coturn cannot do.
"""

from __future__ import annotations

from pathlib import Path

from lab.core.documents import JsonObject
from lab.servers.coturn import REALM, STUN_TURN_PORT, TLS_PORT

ALL_TRANSPORTS = ("udp", "tcp", "tls")


def listeners(addresses: tuple[str, ...], transports: tuple[str, ...] | list[str]) -> list[dict]:
    """Where coturn listens: UDP and TCP 3478 and TLS 443 on every address, and UDP 443
    (coturn's TLS port takes UDP too), which the service-shaped URLs use.

    On a second address UDP comes from the RFC 5780 socket set (`alternate`), which the
    mock builds for every UDP listener of the first address.
    """
    wanted = [
        ("udp", STUN_TURN_PORT),
        ("udp", TLS_PORT),
        ("tcp", STUN_TURN_PORT),
        ("tls", TLS_PORT),
    ]
    result = []
    for index, address in enumerate(addresses[:2]):
        for transport, port in wanted:
            if transport not in transports or (index > 0 and transport == "udp"):
                continue
            result.append({"address": address, "port": port, "transport": transport})
    return result


def mock_config(
    addresses: tuple[str, ...],
    cert: Path,
    key: Path,
    secret: str,
    denied_peers: tuple[str, ...],
    faults: JsonObject,
    request_log: Path,
) -> JsonObject:
    """The mock server's JSON configuration (pure: unit-tested)."""
    primary = addresses[0]
    config: JsonObject = {
        "listen": listeners(addresses, faults.get("transports", ALL_TRANSPORTS)),
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
