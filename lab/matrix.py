"""`lab matrix`: every viewer x master NAT combination, one real run per cell.

Each cell is a scenario generated on the fly: per side, the peer sits directly on the
internet (`open`), behind one NAT with a preset, or behind a home NAT inside a carrier
NAT (`double-cone`: cone behind cone; `symmetric-then-cone`: a cone home router behind
a symmetric carrier NAT, 100.64.0.0/10 between them). STUN and TURN are available to
both peers. Cells run in parallel as separate `lab run` processes; `--viewer/--master`
choose each side's ICE agent for every cell (the document records them under `agents`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

PRESETS = (
    "open",
    "full-cone",
    "restricted-cone",
    "port-restricted-cone",
    "symmetric",
    "double-cone",
    "symmetric-then-cone",
)
#: (home NAT, carrier NAT) per preset; None: no such NAT on the path.
CHAINS: dict[str, tuple[str | None, str | None]] = {
    "open": (None, None),
    "full-cone": ("full-cone", None),
    "restricted-cone": ("restricted-cone", None),
    "port-restricted-cone": ("port-restricted-cone", None),
    "symmetric": ("symmetric", None),
    "double-cone": ("port-restricted-cone", "port-restricted-cone"),
    "symmetric-then-cone": ("port-restricted-cone", "symmetric"),
}
SIDES = {"viewer": 2, "master": 1}  # subnet numbers: 192.168.N.0/24, 100.64.N.0/24


def _side(role: str, preset: str, uplink: str, wan: str, gateway: str) -> dict[str, Any]:
    """Nodes, links and NAT conditions from one peer up to the internet router."""
    n = SIDES[role]
    home, carrier = CHAINS[preset]
    nodes: dict[str, Any] = {}
    links: list[dict[str, Any]] = []
    conditions: dict[str, Any] = {}
    if home is None:
        nodes[role] = {"role": "peer", "gateway": gateway}
        links.append({"endpoints": [f"{role}:eth0", uplink], "addresses": [wan, f"{gateway}/28"]})
        return {"nodes": nodes, "links": links, "conditions": conditions}
    nodes[role] = {"role": "peer", "gateway": f"192.168.{n}.1"}
    links.append(
        {"endpoints": [f"{role}:eth0", f"{role}-home:eth0"],
         "addresses": [f"192.168.{n}.10/24", f"192.168.{n}.1/24"]}
    )  # fmt: skip
    conditions[f"{role}-home"] = {"nat": home}
    if carrier is None:
        nodes[f"{role}-home"] = {"role": "nat", "gateway": gateway}
        links.append(
            {"endpoints": [f"{role}-home:eth1", uplink], "addresses": [wan, f"{gateway}/28"]}
        )
        return {"nodes": nodes, "links": links, "conditions": conditions}
    nodes[f"{role}-home"] = {"role": "nat", "gateway": f"100.64.{n}.1"}
    nodes[f"{role}-cgn"] = {"role": "nat", "gateway": gateway}
    links += [
        {"endpoints": [f"{role}-home:eth1", f"{role}-cgn:eth0"],
         "addresses": [f"100.64.{n}.10/24", f"100.64.{n}.1/24"]},
        {"endpoints": [f"{role}-cgn:eth1", uplink], "addresses": [wan, f"{gateway}/28"]},
    ]  # fmt: skip
    conditions[f"{role}-cgn"] = {"nat": carrier}
    return {"nodes": nodes, "links": links, "conditions": conditions}


def cell_documents(viewer: str, master: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The topology and scenario documents of one matrix cell."""
    sides = [
        _side("viewer", viewer, "internet:eth0", "198.51.100.2/28", "198.51.100.1"),
        _side("master", master, "internet:eth1", "198.51.100.18/28", "198.51.100.17"),
    ]
    nodes: dict[str, Any] = {"internet": {"role": "router"}}
    links: list[dict[str, Any]] = []
    conditions: dict[str, Any] = {}
    for side in sides:
        nodes |= side["nodes"]
        links += side["links"]
        conditions |= side["conditions"]
    nodes["turn"] = {"role": "stun-turn", "gateway": "203.0.113.1"}
    nodes["signaling"] = {"role": "signaling", "gateway": "203.0.113.17"}
    links += [
        {"endpoints": ["turn:eth0", "internet:eth2"],
         "addresses": [["203.0.113.10/28", "203.0.113.11/28"], "203.0.113.1/28"]},
        {"endpoints": ["signaling:eth0", "internet:eth3"],
         "addresses": ["203.0.113.20/28", "203.0.113.17/28"]},
    ]  # fmt: skip
    name = f"matrix-{viewer}-vs-{master}"
    topology = {"name": "matrix", "nodes": nodes, "links": links}
    scenario = {
        "name": name,
        "description": f"NAT matrix cell: viewer behind {viewer}, master behind {master}.",
        "topology": "topology.yaml",
        "conditions": conditions,
        "peers": {"viewer": {"host": "viewer"}, "master": {"host": "master"}},
        "expect": {"outcome": "connected"},
    }
    return topology, scenario


