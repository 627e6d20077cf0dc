"""The Firefox peer: a headless Firefox in the peer's namespace runs the same page as the
Chromium peer (lab/peers/page/peer.html), which signals, connects and echoes; this
process drives it over WebDriver BiDi and writes what the page's getStats() saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from lab.core.slowdown import scaled
from lab.peers import firefox_stats
from lab.peers.bidi import BiDiError
from lab.peers.chromium_peer import (
    PAGE,
    base_observations,
    nothing_observed,
    page_ice_servers,
    run_page,
)
from lab.peers.config import PeerConfig
from lab.peers.firefox_browser import Browser, firefox_binary, launch

log = logging.getLogger("lab.peer.firefox")


def without_query(text: str) -> str:
    """`text` with every URL's query left out: Firefox's console names the signaling URL
    it could not reach, whose presigned query carries credentials and a signature."""
    return re.sub(r"(\b\w+://[^\s?]+)\?[^\s]*", r"\1?…", text)


class PageError(BiDiError):
    """The page threw (its message, as Firefox reports it)."""


class PageSession:
    """Firefox's one tab, running peer.html, over the browser's BiDi session."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.context: str | None = None
        browser.bidi.listen(self._event)

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "log.entryAdded":
            text = without_query(str(params.get("text", "")))
            log.info("page %s: %s", params.get("level", "log"), text)

    async def attach(self, timeout_s: float = 10.0) -> None:
        """Find the tab Firefox was started with, once peer.js has loaded in it."""
        bidi = self.browser.bidi
        with contextlib.suppress(BiDiError):  # the page's console is only for the log
            await bidi.call("session.subscribe", {"events": ["log.entryAdded"]})
        tree = await bidi.call("browsingContext.getTree", {"maxDepth": 0})
        self.context = tree["contexts"][0]["context"]
        async with asyncio.timeout(scaled(timeout_s)):
            while True:  # the first document may still be about:blank, or loading
                with contextlib.suppress(BiDiError):
                    if await self.evaluate("typeof window.icelab") == "object":
                        return
                await asyncio.sleep(0.01)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited), through JSON: the
        page's report is plain data, and JSON spares decoding BiDi's remote values."""
        reply = await self.browser.bidi.call(
            "script.evaluate",
            {
                "expression": f"(async () => JSON.stringify(await ({expression})))()",
                "target": {"context": self.context},
                "awaitPromise": True,
                "resultOwnership": "none",
            },
        )
        if reply.get("type") == "exception":
            details = reply.get("exceptionDetails", {})
            raise PageError(f"page: {details.get('text', 'exception')}")
        value = reply.get("result", {})
        return json.loads(value["value"]) if value.get("type") == "string" else None


async def until_stopped(
    starting: Coroutine[Any, Any, Browser], stop: asyncio.Event
) -> Browser | None:
    """The started browser, or None if the lab stopped this peer first (Firefox takes
    seconds to start on a busy machine: the peer must still write its observations
    within the lab's grace; launch kills what it started when cancelled)."""
    launching = asyncio.create_task(starting)
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([launching, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if launching.done():
        return launching.result()
    launching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await launching
    return None


async def drive(config: PeerConfig, stop: asyncio.Event) -> dict[str, Any]:
    """Start Firefox, run the page to the end (or until `stop`), return observations."""
    servers, skipped = page_ice_servers(config)
    base = base_observations(config, skipped) | {"agent": "firefox"}
    binary = firefox_binary()
    if binary is None:
        return base | nothing_observed("firefox is not installed (make setup installs it)")
    if config.proxy_server:
        return base | nothing_observed("the firefox agent does not use a proxy yet")
    profile = Path(config.result_path).with_name(f"{config.role}.firefox-profile")
    try:
        browser = await until_stopped(
            launch(
                binary,
                profile,
                Path(config.ca_file),
                config.reveal_host_addresses,
                sys.stderr,
                url=PAGE.resolve().as_uri(),
            ),
            stop,
        )
    except (BiDiError, OSError, TimeoutError) as exc:
        log.exception("firefox did not start")
        return base | nothing_observed(f"firefox did not start: {exc or 'timed out'}")
    if browser is None:
        return base | nothing_observed("stopped by the lab before Firefox had started")
    log.info("browser started")
    try:
        base["software"] = browser.version
        page = PageSession(browser)
        await page.attach()
        log.info("page loaded")
        report = await run_page(page, config, servers, stop, "firefox")
        observations = firefox_stats.observations(report, base)
        observations["skipped_servers"] = observations.get(
            "skipped_servers", []
        ) + firefox_stats.unused_tls_servers(servers, observations["candidates"])
        return observations
    except (BiDiError, OSError, TimeoutError) as exc:
        log.exception("browser peer failed")
        return base | nothing_observed(str(exc) or "timed out")
    finally:
        await browser.close()


async def observe(config: PeerConfig) -> dict[str, Any]:
    """Run this peer's side of the call in Firefox; return what its getStats() saw."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    return await drive(config, stop)
