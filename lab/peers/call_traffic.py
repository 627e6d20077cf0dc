"""The ongoing call of an aiortc peer: steady data channel messages, their echoes, and
the selected pair over time (the page does the same in JavaScript: page/peer.js).

The viewer sends `messages_per_s` numbered messages for `duration_s`, except during the
call's `pauses` (the application has nothing to say; ICE consent checks go on); the master
echoes each. What the viewer records — when each message left and when its echo came back —
is what lab/observations/call_timeline.py turns into delivery per second and recovery times. Times
are epoch seconds, so the lab can line them up with the events it applied.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.core.documents import JsonObject

CALL_PREFIX = "ice-lab call "
SAMPLE_S = 0.1


def mark_connected(result_path: str, role: str) -> None:
    """Tell the lab this peer's call is up (lab/run/events.py starts its clock)."""
    Path(result_path).with_name(f"{role}.connected").write_text(f"{time.time():.6f}\n")


def is_call_message(message: Any) -> bool:
    return isinstance(message, str) and message.startswith(CALL_PREFIX)


def in_pause(pauses: list[tuple[float, float]], call_s: float) -> bool:
    """Whether the application is silent `call_s` seconds into the call."""
    return any(start <= call_s < end for start, end in pauses)


class CallRecorder:
    """Sends the viewer's messages and records their echoes and the selected pair."""

    def __init__(self, call: JsonObject) -> None:
        self.duration_s = float(call["duration_s"])
        self.interval_s = 1.0 / float(call["messages_per_s"])
        self.size = int(call["message_bytes"])
        self.sent_at: list[float] = []
        self.echoed_at: list[float | None] = []
        self.selected: list[JsonObject] = []
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.wants_ice_restart = bool(call.get("ice_restart"))
        self.pauses = [(p["at_s"], p["at_s"] + p["for_s"]) for p in call.get("pauses") or []]

    def message(self, sequence: int) -> str:
        return f"{CALL_PREFIX}{sequence} ".ljust(self.size, ".")

    def on_echo(self, message: str) -> None:
        try:
            sequence = int(message[len(CALL_PREFIX) :].split(" ", 1)[0])
        except ValueError:
            return
        if 0 <= sequence < len(self.echoed_at) and self.echoed_at[sequence] is None:
            self.echoed_at[sequence] = time.time()

    async def run(
        self, send: Callable[[str], bool], selected_pair: Callable[[], str | None], sends: bool
    ) -> None:
        """For the call's duration: send (if `sends`) and watch the selected pair.

        `send` returns False when the channel cannot take a message (closed): the message
        counts as sent and lost, as the application would see it."""
        self.started_at = time.time()
        deadline = time.monotonic() + self.duration_s
        next_send = next_sample = time.monotonic()
        while (now := time.monotonic()) < deadline:
            if sends and now >= next_send:
                if not in_pause(self.pauses, now - (deadline - self.duration_s)):
                    self.sent_at.append(time.time())
                    self.echoed_at.append(None)
                    send(self.message(len(self.sent_at) - 1))
                next_send += self.interval_s
            if now >= next_sample:
                self._sample(selected_pair())
                next_sample += SAMPLE_S
            await asyncio.sleep(max(0.0, min(next_send if sends else deadline, next_sample) - now))
        self.ended_at = time.time()

    def _sample(self, pair: str | None) -> None:
        if not self.selected or self.selected[-1]["pair"] != pair:
            self.selected.append({"at": time.time(), "pair": pair})

    def observations(self) -> JsonObject:
        return {
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "interval_s": self.interval_s,
            "sent_at": self.sent_at,
            "echoed_at": self.echoed_at,
            "selected": self.selected,
            "restarts": [],
            # aiortc has no restartIce(): a call that asks for restarts gets none, and says so.
            "ice_restart_supported": False,
            "ice_restart_wanted": self.wants_ice_restart,
        }
