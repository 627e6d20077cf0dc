"""The DevTools pipe: NUL-framed JSON both ways, replies matched by id, events to
listeners, and every pending call failed (not hung) when the browser goes away."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from lab.peers.cdp import DevToolsError, DevToolsPipe


async def fake_browser(commands: int, replies: int, script: list[dict]) -> list[dict]:
    """Read NUL-framed commands and answer each with the next scripted message(s)."""
    received, buffer = [], b""
    loop = asyncio.get_running_loop()
    for answer in script:
        while b"\0" not in buffer:
            buffer += await loop.run_in_executor(None, os.read, commands, 4096)
        raw, buffer = buffer.split(b"\0", 1)
        message = json.loads(raw)
        received.append(message)
        for reply in answer(message):
            os.write(replies, json.dumps(reply).encode() + b"\0")
    return received


def test_calls_events_and_errors() -> None:
    async def main() -> None:
        command_read, command_write = os.pipe()
        reply_read, reply_write = os.pipe()
        pipe = DevToolsPipe(reply_read, command_write)
        events = []
        pipe.listen(lambda method, params, session: events.append((method, session)))
        script = [
            lambda m: [
                {"method": "Page.loadEventFired", "params": {}, "sessionId": "S"},
                {"id": m["id"], "result": {"product": "Chrome/1"}},
            ],  # fmt: skip
            lambda m: [{"id": m["id"], "error": {"message": "no such method"}}],
        ]
        browser = asyncio.create_task(fake_browser(command_read, reply_write, script))
        assert await pipe.call("Browser.getVersion") == {"product": "Chrome/1"}
        with pytest.raises(DevToolsError, match="no such method"):
            await pipe.call("Nope.nope", {"x": 1}, session="S")
        sent = await browser
        assert sent[1]["sessionId"] == "S" and sent[1]["params"] == {"x": 1}
        assert events == [("Page.loadEventFired", "S")]
        pending = asyncio.create_task(pipe.call("Runtime.evaluate"))
        await asyncio.sleep(0.05)
        os.close(reply_write)  # the browser died
        with pytest.raises(DevToolsError, match="closed"):
            await asyncio.wait_for(pending, 2)
        os.close(command_read)

    asyncio.run(main())
