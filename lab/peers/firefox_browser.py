"""A headless Firefox for one peer: its own profile and certificate database, started in
the peer's network namespace (every Firefox process inherits it), driven over WebDriver
BiDi on a port of the namespace's own loopback.

The run's CA is trusted the way a user's Firefox trusts a CA, in the profile's NSS
database (`cert9.db`, written with `certutil`), never with a pref that ignores
certificates: a TURN or signaling server whose certificate does not validate fails in
Firefox as it would for a customer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.core.slowdown import scaled
from lab.peers.bidi import BiDiConnection, BiDiError
from lab.peers.chromium_browser import find_binary, nss_trust

#: Debian's firefox-esr binary itself first (not a wrapper script), then names on PATH.
BINARIES = ("/usr/lib/firefox-esr/firefox-esr", "firefox-esr", "firefox")
#: A path (or name on PATH) that overrides the choice.
BINARY_ENV = "ICELAB_FIREFOX"
PR_SET_PDEATHSIG = 1
#: Where Firefox writes the port it chose for `--remote-debugging-port 0` (Firefox 129+).
PORT_FILE = "WebDriverBiDiServer.json"
STARTUP_TIMEOUT_S = 20.0
#: Prefs of the profile's user.js. Firefox's remote agent already applies its recommended
#: automation prefs (remote.prefs.recommended: no updates, no telemetry uploads, no
#: captive-portal or connectivity probes); these say so again where the lab depends on it,
#: as the peer's namespace has only lab addresses.
PREFS: dict[str, Any] = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "app.update.disabledForTesting": True,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "extensions.update.enabled": False,
    "media.peerconnection.enabled": True,
}
#: Firefox's own pref for what `--reveal-host-addresses` turns off (mDNS host names).
MDNS_PREF = "media.peerconnection.ice.obfuscate_host_addresses"


def firefox_binary() -> str | None:
    """The Firefox executable to run, or None if the distribution's package is missing."""
    return find_binary(BINARY_ENV, BINARIES)


def user_js(reveal_host_addresses: bool) -> str:
    """The profile's user.js: PREFS, and mDNS host names unless revealed."""
    prefs = PREFS | {MDNS_PREF: not reveal_host_addresses}
    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


def make_profile(profile: Path, ca_file: Path, reveal_host_addresses: bool) -> None:
    """A fresh profile: prefs and the run's CA, nothing else (Firefox fills in the rest)."""
    shutil.rmtree(profile, ignore_errors=True)
    profile.mkdir(parents=True)
    (profile / "user.js").write_text(user_js(reveal_host_addresses))
    nss_trust(profile, ca_file)  # Firefox reads the profile's own cert9.db


def command(binary: str, profile: Path, url: str) -> list[str]:
    return [
        binary,
        "--headless",
        "--no-remote",
        "--profile",
        str(profile),
        "--remote-debugging-port",
        "0",  # Firefox picks a free port and writes it to PORT_FILE
        url,
    ]


def _die_with_parent() -> None:
    # Firefox dies with the peer process that drives it, whatever kills that.
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Browser:
    process: subprocess.Popen[bytes]
    bidi: BiDiConnection
    profile: Path
    capabilities: dict[str, Any]

    @property
    def version(self) -> dict[str, str]:
        """{name, version, ...} as Firefox reports them in the session's capabilities."""
        return {
            "name": "firefox",
            "version": str(self.capabilities.get("browserVersion", "")),
            "build": "browser",  # the full browser, headless (no shell build as Chromium's)
            "channel": "esr" if "esr" in Path(self.process.args[0]).name else "release",
            "product": f"{self.capabilities.get('browserName', 'firefox')} "
            f"{self.capabilities.get('browserVersion', '')}".strip(),
            "user_agent": str(self.capabilities.get("userAgent", "")),
        }

    async def close(self) -> None:
        """Kill Firefox and remove its profile (its observations are already read)."""
        await self.bidi.close()
        await kill(self.process)
        shutil.rmtree(self.profile, ignore_errors=True)


async def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL Firefox's process group (its content and socket processes are in it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await asyncio.to_thread(process.wait, 5.0)


async def bidi_port(profile: Path, process: subprocess.Popen[bytes], timeout_s: float) -> int:
    """The port Firefox chose, once it has written it (or BiDiError if it exited)."""
    port_file = profile / PORT_FILE
    async with asyncio.timeout(timeout_s):
        while True:
            if process.poll() is not None:
                raise BiDiError(f"firefox exited with status {process.returncode} at start-up")
            with contextlib.suppress(OSError, ValueError, KeyError):
                return int(json.loads(port_file.read_text())["ws_port"])
            await asyncio.sleep(0.02)


async def launch(
    binary: str,
    profile: Path,
    ca_file: Path,
    reveal_host_addresses: bool,
    log: Any,
    url: str = "about:blank",
) -> Browser:
    """Start Firefox with a fresh profile that trusts `ca_file`; return it with a BiDi
    session open (session.new answers once Firefox has finished starting)."""
    await asyncio.to_thread(make_profile, profile, ca_file, reveal_host_addresses)
    environment = {**os.environ, "HOME": str(profile), "MOZ_CRASHREPORTER_DISABLE": "1"}
    process = subprocess.Popen(
        command(binary, profile, url),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=environment,
        # Its own process group: the runner's SIGTERM to the peer's group must reach the
        # peer process, which still has to read the page's report, and not the browser.
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    try:
        port = await bidi_port(profile, process, scaled(STARTUP_TIMEOUT_S))
        bidi = await BiDiConnection.open(f"ws://127.0.0.1:{port}/session")
    except BaseException:
        await kill(process)
        shutil.rmtree(profile, ignore_errors=True)
        raise
    return Browser(process, bidi, profile, bidi.capabilities)
