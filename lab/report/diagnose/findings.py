"""What a reader found in an artifact: one fact, the line it came from, and its text.

Every finding keeps the line number and the line itself, so the engineer can check each
inference against the customer's own words. Readers are tolerant: addresses may be
redacted (`XXX.XXX.XXX.XXX`), lines may be cut; a C SDK line no message explains is an
`other` finding with its component, never dropped.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field

from lab.core.documents import JsonObject
from lab.report.diagnose import knowledge

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
STATUS_CODE = re.compile(r"\b0x([0-9a-fA-F]{8})\b")
#: A line that quotes a common (0x000000xx) status says so: "status", "error", "failed".
STATUS_WORDS = re.compile(r"status|error|fail|returned", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """One fact read from the artifact.

    `kind` is one of: role, ice_server, candidate, gathering_error, turn_error,
    turn_state, turn_failed, turn_relay, status, agent_state, agent_event, ice_failed,
    pair, pair_check, pair_count, no_pair, selected, selected_detail, outcome,
    skipped_server, socket_error, socket_check, gathering_done, dtls_done, pc_state,
    profile, sdk_version, signaling_state, signaling_error, signaling_event, http_status,
    clock_skew, other (a C SDK line no message explains: its component and function).
    """

    kind: str  # see the class docstring
    line: int
    text: str
    role: str | None = None
    data: JsonObject = field(default_factory=dict)

    def as_dict(self) -> JsonObject:
        return asdict(self)


def status_name(code: str) -> str:
    """`0x5a00000d` -> its name in the C SDK's Include.h (or 'unknown status')."""
    return knowledge.status(code)["name"]


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


#: Addresses a LAN or a carrier uses (RFC 1918, RFC 6598, link-local, ULA); the documentation
#: ranges the lab gives the emulated internet (and customers' redactions) are not among them.
LAN_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)


def is_private(address: str | None) -> bool | None:
    """True for LAN and carrier-grade NAT space, None when redacted or unknown."""
    real = real_address(address)
    if real is None:
        return None
    parsed = ipaddress.ip_address(real)
    return any(parsed in network for network in LAN_NETWORKS if network.version == parsed.version)


def status_codes(line: str) -> list[str]:
    """Every C SDK status code quoted in a line, lower-case with its 0x: the table's codes, and
    common or newer ones where the line speaks of a status, an error or a failure."""
    codes = []
    for m in STATUS_CODE.finditer(line):
        code = "0x" + m.group(1).lower()
        if line[max(0, m.start() - 1) : m.start()] == "[":
            continue  # "[%p]": a pointer the SDK prints before its message, not a status
        vouched = code in knowledge.status_codes() and not code.startswith("0x000000")
        if knowledge.is_status(code) and (vouched or STATUS_WORDS.search(line)):
            codes.append(code)
    return codes
