"""What a reader found in an artifact: one fact, the line it came from, and its text.

Every finding keeps the line number and the line itself, so the engineer can check each
inference against the customer's own words. Readers are tolerant: addresses may be
redacted (`XXX.XXX.XXX.XXX`), lines may be cut, and anything not understood is skipped.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field
from typing import Any

#: The C SDK's status codes a support case quotes (Include.h, STATUS_ICE_BASE 0x5a000000).
STATUS_NAMES = {
    "0x5a000005": "STATUS_ICE_CANDIDATE_STRING_IS_TCP",
    "0x5a00000b": "STATUS_ICE_NO_LOCAL_CANDIDATE_AVAILABLE_AFTER_GATHERING_TIMEOUT",
    "0x5a00000d": "STATUS_ICE_NO_CONNECTED_CANDIDATE_PAIR",
    "0x5a00000e": "STATUS_ICE_CANDIDATE_PAIR_LIST_EMPTY",
    "0x5a000010": "STATUS_ICE_NOMINATED_CANDIDATE_NOT_CONNECTED",
    "0x5a000013": "STATUS_ICE_FAILED_TO_NOMINATE_CANDIDATE_PAIR",
    "0x5a00001d": "STATUS_ICE_NO_LOCAL_HOST_CANDIDATE_AVAILABLE",
    "0x5a00001e": "STATUS_ICE_NO_NOMINATED_VALID_CANDIDATE_PAIR_AVAILABLE",
    "0x5a000020": "STATUS_TURN_CONNECTION_STATE_TRANSITION_TIMEOUT",
    "0x5a000021": "STATUS_TURN_CONNECTION_FAILED_TO_CREATE_PERMISSION",
    "0x5a000022": "STATUS_TURN_CONNECTION_FAILED_TO_BIND_CHANNEL",
    "0x5a000025": "STATUS_ICE_FAILED_TO_RECOVER_FROM_DISCONNECTION",
    "0x5a000026": "STATUS_ICE_NO_AVAILABLE_ICE_CANDIDATE_PAIR",
    "0x5a000027": "STATUS_TURN_CONNECTION_PEER_NOT_USABLE",
    "0x5a00002a": "STATUS_TURN_CONNECTION_ALLOCATION_FAILED",
    "0x5a00002c": "STATUS_TURN_CONNECTION_GET_CREDENTIALS_FAILED",
}
#: Statuses that end the ICE agent (what `kvs_status` of a failed run names).
ICE_FAILURES = ("0x5a00000b", "0x5a00000d", "0x5a00000e", "0x5a000013")
#: STUN/TURN error codes (RFC 8489, RFC 8656) with their reason phrases.
TURN_PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    437: "Allocation Mismatch",
    438: "Stale Nonce",
    440: "Address Family not Supported",
    441: "Wrong Credentials",
    442: "Unsupported Transport Protocol",
    486: "Allocation Quota Reached",
    500: "Server Error",
    508: "Insufficient Capacity",
}
CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")
ROLES = ("viewer", "master")
#: An IPv4 address, or one redacted digit by digit (`XXX.XXX.XXX.XXX`, `x.x.x.x`).
ADDRESS = r"(?:[0-9xX*]{1,3}\.){3}[0-9xX*]{1,3}"
STATUS_CODE = re.compile(r"\b0x(5a[0-9a-f]{6})\b", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """One fact read from the artifact.

    `kind` is one of: role, ice_server, candidate, gathering_error, turn_error,
    turn_state, status, agent_state, pair, selected, selected_detail, outcome,
    skipped_server, socket_error, gathering_done.
    """

    kind: str  # see the class docstring
    line: int
    text: str
    role: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def status_name(code: str) -> str:
    """`0x5a00000d` -> its name in the C SDK's Include.h (or 'unknown status')."""
    return STATUS_NAMES.get(code.lower(), "unknown status")


def turn_phrase(code: int) -> str:
    return TURN_PHRASES.get(code, "error")


def real_address(text: str | None) -> str | None:
    """The address, or None when the customer redacted it."""
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def is_private(address: str | None) -> bool | None:
    """True for RFC 1918 and carrier-grade NAT space, None when redacted or unknown."""
    real = real_address(address)
    if real is None:
        return None
    parsed = ipaddress.ip_address(real)
    return parsed.is_private or parsed in ipaddress.ip_network("100.64.0.0/10")


def status_codes(line: str) -> list[str]:
    """Every C SDK status code quoted in a line, lower-case with its 0x."""
    return ["0x" + m.group(1).lower() for m in STATUS_CODE.finditer(line)]
