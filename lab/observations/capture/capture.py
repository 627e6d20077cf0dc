"""Capture every link of a running lab: one dumpcap per link, one `nft monitor trace` per
forwarding node, all started inside the lab's namespaces and tracked by pid.

The kernel does the filtering: dumpcap hands a BPF filter to its AF_PACKET socket and
writes what passes, cut to `SNAPLEN` bytes, straight to a pcapng file that names the
interface and, in its comment, the link. For the verdicts, each forwarding node gets a
small table that sets `meta nftrace` on STUN packets (the magic cookie at UDP payload
offset 4) before anything else sees them, so nftables itself reports every chain, rule
and verdict such a packet meets there; a rule that matches packets with no route says
when the routing table, not a rule, ends a packet's way.

Nothing here runs unless a run asks for a capture.
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError, LabRunError
from lab.core.slowdown import scaled
from lab.network.ipv6 import has_ipv6
from lab.network.topology import Link, Topology
from lab.observations.capture.decode import start_decode

#: Bytes kept of each frame: Ethernet, IP and UDP/TCP headers and a STUN message with its
#: attributes (a relayed check inside ChannelData or a Send indication included).
SNAPLEN = 400
#: What the kernel lets through to the capture: UDP (STUN, TURN, DTLS/SCTP) and TCP (TURN
#: over TCP/TLS, signaling), never ARP or anything else.
CAPTURE_FILTER = "udp or tcp"
#: How long a capture process may take to say it is capturing.
START_TIMEOUT_S = 10.0
TRACE_TABLE = "icelab_trace"
#: The comment of the trace table's rule that matches packets the node cannot route.
NO_ROUTE = "no route to the destination"
MANIFEST = "capture.json"
#: The last captured run's pcaps and result, for `lab trace` and `lab pcap` without a path.
LAST_CAPTURE = Path("/run/ice-lab/last-capture")


@dataclass(frozen=True)
class CapturePoint:
    """Where one link is captured: a node's end of it."""

    link: str  # "viewer:eth0 - viewer-gw:eth0"
    node: str
    interface: str
    file: str  # pcapng file name, in the capture directory
    ends: tuple[tuple[str, str], tuple[str, str]] = (("", ""), ("", ""))  # (node, interface)

    def as_dict(self) -> JsonObject:
        return asdict(self)


def link_name(link: Link) -> str:
    return f"{link.a.node}:{link.a.name} - {link.b.node}:{link.b.name}"


def plan_points(topology: Topology) -> list[CapturePoint]:
    """One capture point per link, at the end that is not a switch (a bridge port sees
    only its own link's frames anyway, but a host end is the one people look for)."""
    points = []
    for link in topology.links:
        end = link.b if topology.node(link.a.node).is_switch else link.a
        points.append(
            CapturePoint(
                link_name(link),
                end.node,
                end.name,
                f"{end.node}.{end.name}.pcapng",
                ((link.a.node, link.a.name), (link.b.node, link.b.name)),
            )
        )
    return points


def describe_nodes(topology: Topology) -> JsonObject:
    """What a trail needs of each node: its addresses, its uplink, which link ends are its."""
    nodes = {}
    for node in topology.nodes.values():
        uplink = node.uplink()
        nodes[node.name] = {
            "role": node.role,
            "addresses": node.all_addresses,
            "uplink": uplink.name if uplink else None,
            "interfaces": {i.name: i.peer_node for i in node.interfaces},
        }
    return nodes


def traced_nodes(topology: Topology) -> list[str]:
    """The nodes whose nftables verdicts a trail needs: those that forward packets."""
    return [n.name for n in topology.nodes.values() if n.forwards]


#: What a capture runs, and the package that brings it (scripts/setup.sh installs it).
TOOLS = {"dumpcap": "tshark", "mergecap": "tshark", "tshark": "tshark", "stdbuf": "coreutils"}


def require_capture_tools(pcap_dir: Path | None = None) -> None:
    """Stop before building anything if a capture could not run or keep its pcaps (bad
    input: exit 2)."""
    if pcap_dir is not None and pcap_dir.exists() and not pcap_dir.is_dir():
        raise LabInputError(f"--pcap: {pcap_dir} exists and is not a directory")
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            raise LabInputError(f"--capture: missing tool '{tool}': install {package} (make setup)")


