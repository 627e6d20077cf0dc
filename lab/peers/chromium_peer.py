"""The Chromium peer: a headless browser in the peer's namespace runs the project's page
(lab/peers/page/), which signals, connects and echoes; this process drives it over the
DevTools pipe and writes what the page's getStats() saw, in the aiortc peer's format.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import sys
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from lab.core.documents import JsonObject
from lab.core.slowdown import scaled
from lab.peers import check_schedule, chromium_stats
from lab.peers.call_traffic import mark_connected
from lab.peers.cdp import DevToolsError
from lab.peers.chromium_browser import Browser, chromium_binary, launch
from lab.peers.config import PeerConfig
from lab.peers.ice_servers import parse_url, plan_servers

log = logging.getLogger("lab.peer.chromium")
PAGE = Path(__file__).parent / "page" / "peer.html"


def page_ice_servers(config: PeerConfig) -> tuple[list[JsonObject], list[dict[str, str]]]:
    """The RTCIceServer list the page passes to RTCPeerConnection, and the URLs left out
    by the NAT traversal mode (with the reason), as the aiortc peer records them."""
    servers, skipped = [], []
    for server in config.ice_servers:
        plan = plan_servers([parse_url(u) for u in server.urls], config.mode)
        skipped += [{"url": s.url, "reason": s.reason} for s in plan.skipped]
        urls = [u.url for u in (*plan.stun, *plan.turn)]
        if not urls:
            continue
        entry: JsonObject = {"urls": urls}
        if server.username is not None:
            entry |= {"username": server.username, "credential": server.password}
        servers.append(entry)
    return servers, skipped


def page_config(config: PeerConfig, servers: list[JsonObject]) -> JsonObject:
    timing = config.timing
    # After the outcome, pairs still checking get one STUN transaction's worth of time
    # (the fast profile's 0.45 s), at most what is left of the check budget.
    transaction_s = check_schedule.transaction_s(timing["stun_rto_s"], timing["stun_retries"])
    return {
        "role": config.role,
        "signaling_url": config.signaling_url,
        "ice_servers": servers,
        "ice_transport_policy": "relay" if config.mode == "turn-only" else "all",
        "send_end_of_candidates": True,
        "timing": {
            "signaling_timeout_s": timing["signaling_timeout_s"],
            "check_timeout_s": timing["check_timeout_s"],
            "settle_s": min(transaction_s, timing["check_timeout_s"]),
        },
        "call": config.call,
    }


class Page(Protocol):
    """A browser's page running peer.html (a DevTools or a WebDriver BiDi session)."""

    async def evaluate(self, expression: str) -> Any: ...


async def mark_when_call_is_up(page: Page, config: PeerConfig) -> None:
    """Write the peer's "connected" mark once the page's call has begun (the lab's
    events start their clock from both peers' marks)."""
    while await page.evaluate("icelab.callUpAt") is None:
        await asyncio.sleep(0.02)
    mark_connected(config.result_path, config.role)


class PageSession:
    """The browser's one page, attached over the DevTools pipe, running peer.html."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.session: str | None = None
        #: What the browser logged about failed requests (`net::ERR_NAME_NOT_RESOLVED`):
        #: the page's WebSocket error event carries no reason, the browser's log does.
        self.network_errors: list[str] = []
        browser.devtools.listen(self._event)

    def _event(self, method: str, params: JsonObject, session: str | None) -> None:
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            log.info("page console: %s", text)
        elif method == "Log.entryAdded" and "net::ERR_" in params["entry"].get("text", ""):
            log.info("browser log: %s", params["entry"]["text"])
            self.network_errors.append(network_error(params["entry"]))
        elif method == "Runtime.exceptionThrown":
            log.error("page exception: %s", params["exceptionDetails"].get("text"))

    async def attach(self, timeout_s: float = 10.0) -> None:
        """Attach to the page the browser was started with, once peer.js has loaded."""
        devtools = self.browser.devtools
        targets = await devtools.call("Target.getTargets")
        page = next(t for t in targets["targetInfos"] if t["type"] == "page")
        attached = await devtools.call(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
        )
        self.session = attached["sessionId"]
        await self.call("Runtime.enable")
        await self.call("Log.enable")
        async with asyncio.timeout(scaled(timeout_s)):
            while True:  # the first document may still be about:blank, or navigating
                with contextlib.suppress(DevToolsError):
                    if await self.evaluate("typeof window.icelab") == "object":
                        return
                await asyncio.sleep(0.01)

    async def call(self, method: str, params: JsonObject | None = None) -> JsonObject:
        return await self.browser.devtools.call(method, params, session=self.session)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited)."""
        reply = await self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise DevToolsError(f"page: {text}")
        return reply["result"].get("value")


