"""What the STUN/TURN server did, request by request, for the result's `servers.turn.requests`.

The mock server writes its request log as JSON lines; for coturn the same facts are
parsed from its verbose log (coturn logs sessions, not client addresses, so `client`
is the session there).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from lab.core.documents import JsonObject

COTURN_LINE = re.compile(
    r"^(?P<t>\d+): : session (?P<session>\d+): realm <[^>]*> user <(?P<user>[^>]*)>: "
    r"incoming packet (?P<method>\S+) processed, "
    r"(?P<outcome>success|error (?P<code>\d+): ?(?P<reason>.*))$"
)
COTURN_METHODS = {
    "ALLOCATE": "allocate",
    "REFRESH": "refresh",
    "CHANNEL_BIND": "channel_bind",
    "CREATE_PERMISSION": "create_permission",
    "BINDING": "binding",
    "message": "allocate",  # coturn names the unauthenticated first Allocate "message"
}


def read_requests(software: str, path: Path | None) -> list[JsonObject]:
    """The server's requests in the mock's request-log shape (empty if there is no log)."""
    if path is None or not path.exists():
        return []
    text = path.read_text(errors="replace")
    if software == "mock":
        return _mock_requests(text)
    return parse_coturn_log(text)


def _mock_requests(text: str) -> list[JsonObject]:
    requests = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by the server's shutdown
        if entry.get("event", "request") == "request":
            requests.append(entry)
    return requests


def parse_coturn_log(text: str) -> list[JsonObject]:
    """Requests coturn logged at --verbose, as request-log entries."""
    requests = []
    for line in text.splitlines():
        match = COTURN_LINE.match(line.strip())
        if match is None:
            continue
        code = int(match["code"]) if match["code"] else None
        requests.append(
            {
                "t": float(match["t"]),
                "client": f"session {int(match['session'])}",
                "user": match["user"] or None,
                "transport": None,
                "method": COTURN_METHODS.get(match["method"], match["method"].lower()),
                "outcome": "success" if code is None else "error",
                "error_code": code,
                "reason": match["reason"].strip() if match["reason"] else None,
                "fault": None,
            }
        )
    return requests
