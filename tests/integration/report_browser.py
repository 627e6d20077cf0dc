"""Open an HTML report in headless Chromium (the lab's own browser launcher and DevTools
pipe) and say what the page did: errors, requests, DOM answers, a screenshot."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.peers.cdp import DevToolsError
from lab.peers.chromium_browser import chromium_binary, launch
from lab.servers.certificates import make_ca


@dataclass
class PageReport:
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)


def open_report(
    page: Path, screenshot: Path, queries: dict[str, str], width: int = 1280, height: int = 900
) -> PageReport:
    """Load `page`, evaluate each JavaScript query, keep a PNG of the first screen."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("no Chromium on this machine (scripts/setup.sh installs it)")
    return asyncio.run(_open(binary, page, screenshot, queries, width, height))


async def _open(
    binary: str, page: Path, shot: Path, queries: dict[str, str], width: int, height: int
) -> PageReport:
    report = PageReport()
    with (
        tempfile.TemporaryDirectory(prefix="ice-lab-report-") as scratch,
        open(Path(scratch) / "browser.log", "wb") as log,
    ):
        ca_file, _, _ = make_ca(Path(scratch))
        browser = await launch(binary, Path(scratch) / "profile", ca_file, False, log)
        try:
            await _drive(browser, page, shot, queries, width, height, report)
        finally:
            await browser.close()
    return report


async def _drive(browser, page, shot, queries, width, height, report) -> None:  # noqa: ANN001
    devtools = browser.devtools

    def listen(method: str, params: dict[str, Any], session: str | None) -> None:
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            report.errors.append(
                details.get("exception", {}).get("description") or details.get("text", "")
            )
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            report.errors.append(" ".join(str(a.get("value", "")) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            report.errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            report.requests.append(params["request"]["url"])

    devtools.listen(listen)
    targets = await devtools.call("Target.getTargets")
    target = next(t for t in targets["targetInfos"] if t["type"] == "page")
    attached = await devtools.call(
        "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
    )
    session = attached["sessionId"]

    async def call(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await devtools.call(method, params, session=session)

    for domain in ("Runtime", "Log", "Page", "Network"):
        await call(f"{domain}.enable")
    await call(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    await call("Page.navigate", {"url": page.resolve().as_uri()})
    async with asyncio.timeout(20):
        while True:
            with contextlib.suppress(DevToolsError):
                reply = await call(
                    "Runtime.evaluate", {"expression": "document.readyState", "returnByValue": True}
                )
                if reply["result"].get("value") == "complete":
                    break
            await asyncio.sleep(0.05)
    for name, expression in queries.items():
        reply = await call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in reply:
            report.answers[name] = f"exception: {reply['exceptionDetails'].get('text')}"
        else:
            report.answers[name] = reply["result"].get("value")
    picture = await call("Page.captureScreenshot", {"format": "png"})
    shot.write_bytes(base64.b64decode(picture["data"]))
