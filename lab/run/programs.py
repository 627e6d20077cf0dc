"""The lab's own Python programs a run starts (the signaling server, the peers), forked
from one pre-loaded zygote (lab/core/zygote.py) rather than started as interpreters."""

from __future__ import annotations

from lab.core.zygote import start_zygote
from lab.peers.forked import PEER_MODULES
from lab.servers.sigv4 import SIGNER_MODULES

#: What the zygote imports, in the order a run needs it: the signaling server (started
#: right after the network is built) and botocore's signer, which the peers sign their
#: URLs with too; then the peers (the per-node resolver and aiortc).
PROGRAM_MODULES = ("lab.servers.signaling", *SIGNER_MODULES, *PEER_MODULES)


def preload_programs() -> None:
    """Start the zygote now: it imports the programs on the other core while the lab
    imports its own code and builds the network."""
    start_zygote(PROGRAM_MODULES)
