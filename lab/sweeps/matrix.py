"""`lab matrix`: every viewer x master network combination, one real run per cell, each
checked against libwebrtc's own matrix.

Each cell is a scenario generated on the fly (`lab/sweeps/matrix_cells.py`): per side a public
address, one or two NATs, a NAT with a firewall, or a proxy-only edge; STUN and TURN are
available to both peers. Cells run in parallel as separate `lab run` processes; `--viewer/--master`
choose each side's ICE agent for every cell (the document records them under `agents`).
Every cell is shown beside libwebrtc's expectation (`lab/sweeps/libwebrtc_matrix.py`) and is
judged on what matters across ICE agents: whether the pair is direct or relayed. Where
the lab's result differs, the matrix says why.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError
from lab.observations.ice import Candidate, SelectedPair
from lab.peers.agents import DEFAULT_AGENT, require_agent
from lab.report.result import RunResult
from lab.sweeps.bounded_run import CELL_TIMEOUT_S, run_bounded
from lab.sweeps.libwebrtc_matrix import CONFIGS, Expectation, expectation
from lab.sweeps.matrix_cells import GROUPS, ROWS, write_cell_documents
from lab.sweeps.workers import ReusedSweep

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

    from lab.sweeps.progress import Sweep
    from lab.sweeps.workers import Options as SweepOptions

#: Reused-network workers per core: a cell mostly waits on ICE timers, but each worker's
#: start and network builds cost CPU; 2 was as fast as 3 with less CPU, 4 slower
#: (benchmarks/matrix_time.py -j 4,6,8 on two cores).
REUSED_JOBS_PER_CORE = 2
#: Rows whose cells an agent cannot run, with the reason recorded in the cell instead.
_NO_PROXY = (
    "aiortc cannot use a proxy: aioice opens its UDP sockets and its TURN TCP/TLS "
    "connections itself, with no HTTP CONNECT or SOCKS client, and this edge forwards "
    "nothing else"
)
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("https-proxy", "aiortc"): _NO_PROXY,
    ("socks5-proxy", "aiortc"): _NO_PROXY,
}


def parse_rows(text: str) -> list[str]:
    """`--nat`: row names and group names (`nats`, `firewalls`, `proxies`, `all`), in
    order, each row once; anything else is bad input naming the option."""
    rows: list[str] = []
    unknown: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        for row in GROUPS.get(name, (name,)):
            if row not in ROWS:
                unknown.append(row)
            elif row not in rows:
                rows.append(row)
    if unknown or not rows:
        known = ", ".join([*ROWS, *GROUPS])
        raise LabInputError(f"--nat: unknown row {', '.join(unknown) or '(none)'} (known: {known})")
    return rows


def _run(command: list[str]) -> str:
    """Run one `lab run`; returns the last line it printed on stderr (its error, if it left
    no result). One that overstays gets SIGTERM, which it turns into a full teardown (a
    SIGKILL would leave its namespaces to `lab clean`)."""

    done = run_bounded(command, CELL_TIMEOUT_S)
    return done.error() or "no result"


def run_cell(viewer: str, master: str, extra: list[str]) -> JsonObject:
    """Run one cell as its own `lab run`; returns the matrix entry with the result."""
    with tempfile.TemporaryDirectory(prefix="ice-lab-matrix-") as directory:
        folder = Path(directory)
        scenario_path = write_cell_documents(viewer, master, folder)
        result_path = folder / "result.json"
        error = _run(
            [sys.executable, "-m", "lab", "run", str(scenario_path),
             "--json", str(result_path), "--quiet", *extra]
        )  # fmt: skip
        result = json.loads(result_path.read_text()) if result_path.exists() else None
        entry: JsonObject = {"viewer": viewer, "master": master, "result": result}
        if result is None:
            entry["error"] = error
        return entry


def unsupported(viewer: str, master: str, agents: Mapping[str, str]) -> str | None:
    """Why this cell cannot run with these agents (a side's agent cannot use its row's
    network at all), or None when it can."""
    for role, row in (("viewer", viewer), ("master", master)):
        reason = UNSUPPORTED.get((row, agents[role]))
        if reason:
            return f"{role} {agents[role]} on {row}: {reason}"
    return None


def cells_without_result(cells: list[Mapping[str, Any]]) -> list[str]:
    """`viewer/master` of every cell the lab could not run (no result, not merely not
    connected): `lab matrix` then exits 3, so a CI job or a Kubernetes Job sees it."""
    return [f"{c['viewer']}/{c['master']}" for c in cells if describe_cell(c) == "error"]


def cell_result(entry: Mapping[str, Any]) -> RunResult | None:
    """The cell's run result, typed (None: the cell has none); the entry keeps its JSON."""
    document = entry.get("result")
    return None if document is None else RunResult.from_json(document)


