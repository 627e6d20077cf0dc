"""Proxies at a network's edge: the only way out of a proxy-only firewall.

libwebrtc's PROXY_HTTPS and PROXY_SOCKS endpoints may send nothing but TCP to their
proxy. The lab builds the same with the distribution's own servers, started per run on
the firewall node itself (an enterprise's edge): squid for HTTP CONNECT ("HTTPS proxy")
and Dante for SOCKS5. The firewall node forwards nothing from its inside, so a client
reaches the internet only by asking the proxy, which connects from the node's own
address. Clients are told the proxy's URL (`http://10.1.0.1:3128`, `socks5://...`), as
a browser is told with `--proxy-server`.

Both proxies let any inside client through to any address and port, as libwebrtc's test
proxy does (a corporate squid often allows CONNECT to 443 only; the TURN-over-TLS URL on
443 would still work there). Configuration is rendered by pure functions (unit-tested)
and written to the run directory; nothing under /etc or /var is read or written, and
both run in the foreground, logging to files of the run.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.core.errors import LabRunError
from lab.core.slowdown import scaled

if TYPE_CHECKING:
    from lab.network.build import LabNetwork
    from lab.scenario.scenario import Scenario

#: Proxy kinds: the port each listens on and the scheme of its URL.
KINDS: dict[str, tuple[int, str]] = {"https": (3128, "http"), "socks5": (1080, "socks5")}
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Proxy:
    """One proxy on a firewall node, for the clients on the node's inside."""

    node: str
    kind: str  # https | socks5
    address: str  # the node's inside address: where clients reach it
    clients: tuple[str, ...]  # the inside subnets (CIDR) allowed to use it
    external: str  # the node's uplink interface, where its own connections leave

    @property
    def port(self) -> int:
        return KINDS[self.kind][0]

    @property
    def url(self) -> str:
        """What a client is configured with (Chromium's --proxy-server)."""
        return f"{KINDS[self.kind][1]}://{self.address}:{self.port}"

    @property
    def software(self) -> str:
        return "squid" if self.kind == "https" else "danted"


def render_squid(proxy: Proxy) -> str:
    """squid.conf: CONNECT (and plain HTTP) for the inside subnets only, no cache, no pid
    file (it runs in the foreground with -N), logs on its standard output and error."""
    acls = "\n".join(f"acl inside src {subnet}" for subnet in proxy.clients)
    return f"""# ice-lab: HTTPS (CONNECT) proxy on {proxy.node}, one run only
http_port {proxy.address}:{proxy.port}
{acls}
http_access allow inside
http_access deny all
cache deny all
cache_mem 8 MB
pid_filename none
# Logs go to the process's own stdout/stderr (a file of the run that squid's user may
# write): squid opens them after dropping to that user, who cannot enter the run
# directory.
access_log stdio:/dev/stdout
cache_log /dev/stderr
cache_store_log none
logfile_rotate 0
coredump_dir none
visible_hostname {proxy.node}
shutdown_lifetime 0 seconds
forwarded_for delete
via off
# Names (the service's signaling host) are looked up with the node's resolv.conf of the
# run (lab/network/resolver.py): the lab's DNS server, never the machine's.
pinger_enable off
"""


def render_danted(proxy: Proxy) -> str:
    """danted.conf: SOCKS5 without authentication for the inside subnets, CONNECT only
    (what a browser asks for); its own connections leave through the uplink."""
    rules = []
    for subnet in proxy.clients:
        rules += [
            f"client pass {{ from: {subnet} to: 0.0.0.0/0 }}",
            f"socks pass {{ from: {subnet} to: 0.0.0.0/0 command: connect }}",
        ]
    body = "\n".join(rules)
    return f"""# ice-lab: SOCKS5 proxy on {proxy.node}, one run only
logoutput: stderr
internal: {proxy.address} port = {proxy.port}
external: {proxy.external}
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
{body}
client block {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}
socks block {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}
"""


def log_path(proxy: Proxy, workdir: Path) -> Path:
    """Where the proxy's output goes: its log (squid's access lines, danted's messages)."""
    return workdir / f"{proxy.software}-{proxy.node}.log"


def _unprivileged(proxy: Proxy) -> tuple[int, int]:
    """The user and group the proxy drops to (Debian's `proxy` for squid, else root)."""
    if proxy.kind != "https":
        return 0, 0
    entry = pwd.getpwnam("proxy")
    return entry.pw_uid, entry.pw_gid


def config_path(proxy: Proxy, workdir: Path) -> Path:
    return workdir / f"{proxy.software}-{proxy.node}.conf"


def command(proxy: Proxy, workdir: Path) -> list[str]:
    """The proxy's command line: foreground, this run's configuration only."""
    path = config_path(proxy, workdir)
    if proxy.kind == "https":
        return ["squid", "-N", "-f", str(path)]
    return ["danted", "-f", str(path), "-p", str(workdir / f"danted-{proxy.node}.pid")]


def render_config(proxy: Proxy) -> str:
    return render_squid(proxy) if proxy.kind == "https" else render_danted(proxy)


def proxies_of(scenario: Scenario) -> list[Proxy]:
    """Every proxy the scenario's firewalls run (a firewall preset with a proxy)."""
    found = []
    for name, conditions in scenario.conditions.items():
        policy = conditions.firewall
        if policy is None or policy.proxy is None:
            continue
        node = scenario.topology.node(name)
        inside = node.downlinks()
        uplink = node.uplink()
        if not inside or uplink is None:
            continue
        found.append(
            Proxy(
                node=name,
                kind=policy.proxy,
                address=str(inside[0].primary.ip),
                clients=tuple(str(i.primary.network) for i in inside),
                external=uplink.name,
            )
        )
    return found


def proxy_for(scenario: Scenario, host: str) -> Proxy | None:
    """The proxy a peer on `host` must use: the first proxy on its way out, if any."""
    by_node = {proxy.node: proxy for proxy in proxies_of(scenario)}
    node = scenario.topology.node(host)
    seen = {host}
    while node.gateway is not None:
        owner = next(
            (n for n in scenario.topology.nodes.values() if str(node.gateway) in n.addresses),
            None,
        )
        if owner is None or owner.name in seen:
            return None
        if owner.name in by_node:
            return by_node[owner.name]
        seen.add(owner.name)
        node = owner
    return None


def _listening(network: LabNetwork, proxy: Proxy) -> bool:
    done = network.run(proxy.node, ["ss", "-Hltn", f"sport = :{proxy.port}"], timeout=5)
    return bool(done.stdout.strip())


def start_proxies(network: LabNetwork, scenario: Scenario, workdir: Path) -> list[Proxy]:
    """Start every proxy of the scenario and wait until each accepts connections."""
    started = []
    for proxy in proxies_of(scenario):
        config_path(proxy, workdir).write_text(render_config(proxy))
        log = log_path(proxy, workdir)
        log.touch()
        # squid reopens its stdout/stderr as its own unprivileged user.
        os.chown(log, *_unprivileged(proxy))
        with log.open("ab") as output:
            process = network.popen(
                proxy.node, command(proxy, workdir), stdout=output, stderr=subprocess.STDOUT
            )
        started.append((proxy, process, log))
    deadline = time.monotonic() + scaled(START_TIMEOUT_S)
    for proxy, process, log in started:
        while not _listening(network, proxy):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:]
                raise LabRunError(
                    f"{proxy.software} on {proxy.node} did not start: "
                    + (tail[0] if tail else "no output")
                )
            time.sleep(0.02)
    return [proxy for proxy, _, _ in started]
