"""The lab's own Python programs a run starts (the signaling server, the peers), forked
from one pre-loaded zygote (lab/core/zygote.py) rather than started as interpreters."""

from __future__ import annotations

from lab.core.zygote import start_zygote

#: What the zygote imports, in the order a run needs it: the signaling server (started
#: right after the network is built) and botocore's signer (lab.servers.sigv4
#: SIGNER_MODULES), which the peers sign their URLs with too; then the peers
#: (lab.peers.forked PEER_MODULES). Names, not imports: the lab starts the zygote before
#: it imports anything else, so this module stays light (a unit test keeps the lists equal).
PROGRAM_MODULES = (
    "lab.servers.signaling",
    "botocore.auth",
    "botocore.awsrequest",
    "botocore.credentials",
    "lab.network.resolver",
    "lab.peers.aiortc_peer",
)


def preload_programs() -> None:
    """Start the zygote now: it imports the programs on the other core while the lab
    imports its own code and builds the network."""
    start_zygote(PROGRAM_MODULES)