def describe_cell(entry: Mapping[str, Any]) -> str:
    """`srflx-srflx`, `prflx-relay/tcp`, `failed`, `error` or `n/a`: the viewer's
    selected pair types (a relay with the protocol it reaches its TURN server over)."""
    if entry.get("unsupported"):
        return "n/a"
    result = cell_result(entry)
    if result is None:
        return "error"
    pair = _connected_pair(result)
    if pair is None:
        return "failed"
    return f"{_kind(pair.local)}-{_kind(pair.remote)}"


def _kind(candidate: Candidate) -> str:
    """`relay/tcp`, `host tcp`: the candidate's type, how it reaches its TURN server and
    its transport when not UDP."""
    relay = f"/{candidate.relay_protocol}" if candidate.relay_protocol else ""
    protocol = "" if candidate.protocol == "udp" else f" {candidate.protocol}"
    return candidate.type + relay + protocol


def _connected_pair(result: RunResult | None) -> SelectedPair | None:
    """The viewer's selected pair of a run that connected (None: no pair connected)."""
    if result is None or result.outcome != "connected":
        return None
    return result.selected.get("viewer")


def _relayed(result: RunResult | None) -> bool | None:
    pair = _connected_pair(result)
    return None if pair is None else "relay" in (pair.local.type, pair.remote.type)


def _types(result: RunResult | None) -> tuple[str, str] | None:
    pair = _connected_pair(result)
    return None if pair is None else (pair.local.type, pair.remote.type)


def observed_relayed(entry: Mapping[str, Any]) -> bool | None:
    """Whether the viewer's selected pair goes through a relay (None: nothing connected)."""
    return _relayed(cell_result(entry))


def selected_types(entry: Mapping[str, Any]) -> tuple[str, str] | None:
    """The viewer's selected pair as (local type, remote type), or None."""
    return _types(cell_result(entry))


def _tcp_type(candidate: Candidate) -> str | None:
    """RFC 6544's TCP type of a TCP candidate (`active`, `passive`, `so`), where the agent
    reports it (the typed Candidate keeps it among its extra keys)."""
    return candidate.extra.get("tcp_type")


def tcp_candidates(result: RunResult, role: str) -> set[str]:
    """The TCP types (`active`, `passive`, `so`) of a peer's host candidates (RFC 6544)."""
    return {
        _tcp_type(c) or "?"
        for c in result.peers[role].candidates
        if c.protocol == "tcp" and c.type == "host"
    }


def _why_no_tcp_pair(result: RunResult, agents: Mapping[str, str]) -> str | None:
    """Why no ICE-TCP pair formed, from what each peer gathered; None if it could have."""
    without = [f"{role} {agent}" for role, agent in agents.items() if agent == "aiortc"]
    if without:
        return (
            f"aiortc has no ICE over TCP ({', '.join(without)}: aioice gathers UDP host "
            "candidates only), so the TCP pair libwebrtc forms here does not exist and TURN "
            "over TCP or TLS carries the call"
        )
    passive = [role for role in agents if "passive" in tcp_candidates(result, role)]
    if not passive:
        gathered = {role: sorted(tcp_candidates(result, role)) or ["none"] for role in agents}
        seen = ", ".join(f"{role} {'/'.join(types)}" for role, types in gathered.items())
        return (
            f"no peer gathered a passive TCP candidate (TCP host candidates: {seen}): "
            "Chromium only connects out (active, port 9) and never listens, and two active "
            "ends cannot pair; libwebrtc's test allocator listens (allow_tcp_listen), so "
            "its peers pair over TCP"
        )
    return None


