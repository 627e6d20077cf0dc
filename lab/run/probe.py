"""`lab probe-nat`: measure a host's NAT behaviour (RFC 5780) and compare it with the
scenario's declaration, so a NAT that does not do what its YAML says is caught.

The declared behaviour of a path through several NATs is their composition: a
mapping or filtering is as dependent as the most dependent NAT on the path.
Hairpinning and port preservation are compared only behind a single NAT (behind
two, they also depend on how the inner NAT filters what the outer one loops back).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError, LabRunError
from lab.network.nat import AD, APD, EI, NatBehaviour
from lab.scenario.scenario import Scenario

ORDER = {EI: 0, AD: 1, APD: 2}
STUN_PORT = 3478


@dataclass(frozen=True)
class Comparison:
    behaviour: str
    declared: Any
    measured: Any

    @property
    def compared(self) -> bool:
        return self.declared is not None

    @property
    def ok(self) -> bool:
        return not self.compared or self.declared == self.measured


def path_nats(scenario: Scenario, host: str) -> list[tuple[str, NatBehaviour]]:
    """The NAT nodes a packet from `host` crosses on its way out, nearest first."""
    nats = []
    node = scenario.topology.node(host)
    seen = {host}
    while node.gateway is not None:
        owner = next(
            (n for n in scenario.topology.nodes.values() if str(node.gateway) in n.addresses), None
        )
        if owner is None or owner.name in seen:
            break
        seen.add(owner.name)
        condition = scenario.conditions.get(owner.name)
        if condition is not None and condition.nat is not None:
            nats.append((owner.name, condition.nat))
        node = owner
    return nats


def declared_behaviour(nats: list[NatBehaviour]) -> JsonObject:
    """What the scenario says the path does, in the probe's terms."""
    if not nats:
        return {"nat": False, "mapping": None, "filtering": None}
    single = nats[0] if len(nats) == 1 else None
    return {
        "nat": True,
        "mapping": max((n.mapping for n in nats), key=ORDER.__getitem__),
        "filtering": max((n.filtering for n in nats), key=ORDER.__getitem__),
        "hairpinning": single.hairpinning if single else None,
        "port_preservation": single.port_preservation if single else None,
    }


def compare(declared: JsonObject, measured: JsonObject) -> list[Comparison]:
    keys = ("nat", "mapping", "filtering", "hairpinning", "port_preservation")
    return [Comparison(k, declared.get(k), measured.get(k)) for k in keys]


def _check_probe_target(scenario: Scenario, host: str) -> list[str]:
    """The STUN server's addresses; bad host or server is exit 2 naming the field."""
    nodes = scenario.topology.nodes
    if host not in nodes:
        raise LabInputError(
            f"--host: no node '{host}' in {scenario.source} (nodes: {', '.join(nodes)})"
        )
    if scenario.stun_turn is None:
        raise LabInputError(f"{scenario.source}: servers.stun_turn: the probe needs a STUN server")
    if host == scenario.stun_turn.host:
        raise LabInputError(f"--host: '{host}' is the STUN server itself")
    addresses = nodes[scenario.stun_turn.host].addresses
    if len(addresses) < 2:
        raise LabInputError(
            f"{scenario.topology.source}: nodes.{scenario.stun_turn.host}: RFC 5780 needs "
            "two addresses on the STUN server's link"
        )
    return addresses


def measure(scenario: Scenario, host: str, software: str, rto: float) -> JsonObject:
    """Build the scenario's network and servers, run the discovery from `host`."""
    # Lazy: `lab --help` imports this module; building a network brings in Mininet.
    from lab.core.lifecycle import run_directory, sigterm_raises
    from lab.network.build import LabNetwork
    from lab.run.preflight import require_root, require_tools
    from lab.servers.launch import start_servers

    addresses = _check_probe_target(scenario, host)
    require_root()
    require_tools(need_coturn=software == "coturn")
    command = [
        sys.executable,
        "-m",
        "lab.network.nat_discovery",
        addresses[0],
        str(STUN_PORT),
        str(rto),
    ]
    with (
        sigterm_raises(),
        run_directory(keep=False) as workdir,
        LabNetwork(scenario.topology, scenario.conditions, workdir) as network,
    ):
        start_servers(network, scenario, workdir, software)
        done = network.run(host, command, 30)
    output = done.stdout.decode().strip()
    try:
        measured = json.loads(output.splitlines()[-1])
    except (IndexError, ValueError):
        raise LabRunError(f"the probe in '{host}' failed: {done.stderr.decode()[-400:]}") from None
    if "error" in measured:
        raise LabRunError(f"the probe in '{host}' failed: {measured['error']}")
    return measured


def probe_report(scenario: Scenario, host: str, measured: JsonObject) -> JsonObject:
    nats = path_nats(scenario, host)
    declared = declared_behaviour([n for _, n in nats])
    rows = compare(declared, measured)
    return {
        "scenario": scenario.name,
        "host": host,
        "nats": [name for name, _ in nats],
        "declared": declared,
        "measured": measured,
        "matches": all(r.ok for r in rows),
        "differences": [r.behaviour for r in rows if not r.ok],
    }


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render_probe(report: JsonObject) -> None:
    # Lazy: rendering only once a probe has measured something.
    from rich.console import Console
    from rich.table import Table

    path = " -> ".join([report["host"], *report["nats"], "internet"])
    title = f"{report['scenario']}: NAT behaviour from {path}"
    table = Table(title=title, title_justify="left", min_width=len(title))
    for column in ("behaviour", "declared", "measured", ""):
        table.add_column(column)
    for row in compare(report["declared"], report["measured"]):
        verdict = "" if not row.compared else ("ok" if row.ok else "[red]DIFFERS[/red]")
        table.add_row(row.behaviour, _show(row.declared), _show(row.measured), verdict)
    console = Console()
    console.width = max(console.width, 100)  # behaviour names are long; don't truncate them
    console.print(table)
    measured = report["measured"]
    console.print(f"local {measured['local']} mapped to {measured['mapped']}", highlight=False)