def network_error(entry: JsonObject) -> str:
    """`net::ERR_NAME_NOT_RESOLVED (m-….amazonaws.com)` from a browser log entry, without
    the URL's presigned query (credentials and signature)."""
    code = re.search(r"net::ERR_\w+", entry["text"])
    host = urlsplit(entry.get("url", "")).hostname
    return (code[0] if code else entry["text"]) + (f" ({host})" if host else "")


def base_observations(config: PeerConfig, skipped: list[dict[str, str]]) -> JsonObject:
    return {
        "role": config.role,
        "host": config.host,
        "mode": config.mode,
        "agent": "chromium",
        "skipped_servers": skipped,
        "host_addresses": "revealed" if config.reveal_host_addresses else "mdns",
    } | ({"proxy": {"url": config.proxy_server, "used": True}} if config.proxy_server else {})


def nothing_observed(error: str) -> JsonObject:
    return {"candidates": [], "pairs": [], "selected": None, "error": error}


async def run_page(
    page: Page, config: PeerConfig, servers: list[JsonObject], stop: asyncio.Event, agent: str
) -> JsonObject:
    """Run the page's side of the call to the end (or until `stop`: then what it has seen
    so far); keep its raw report beside the observations (`<role>.<agent>-report.json`,
    kept with --keep) and return it."""
    run = asyncio.create_task(
        page.evaluate(f"icelab.run({json.dumps(page_config(config, servers))})")
    )
    stopped = asyncio.create_task(stop.wait())
    marking = asyncio.create_task(mark_when_call_is_up(page, config)) if config.call else None
    await asyncio.wait([run, stopped], return_when=asyncio.FIRST_COMPLETED)
    if marking is not None:
        marking.cancel()
    stopped.cancel()
    if run.done():
        report = run.result()
    else:  # SIGTERM: report what the page has seen so far
        run.cancel()
        report = await page.evaluate("icelab.report()")
        report["error"] = report.get("error") or "stopped by the lab before the call ended"
    logging.getLogger(f"lab.peer.{agent}").info("page finished")
    raw = Path(config.result_path).with_name(f"{config.role}.{agent}-report.json")
    raw.write_text(json.dumps(report, indent=1))
    return report


async def drive(config: PeerConfig, stop: asyncio.Event) -> JsonObject:
    """Start the browser, run the page to the end (or until `stop`), return observations."""
    servers, skipped = page_ice_servers(config)
    base = base_observations(config, skipped)
    binary = chromium_binary()
    if binary is None:
        return base | nothing_observed("chromium is not installed (make setup installs it)")
    profile = Path(config.result_path).with_name(f"{config.role}.chromium-profile")
    browser = await launch(
        binary,
        profile,
        Path(config.ca_file),
        config.reveal_host_addresses,
        sys.stderr,
        url=PAGE.resolve().as_uri(),
        proxy_server=config.proxy_server,
    )
    log.info("browser started")
    try:
        base["software"] = await browser.version
        page = PageSession(browser)
        await page.attach()
        log.info("page loaded")
        report = await run_page(page, config, servers, stop, "chromium")
        if report.get("error") and page.network_errors:
            report["error"] += f" ({page.network_errors[-1]})"
        return chromium_stats.observations(report, base)
    except (DevToolsError, OSError) as exc:
        log.exception("browser peer failed")
        return base | nothing_observed(str(exc))
    finally:
        await browser.close()


async def observe(config: PeerConfig) -> JsonObject:
    """Run this peer's side of the call in a browser; return what its getStats() saw."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    return await drive(config, stop)