def run_cell(viewer: str, master: str, extra: list[str]) -> dict[str, Any]:
    """Run one cell as its own `lab run`; returns the matrix entry with the result."""
    with tempfile.TemporaryDirectory(prefix="ice-lab-matrix-") as directory:
        folder = Path(directory)
        topology, scenario = cell_documents(viewer, master)
        (folder / "topology.yaml").write_text(yaml.safe_dump(topology, sort_keys=False))
        (folder / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
        result_path = folder / "result.json"
        completed = subprocess.run(
            [sys.executable, "-m", "lab", "run", str(folder / "scenario.yaml"),
             "--json", str(result_path), "--quiet", *extra],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        result = json.loads(result_path.read_text()) if result_path.exists() else None
        entry: dict[str, Any] = {"viewer": viewer, "master": master, "result": result}
        if result is None:
            entry["error"] = (completed.stderr.strip().splitlines() or ["no result"])[-1]
        return entry


def describe_cell(entry: dict[str, Any]) -> str:
    """`srflx-srflx`, `prflx-relay/tcp`, or `failed`: the viewer's selected pair types."""
    result = entry.get("result")
    if result is None:
        return "error"
    pair = result["selected"].get("viewer")
    if result["outcome"] != "connected" or pair is None:
        return "failed"

    def kind(candidate: dict[str, Any]) -> str:
        relay = candidate.get("relay_protocol")
        return candidate["type"] + (f"/{relay}" if relay else "")

    return f"{kind(pair['local'])}-{kind(pair['remote'])}"


def render_grid(
    cells: list[dict[str, Any]], presets: list[str], agents: dict[str, str] | None = None
) -> Any:
    from rich.table import Table

    title = "NAT matrix: the viewer's selected pair (local-remote)"
    if agents:
        title += f"; agents: viewer {agents['viewer']}, master {agents['master']}"
    table = Table(title=title, title_justify="left")
    table.add_column("viewer \\ master", no_wrap=True)
    for master in presets:
        table.add_column(master.replace("-", "-\n", 1), justify="center")
    for viewer in presets:
        row = [
            describe_cell(next(c for c in cells if c["viewer"] == viewer and c["master"] == master))
            for master in presets
        ]
        table.add_row(viewer, *row)
    return table


def cell_agents(viewer: str | None, master: str | None) -> dict[str, str]:
    """Each side's ICE agent for every cell (the cells' scenarios name none: aiortc), checked
    before any cell runs so a typo or a missing browser is one line of bad input."""
    from lab.peers.agents import DEFAULT_AGENT, require_agent

    agents = {"viewer": viewer or DEFAULT_AGENT, "master": master or DEFAULT_AGENT}
    for role, agent in agents.items():
        require_agent(agent, f"--{role}")
    return agents


def default_jobs(agents: dict[str, str]) -> int:
    """Cells at once: aiortc cells mostly wait on the network, so more than the cores;
    a Chromium cell runs browsers that need a core each, so two at a time."""
    if "chromium" in agents.values():
        return 2
    return (os.cpu_count() or 2) + 1


def register(app: typer.Typer) -> None:
    """Add `matrix` to the CLI."""

    @app.command()
    def matrix(
        nat: Annotated[str, typer.Option(help="comma-separated presets")] = ",".join(PRESETS),
        json_path: Annotated[Path | None, typer.Option("--json", help="save every cell")] = None,
        jobs: Annotated[int, typer.Option("-j", "--jobs", help="cells run at once")] = 0,
        servers: Annotated[str | None, typer.Option(help="coturn or mock")] = None,
        timing: Annotated[str | None, typer.Option(help="fast or kvs")] = None,
        viewer: Annotated[
            str | None, typer.Option(help="the viewer's ICE agent: aiortc (default) or chromium")
        ] = None,
        master: Annotated[
            str | None, typer.Option(help="the master's ICE agent: aiortc (default) or chromium")
        ] = None,
    ) -> None:
        """Run every viewer x master NAT combination and print the selected pair per cell."""
        from rich.console import Console

        from lab.errors import EXIT_BAD_INPUT, LabError
        from lab.preflight import require_root
        from lab.terminal import fail

        presets = [p.strip() for p in nat.split(",") if p.strip()]
        unknown = [p for p in presets if p not in PRESETS]
        if unknown or not presets:
            Console(stderr=True).print(
                f"error: --nat: unknown preset {', '.join(unknown) or '(none)'} "
                f"(known: {', '.join(PRESETS)})",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_BAD_INPUT)
        try:
            agents = cell_agents(viewer, master)
            require_root()
        except LabError as exc:
            raise fail(exc) from None
        extra = [
            *(["--servers", servers] if servers else []),
            *(["--timing", timing] if timing else []),
            *(["--viewer", viewer] if viewer else []),
            *(["--master", master] if master else []),
        ]
        combos = [(v, m) for v in presets for m in presets]
        workers = jobs or default_jobs(agents)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            cells = list(pool.map(lambda combo: run_cell(*combo, extra), combos))
        console = Console()
        console.width = max(console.width, 40 + 18 * len(presets))  # cells are not truncated
        console.print(render_grid(cells, presets, agents))
        if json_path is not None:
            document = {"agents": agents, "cells": cells}
            json_path.write_text(json.dumps(document, indent=2) + "\n")
