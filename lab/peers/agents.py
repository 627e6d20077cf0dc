"""The ICE agents a peer can run, behind one interface: a module per agent whose
`run_peer(config_path)` runs one peer in the current network namespace and writes its
observations (lab/observations.py's records) to the config's `result_path`.

A run never asks which agent it drives: the runner forks a peer process into the
node's namespace and that process calls `run_peer` here, which picks the module.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from lab.errors import LabInputError
from lab.peers.config import PeerConfig

#: Agent name -> the module that runs it.
AGENTS = {
    "aiortc": "lab.peers.aiortc_peer",
    "chromium": "lab.peers.chromium_peer",
}
DEFAULT_AGENT = "aiortc"


def require_agent(name: str, where: str) -> None:
    """LabInputError naming `where` unless `name` is an agent this machine can run."""
    if name not in AGENTS:
        raise LabInputError(f"{where}: unknown agent '{name}' (known: {', '.join(AGENTS)})")
    if name == "chromium":
        from lab.peers.chromium_browser import chromium_binary

        if chromium_binary() is None:
            raise LabInputError(
                f"{where}: the chromium agent needs Chromium, which is not installed "
                "(make setup installs the distribution's chromium package)"
            )


def run_peer(config_path: Path) -> None:
    """Run the peer `config_path` describes with its agent (the forked process's job)."""
    agent = PeerConfig.read(config_path).agent
    importlib.import_module(AGENTS[agent]).run_peer(config_path)
