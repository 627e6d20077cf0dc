"""WebDriver BiDi over the WebSocket Firefox serves on `--remote-debugging-port`.

A small client: commands with ids, their results as futures, events to listeners. The
socket is the browser's own in the peer's namespace (127.0.0.1), so it closes when the
browser dies and a pending command fails instead of waiting for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class BiDiError(Exception):
    """A BiDi command failed, or the browser closed the connection."""


def error_text(message: dict[str, Any]) -> str:
    """`unknown command: ...` from a BiDi error message."""
    return f"{message.get('error', 'error')}: {message.get('message', '')}".rstrip(": ")


class BiDiConnection:
    """One WebDriver BiDi session's connection; one instance per browser."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._closed: str | None = None
        #: What session.new answered: browserName, browserVersion, userAgent...
        self.capabilities: dict[str, Any] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> BiDiConnection:
        """Connect to `ws://host:port/session` and start a session (session.new)."""
        socket = await connect(url, max_size=None, compression=None, ping_interval=None)
        return await cls.start(socket)

    @classmethod
    async def start(cls, socket: ClientConnection) -> BiDiConnection:
        """Start a session (session.new) on a connected socket; keep its capabilities."""
        connection = cls(socket)
        try:
            session = await connection.call("session.new", {"capabilities": {}})
        except BaseException:
            await connection.close()
            raise
        connection.capabilities = session.get("capabilities", {})
        return connection

    def listen(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Call `listener(method, params)` for every event."""
        self._listeners.append(listener)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and return its result; BiDiError if it failed."""
        if self._closed:
            raise BiDiError(f"{method}: {self._closed}")
        message_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        message = {"id": message_id, "method": method, "params": params or {}}
        try:
            await self.socket.send(json.dumps(message))
        except ConnectionClosed as exc:
            self._pending.pop(message_id, None)
            raise BiDiError(f"{method}: the browser closed the connection") from exc
        return await future

    async def _read(self) -> None:
        try:
            async for raw in self.socket:
                self._dispatch(json.loads(raw))
        except ConnectionClosed:
            pass
        self._fail_pending("the browser closed the WebDriver BiDi connection")

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "event":
            for listener in self._listeners:
                listener(message.get("method", ""), message.get("params", {}))
            return
        future = self._pending.pop(message.get("id", -1), None)
        if future is None or future.done():
            return
        if kind == "success":
            future.set_result(message.get("result", {}))
        else:
            future.set_exception(BiDiError(error_text(message)))

    def _fail_pending(self, reason: str) -> None:
        self._closed = self._closed or reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BiDiError(reason))
        self._pending.clear()

    async def close(self) -> None:
        """Close the socket (the browser is killed by its owner, not asked to quit)."""
        self._fail_pending("closed")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.socket.close(), 1.0)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
