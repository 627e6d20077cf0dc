"""Each lab host's resolver: its own /etc/resolv.conf, without touching the machine's.

Mininet hosts are network namespaces only: they share the machine's mount namespace, so
/etc/resolv.conf would be the machine's own. Every process the lab starts in a node
instead gets a private mount namespace in which the run's files for that node are bound
over /etc/resolv.conf, /etc/hosts and /etc/nsswitch.conf (as `ip netns exec` does with
/etc/netns/NAME/). The mount namespace lives as long as the process (and its children,
such as Chromium): nothing is left behind, and the machine's files are never changed.

A host's resolver is the nearest LAN resolver on its way out (a gateway running one, for
split DNS or a firewall that allows by name), else the public DNS server of the emulated
internet, reached through the host's NATs like any server.
"""

from __future__ import annotations

import ctypes
import ipaddress
import math
import os
from collections.abc import Iterable
from pathlib import Path

from lab.core.slowdown import scaled
from lab.network.topology import Topology

DIRECTORY = "resolv"
FILES = ("resolv.conf", "hosts", "nsswitch.conf")
#: glibc's lookups, restricted to files and DNS: a machine whose nsswitch.conf asks
#: systemd-resolved (nss-resolve) or mDNS would otherwise bypass the run's resolv.conf.
NSSWITCH = "hosts: files dns\nnetworks: files\n"
CLONE_NEWNS = 0x00020000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
#: Bind the node's files, then become the command (`sh -c SCRIPT ice-lab-resolver DIR
#: CMD...`); a bind that fails stops it rather than run it with the machine's files.
SCRIPT = " && ".join(
    [f'mount --bind "$1/{name}" /etc/{name}' for name in FILES] + ["shift", 'exec "$@"']
)


def resolver_addresses(
    topology: Topology, public: str, lan_resolvers: Iterable[str]
) -> dict[str, str]:
    """Node -> the address of its DNS resolver (see the module's docstring)."""
    lan = set(lan_resolvers)
    owner = {ipaddress.IPv4Address(a): n.name for n in topology.nodes.values() for a in n.addresses}
    chosen = {}
    for node in topology.nodes.values():
        chosen[node.name] = public
        current = node
        for _ in range(len(topology.nodes)):  # a gateway chain is never longer
            if current.gateway is None or current.gateway not in owner:
                break
            gateway = topology.node(owner[current.gateway])
            if gateway.name in lan:
                chosen[node.name] = str(current.gateway)
                break
            current = gateway
    return chosen


def resolver_timeout_s(added_rtt_ms: float) -> int:
    """Seconds a query waits for its answer: 1 on the lab's fast links (a name with no
    server answering fails in about 2 s rather than 10), more where the scenario's delays
    make a round trip longer, and on a slow machine (ICE_LAB_SLOWDOWN), whose DNS server
    answers late (glibc allows at most 30)."""
    return min(30, math.ceil(scaled(1 + math.ceil(added_rtt_ms / 1000))))


def resolver_attempts(loss_percent: float) -> int:
    """Tries per query: glibc's 2 on clean links, its most (5) where the scenario's links
    lose packets. At 10 % loss each way a query or its answer is lost about 1 time in 5,
    so two tries failed a run's lookups about once in 30 runs (lossy-link, in CI); five
    fail about once in 3000 lookups, a lost answer costing one timeout each."""
    return 5 if loss_percent > 0 else 2


def render_resolv_conf(nameserver: str, timeout_s: int = 1, attempts: int = 2) -> str:
    """A resolv.conf with one server and the run's timeout and tries."""
    return (
        "# ice-lab: this host's resolver, one run only\n"
        f"nameserver {nameserver}\noptions timeout:{timeout_s} attempts:{attempts}\n"
    )


def render_hosts(node: str) -> str:
    return f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{node}\n"


def write_node_files(
    workdir: Path, resolvers: dict[str, str], timeout_s: int = 1, attempts: int = 2
) -> dict[str, Path]:
    """Write each node's files under `workdir/resolv/<node>/`; node -> that directory."""
    directories = {}
    for node, nameserver in resolvers.items():
        directory = workdir / DIRECTORY / node
        directory.mkdir(parents=True, exist_ok=True)
        conf = render_resolv_conf(nameserver, timeout_s, attempts)
        (directory / "resolv.conf").write_text(conf)
        (directory / "hosts").write_text(render_hosts(node))
        (directory / "nsswitch.conf").write_text(NSSWITCH)
        directories[node] = directory
    return directories


def command_prefix(directory: Path) -> list[str]:
    """What runs a command with the node's files bound over the machine's (a private mount
    namespace: unshare(1) makes its mounts private, so none propagates back)."""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        SCRIPT,
        "ice-lab-resolver",
        str(directory),
    ]


def node_directory(workdir: Path, node: str) -> Path | None:
    """The node's files in a run directory, if the run made them."""
    directory = workdir / DIRECTORY / node
    return directory if (directory / "resolv.conf").exists() else None


def enter(directory: Path) -> None:
    """Do in this process what `command_prefix` does for a new one (a forked peer: it must
    be single-threaded, as unsharing the mount namespace unshares the file-system state)."""
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "making / private")
    for name in FILES:
        source = os.fsencode(directory / name)
        _check(
            libc.mount(source, f"/etc/{name}".encode(), None, MS_BIND, None), f"binding /etc/{name}"
        )


def _check(status: int, what: str) -> None:
    if status != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
