"""The kvs-js peer: the service's published JavaScript SDK in the Chromium peer's browser.

The page (lab/peers/page/kvs_js.html) loads the SDK's browser bundle
(amazon-kinesis-video-streams-webrtc's dist/kvs-webrtc.min.js) and the AWS SDK v3 Kinesis
Video clients, and does what the SDK's sample viewer and master do against the run's
service: DescribeSignalingChannel, GetSignalingChannelEndpoint, GetIceServerConfig, a
presigned WebSocket, offer or answer, trickled candidates, a data channel. The browser,
its DevTools session and the getStats() observations are the Chromium peer's.

Everything the page loads is local (scripts/setup.sh installs it with npm ci); nothing is
fetched from the internet, which a lab namespace could not reach anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from lab.core.documents import JsonObject
from lab.core.slowdown import scaled
from lab.peers import chromium_stats
from lab.peers.cdp import DevToolsError
from lab.peers.chromium_browser import chromium_binary, launch
from lab.peers.chromium_peer import PageSession, base_observations, nothing_observed, page_config
from lab.peers.config import PeerConfig
from lab.peers.ice_servers import parse_url, plan_servers

log = logging.getLogger("lab.peer.kvs-js")
PAGE_DIR = Path(__file__).parent / "page"
PAGE = PAGE_DIR / "kvs_js.html"
MODULES = PAGE_DIR / "node_modules"
SDK_PACKAGE = "amazon-kinesis-video-streams-webrtc"
AWS_SDK_PACKAGE = "@aws-sdk/client-kinesis-video"
#: What the page loads besides the project's own scripts (see kvs_js.html).
ASSETS = (
    MODULES / SDK_PACKAGE / "dist" / "kvs-webrtc.min.js",
    MODULES / ".ice-lab" / "aws-sdk-kvswebrtc.js",
)


def missing_assets() -> list[Path]:
    """The SDK files the page needs that set-up has not installed (npm ci, npm run build)."""
    return [path for path in ASSETS if not path.is_file()]


def package_version(name: str) -> str | None:
    """The installed version of an npm package of the page, from its package.json."""
    try:
        return json.loads((MODULES / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def channel_name(arn: str) -> str:
    """`arn:aws:kinesisvideo:<region>:<account>:channel/<name>/<ms>` -> name (what the
    sample asks DescribeSignalingChannel for)."""
    resource = arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    name = rest.rpartition("/")[0]
    if kind != "channel" or not name:
        raise ValueError(f"not a signaling channel ARN: {arn}")
    return name


def stun_urls(config: PeerConfig) -> list[str]:
    """The run's STUN URLs for the mode, where the sample names the service's STUN host
    (stun.kinesisvideo.<region>.amazonaws.com:443): the lab's STUN server is the scenario's."""
    urls = [u for server in config.ice_servers for u in server.urls]
    plan = plan_servers([parse_url(u) for u in urls], config.mode)
    return [u.url for u in plan.stun]


def kvs_page_config(config: PeerConfig) -> JsonObject:
    """What icelab.run() of kvs_js.js needs: the service, the credentials, the mode."""
    service = config.service
    if not service:
        raise ValueError("the run's service has no access key: the SDK cannot sign its calls")
    return {
        "role": config.role,
        "client_id": config.client_id,
        "channel_name": channel_name(service["channel_arn"]),
        "endpoint": service["endpoint_url"],
        "region": service["region"],
        "access_key_id": service["access_key_id"],
        "secret_access_key": service["secret_access_key"],
        "nat_traversal": config.mode,
        "stun_urls": stun_urls(config),
        "timing": page_config(config, [])["timing"],
    }


class BrowserErrors:
    """What the browser itself logs as errors for the page (DevTools' Log domain): the
    network error behind an SDK call's bare "Failed to fetch" (net::ERR_NAME_NOT_RESOLVED,
    a refused certificate, a CORS refusal), as a user sees it in the browser's console."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def event(self, method: str, params: JsonObject, session: str | None) -> None:
        entry = params.get("entry", {})
        if method == "Log.entryAdded" and entry.get("level") == "error":
            url = entry.get("url")
            self.entries.append(f"{entry.get('text', '')}" + (f" ({url})" if url else ""))


