"""coturn as the run's STUN/TURN server: its command line, readiness and log.

coturn's `-n` means "no configuration file", so everything is passed as options;
nothing is read from or written to the system's /etc, /var/lib or /var/log.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

STUN_TURN_PORT = 3478
TLS_PORT = 443
REALM = "ice-lab"


@dataclass(frozen=True)
class CoturnSetup:
    addresses: tuple[str, ...]  # first is primary; a second one enables RFC 5780
    cert: Path
    key: Path
    secret: str
    workdir: Path
    denied_peers: tuple[str, ...] = ()


def cidr_to_range(cidr: str) -> str:
    """coturn's denied-peer-ip takes ranges (a-b), not CIDR."""
    network = ipaddress.ip_network(cidr, strict=False)
    return f"{network.network_address}-{network.broadcast_address}"


def coturn_args(setup: CoturnSetup) -> list[str]:
    """The turnserver command line for one run (pure: unit-tested)."""
    primary = setup.addresses[0]
    args = ["turnserver", "-n", "--no-cli", "--log-file", str(log_path(setup)), "--simple-log"]
    for address in setup.addresses:
        args += ["--listening-ip", address]
    args += [
        "--relay-ip", primary,
        "--listening-port", str(STUN_TURN_PORT),
        "--tls-listening-port", str(TLS_PORT),
        "--cert", str(setup.cert),
        "--pkey", str(setup.key),
        "--realm", REALM,
        "--use-auth-secret",
        "--static-auth-secret", setup.secret,
        "--fingerprint",
        "--no-multicast-peers",
        "--pidfile", str(setup.workdir / "turnserver.pid"),
        "--userdb", str(setup.workdir / "turndb"),
        "--verbose",
    ]  # fmt: skip
    for cidr in setup.denied_peers:
        args += ["--denied-peer-ip", cidr_to_range(cidr)]
    return args


def log_path(setup: CoturnSetup) -> Path:
    return setup.workdir / "coturn.log"


def ready_markers(setup: CoturnSetup) -> list[str]:
    """Log lines that, once all present, mean every listener the peers need is open and
    coturn answers: its user database is the last thing it opens, and until then it may
    answer nothing (seen under load: no answer to STUN for half a second)."""
    primary = setup.addresses[0]
    return [
        f"DTLS/UDP listener opened on: {primary}:{STUN_TURN_PORT}",
        f"TLS/TCP listener opened on : {primary}:{STUN_TURN_PORT}",
        f"TLS/TCP listener opened on : {primary}:{TLS_PORT}",
        f"SQLite DB connection success: {setup.workdir / 'turndb'}",
    ]
