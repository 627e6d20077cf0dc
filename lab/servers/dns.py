"""The emulated service's host names, and the DNS servers (dnsmasq) that answer them.

Every run has a public DNS server on the signaling node, as the internet has: it answers
the service's names for the scenario's region, shaped as the service shapes them (the
control plane `kinesisvideo.<region>.amazonaws.com`, the signaling endpoints
`m-<8hex>.` (WSS) and `r-<8hex>.` (HTTPS) below it, `stun.` and one TURN host
`<a-b-c-d>.t-<8hex>.` per TURN address), and NXDOMAIN for every other name. A scenario
breaks it as customers' networks break (`dns:` in the scenario): a name that gets no
answer (NXDOMAIN, what a resolver says for a name it does not know), a wrong answer, or a
LAN resolver on a gateway (split DNS) that answers differently for the hosts behind it.

A gateway whose firewall allows by name also runs a LAN resolver, as an enterprise
firewall resolves the names of its rules: dnsmasq's `nftset=` puts every address it
hands out for those names into the firewall's nftables set (lab/network/firewall.py), so
a host may reach an address only after its resolver said the name has it.

Rendering is pure (`render_*`); `start_dns` starts dnsmasq in the nodes, killed by pid
with the lab's other processes.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.core.errors import LabRunError
from lab.network.ipv6 import dns64_listen, dns64_resolvers, synthesized
from lab.network.resolver import (
    command_prefix,
    resolver_addresses,
    resolver_attempts,
    resolver_timeout_s,
    write_node_files,
)
from lab.scenario.dns import Answers

DNS_PORT = 53
#: The public server answers for every name (NXDOMAIN for the ones it does not have)
#: rather than refusing: a refusal makes resolvers retry other servers and fail slowly.
READY_MARKER = "started, version"


def _common(listen: Iterable[str], log: Path) -> list[str]:
    """Options every lab dnsmasq has: its own addresses only, no system files (not the
    machine's resolv.conf or hosts), root (nftset needs CAP_NET_ADMIN), every query logged."""
    lines = ["no-resolv", "no-hosts", "bind-interfaces", f"port={DNS_PORT}", "user=root"]
    lines += ["pid-file=", "log-queries", f"log-facility={log}", "cache-size=0"]
    return lines + [f"listen-address={address}" for address in listen]


def render_public_dns(listen: str, records: dict[str, str], answers: Answers, log: Path) -> str:
    """dnsmasq.conf of the emulated internet's DNS server: authoritative for every name
    (`local=/#/`), answering only `records` as `answers` changes them."""
    lines = ["# ice-lab: the emulated internet's DNS server, one run only", *_common([listen], log)]
    lines.append("local=/#/")
    lines += [f"host-record={name},{address}" for name, address in answers.apply(records).items()]
    return "\n".join(lines) + "\n"


def render_lan_resolver(
    listen: Iterable[str],
    upstream: str,
    answers: Answers,
    name_sets: dict[str, tuple[str, ...]],
    log: Path,
) -> str:
    """dnsmasq.conf of a gateway's LAN resolver: forwards to the public server, except the
    names `answers` changes (answered here: NXDOMAIN or the wrong address), and puts the
    addresses of the names of `name_sets` (nftables set -> names) into those sets."""
    lines = ["# ice-lab: a LAN resolver (split DNS), one run only", *_common(listen, log)]
    lines.append(f"server={upstream}")
    lines += [f"local=/{name}/" for name in answers.no_answer]  # dnsmasq reads `*.` alike
    lines += [f"address=/{name}/{address}" for name, address in answers.wrong_answer.items()]
    for set_name, names in name_sets.items():
        domains = "/".join(_domain(name) for name in names)
        lines.append(f"nftset=/{domains}/4#inet#icelab_filter#{set_name}")
    return "\n".join(lines) + "\n"


def _domain(pattern: str) -> str:
    """dnsmasq's /domain/ covers the domain and the names under it; its nftset= takes no
    `*.`, so it is dropped (a firewall's `*.zone` also lets the zone's own name through)."""
    return pattern.removeprefix("*.")


@dataclass(frozen=True)
class DnsServer:
    """One dnsmasq to start: where, with which configuration."""

    node: str
    config: str
    role: str  # public | lan | dns64
    log: Path


def start_dns(network: Any, servers: list[DnsServer], workdir: Path) -> Callable[[float], None]:
    """Start every DNS server in its node (killed by pid at tear-down with the lab's other
    processes); the returned wait raises LabRunError if one is not ready by the deadline."""
    started = []
    for server in servers:
        path = workdir / f"dnsmasq-{server.node}.conf"
        path.write_text(server.config)
        stderr = workdir / f"dnsmasq-{server.node}.stderr"
        args = ["dnsmasq", "--keep-in-foreground", f"--conf-file={path}"]
        process = network.popen(
            server.node, args, stdout=subprocess.DEVNULL, stderr=stderr.open("wb")
        )
        started.append((server, process, stderr))

    def wait(deadline: float) -> None:
        for server, process, stderr in started:
            while not _says_started(server.log):
                if process.poll() is not None or time.monotonic() > deadline:
                    detail = stderr.read_text(errors="replace").strip() or "no output"
                    raise LabRunError(f"dnsmasq on {server.node} did not start: {detail}")
                time.sleep(0.005)

    return wait


def _says_started(log: Path) -> bool:
    try:
        return READY_MARKER in log.read_text(errors="replace")
    except FileNotFoundError:
        return False


LOG_LINE = re.compile(
    r"dnsmasq\[\d+\]: (?:query\[(?P<type>\w+)\] (?P<asked>\S+) from (?P<client>\S+)"
    r"|(?:config|reply|cached) (?P<answered>\S+) is (?P<answer>\S+))"
)


def read_answers(workdir: Path) -> list[dict[str, str]]:
    """What the run's DNS servers were asked and answered (from their logs), for the
    result's `servers.dns`: [{server, client, type, name, answer}] in order."""
    answers: list[dict[str, str]] = []
    for log in sorted(workdir.glob("dnsmasq-*.log")):
        server = log.stem.removeprefix("dnsmasq-")
        pending: dict[str, list[dict[str, str]]] = {}  # name -> its queries, oldest first
        for match in LOG_LINE.finditer(log.read_text(errors="replace")):
            if match["asked"]:
                query = {"server": server, "client": match["client"], "type": match["type"]}
                pending.setdefault(match["asked"], []).append({**query, "name": match["asked"]})
            elif pending.get(match["answered"]):
                query = pending[match["answered"]].pop(0)
                answers.append({**query, "answer": match["answer"]})
    return answers


def plan_dns(scenario: Any, workdir: Path) -> tuple[list[DnsServer], dict[str, str]]:
    """The run's DNS servers (the public one on the signaling node, a LAN resolver on each
    gateway the scenario gives one or whose firewall allows by name) and each node's
    resolver address."""
    topology = scenario.topology
    public = topology.node(scenario.signaling_host).primary_address
    turn = topology.node(scenario.stun_turn.host).addresses if scenario.stun_turn else []
    records = scenario.service_names.records(public, turn)
    log = workdir / "dnsmasq-public.log"
    servers = [
        DnsServer(
            scenario.signaling_host,
            render_public_dns(public, records, scenario.dns.public, log),
            "public",
            log,
        )
    ]
    name_sets = {
        node: condition.firewall.name_sets()
        for node, condition in scenario.conditions.items()
        if condition.firewall is not None and condition.firewall.name_sets()
    }
    lan_nodes = sorted(set(scenario.dns.lan_resolvers) | set(name_sets))
    for node in lan_nodes:
        listen = [str(a.ip) for i in topology.node(node).downlinks() for a in i.addresses]
        answers = scenario.dns.lan_resolvers.get(node) or Answers()
        log = workdir / f"dnsmasq-{node}.log"
        config = render_lan_resolver(listen, public, answers, name_sets.get(node, {}), log)
        servers.append(DnsServer(node, config, "lan", log))
    nat64 = sorted(n for n, c in scenario.conditions.items() if c.nat64)
    for node in nat64:
        log = workdir / f"dnsmasq-{node}.log"
        listen = dns64_listen(topology.node(node))
        config = render_dns64(listen, public, scenario.dns.public.apply(records), log)
        servers.append(DnsServer(node, config, "dns64", log))
    resolvers = resolver_addresses(topology, public, lan_nodes)
    return servers, {**resolvers, **dns64_resolvers(topology, nat64)}


def render_dns64(listen: Iterable[str], upstream: str, records: dict[str, str], log: Path) -> str:
    """dnsmasq.conf of a NAT64 gateway's DNS64 (RFC 6147): each name of the run answered
    with its IPv4 address and the synthesised IPv6 one (the NAT64 prefix + IPv4, what a
    DNS64 makes of an IPv4-only name); anything else forwarded to the public server."""
    lines = ["# ice-lab: a carrier's DNS64, one run only", *_common(listen, log)]
    lines.append(f"server={upstream}")
    lines += [f"host-record={n},{a},{synthesized(a)}" for n, a in records.items()]
    return "\n".join(lines) + "\n"


def start_run_dns(network: Any, scenario: Any, workdir: Path) -> Callable[[float], None]:
    """Give every node of the run its resolver (before any process starts in it), then
    start the DNS servers; returns their wait."""
    servers, resolvers = plan_dns(scenario, workdir)
    timeout_s = resolver_timeout_s(scenario.added_rtt_ms)  # a far DNS server still answers
    attempts = resolver_attempts(scenario.loss_percent)  # and a lost answer is asked again
    for node, directory in write_node_files(workdir, resolvers, timeout_s, attempts).items():
        network.command_prefixes[node] = command_prefix(directory)
    return start_dns(network, servers, workdir)
