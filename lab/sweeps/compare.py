"""`lab compare`: the same scenarios under different ICE agents, side by side.

A browser viewer meeting an embedded master is the case that matters in the field, and
the lab can only vouch for what it shows if aiortc and Chromium agree on a scenario (or
disagree in a way the scenario explains). Every scenario runs once per viewer/master agent
combination; the first combination is the baseline, and every cell that differs from it
(outcome, the viewer's selected pair types, either end's relay protocol) is highlighted.
Time to connected is shown but never a difference: it varies from run to run.

Cells run in parallel as separate `lab run` processes, each in its own namespaces.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from lab.core.documents import JsonObject
from lab.core.errors import EXIT_BAD_INPUT, EXIT_OK, LabInputError
from lab.core.roles import ROLES, other_role
from lab.core.terminal import EXIT_LAB_FAILED
from lab.observations.ice import SelectedPair
from lab.peers.agents import AGENTS
from lab.report.result import PeerResult, RunResult, load_result
from lab.scenario.by_agent import not_meant_for
from lab.scenario.scenario import bundled_scenarios, load_scenario
from lab.sweeps.bounded_run import CELL_TIMEOUT_S, run_bounded

if TYPE_CHECKING:
    from concurrent.futures import Future

    from rich.table import Table
    from rich.text import Text

    from lab.sweeps.progress import Sweep

DEFAULT_AGENTS = "aiortc,chromium"
#: Two browsers per Chromium run: more than two runs at once starve each other's checks.
DEFAULT_JOBS = 2
#: The fields of a cell `differences` compares: the outcome, the viewer's selected pair
#: types and the relay protocol at each end (the master's: `remote_relay_protocol`).
COMPARED = (
    "outcome",
    "selected.viewer.local",
    "selected.viewer.remote",
    "selected.viewer.relay_protocol",
    "selected.viewer.remote_relay_protocol",
)
#: `lab run` options passed on to every run, with their values.
PASSTHROUGH = {"--timing": ("fast", "kvs"), "--servers": ("coturn", "mock")}


@dataclass(frozen=True)
class Combo:
    """One viewer agent meeting one master agent."""

    viewer: str
    master: str

    @property
    def name(self) -> str:
        return f"{self.viewer}/{self.master}"

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "viewer": self.viewer, "master": self.master}


def _known_agent(name: str, option: str) -> str:

    if name not in AGENTS:
        raise LabInputError(f"{option}: unknown agent '{name}' (known: {', '.join(AGENTS)})")
    return name


def parse_agents(text: str) -> list[str]:
    """`aiortc,chromium` -> the agents in the order given (the first is the baseline's)."""
    agents: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if name and name not in agents:
            agents.append(_known_agent(name, "--agents"))
    if not agents:
        raise LabInputError("--agents: no agent given (e.g. --agents aiortc,chromium)")
    return agents


def combos_for(agents: list[str]) -> list[Combo]:
    """Every viewer x master combination: each agent with itself first (the first agent's
    pair is the baseline), then the mixed ones, the later agent as the viewer first (for
    aiortc,chromium: a browser viewer meeting an embedded master before the reverse)."""
    combos = [Combo(agent, agent) for agent in agents]
    for i, first in enumerate(agents):
        for later in agents[i + 1 :]:
            combos += [Combo(later, first), Combo(first, later)]
    return combos


def parse_combos(text: str) -> list[Combo]:
    """`chromium/aiortc,aiortc/aiortc` -> those combinations, in that order."""
    combos: list[Combo] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        viewer, slash, master = item.partition("/")
        if not slash or not viewer or not master:
            raise LabInputError(f"--combos: '{item}' is not VIEWER/MASTER (e.g. chromium/aiortc)")
        combo = Combo(_known_agent(viewer, "--combos"), _known_agent(master, "--combos"))
        if combo not in combos:
            combos.append(combo)
    if not combos:
        raise LabInputError("--combos: no combination given (e.g. --combos chromium/aiortc)")
    return combos


def choose_combos(agents: str | None, combos: str | None) -> list[Combo]:
    """The combinations from whichever of --agents and --combos was given."""
    if agents is not None and combos is not None:
        raise LabInputError("--agents and --combos: give one of them, not both")
    if combos is not None:
        return parse_combos(combos)
    return combos_for(parse_agents(agents if agents is not None else DEFAULT_AGENTS))


def _selected(pair: SelectedPair | None, other: SelectedPair | None) -> JsonObject | None:
    """One side's selected pair as types and relay protocols. The remote end's relay
    protocol comes from the other side's own local candidate when the remote one lacks it
    (a browser's getStats() has no relayProtocol for remote candidates)."""
    if pair is None:
        return None
    remote_relay = pair.remote.relay_protocol
    learned = pair.remote.type in ("relay", "prflx")  # a relay can be learned as prflx
    if remote_relay is None and learned and other is not None and other.local.type == "relay":
        remote_relay = other.local.relay_protocol
    return {
        "local": pair.local.type,
        "remote": pair.remote.type,
        "relay_protocol": pair.local.relay_protocol,
        "remote_relay_protocol": remote_relay,
    }


def _software(peer: PeerResult) -> dict[str, str] | None:
    software = peer.software
    return {"name": software["name"], "version": software["version"]} if software else None


def summarize(
    result: RunResult | None, error: str | None = None, exit_status: int | None = None
) -> JsonObject:
    """A compare cell from one run's result (None: the run produced none)."""
    if result is None:
        return {
            "outcome": "error",
            "selected": {"viewer": None, "master": None},
            "connected_s": None,
            "software": {"viewer": None, "master": None},
            "expectations_met": None,
            "failed_checks": [],
            "peer_errors": {},
            "error": error or "the run wrote no result",
            "exit_status": exit_status,
        }
    pairs, peers = result.selected, result.peers
    return {
        "outcome": result.outcome,
        "selected": {
            role: _selected(pairs.get(role), pairs.get(other_role(role))) for role in ROLES
        },
        "connected_s": result.timings.connected_s,
        "software": {role: _software(peers[role]) for role in ROLES},
        "expectations_met": result.expectations_met,
        "failed_checks": [c.check for c in result.expectations if not c.met],
        "peer_errors": {role: peers[role].error for role in ROLES if peers[role].error},
        "error": None,
        "exit_status": exit_status,
    }


def _field(cell: Mapping[str, Any], path: str) -> Any:
    value: Any = cell
    for key in path.split("."):
        if value is None:
            return None
        value = value.get(key)
    return value


def differences(cells: Mapping[str, Mapping[str, Any]]) -> list[JsonObject]:
    """What each combination's cell does differently from the first (the baseline): the
    outcome, or for the same outcome the viewer's selected pair types and relay protocols.
    Time to connected is left out: it differs between any two runs."""
    if not cells:
        return []
    baseline_name, *others = cells
    baseline = cells[baseline_name]
    found = []
    for name in others:
        if "not_meant_for" in cells[name] or "not_meant_for" in baseline:
            continue  # not judged, so not compared either
        fields = ["outcome"] if cells[name]["outcome"] != baseline["outcome"] else list(COMPARED)
        for path in fields:
            value, expected = _field(cells[name], path), _field(baseline, path)
            if value != expected:
                found.append(_difference(name, path, value, expected, baseline_name))
    return found


def _difference(combo: str, field: str, value: Any, baseline: Any, against: str) -> JsonObject:
    return {
        "combo": combo,
        "field": field,
        "value": value,
        "baseline": baseline,
        "against": against,
    }


def describe_differences(row: Mapping[str, Any]) -> list[str]:
    """In words, one entry per combination that differs from the baseline:
    `chromium/aiortc: relay/udp->prflx (aiortc/aiortc: prflx->relay/udp)`."""
    if not row["differences"]:
        return []
    cells, against = row["cells"], row["differences"][0]["against"]
    words = []
    for combo in dict.fromkeys(d["combo"] for d in row["differences"]):
        cell = cells[combo]
        if cell["outcome"] != cells[against]["outcome"]:
            value, baseline = cell["outcome"], cells[against]["outcome"]
        else:
            value, baseline = pair_text(cell), pair_text(cells[against])
        words.append(f"{combo}: {value} ({against}: {baseline})")
    return words


def pair_text(cell: Mapping[str, Any], role: str = "viewer") -> str:
    """A side's selected pair as `relay/tcp->srflx`, or `-` without one."""
    pair = cell["selected"][role]
    if pair is None:
        return "-"
    local = pair["local"] + (f"/{pair['relay_protocol']}" if pair["relay_protocol"] else "")
    relay = pair["remote_relay_protocol"]
    return f"{local}->{pair['remote']}" + (f"/{relay}" if relay else "")


def _seen_as(local: str, remote: str) -> bool:
    """Whether the other side can see a `local` candidate as `remote`: a relay as relay, or
    as prflx when checks arrived first; any other candidate as anything but a relay."""
    return remote in ("relay", "prflx") if local == "relay" else remote != "relay"


def sides_disagree(cell: Mapping[str, Any]) -> bool:
    """The two sides report selected pairs that cannot be one pair (one end relayed on one
    side only): a fact about the run worth a note, not a difference between agents."""
    viewer, master = cell["selected"]["viewer"], cell["selected"]["master"]
    if viewer is None or master is None:
        return False
    return not (
        _seen_as(viewer["local"], master["remote"]) and _seen_as(master["local"], viewer["remote"])
    )


def scenario_row(scenario: str, cells: dict[str, JsonObject]) -> JsonObject:
    return {"scenario": scenario, "cells": cells, "differences": differences(cells)}


def compare_document(
    combos: list[Combo], rows: list[JsonObject], wall_s: float | None = None
) -> JsonObject:
    """The --json document: the combinations, then per scenario its cells and differences."""
    return {
        "baseline": combos[0].name,
        "combos": [combo.as_dict() for combo in combos],
        "compared": list(COMPARED),
        "scenarios": rows,
        "wall_s": wall_s,
    }


def _cell_text(cell: Mapping[str, Any], differing: set[str]) -> Text:

    highlight = "bold yellow"
    text = Text()
    if cell["outcome"] == "error":
        text.append("error", style="bold red")
    else:
        style = highlight if "outcome" in differing else ""
        text.append(cell["outcome"], style=style)
        if cell["connected_s"] is not None:
            text.append(f" {cell['connected_s']:.2f} s", style="dim")
        if cell["expectations_met"] is False:
            text.append(" !", style="bold red")
    pair_differs = any(path.startswith("selected.") for path in differing)
    text.append("\n" + pair_text(cell), style=highlight if pair_differs else "")
    return text


def render_table(document: Mapping[str, Any]) -> Table:
    """One row per scenario, one column per combination: outcome, time to connected and
    the viewer's selected pair; what differs from the baseline in yellow."""

    table = Table(
        title="Agents compared (viewer/master): outcome, seconds to connected, the viewer's "
        "selected pair (local->remote)",
        caption=f"yellow: differs from {document['baseline']}; "
        "!: an expectation of the scenario did not hold",
        title_justify="left",
        caption_justify="left",
        show_lines=True,
    )
    table.add_column("scenario", no_wrap=True)
    for combo in document["combos"]:
        table.add_column(combo["name"], no_wrap=True)
    for row in document["scenarios"]:
        cells = []
        for combo in document["combos"]:
            differing = {d["field"] for d in row["differences"] if d["combo"] == combo["name"]}
            cells.append(_cell_text(row["cells"][combo["name"]], differing))
        table.add_row(row["scenario"], *cells)
    return table


def report_lines(document: Mapping[str, Any]) -> list[str]:
    """The lines under the table: software, the differences per scenario, then errors and
    expectations that did not hold (often what explains a difference)."""
    runs = sum(len(row["cells"]) for row in document["scenarios"])
    software = ", ".join(software_seen(document)) or "unknown"
    lines = [f"{runs} runs in {document['wall_s']} s; software: {software}"]
    lines.append(f"differences from {document['baseline']}:")
    for row in document["scenarios"]:
        found = "; ".join(describe_differences(row)) or "none"
        lines.append(f"  {row['scenario']}: {found}")
    return lines + notes(document)


def notes(document: Mapping[str, Any]) -> list[str]:
    """Runs that left no result, expectations that did not hold, what peers reported, and
    runs whose two sides name incompatible selected pairs."""
    kinds: dict[str, list[str]] = {
        "error": [],
        "expectation not met": [],
        "peer error": [],
        "sides disagree": [],
        "not meant for": [],
    }
    for row in document["scenarios"]:
        for name, cell in row["cells"].items():
            where = f"{row['scenario']} {name}"
            if cell["error"]:
                kinds["error"].append(f"{where}: {cell['error']}")
            kinds["expectation not met"] += [f"{where}: {c}" for c in cell["failed_checks"]]
            kinds["peer error"] += [f"{where} {r}: {m}" for r, m in cell["peer_errors"].items()]
            if "not_meant_for" in cell:
                kinds["not meant for"].append(f"{where}: {cell['not_meant_for']}")
            if sides_disagree(cell):
                pairs = f"viewer {pair_text(cell)}, master {pair_text(cell, 'master')}"
                kinds["sides disagree"].append(f"{where}: {pairs}")
    return [f"{kind}: {line}" for kind, lines in kinds.items() for line in lines]


def software_seen(document: Mapping[str, Any]) -> list[str]:
    """Each agent's software once, as `chromium 156.0.8078.114`."""
    seen: list[str] = []
    for row in document["scenarios"]:
        for cell in row["cells"].values():
            for software in cell["software"].values():
                label = software and f"{software['name']} {software['version']}"
                if label and label not in seen:
                    seen.append(label)
    return seen


def exit_status(rows: Iterable[Mapping[str, Any]]) -> int:
    """0 when every run produced a result (differences or not); 2 when the runs that did
    not were all turned away as bad input; 3 when the lab failed."""
    statuses = [c["exit_status"] for r in rows for c in r["cells"].values() if c["error"]]
    if not statuses:
        return EXIT_OK
    return EXIT_BAD_INPUT if all(s == EXIT_BAD_INPUT for s in statuses) else EXIT_LAB_FAILED


def not_meant_cell(why: str) -> JsonObject:
    """A cell for a combination the scenario says it is not meant for: not run, not judged."""
    return {**summarize(None), "outcome": "n/a", "error": None, "not_meant_for": why}


def run_cell(scenario: str, combo: Combo, extra: list[str]) -> JsonObject:
    """One `lab run` with this combination's agents, summarized as a cell. A run that
    overstays is sent SIGTERM, which the run turns into a full teardown; a combination the
    scenario is not meant for is not run (its cell says why)."""
    expect = load_scenario(scenario).expect
    why = not_meant_for(expect, {"viewer": combo.viewer, "master": combo.master})
    if why is not None:
        return not_meant_cell(why)

    with tempfile.TemporaryDirectory(prefix="ice-lab-compare-") as directory:
        result_path = Path(directory) / "result.json"
        command = [
            sys.executable, "-m", "lab", "run", scenario, "--json", str(result_path), "--quiet",
            "--viewer", combo.viewer, "--master", combo.master, *extra,
        ]  # fmt: skip
        done = run_bounded(command, CELL_TIMEOUT_S)
        error = done.error()
        result = load_result(result_path) if result_path.exists() else None
        return summarize(result, error, done.returncode)


def run_all(
    scenarios: list[str],
    combos: list[Combo],
    extra: list[str],
    jobs: int,
    sweep: Sweep,
    run: Callable[[str, Combo, list[str]], JsonObject] = run_cell,
) -> list[JsonObject]:
    """Every scenario under every combination, `jobs` runs at once, each counted by
    `sweep` as it starts and ends; one row per scenario."""

    def one(scenario: str, combo: Combo) -> JsonObject:
        sweep.started()
        return run(scenario, combo, extra)

    cells: dict[str, dict[str, JsonObject]] = {s: {} for s in scenarios}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures: dict[Future[JsonObject], tuple[str, Combo]] = {
            pool.submit(one, s, c): (s, c) for s in scenarios for c in combos
        }
        try:
            for future in as_completed(futures):
                scenario, combo = futures[future]
                cell = cells[scenario][combo.name] = future.result()
                failed = bool(cell["error"]) or cell["expectations_met"] is False
                sweep.finished(f"{scenario} {combo.name}", _progress_word(cell), failed)
        except KeyboardInterrupt:
            pool.shutdown(wait=True, cancel_futures=True)  # running cells tear down on SIGINT
            raise
    return [scenario_row(s, {c.name: cells[s][c.name] for c in combos}) for s in scenarios]


def _progress_word(cell: Mapping[str, Any]) -> str:
    if cell["error"]:
        return f"error ({cell['error']})"
    unmet = "" if cell["expectations_met"] is not False else " (expectations not met)"
    return f"{cell['outcome']} {pair_text(cell)}{unmet}"


def resolve_scenarios(references: list[str] | None) -> list[str]:
    """The scenarios named (checked, so a typo is bad input before anything runs), or
    every bundled one."""
    if not references:
        return [path.stem for path in bundled_scenarios()]
    for reference in references:
        load_scenario(reference)
    return list(dict.fromkeys(references))


def passthrough(options: Mapping[str, str | None]) -> list[str]:
    """`lab run` options every cell gets, checked here so a typo fails once, not per run."""
    extra: list[str] = []
    for option, value in options.items():
        known = PASSTHROUGH[option]
        if value is None:
            continue
        if value not in known:
            raise LabInputError(f"{option}: unknown value '{value}' (known: {', '.join(known)})")
        extra += [option, value]
    return extra
