"""Give a built network other conditions in place: each node's ruleset and sysctls are
replaced and its tracked connections forgotten, so a network of the same topology serves
the next run without a rebuild (the `lab matrix` workers do this between cells).

What cannot change in place is refused with NotReconfigurable (the caller rebuilds):
impaired links (their delay lines are spliced in at build) and a NAT that goes away (its
conntrack sysctls would stay changed).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.core.slowdown import scaled
from lab.network.build import NODE_SETUP_S, LabNetwork, NodeSetup, render_node_setup
from lab.network.conditions import NodeConditions
from lab.network.impairments import arrival_losses
from lab.network.ipv6 import delegated_routes

#: Forget every tracked connection (quiet unless it fails).
FLUSH_CONNTRACK = "conntrack -F 2>/dev/null || conntrack -F"


class NotReconfigurable(Exception):
    """The network cannot take these conditions in place: build a new one."""


def node_ruleset(ruleset: str) -> str:
    """A node's next ruleset: the old tables go (with their dynamic NAT maps) and the new
    ones load in the same transaction, so no packet meets half of either."""
    return "flush ruleset\n" + ruleset


def reload_script(ruleset_path: Path, after_ruleset: Sequence[str], flush: bool = True) -> str:
    """The shell script that gives a node its next ruleset (`node_ruleset`) and sysctls,
    then forgets every tracked connection made under the previous conditions."""
    lines = ["set -e", f"nft -f {ruleset_path}", *after_ruleset]
    return "\n".join([*lines, FLUSH_CONNTRACK] if flush else lines)


def reconfigure(
    network: LabNetwork, conditions: Mapping[str, NodeConditions], flush: bool = True
) -> None:
    """Every node of `network` gets `conditions`, rendered exactly as a fresh build renders
    them; `flush=False` keeps the tracked connections (tests show what the flush removes)."""
    if any(c.impairments for c in conditions.values()) or network.wires:
        raise NotReconfigurable("impaired links need their delay lines built per run")
    if any(c.nat64 for c in (*conditions.values(), *network.conditions.values())):
        raise NotReconfigurable("a NAT64 gateway is started with the network")
    running = {}
    befores, afters = _setups(network, network.conditions), _setups(network, conditions)
    for name in network.topology.nodes:
        before, after = befores[name], afters[name]
        if before.after_ruleset and not after.after_ruleset:
            raise NotReconfigurable(f"{name}: no NAT any more, and its sysctls stay changed")
        if unchanged_and_stateless(before, after):
            continue
        path = network.workdir / f"{name}.next.nft"
        path.write_text(node_ruleset(after.ruleset))
        script = reload_script(path, after.after_ruleset, flush)
        running[name] = subprocess.Popen(
            ["mnexec", "-a", str(network.pid_of(name)), "sh", "-c", script],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    for name, process in running.items():
        _, stderr = process.communicate(timeout=scaled(NODE_SETUP_S))
        if process.returncode != 0:
            raise NotReconfigurable(f"reloading node '{name}' failed: {stderr.decode().strip()}")
    network.conditions = dict(conditions)


def unchanged_and_stateless(before: NodeSetup, after: NodeSetup) -> bool:
    """A node with the same setup and no ruleset is left alone: with no rule in its
    namespace, netfilter tracks no connection there, so there is nothing to forget (a
    matrix cell changes two gateways of seven nodes; each reload is four processes)."""
    return before == after and not after.ruleset


def _setups(network: LabNetwork, conditions: Mapping[str, NodeConditions]) -> dict[str, NodeSetup]:
    """What a fresh build of `network` under `conditions` would give each node."""
    losses = arrival_losses(network.topology, {})
    routes6 = delegated_routes(network.topology)
    return {
        name: render_node_setup(
            node,
            conditions.get(name),
            losses.get(name, ()),
            routes6.get(name, ()),
            tunnels=network.tunnels,
        )  # fmt: skip
        for name, node in network.topology.nodes.items()
    }
