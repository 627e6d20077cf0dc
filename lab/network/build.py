"""Build a topology for real: one Mininet host (network namespace) per node, veth links,
addresses, routes, forwarding, and the NAT/firewall rulesets of the scenario.

Mininet runs without Open vSwitch or a controller: routers, NATs and firewalls are
plain hosts with forwarding on, linked directly. A link whose delay the lab's delay line
carries (lab.network.wires) gets a wire namespace spliced in, with its delay line
process. Tear-down kills only what the lab started (by pid, and by membership of the
lab's own namespaces) — never by pattern.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mininet.link import Link
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import Host

from lab.core.errors import LabRunError
from lab.core.processes import start_time
from lab.core.slowdown import scaled
from lab.core.zygote import ForkedProcess, zygote
from lab.network.conditions import NodeConditions
from lab.network.firewall import render_firewall
from lab.network.impairments import (
    ArrivalLoss,
    arrival_losses,
    render_impairments,
    render_loss_ruleset,
)
from lab.network.ipv6 import (
    Route6,
    cpe_firewall_interfaces,
    delegated_routes,
    ipv6_commands,
    ipv6_sysctls,
    render_cpe_firewall6,
    start_nat64,
)
from lab.network.nat import conntrack_sysctls, render_nat
from lab.network.topology import Node, Topology
from lab.network.vpn import (
    PlannedTunnel,
    concentrated_interfaces,
    concentrator_ports,
    plan_tunnels,
    remove_sockets,
    start_tunnels,
)
from lab.network.wires import (
    Wire,
    delay_line_command,
    link_segments,
    plan_wires,
    render_wire_commands,
    render_wire_ruleset,
)

log = logging.getLogger(__name__)

#: Mininet host names (and so the shells' `mininet:<name>` tag) start with this, which is
#: how `lab clean` recognises the lab's own namespaces and nothing else.
HOST_PREFIX = "icelab."
#: Every process the lab starts, by pid and start time, one JSON line each in the run
#: directory: what `lab clean` kills after a crash, and nothing else.
PROCESS_RECORD = "processes.jsonl"
#: What the record calls the process that built the network.
OWNER = "owner"
#: The bridge a `switch` node joins its links with.
BRIDGE = "br0"
#: How long a delay line may take to start (a Python process) before the build fails.
DELAY_LINE_START_S = 10.0
#: How long one node's configuration (addresses, routes, ruleset) may take.
NODE_SETUP_S = 20.0


@dataclass
class NodeSetup:
    """Everything that configures one node, as text: rendered first, then applied."""

    commands: list[str] = field(default_factory=list)
    ruleset: str = ""
    #: Run after the ruleset is loaded: conntrack's sysctls exist only once the module
    #: is loaded, which on a modular kernel (the Vagrant VM's) the NAT ruleset does.
    after_ruleset: list[str] = field(default_factory=list)


def render_node_setup(
    node: Node,
    conditions: NodeConditions | None,
    losses: Sequence[ArrivalLoss] = (),
    routes6: Sequence[Route6] = (),
    *,
    tunnels: Sequence[PlannedTunnel] = (),  # lab.network.vpn: a concentrator NATs their ends
) -> NodeSetup:
    """The shell commands and nftables ruleset that configure `node` (pure: unit-tested).

    `losses`: packet loss on the node's arriving packets, its own and its neighbours'
    (`lab.network.impairments.arrival_losses`); `routes6`: the IPv6 prefixes delegated
    below the node (`lab.network.ipv6.delegated_routes`).
    """
    sysctls = {
        "net.ipv6.conf.all.disable_ipv6": "1",
        "net.ipv6.conf.default.disable_ipv6": "1",
        "net.ipv4.ip_forward": "1" if node.forwards else "0",
        **ipv6_sysctls(node),
    }
    ruleset = ""
    conntrack: dict[str, str] = {}
    uplink = node.uplink()
    if conditions and uplink is not None:
        inside = [i.name for i in node.downlinks()] + concentrated_interfaces(node.name, tunnels)
        if conditions.nat is not None:
            public, served = str(uplink.primary.ip), concentrator_ports(node.name, tunnels)
            ruleset += render_nat(conditions.nat, uplink.name, public, inside, served)
            conntrack = conntrack_sysctls(conditions.nat)
        if conditions.firewall is not None and inside:
            ruleset += render_firewall(conditions.firewall, uplink.name, inside)
    if cpe := cpe_firewall_interfaces(node):
        ruleset += render_cpe_firewall6(*cpe)
    commands = ["ip link set lo up"]
    if node.is_switch:
        # One LAN: a bridge inside the switch's own namespace (never the machine's).
        commands += [f"ip link add {BRIDGE} type bridge", f"ip link set {BRIDGE} up"]
    for interface in node.interfaces:
        for address in interface.addresses:
            commands.append(f"ip addr add {address} dev {interface.name}")
        if node.is_switch:
            commands.append(f"ip link set {interface.name} master {BRIDGE}")
        commands.append(f"ip link set {interface.name} up")
    if node.gateway is not None:
        commands.append(f"ip route add default via {node.gateway}")
    commands += source_routes(node)
    commands += ipv6_commands(node, list(routes6))
    commands.append(_sysctl(sysctls))
    for impairment in conditions.impairments if conditions else ():
        commands += render_impairments(impairment)  # one interface each
    ruleset += render_loss_ruleset(losses)
    return NodeSetup(commands, ruleset, [_sysctl(conntrack)] if conntrack else [])


#: The routing table of a multi-homed host's first further uplink (then 101, 102...).
FIRST_UPLINK_TABLE = 100


def source_routes(node: Node) -> list[str]:
    """A multi-homed host's further uplinks (pure): what leaves from an interface's
    address takes that interface's gateway, as a phone on Wi-Fi and LTE routes each
    network's traffic out of its own radio; everything else takes the default route."""
    commands = []
    for n, gateway in enumerate(node.other_gateways):
        table = FIRST_UPLINK_TABLE + n
        interface = node.interface_towards(gateway)
        assert interface is not None  # checked when the topology was loaded
        for address in interface.addresses:
            commands.append(f"ip route add {address.network} dev {interface.name} table {table}")
            commands.append(f"ip rule add from {address.ip} table {table}")
        commands.append(f"ip route add default via {gateway} table {table}")
    return commands


