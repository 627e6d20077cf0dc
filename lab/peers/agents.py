"""The ICE agents a peer can run, behind one interface: a module per agent whose
`async observe(config) -> observations` runs one peer in the current network namespace
and returns what it saw, as lab/observations/ice.py's records (written to the config's
`result_path` here, the same for every agent).

A run never asks which agent it drives: the runner forks a peer process into the
node's namespace and that process calls `run_peer` here, which picks the module.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
from pathlib import Path

from lab.core.errors import LabInputError
from lab.peers.config import PeerConfig
from lab.peers.signaling_url import presigned

#: Agent name -> the module that runs it.
AGENTS = {
    "aiortc": "lab.peers.aiortc_peer",
    "chromium": "lab.peers.chromium_peer",
    "firefox": "lab.peers.firefox_peer",
    "kvs-js": "lab.peers.kvs_js_peer",
    # A user's own program (--viewer-command/--master-command): not named on its own.
    "command": "lab.peers.command_peer",
}
DEFAULT_AGENT = "aiortc"
#: Seconds an agent may take from its process's start to its first signaling message,
#: beyond what the timing profile allows: Firefox answers WebDriver BiDi 1.3-2.8 s after
#: it starts on two idle cores and took 4-8 s with four browsers starting at once
#: (`lab compare -j 2`), where the other peer's 8 s wait for a description ran out.
START_UP_S = {"firefox": 8.0}
#: Agents that hold an ongoing call (a scenario's `call`: traffic, pauses, timeline).
CALL_AGENTS = ("aiortc", "chromium", "firefox")


def require_call_support(name: str, where: str) -> None:
    """LabInputError naming `where` when the agent cannot hold a scenario's call: its run
    would connect and then say nothing of the events the scenario is about."""
    if name not in CALL_AGENTS:
        raise LabInputError(
            f"{where}: the scenario holds a call (call, events) and the {name} agent cannot "
            f"yet; use {' or '.join(CALL_AGENTS)}"
        )


def require_agent(name: str, where: str) -> None:
    """LabInputError naming `where` unless `name` is an agent this machine can run."""
    if name == "command":
        raise LabInputError(
            f"{where}: give the program itself with --viewer-command/--master-command"
        )
    if name not in AGENTS:
        raise LabInputError(f"{where}: unknown agent '{name}' (known: {', '.join(AGENTS)})")
    if name in ("chromium", "kvs-js"):
        # Lazy: an agent's own modules load only for a run with that agent (as AGENTS).
        from lab.peers.chromium_browser import chromium_binary

        if chromium_binary() is None:
            raise LabInputError(
                f"{where}: the {name} agent needs Chromium, which is not installed "
                "(make setup installs the distribution's chromium package)"
            )
    if name == "firefox":
        # Lazy: only a run with a Firefox peer needs the BiDi client (and websockets).
        from lab.peers.firefox_browser import firefox_binary

        if firefox_binary() is None:
            raise LabInputError(
                f"{where}: the firefox agent needs Firefox, which is not installed "
                "(make setup installs the distribution's firefox-esr package)"
            )
    if name == "kvs-js":
        from lab.peers.kvs_js_peer import missing_assets  # lazy: as above

        if missing := missing_assets():
            raise LabInputError(
                f"{where}: the kvs-js agent needs the KVS JavaScript SDK, which is not "
                f"installed ({missing[0]} is missing: make setup installs it with npm)"
            )


def run_peer(config_path: str | Path) -> None:
    """Run the peer `config_path` describes with its agent and write its observations
    (the forked process's whole job). The peer signs its signaling URL itself, with the
    run's access key, as a KVS client does."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(relativeCreated)6.0fms %(name)s %(message)s",
    )
    config = PeerConfig.read(Path(config_path))
    config.signaling_url = presigned(config.signaling_url, config.service)
    if config.resolver_dir:
        # Lazy: only a peer whose node has a resolver of its own enters it.
        from lab.network.resolver import enter

        enter(Path(config.resolver_dir))
    observations = asyncio.run(importlib.import_module(AGENTS[config.agent]).observe(config))
    Path(config.result_path).write_text(json.dumps(observations, indent=2))
