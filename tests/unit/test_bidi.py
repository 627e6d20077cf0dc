"""The WebDriver BiDi client: a session started with session.new (its capabilities kept),
replies matched by id, events to listeners, errors as BiDiError, and every pending
command failed (not hung) when the browser goes away."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import unix_connect
from websockets.asyncio.server import ServerConnection, unix_serve

from lab.peers.bidi import BiDiConnection, BiDiError

CAPABILITIES = {"browserName": "firefox", "browserVersion": "140.12.0"}


async def fake_firefox(socket: ServerConnection, received: list[dict[str, Any]]) -> None:
    """Answer as Firefox's remote agent does: session.new, an event before a reply, an
    error for an unknown command, and a command it never answers before it dies."""
    async for raw in socket:
        message = json.loads(raw)
        received.append(message)
        method, reply_id = message["method"], message["id"]
        if method == "session.new":
            result = {"sessionId": "S", "capabilities": CAPABILITIES}
            await socket.send(json.dumps({"type": "success", "id": reply_id, "result": result}))
        elif method == "script.evaluate":
            event = {"type": "event", "method": "log.entryAdded", "params": {"text": "hi"}}
            await socket.send(json.dumps(event))
            result = {"type": "success", "result": {"type": "string", "value": "42"}}
            await socket.send(json.dumps({"type": "success", "id": reply_id, "result": result}))
        elif method == "browser.hang":
            await socket.close()
            return
        else:
            error = {"type": "error", "id": reply_id, "error": "unknown command"}
            await socket.send(json.dumps(error | {"message": method}))


def test_session_commands_events_errors_and_a_dying_browser(tmp_path: Path) -> None:
    async def main() -> None:
        path = str(tmp_path / "bidi.sock")
        received: list[dict[str, Any]] = []
        async with unix_serve(lambda s: fake_firefox(s, received), path):
            connection = await BiDiConnection.start(await unix_connect(path))
            assert connection.capabilities == CAPABILITIES
            events: list[tuple[str, dict]] = []
            connection.listen(lambda method, params: events.append((method, params)))
            reply = await connection.call("script.evaluate", {"expression": "42"})
            assert reply["result"] == {"type": "string", "value": "42"}
            assert events == [("log.entryAdded", {"text": "hi"})]
            with pytest.raises(BiDiError, match="unknown command: nope.nope"):
                await connection.call("nope.nope")
            with pytest.raises(BiDiError, match="closed"):
                await asyncio.wait_for(connection.call("browser.hang"), 5)
            with pytest.raises(BiDiError, match="closed"):
                await connection.call("session.status")
            await connection.close()
        assert [m["id"] for m in received] == [1, 2, 3, 4]
        assert received[0]["params"] == {"capabilities": {}}

    asyncio.run(main())