def explain(
    entry: Mapping[str, Any],
    result: RunResult | None,
    expected: Expectation,
    agents: Mapping[str, str],
) -> str:
    """Why a cell's result (`result`, the entry's, typed) differs from libwebrtc's
    expectation on direct versus relay, from the cell's own evidence where there is some."""
    if entry.get("unsupported"):
        return str(entry["unsupported"])
    if result is None:
        return f"the run left no result: {entry.get('error')}"
    if expected.local_protocol == "tcp":
        reason = _why_no_tcp_pair(result, agents)
        if reason:
            return reason
    if _relayed(result) is None:
        return "no pair connected"
    return "unexplained: the lab's NATs or firewalls differ from libwebrtc's here"


def judge(entry: JsonObject, agents: Mapping[str, str]) -> JsonObject:
    """The entry with libwebrtc's expectation, whether the lab agrees with it on direct
    versus relay (None: no expectation), and the reason when it does not."""
    expected = expectation(entry["viewer"], entry["master"])
    entry["libwebrtc"] = None if expected is None else expected.describe()
    entry["agrees"] = None
    entry["same_types"] = None
    entry["explanation"] = None
    if expected is None or not expected.exists:
        return entry
    if entry.get("unsupported"):
        entry["explanation"] = entry["unsupported"]  # not run: no verdict either way
        return entry
    result = cell_result(entry)
    entry["agrees"] = _relayed(result) == expected.relayed
    entry["same_types"] = _types(result) == (expected.local, expected.remote)
    if not entry["agrees"]:
        entry["explanation"] = explain(entry, result, expected, agents)
    return entry


def run_cells(
    combos: list[tuple[str, str]],
    extra: list[str],
    jobs: int,
    agents: Mapping[str, str],
    sweep: Sweep,
    run: Callable[[str, str, list[str]], JsonObject] = run_cell,
) -> list[JsonObject]:
    """Every combination, `jobs` at once, judged; in the order of `combos`."""

    def one(viewer: str, master: str) -> JsonObject:
        reason = unsupported(viewer, master, agents)
        if reason:
            return {"viewer": viewer, "master": master, "result": None, "unsupported": reason}
        sweep.started()
        return run(viewer, master, extra)

    entries: dict[tuple[str, str], JsonObject] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures: dict[Future[JsonObject], tuple[str, str]] = {
            pool.submit(one, *combo): combo for combo in combos
        }
        try:
            for future in as_completed(futures):
                combo = futures[future]
                entry = entries[combo] = judge(future.result(), agents)
                _report(sweep, entry)
        except BaseException:  # Ctrl-C or SIGTERM: no cell starts; running ones tear down
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [entries[combo] for combo in combos]


def run_cells_reused(
    combos: list[tuple[str, str]],
    extra: list[str],
    jobs: int,
    agents: Mapping[str, str],
    sweep: Sweep,
    options: SweepOptions,
) -> list[JsonObject]:
    """Every combination on `jobs` reused networks (lab/sweeps/workers.py), judged; in the order of
    `combos`. A cell a worker cannot run is a fresh `lab run`, and its entry says why."""

    entries: dict[tuple[str, str], JsonObject] = {}
    lock = threading.Lock()

    def finished(entry: JsonObject) -> None:
        judged = judge(entry, agents)
        with lock:
            entries[(entry["viewer"], entry["master"])] = judged
        _report(sweep, judged)

    runnable = []
    for viewer, master in combos:
        reason = unsupported(viewer, master, agents)
        if reason:
            finished({"viewer": viewer, "master": master, "result": None, "unsupported": reason})
        else:
            runnable.append((viewer, master))
    pool = ReusedSweep(options, jobs, lambda v, m: run_cell(v, m, extra), sweep.started, finished)
    pool.run(runnable)
    return [entries[combo] for combo in combos]