def render_trace_table(family: str = "ip") -> str:
    """The table that makes nftables report what it does with each STUN packet (pure);
    `ip6` for a node's IPv6 packets (a table of its own, so IPv4 tracing is unchanged)."""
    name = TRACE_TABLE if family == "ip" else f"icelab6_{TRACE_TABLE.removeprefix('icelab_')}"
    return f"""table {family} {name} {{
    chain prerouting {{
        type filter hook prerouting priority raw - 10; policy accept;
        meta l4proto udp @th,96,32 0x2112a442 meta nftrace set 1
        fib daddr type != local fib daddr oif missing comment "{NO_ROUTE}"
    }}
}}
"""


def dumpcap_command(point: CapturePoint, directory: Path) -> list[str]:
    return [
        "dumpcap", "-q", "-i", point.interface, "-s", str(SNAPLEN), "-f", CAPTURE_FILTER,
        "-w", str(directory / point.file), "--capture-comment", f"ice-lab link {point.link}",
    ]  # fmt: skip


class Capture:
    """The capture processes of one run; `stop` ends them (the network's tear-down kills
    them too, by pid, if the run dies first)."""

    def __init__(self, network: Any, directory: Path) -> None:
        self.network = network
        self.directory = directory
        self.points = plan_points(network.topology)
        self.nodes = traced_nodes(network.topology)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.waiting: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
        self.monitors: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.started = 0.0

    def start(self) -> None:
        """Start every capture and trace; `ready` waits until they all run."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            table = render_trace_table()
            if has_ipv6(self.network.topology.node(node)):
                table += render_trace_table("ip6")
            loaded = self.network.run(node, ["nft", "-f", "-"], input=table.encode())
            if loaded.returncode != 0:
                raise LabRunError(f"capture: loading the trace table on {node} failed: "
                                  f"{loaded.stderr.decode().strip()}")  # fmt: skip
        waiting = []
        for point in self.points:
            log = open(self.directory / f"{point.file}.log", "wb")  # noqa: SIM115
            process = self.network.popen(
                point.node, dumpcap_command(point, self.directory), stdout=log, stderr=log
            )
            log.close()
            self.processes.append(process)
            waiting.append((point.node, self.directory / f"{point.file}.log", process))
        for node in self.nodes:
            with open(self.directory / f"{node}.trace", "wb") as out:
                # stdbuf: nft writes through stdio, which a file would fully buffer.
                command = ["stdbuf", "-oL", "nft", "monitor", "trace"]
                monitor = self.network.popen(node, command, stdout=out, stderr=out)
                self.processes.append(monitor)
                self.monitors.append((node, monitor))
        self.waiting = waiting

    def ready(self) -> None:
        """Return once every capture is running (its servers started meanwhile)."""
        self._await_capturing(self.waiting)
        for node, monitor in self.monitors:
            if monitor.poll() is not None:
                trace = (self.directory / f"{node}.trace").read_text(errors="replace").strip()
                raise LabRunError(f"nft monitor trace on {node} stopped: {trace or 'no output'}")
        self.started = time.time()

    def _await_capturing(self, waiting: list[tuple[str, Path, subprocess.Popen[bytes]]]) -> None:
        """dumpcap names its file on stderr once its socket is open and filtering."""
        deadline = time.monotonic() + scaled(START_TIMEOUT_S)
        for node, log, process in waiting:
            while b"File:" not in log.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    text = log.read_text(errors="replace").strip()
                    raise LabRunError(f"capture on {node} did not start: {text or 'no output'}")
                select.select([], [], [], 0.01)
        # nft monitor has no ready line; its netlink socket is open within milliseconds.

    def stop(self, decode: bool = True) -> JsonObject:
        """End the captures (dumpcap and nft flush on SIGTERM) and describe them."""
        # Lazy: `lab trace` and `lab pcap` import this module, and Mininet (0.05 s) is
        # needed only by a capture that ran.
        from lab.network.build import terminate_processes

        terminate_processes(self.processes)
        manifest = {
            "directory": str(self.directory),
            "started": self.started,
            "links": [p.as_dict() for p in self.points],
            "traced_nodes": self.nodes,
            "nodes": describe_nodes(self.network.topology),
        }
        (self.directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if decode:
            start_decode(manifest)  # while the network is torn down
        return manifest


def start_capture(network: Any, workdir: Path) -> Capture:
    """Capture every link of `network` into `workdir`/capture until `stop`."""
    capture = Capture(network, workdir / "capture")
    capture.start()
    return capture
