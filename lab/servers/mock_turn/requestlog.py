"""The request log: one JSON line per request handled, flushed at once.

The lab reads it after a run to say which requests reached the server, which fault
hit them and how they were answered, so every line is flushed before the answer is
sent (a killed server loses nothing already answered).
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import asdict, dataclass

from lab.core.documents import JsonObject


@dataclass(frozen=True)
class RequestRecord:
    client: str
    transport: str
    method: str
    outcome: str  # success | error | dropped
    error_code: int | None = None
    reason: str | None = None
    fault: str | None = None
    peer: str | None = None


class RequestLog:
    """Appends JSON lines to a file; with no path it only counts (for in-process use)."""

    def __init__(self, path: str | None) -> None:
        # One os.write per line on an O_APPEND descriptor: no buffering to flush, and a
        # reader never sees half a line from another writer.
        self._fd: int | None = None
        if path:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.records: deque[JsonObject] = deque(maxlen=10_000)

    def request(self, record: RequestRecord) -> None:
        self._write({"t": time.time(), "event": "request", **asdict(record)})

    def allocation_end(
        self,
        client: str,
        transport: str,
        relay: str,
        end: str,
        counts: dict[str, int],
    ) -> None:
        """Summary of an allocation's relayed traffic, written when it ends.

        `end` is expired | deleted | closed (TCP/TLS connection gone) | shutdown.
        """
        self._write(
            {
                "t": time.time(),
                "event": "allocation_end",
                "client": client,
                "transport": transport,
                "method": None,
                "relay": relay,
                "end": end,
                "counts": counts,
            }
        )

    def _write(self, entry: JsonObject) -> None:
        self.records.append(entry)
        if self._fd is not None:
            os.write(self._fd, (json.dumps(entry) + "\n").encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
