"""Start a peer by forking the lab's pre-loaded zygote (lab/core/zygote.py) into its
node's network namespace: aiortc is imported once, before the peers are needed."""

from __future__ import annotations

import os
from pathlib import Path

from lab.core.zygote import ForkedProcess, zygote

#: What every peer needs loaded (the per-node resolver, and jsonschema with it: every
#: peer enters its resolver; aiortc for the default agent): lab/run/programs.py has the
#: zygote import them.
PEER_MODULES = ("lab.network.resolver", "lab.peers.aiortc_peer")


def fork_peer(namespace_pid: int, log_path: Path, config_path: Path) -> ForkedProcess:
    """Run the peer described by `config_path` inside the namespace of `namespace_pid`."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    target, args = "lab.peers.agents:run_peer", [str(config_path)]
    try:
        pid = zygote().fork(namespace_pid, target, args, stdout=log, stderr=log)
    finally:
        os.close(log)
    return ForkedProcess(pid, [target, *args])
