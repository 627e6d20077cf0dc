"""A headless Chromium for one peer: its own profile and certificate store, started in the
peer's network namespace (every browser process inherits it), driven over a DevTools pipe.

The run's CA is trusted the way a user's machine trusts a CA, in the profile's NSS
database (`certutil`), never with a flag that ignores certificates: a TURN server or a
signaling server whose certificate does not validate fails in the browser as it would
for a customer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.peers.cdp import DevToolsPipe

#: Chromium's headless shell first: the same Chromium build (the same libwebrtc, network
#: stack and certificate verification) without the browser's user interface layer, ready
#: for DevTools in about 0.15 s where the full browser takes 0.6 s on two cores, and a
#: page in 0.15 s where it takes 0.4 s. Then the full browser. Each binary itself before
#: the distribution's wrapper script (which only adds flags and costs a shell start).
BINARIES = (
    "/usr/lib/chromium/chromium-headless-shell",
    "/usr/lib/chromium/chromium",
    "chromium-headless-shell",
    "chromium",
    "chromium-browser",
)
#: A path (or name on PATH) that overrides the choice, e.g. the full browser.
BINARY_ENV = "ICELAB_CHROMIUM"
PR_SET_PDEATHSIG = 1
CA_NICKNAME = "ice-lab run CA"
FLAGS = (
    "--headless",
    "--no-sandbox",  # root cannot use Chromium's sandbox
    "--no-zygote",  # fewer processes, faster start (needs --no-sandbox)
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    # No traffic of the browser's own: the namespace has only lab addresses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    # A headless page is a background page: timers must not be throttled mid-call.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--allow-file-access-from-files",
    "--remote-debugging-pipe",
)
#: Chromium's own name for what `--reveal-host-addresses` turns off.
MDNS_FEATURE = "WebRtcHideLocalIpsWithMdns"


def find_binary(override_env: str, names: tuple[str, ...]) -> str | None:
    """The first of `names` found (or the one `override_env` names), else None."""
    chosen = os.environ.get(override_env)
    for name in (chosen,) if chosen else names:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_binary() -> str | None:
    """The Chromium executable to run, or None if the distribution's package is missing."""
    return find_binary(BINARY_ENV, BINARIES)


def build_of(binary: str) -> str:
    """Which build of Chromium a binary is: `headless-shell` or the full `browser`."""
    return "headless-shell" if "headless-shell" in Path(binary).name else "browser"


def trust_ca(home: Path, ca_file: Path) -> None:
    """Create the profile's NSS database and trust the run's CA for TLS servers in it."""
    nss_trust(home / ".pki" / "nssdb", ca_file)


def nss_trust(database: Path, ca_file: Path) -> None:
    """Create an NSS database in `database` that trusts `ca_file` for TLS servers (what a
    user's "trust this CA to identify websites" writes)."""
    database.mkdir(parents=True, exist_ok=True)
    store = f"sql:{database}"
    for args in (
        ["-N", "--empty-password"],
        ["-A", "-n", CA_NICKNAME, "-t", "C,,", "-i", str(ca_file)],
    ):
        subprocess.run(["certutil", "-d", store, *args], check=True, capture_output=True)


def browser_flags(
    profile: Path, reveal_host_addresses: bool, proxy_server: str | None = None
) -> list[str]:
    flags = [*FLAGS, f"--user-data-dir={profile / 'data'}"]
    if reveal_host_addresses:
        flags.append(f"--disable-features={MDNS_FEATURE}")
    if proxy_server:
        flags.append(f"--proxy-server={proxy_server}")
    return flags


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are above 9 (close-on-exec), so that moving them onto the
    browser's fds 3 and 4 can never overwrite one with the other."""
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


def _child_setup(command_read: int, reply_write: int) -> Callable[[], None]:
    def setup() -> None:
        # The browser dies with the peer process that drives it, whatever kills that.
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.dup2(command_read, 3)
        os.dup2(reply_write, 4)

    return setup


@dataclass
class Browser:
    process: subprocess.Popen[bytes]
    devtools: DevToolsPipe
    profile: Path

    @property
    async def version(self) -> dict[str, str]:
        """{name, version} from the browser itself ("HeadlessChrome/156.0..." -> 156.0...)."""
        info = await self.devtools.call("Browser.getVersion")
        product = info.get("product", "")
        match = re.search(r"/([0-9.]+)$", product)
        return {
            "name": "chromium",
            "version": match.group(1) if match else product,
            "build": build_of(self.process.args[0]),
            "product": product,
            "user_agent": info.get("userAgent", ""),
        }

    async def close(self) -> None:
        """Kill the browser and remove its profile.

        Killed, not closed over DevTools: a graceful close costs 0.1-0.3 s and saves
        nothing the lab needs (its observations are already read). The browser's own
        children exit when it dies; the lab's tear-down sweeps the namespace anyway."""
        self.devtools.close()
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await asyncio.to_thread(self.process.wait, 5.0)
        shutil.rmtree(self.profile, ignore_errors=True)


async def launch(
    binary: str,
    profile: Path,
    ca_file: Path,
    reveal_host_addresses: bool,
    log: Any,
    url: str = "about:blank",
    proxy_server: str | None = None,
) -> Browser:
    """Start a browser with a fresh profile under `profile` that trusts `ca_file`."""
    profile.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(trust_ca, profile, ca_file)
    command_read, command_write = _high_pipe()
    reply_read, reply_write = _high_pipe()
    environment = {**os.environ, "HOME": str(profile)}
    process = subprocess.Popen(
        [binary, *browser_flags(profile, reveal_host_addresses, proxy_server), url],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=environment,
        close_fds=False,  # fds 3 and 4 are made in the child; the lab's own are CLOEXEC
        # Its own process group: the runner's SIGTERM to the peer's group must reach the
        # peer process, which still has to read the page's report, and not the browser.
        start_new_session=True,
        preexec_fn=_child_setup(command_read, reply_write),
    )
    os.close(command_read)
    os.close(reply_write)
    return Browser(process, DevToolsPipe(reply_read, command_write), profile)