def _report(sweep: Sweep, entry: Mapping[str, Any]) -> None:
    label = f"viewer {entry['viewer']} x master {entry['master']}"
    if entry.get("unsupported"):
        sweep.skipped(label, str(entry["unsupported"]))
        return
    outcome = describe_cell(entry)
    if entry.get("error"):
        outcome += f" ({entry['error']})"
    libwebrtc = entry.get("libwebrtc")
    if libwebrtc and libwebrtc["local"]:
        verdict = "agrees with" if entry["agrees"] else "differs from"
        outcome += f"; {verdict} libwebrtc ({_expected_text(libwebrtc)})"
    sweep.finished(label, outcome, failed=outcome.startswith(("error", "failed")))


def _expected_text(libwebrtc: Mapping[str, Any]) -> str:
    pair = f"{libwebrtc['local']}-{libwebrtc['remote']}"
    return pair if libwebrtc["local_protocol"] == "udp" else f"{pair} {libwebrtc['local_protocol']}"


def agreement(cells: list[Mapping[str, Any]]) -> dict[str, int]:
    """How many cells agree with libwebrtc on direct versus relay, differ, or have no
    expectation to agree with."""
    not_run = [c for c in cells if c.get("unsupported")]
    return {
        "agree": sum(1 for c in cells if c["agrees"] is True),
        "differ": sum(1 for c in cells if c["agrees"] is False),
        "same_types": sum(1 for c in cells if c.get("same_types") is True),
        "no_expectation": sum(1 for c in cells if not c.get("unsupported") and c["agrees"] is None),
        "not_run": len(not_run),
    }


def _cell_text(entry: Mapping[str, Any]) -> Text:

    text = Text(describe_cell(entry))
    libwebrtc = entry.get("libwebrtc")
    if libwebrtc is None:
        return text
    if not libwebrtc["local"]:
        return text.append("\nlibwebrtc: -", style="dim")
    mark, style = ("=", "green") if entry["agrees"] else ("x", "bold red")
    text.append(f"\n{mark} {_expected_text(libwebrtc)}", style=style)
    return text


def render_grid(
    cells: list[Mapping[str, Any]],
    presets: list[str],
    agents: Mapping[str, str] | None = None,
    absent: str = "missing",
) -> Table:
    """Rows: the viewer's network; columns: the master's. Each cell: the viewer's selected
    pair, and below it libwebrtc's (`=` agrees on direct versus relay, `x` differs); a
    combination without a cell (another shard's, or one a partial merge lacks): `absent`."""

    title = "Matrix: the viewer's selected pair (local-remote), libwebrtc's below"
    if agents:
        title += f"; agents: viewer {agents['viewer']}, master {agents['master']}"
    caption = "= agrees with libwebrtc on direct versus relay, x differs, - libwebrtc has none"
    table = Table(
        title=title, caption=caption, title_justify="left", caption_justify="left", show_lines=True
    )
    table.add_column("viewer \\ master", no_wrap=True)
    for master in presets:
        table.add_column(master.replace("-", "-\n", 1), justify="center")
    by_combo = {(c["viewer"], c["master"]): c for c in cells}
    for viewer in presets:
        line = [by_combo.get((viewer, master)) for master in presets]
        table.add_row(
            viewer, *(Text(absent, style="dim") if c is None else _cell_text(c) for c in line)
        )
    return table