def explained(error: str | None, browser_errors: list[str]) -> str | None:
    """A failed fetch's error with the browser's reason: the SDK only sees TypeError."""
    if not error or "Failed to fetch" not in error:
        return error
    reasons = [e for e in browser_errors if "net::" in e or "CORS" in e]
    return f"{error} ({reasons[0]})" if reasons else error


def sdk_record(report: JsonObject, browser_errors: list[str] | None = None) -> JsonObject:
    """What the SDK did against the service, from the page's report."""
    return {
        "calls": report.get("service_calls", []),
        "endpoints": report.get("endpoints") or {},
        "channel_arn": report.get("channel_arn"),
        "ice_server_uris": report.get("ice_server_uris", []),
        "browser_errors": browser_errors or [],
    }


def software(sdk_version: str | None, browser: dict[str, str]) -> JsonObject:
    """The agent's software: the SDK with its version, and what runs it."""
    return {
        "name": SDK_PACKAGE,
        "version": sdk_version or package_version(SDK_PACKAGE) or "unknown",
        "aws_sdk": {"name": AWS_SDK_PACKAGE, "version": package_version(AWS_SDK_PACKAGE) or ""},
        "browser": browser,
    }


async def wait_ready(page: PageSession, timeout_s: float = 10.0) -> None:
    """Until kvs_js.js has run (attach() returns once peer.js, loaded before it, has)."""
    timeout_s = scaled(timeout_s)
    try:
        async with asyncio.timeout(timeout_s):
            while await page.evaluate("typeof window.kvsjs") != "object":
                await asyncio.sleep(0.01)
    except TimeoutError:
        loaded = await page.evaluate("[typeof KVSWebRTC, typeof AWS]")
        raise DevToolsError(
            f"the SDK page did not load in {timeout_s:.0f} s "
            f"(KVSWebRTC: {loaded[0]}, AWS: {loaded[1]})"
        ) from None


async def _run_page(page: PageSession, run_config: JsonObject, stop: asyncio.Event) -> Any:
    """The page's report at the end of the call, or so far if the lab stops the peer."""
    run = asyncio.create_task(page.evaluate(f"kvsjs.run({json.dumps(run_config)})"))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([run, stopped], return_when=asyncio.FIRST_COMPLETED)
    if run.done():
        return run.result()
    run.cancel()
    report = await page.evaluate("kvsjs.report()")
    report["error"] = report.get("error") or "stopped by the lab before the call ended"
    return report


async def drive(config: PeerConfig, stop: asyncio.Event) -> JsonObject:
    """Start the browser, run the SDK's page to the end (or until `stop`), return observations."""
    base = base_observations(config, []) | {"agent": "kvs-js"}
    binary = chromium_binary()
    if binary is None:
        return base | nothing_observed("chromium is not installed (make setup installs it)")
    if missing := missing_assets():
        return base | nothing_observed(f"the KVS JavaScript SDK is not installed: {missing[0]}")
    try:
        run_config = kvs_page_config(config)
    except ValueError as exc:
        return base | nothing_observed(str(exc))
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
    errors = BrowserErrors()
    browser.devtools.listen(errors.event)
    try:
        browser_version = await browser.version
        page = PageSession(browser)
        await page.attach()
        await page.call("Log.enable")
        await wait_ready(page)
        base["software"] = software(await page.evaluate("KVSWebRTC.VERSION"), browser_version)
        log.info("page loaded: %s %s", SDK_PACKAGE, base["software"]["version"])
        report = await _run_page(page, run_config, stop)
        raw = Path(config.result_path).with_name(f"{config.role}.kvs-js-report.json")
        raw.write_text(json.dumps(report, indent=1))
        report["error"] = explained(report.get("error"), errors.entries)
        return chromium_stats.observations(report, base) | {
            "kvs_sdk": sdk_record(report, errors.entries)
        }
    except (DevToolsError, OSError) as exc:
        log.exception("kvs-js peer failed")
        return base | nothing_observed(str(exc))
    finally:
        await browser.close()


async def observe(config: PeerConfig) -> JsonObject:
    """Run this peer's side of the call with the KVS JavaScript SDK; return what it saw."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    return await drive(config, stop)