def _sysctl(values: dict[str, str]) -> str:
    return "sysctl -q -w " + " ".join(f"{k}={v}" for k, v in values.items())


class LabNetwork:
    """A running lab network. Use as a context manager so it is always torn down."""

    def __init__(
        self,
        topology: Topology,
        conditions: Mapping[str, NodeConditions],
        workdir: Path,
    ) -> None:
        self.topology = topology
        self.conditions = conditions
        self.workdir = workdir
        self.net: Mininet | None = None
        self.hosts: dict[str, Host] = {}
        self.processes: list[subprocess.Popen[bytes]] = []
        self._namespaces: set[str] = set()
        #: Delay lines spliced into links (lab.network.wires); their hosts are in `hosts`
        #: under the wire's name, which no node can have.
        self.wires: list[Wire] = []
        #: Wire name -> its delay line process.
        self.delay_lines: dict[str, subprocess.Popen[bytes]] = {}
        #: VPN tunnels (lab.network.vpn), their interface names unique to this run, and
        #: their wireguard-go processes.
        self.tunnels = plan_tunnels(topology.vpns)
        self.tunnel_processes: list[subprocess.Popen[bytes]] = []
        #: Node -> what its commands run under (lab/network/resolver.py: the node's own
        #: resolv.conf in a private mount namespace), once the run has set it.
        self.command_prefixes: dict[str, list[str]] = {}

    def __enter__(self) -> LabNetwork:
        try:
            self.build()
        except BaseException:
            # Interrupted or failed half-way: tear down the part that exists.
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- building ---------------------------------------------------------------------

    def build(self) -> None:
        """Create the namespaces and links, configure every node in parallel, then start
        the delay lines of the wires spliced into impaired links."""
        setLogLevel("error")
        # First in the record: the process that owns this network. While it lives, the
        # run is in progress and `lab clean` leaves it alone (lab/run/cleanup.py).
        self._record(os.getpid(), OWNER)
        self.net = Mininet(topo=None, controller=None, switch=None, build=False)
        self.wires = plan_wires({name: c.impairments for name, c in self.conditions.items()})
        self._add_hosts([node.name for node in self.topology.nodes.values()])
        self._add_hosts([wire.name for wire in self.wires])
        for link in self.topology.links:
            for (a, a_name), (b, b_name) in link_segments(link, self.wires):
                Link(self.hosts[a], self.hosts[b], intfName1=a_name, intfName2=b_name)
        self._configure_all()
        for name, condition in self.conditions.items():
            if condition.nat64:
                start_nat64(self, name, self.workdir)  # popen tracks it for tear-down
        self._start_delay_lines()
        self.tunnel_processes = start_tunnels(self, self.tunnels, self.topology)

    def _add_hosts(self, names: list[str]) -> None:
        """One Mininet host (a shell in a new namespace) per name, started at once: each
        waits tens of milliseconds for its shell's prompt, time spent in a read."""
        net = self.net
        assert net is not None
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            started = [pool.submit(net.addHost, HOST_PREFIX + name, ip=None) for name in names]
        for name, future in zip(names, started, strict=True):
            host = future.result()  # a host that failed to start fails the build here
            self.hosts[name] = host
            self._record(host.pid, f"shell {name}")
            self._namespaces.add(os.readlink(f"/proc/{host.pid}/ns/net"))

    def _configure_all(self) -> None:
        losses = arrival_losses(
            self.topology, {name: c.impairments for name, c in self.conditions.items()}
        )
        routes6 = delegated_routes(self.topology)
        setups = {
            name: render_node_setup(
                node,
                self.conditions.get(name),
                losses.get(name, ()),
                routes6.get(name, ()),
                tunnels=self.tunnels,
            )
            for name, node in self.topology.nodes.items()
        }
        for wire in self.wires:
            setups[wire.name] = NodeSetup(render_wire_commands(wire), render_wire_ruleset(wire))
        running = {name: self._apply_setup(name, setup) for name, setup in setups.items()}
        for name, process in running.items():
            _, stderr = process.communicate(timeout=scaled(NODE_SETUP_S))
            if process.returncode != 0:
                raise LabRunError(
                    f"configuring node '{name}' failed: {stderr.decode().strip() or 'no output'}"
                )

    def _apply_setup(self, name: str, setup: NodeSetup) -> subprocess.Popen[bytes]:
        script = ["set -e", *setup.commands]
        if setup.ruleset:
            path = self.workdir / f"{name}.nft"
            path.write_text(setup.ruleset)
            # A ruleset that fails to load stops the run: a firewall that silently
            # isn't there would make the lab lie.
            script.append(f"nft -f {path}")
        script += setup.after_ruleset
        return subprocess.Popen(
            ["mnexec", "-a", str(self.hosts[name].pid), "sh", "-c", "\n".join(script)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _start_delay_lines(self) -> None:
        """One delay line per wire, started together; each must say `ready` (both packet
        sockets open) before the build returns, or frames would meet a dead wire."""
        started = []
        for wire in self.wires:
            log_path = self.workdir / f"{wire.name}.log"
            with open(log_path, "wb") as log_file:
                command = delay_line_command(wire, sys.executable, os.getpid())
                process = self.popen(wire.name, command, stdout=subprocess.PIPE, stderr=log_file)
            started.append((wire, process, log_path))
            self.delay_lines[wire.name] = process
        deadline = time.monotonic() + scaled(DELAY_LINE_START_S)
        for wire, process, log_path in started:
            if not _says_ready(process, deadline):
                output = log_path.read_text(errors="replace").strip().splitlines()
                raise LabRunError(
                    f"the delay line of {wire.node}:{wire.interface} did not start: "
                    + (output[-1] if output else "no output")
                )

    # -- running things inside nodes ----------------------------------------------------

    def pid_of(self, node: str) -> int:
        """A process inside the node's namespace (its Mininet shell), for `mnexec -a`."""
        return self.hosts[node].pid

    def command(self, node: str, args: Iterable[str]) -> list[str]:
        prefix = self.command_prefixes.get(node, [])
        return ["mnexec", "-a", str(self.pid_of(node)), *prefix, *args]

    def run(
        self, node: str, args: Iterable[str], timeout: float = 30, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command in the node's namespace and wait for it."""
        return subprocess.run(
            self.command(node, args), capture_output=True, timeout=timeout, input=input
        )

    def run_script(self, node: str, commands: Sequence[str], what: str) -> None:
        """Run `commands` in the node as one `set -e` shell script; LabRunError naming
        `what`, with what the script said, if a command fails."""
        done = self.run(node, ["sh", "-c", "\n".join(["set -e", *commands])])
        if done.returncode != 0:
            said = (done.stderr + done.stdout).decode(errors="replace").strip()
            raise LabRunError(f"{what}: {said or 'no output'}")

    def popen(self, node: str, args: Iterable[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a process in the node's namespace; it is killed at tear-down."""
        process = subprocess.Popen(self.command(node, args), start_new_session=True, **kwargs)  # type: ignore[call-overload]
        self.processes.append(process)
        self._record(process.pid, f"{node}: {next(iter(args), '')}")
        return process

    def fork(
        self, node: str, target: str, args: Sequence[str], *, stderr_path: Path, what: str
    ) -> ForkedProcess:
        """Run one of the lab's Python programs (`module:function`, called with `args`) in
        the node, forked from the pre-loaded zygote (lab/core/zygote.py) instead of a new
        interpreter; its stdout is a pipe the caller reads. It is killed at tear-down."""
        read_end, write_end = os.pipe()
        stderr = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            pid = zygote().fork(self.pid_of(node), target, args, stdout=write_end, stderr=stderr)
        finally:
            os.close(write_end)
            os.close(stderr)
        process = ForkedProcess(pid, [target, *args], stdout=os.fdopen(read_end, "rb"))
        self.processes.append(process)  # type: ignore[arg-type]
        self._record(pid, f"{node}: {what}")
        return process

    def adopt(self, process: object) -> None:
        """Track a process started some other way (a forked peer) for tear-down."""
        self.processes.append(process)  # type: ignore[arg-type]
        self._record(process.pid, "peer")  # type: ignore[attr-defined]

    def _record(self, pid: int, what: str) -> None:
        entry = {"pid": pid, "start": start_time(pid), "what": what}
        with open(self.workdir / PROCESS_RECORD, "a") as record:
            record.write(json.dumps(entry) + "\n")

    # -- tear-down ----------------------------------------------------------------------

    def stop(self) -> None:
        """Kill the lab's processes (delay lines last), then its namespaces; the veth links
        die with them."""
        with signals_deferred():
            # Delay lines and tunnels last: what the others send as they close still
            # gets through.
            lines = [
                p
                for p in self.processes
                if p in self.delay_lines.values() or p in self.tunnel_processes
            ]
            terminate_processes([p for p in self.processes if p not in lines])
            terminate_processes(lines)
            remove_sockets(self.tunnels)
            shells = {h.pid for h in self.hosts.values()}
            kill_namespace_members(self._namespaces, exclude=shells)
            for host in self.hosts.values():
                if host.shell is not None:
                    host.terminate()
            self.hosts.clear()
            self.net = None


def _says_ready(process: subprocess.Popen[bytes], deadline: float) -> bool:
    """Whether the process printed `ready` before `deadline` (and is still running)."""
    assert process.stdout is not None
    wait = max(0.0, deadline - time.monotonic())
    readable, _, _ = select.select([process.stdout], [], [], wait)
    return bool(readable) and process.stdout.readline().strip() == b"ready"


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while tearing down, so a second signal cannot cut it short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def terminate_processes(processes: list[subprocess.Popen[bytes]], grace: float = 1.0) -> None:
    """SIGTERM each process group we started, SIGKILL what is left after `grace` seconds."""
    alive = [p for p in processes if p.poll() is None]
    for process in alive:
        _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in alive:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def namespace_of(pid: int) -> str | None:
    """The network namespace `pid` is in; None if it is gone or in the machine's own."""
    try:
        namespace = os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    return None if namespace == os.readlink("/proc/self/ns/net") else namespace


def namespaces_of(pids: Iterable[int]) -> set[str]:
    """The network namespaces `pids` are in, never the machine's own."""
    return {ns for ns in map(namespace_of, pids) if ns is not None}


def namespace_members(namespaces: set[str]) -> list[int]:
    """Pids of every process whose network namespace is one of `namespaces`; never of the
    machine's own namespace, whatever `namespaces` holds (its members are everything)."""
    namespaces = namespaces - {os.readlink("/proc/self/ns/net")}
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry.name}/ns/net") in namespaces:
                members.append(int(entry.name))
        except OSError:
            continue
    return members


def sigkill(pids: list[int]) -> list[int]:
    """SIGKILL each of `pids` (only ever pids the lab started or found in its own
    namespaces); returns those that were still there to kill."""
    killed = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            continue
    return killed


def kill_namespace_members(namespaces: set[str], exclude: set[int]) -> list[int]:
    """SIGKILL every process left in the lab's namespaces (a safety net after SIGTERM)."""
    members = namespace_members(namespaces)
    killed = sigkill([p for p in members if p not in exclude and p != os.getpid()])
    if killed:
        log.info("killed %d leftover process(es) in lab namespaces", len(killed))
    return killed