def agreement_line(cells: list[Mapping[str, Any]]) -> str:
    """`49 of 49 cells agree with libwebrtc on direct versus relay`, and the rest."""
    counts = agreement(cells)
    judged = counts["agree"] + counts["differ"]
    line = (
        f"{counts['agree']} of {judged} cells agree with libwebrtc on direct versus relay "
        f"({counts['same_types']} also on both candidate types)"
    )
    if counts["no_expectation"]:
        line += f"; {counts['no_expectation']} cells have no libwebrtc expectation"
    if counts["not_run"]:
        line += f"; {counts['not_run']} cells not run"
    return line


def difference_lines(cells: list[Mapping[str, Any]]) -> list[str]:
    """One line per cell that differs from libwebrtc, with why; then the cells not run,
    one line per side, agent and row (the reason is the same for all of its cells)."""
    lines = []
    not_run: dict[str, int] = {}
    for cell in cells:
        if cell["agrees"] is False:
            lines.append(
                f"differs: viewer {cell['viewer']} x master {cell['master']}: lab "
                f"{describe_cell(cell)}, libwebrtc {_expected_text(cell['libwebrtc'])}: "
                f"{cell['explanation']}"
            )
        elif cell.get("unsupported"):
            not_run[cell["unsupported"]] = not_run.get(cell["unsupported"], 0) + 1
    for reason, count in not_run.items():
        lines.append(f"not run ({count} cells): {reason}")
    return lines


def cell_agents(viewer: str | None, master: str | None) -> dict[str, str]:
    """Each side's ICE agent for every cell (the cells' scenarios name none: aiortc), checked
    before any cell runs so a typo or a missing browser is one line of bad input."""

    agents = {"viewer": viewer or DEFAULT_AGENT, "master": master or DEFAULT_AGENT}
    for role, agent in agents.items():
        require_agent(agent, f"--{role}")
    return agents


def default_jobs(agents: Mapping[str, str], fresh: bool = True) -> int:
    """Cells at once: aiortc cells mostly wait on the network, so more than the cores;
    a browser cell (Chromium, Firefox) runs browsers that need a core each, so two at a
    time. A reused network's cell costs little CPU beyond its peers'
    (REUSED_JOBS_PER_CORE, measured)."""
    if {"chromium", "firefox", "kvs-js"} & set(agents.values()):
        return 2
    cores = os.cpu_count() or 2
    return cores * REUSED_JOBS_PER_CORE if not fresh else cores + 1


def matrix_options(servers: str | None, timing: str | None, fresh: bool) -> JsonObject:
    """What applies to every cell besides the agents: recorded, so that `lab merge` can
    tell shards of one matrix from shards of another run alike."""
    return {"servers": servers, "timing": timing, "fresh": fresh}


def matrix_document(
    agents: Mapping[str, str],
    presets: list[str],
    cells: list[JsonObject],
    wall_s: float,
    options: Mapping[str, Any] | None = None,
) -> JsonObject:
    """The --json document: agents, options, rows (with libwebrtc's name for each), every
    cell."""
    return {
        "agents": dict(agents),
        "options": dict(options or matrix_options(None, None, False)),
        "presets": [
            {"name": p, "libwebrtc": CONFIGS.get(p), "what": ROWS[p].what} for p in presets
        ],
        "agreement": agreement(cells),
        "wall_s": wall_s,
        "cells": cells,
    }


def print_matrix(document: Mapping[str, Any], absent: str = "missing") -> None:
    """The grid, the agreement, every difference and the time, on stdout: what `lab matrix`
    prints after its cells ran, and `lab merge` after joining shards."""

    presets = [p["name"] for p in document["presets"]]
    cells = document["cells"]
    console = Console(highlight=False)
    console.width = max(console.width, 30 + 24 * len(presets))  # cells are not truncated
    console.print(render_grid(cells, presets, document["agents"], absent))
    console.print(agreement_line(cells), markup=False, soft_wrap=True)
    for line in difference_lines(cells):
        console.print(line, markup=False, soft_wrap=True)
    console.print(f"{len(cells)} cells in {document['wall_s']} s", markup=False)
