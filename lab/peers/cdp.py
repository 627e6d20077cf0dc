"""The DevTools protocol over Chromium's `--remote-debugging-pipe`.

The pipe (fds 3 and 4 of the browser, NUL-terminated JSON messages) needs no port and no
WebSocket inside the peer's namespace, and it closes when the browser dies, so a call can
never wait on a browser that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections.abc import Callable

from lab.core.documents import JsonObject


class DevToolsError(Exception):
    """A DevTools call failed, or the browser closed the pipe."""


class DevToolsPipe:
    """Calls DevTools methods and hands events to listeners; one instance per browser."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[JsonObject]] = {}
        self._buffer = b""
        self._listeners: list[Callable[[str, JsonObject, str | None], None]] = []
        self._closed = False
        os.set_blocking(read_fd, False)
        asyncio.get_running_loop().add_reader(read_fd, self._readable)

    def listen(self, listener: Callable[[str, JsonObject, str | None], None]) -> None:
        """Call `listener(method, params, session_id)` for every event."""
        self._listeners.append(listener)

    async def call(
        self, method: str, params: JsonObject | None = None, session: str | None = None
    ) -> JsonObject:
        """Send one command and return its result; DevToolsError if it failed."""
        if self._closed:
            raise DevToolsError(f"{method}: the browser has closed the DevTools pipe")
        message_id = next(self._ids)
        message: JsonObject = {"id": message_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.write_fd, data) :]
        return await future

    def _readable(self) -> None:
        try:
            chunk = os.read(self.read_fd, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            self.close("the browser closed the DevTools pipe")
            return
        self._buffer += chunk
        *messages, self._buffer = self._buffer.split(b"\0")
        for raw in messages:
            self._dispatch(json.loads(raw))

    def _dispatch(self, message: JsonObject) -> None:
        if "id" in message:
            future = self._pending.pop(message["id"], None)
            if future is None or future.done():
                return
            if "error" in message:
                future.set_exception(DevToolsError(message["error"].get("message", "error")))
            else:
                future.set_result(message.get("result", {}))
            return
        for listener in self._listeners:
            listener(message.get("method", ""), message.get("params", {}), message.get("sessionId"))

    def close(self, reason: str = "closed") -> None:
        if self._closed:
            return
        self._closed = True
        asyncio.get_running_loop().remove_reader(self.read_fd)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(DevToolsError(reason))
        self._pending.clear()
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
