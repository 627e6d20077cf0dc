"""Where each node of a result's network goes in the report's SVG drawing, and which links
the selected pair's packets cross.

The internet router sits in the middle; the branch that holds the viewer grows to the
left, the master's to the right, the servers' below. Pure: positions and labels only;
the template draws them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.core.documents import JsonObject
from lab.report.network_graph import NetworkGraph, firewall_of, nat_of, network_graph, peer_host
from lab.report.result import RunResult

STEP_X = 196
STEP_Y = 100
BOX_W = 172
BOX_H = 76
MARGIN = 16


@dataclass
class Box:
    name: str
    role: str
    x: float
    y: float
    lines: list[str]
    on_path: bool = False
    title: str = ""


@dataclass
class Wire:
    a: str
    b: str
    x1: float
    y1: float
    x2: float
    y2: float
    on_path: bool = False


@dataclass
class Drawing:
    boxes: list[Box] = field(default_factory=list)
    wires: list[Wire] = field(default_factory=list)
    width: float = 0
    height: float = 0
    path: list[str] = field(default_factory=list)
    box_w: int = BOX_W
    box_h: int = BOX_H


def _centre(graph: NetworkGraph) -> str:
    names = list(graph.nodes)
    for role in ("router", "switch"):
        hubs = [n for n in names if graph.nodes[n].get("role") == role]
        if hubs:
            return max(hubs, key=lambda n: len(graph.neighbours(n)))
    return max(names, key=lambda n: len(graph.neighbours(n)))


def _branch(graph: NetworkGraph, centre: str, first: str) -> dict[str, int]:
    """The nodes reached through `first` without crossing the centre, with their depth."""
    depth = {first: 1}
    queue = [first]
    while queue:
        here = queue.pop(0)
        for there in graph.neighbours(here):
            if there != centre and there not in depth:
                depth[there] = depth[here] + 1
                queue.append(there)
    return depth


def _place(graph: NetworkGraph, viewer: str | None, master: str | None) -> dict[str, tuple]:
    """Grid positions (column, row) per node, the centre at (0, 0)."""
    centre = _centre(graph)
    places: dict[str, tuple[float, float]] = {centre: (0, 0)}
    below: list[dict[str, int]] = []
    sides: dict[int, list[dict[str, int]]] = {-1: [], 1: []}
    for first in graph.neighbours(centre):
        if first in places:
            continue
        branch = _branch(graph, centre, first)
        if viewer in branch:
            sides[-1].append(branch)
        elif master in branch:
            sides[1].append(branch)
        else:
            below.append(branch)
        for name in branch:
            places.setdefault(name, (0, 0))
    for direction, branches in sides.items():
        row_base = 0.0
        for branch in branches:
            for depth in sorted(set(branch.values())):
                level = [n for n in branch if branch[n] == depth]
                for i, name in enumerate(level):
                    places[name] = (direction * depth, row_base + i - (len(level) - 1) / 2)
            row_base += max(list(branch.values()).count(d) for d in set(branch.values()))
    for index, branch in enumerate(below):
        column = index - (len(below) - 1) / 2
        for name, depth in branch.items():
            places[name] = (column, depth + 0.2)
    return places


def _lines(name: str, node: JsonObject, result: RunResult) -> list[str]:
    """Name; NAT behaviour (or role); firewall; addresses."""
    nat = nat_of(result, name)
    firewall = firewall_of(result, name)
    addresses = [a for a in node.get("addresses") or [] if a]
    return [
        name,
        f"NAT {nat.get('preset') or nat.get('mapping')}" if nat else node.get("role", ""),
        f"firewall {firewall.get('preset') or 'rules'}" if firewall else "",
        ", ".join(addresses[:2]),
    ]


def selected_path(result: RunResult, graph: NetworkGraph) -> list[str]:
    """The nodes the viewer's selected pair's packets cross (through the TURN server when
    either end is a relay); empty without a selected pair."""
    chosen = result.selected.get("viewer")
    viewer, master = peer_host(result, "viewer"), peer_host(result, "master")
    if not chosen or not viewer or not master:
        return []
    relay = next((c for c in (chosen.local, chosen.remote) if c.type == "relay"), None)
    server = graph.owner_of(relay.address) if relay else None
    if server:
        return graph.path(viewer, server) + graph.path(server, master)[1:]
    return graph.path(viewer, master)


def drawing(result: RunResult) -> Drawing | None:
    """The SVG drawing of the result's network, or None when the result has no topology."""
    graph = network_graph(result)
    if not graph.nodes:
        return None
    places = _place(graph, peer_host(result, "viewer"), peer_host(result, "master"))
    min_c = min(c for c, _ in places.values())
    min_r = min(r for _, r in places.values())
    path = selected_path(result, graph)
    hops = set(zip(path, path[1:], strict=False))
    out = Drawing(path=path)
    for name, (column, row) in places.items():
        x = MARGIN + (column - min_c) * STEP_X
        y = MARGIN + (row - min_r) * STEP_Y
        node = graph.nodes[name]
        out.boxes.append(
            Box(
                name,
                node.get("role", ""),
                x,
                y,
                _lines(name, node, result),
                name in path,
                node.get("description", ""),
            )
        )
    centre = {b.name: (b.x + BOX_W / 2, b.y + BOX_H / 2) for b in out.boxes}
    for link in graph.links:
        a, b = (e.split(":")[0] for e in link["endpoints"])
        if a in centre and b in centre:
            on = (a, b) in hops or (b, a) in hops
            out.wires.append(Wire(a, b, *centre[a], *centre[b], on))
    out.width = max(b.x for b in out.boxes) + BOX_W + MARGIN
    out.height = max(b.y for b in out.boxes) + BOX_H + MARGIN
    return out
