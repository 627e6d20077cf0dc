"""Whether the run's servers have let go of the last run's peers, read from their logs.

A server kept for the next run (a reused network) must hold nothing of the run before: a
stale TURN allocation could answer the next run's 5-tuple, a signaling message held for
an absent master would reach the next master.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from lab.servers.launch import RunningServers

COTURN_SESSION = re.compile(
    r"session (?P<session>\d+): "
    r"(?P<event>new,|delete:|closed \(2nd stage\)|refreshed,.*lifetime=0\b)"
)


def live_turn_sessions(log_text: str) -> set[str]:
    """coturn sessions (allocations) the log shows created and not yet released."""
    live: set[str] = set()
    for match in COTURN_SESSION.finditer(log_text):
        if match["event"] == "new,":
            live.add(match["session"])
        else:
            live.discard(match["session"])
    return live


def signaling_leftovers(log_lines: Iterable[str]) -> list[str]:
    """What the signaling service still holds from the events logged: clients connected,
    and viewer messages held for a master that never came (the next master would get them)."""
    connected: dict[str, int] = {}
    held = 0
    for line in log_lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written
        who = f"{event.get('role')} {event.get('client_id') or ''}".strip()
        if event.get("event") == "connect":
            connected[who] = connected.get(who, 0) + 1
            if event.get("role") == "master":
                held = 0  # delivered to the master that just connected
        elif event.get("event") == "disconnect":
            connected[who] = connected.get(who, 0) - 1
        elif event.get("event") == "message" and event.get("held"):
            held += 1
    left = [f"{who} connected" for who, count in connected.items() if count > 0]
    return left + ([f"{held} message(s) held for an absent master"] if held else [])


def leftovers(servers: RunningServers, software: str) -> list[str]:
    """What the servers still hold of earlier runs, in words (empty: they are idle)."""
    left = []
    if software == "coturn" and servers.logs.get("stun_turn"):
        sessions = live_turn_sessions(_read(servers.logs["stun_turn"]))
        left += [f"TURN allocation (session {s})" for s in sorted(sessions)]
    if servers.logs.get("signaling"):
        left += signaling_leftovers(_read(servers.logs["signaling"]).splitlines())
    return left


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
