"""One self-contained HTML file for a result, a matrix or a compare document.

Jinja2 templates (lab/report/html/templates) with autoescaping; CSS, script and SVG inline, no
fetch of anything, so the file works as a ticket attachment. The pair data the page
shows on click travels inside the page as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError
from lab.core.roles import ROLES, other_role
from lab.observations.ice import Candidate, CandidatePair, SelectedPair
from lab.report.explain import Section, explain
from lab.report.html.topology_svg import Drawing, drawing
from lab.report.network_graph import peer_of
from lab.report.result import PeerResult, RunResult


@dataclass
class AgentRow:
    """One peer in the summary table: where it ran, which agent, how it ended."""

    role: str
    host: str
    agent: str
    software: str
    mode: str
    error: str


@dataclass
class GridCell:
    """One pair in a grid (index None: no pair joins this row and column)."""

    state: str
    text: str
    title: str
    index: int | None
    why: str = ""
    checks: str = ""
    selected: bool = False
    nominated: bool = False
    id: str = ""


@dataclass
class GridRow:
    candidate: Candidate
    label: str
    cells: list[GridCell]


@dataclass
class Grid:
    """One agent's checks: rows its local candidates, columns the remote ones."""

    role: str
    columns: list[str]
    rows: list[GridRow]
    count: int


@dataclass
class Event:
    """Something that happened at `t` seconds, in a lane (a role); `x` its place on the
    drawn clock, in percent."""

    t: float | None
    lane: str
    what: str
    kind: str
    x: float | None = None


@dataclass
class Timeline:
    events: list[Event]
    timed: list[Event]
    end: float
    checks: list[Event]
    checks_end: float


@dataclass
class ResultView:
    """Everything the result's part of a page shows."""

    key: str
    result: RunResult
    agents: list[AgentRow]
    drawing: Drawing | None
    grids: list[Grid]
    pairs: list[JsonObject]  # the detail view's data, as the result document holds it
    timeline: Timeline
    call: JsonObject | None
    explain: list[Section]
    selected: dict[str, str]


@dataclass
class MatrixCell:
    kind: str  # direct | relay | failed | none
    text: str
    expected: str
    agrees: bool | None
    link: str | None = None
    explanation: str = ""


@dataclass
class MatrixRow:
    viewer: str
    cells: list[MatrixCell]


@dataclass
class CellReport:
    """A matrix cell's own report, further down its page."""

    key: str
    title: str
    r: ResultView


@dataclass
class CompareCell:
    kind: str
    text: str
    detail: str
    differs: bool


@dataclass
class CompareRow:
    scenario: str | None
    cells: list[CompareCell] = field(default_factory=list)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("lab.report.html", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["seconds"] = lambda v: "-" if v is None else f"{v:.3f} s"
    env.filters["page_json"] = page_json
    return env


def page_json(value: Any) -> str:
    """JSON safe inside a <script> element (no `</script>` can end it early)."""
    text = json.dumps(value, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def kind_of(document: Any) -> str | None:
    """result, matrix or compare: what the document is, by its fields."""
    if not isinstance(document, dict):
        return None
    if "pairs" in document and "peers" in document:
        return "result"
    if "cells" in document and "presets" in document:
        return "matrix"
    if "scenarios" in document and "combos" in document:
        return "compare"
    return None


def render_document(document: Any, source: str = "the document") -> str:
    """The HTML page for any of the three documents; LabInputError if it is none of them."""
    kind = kind_of(document)
    if kind == "result":
        return render_result(RunResult.from_json(document))
    if kind == "matrix":
        return render_matrix(document)
    if kind == "compare":
        return render_compare(document)
    raise LabInputError(
        f"{source}: not a result, matrix or compare document "
        "(a result has `peers` and `pairs`, a matrix `presets` and `cells`, "
        "a compare document `combos` and `scenarios`)"
    )


def render_result(result: RunResult) -> str:
    template = _environment().get_template("result.html.j2")
    return template.render(r=result_context(result, "run"), title=_title(result))


def _title(result: RunResult) -> str:
    return f"ice-lab: {result.scenario} ({result.outcome})"


def result_context(result: RunResult, key: str) -> ResultView:
    """Everything the result's part of a page shows; `key` keeps element ids unique when a
    page holds many results (a matrix)."""
    return ResultView(
        key=key,
        result=result,
        agents=[_agent(role, peer_of(result, role)) for role in ROLES],
        drawing=drawing(result),
        grids=[pair_grid(result, role, key) for role in ROLES],
        pairs=[pair.to_json() for pair in result.pairs],
        timeline=timeline(result),
        call=result.call,
        explain=explain(result),
        selected={role: _selected_text(result.selected.get(role)) for role in ROLES},
    )


def _agent(role: str, peer: PeerResult) -> AgentRow:
    software = peer.software or {}
    return AgentRow(
        role=role,
        host=str(peer.host or ""),
        agent=str(peer.agent or ""),
        software=" ".join(str(software[k]) for k in ("name", "version") if software.get(k)),
        mode=str(peer.extra.get("mode") or ""),
        error=str(peer.error or ""),
    )


def _selected_text(pair: SelectedPair | None) -> str:
    if not pair:
        return "none"
    rtt = (
        f", rtt {'≤ ' if pair.rtt_upper_bound else ''}{pair.rtt_ms} ms"
        if pair.rtt_ms is not None
        else ""
    )
    return f"{pair.text()}{rtt}"


def pair_grid(result: RunResult, role: str, key: str) -> Grid:
    """Rows: the agent's local candidates; columns: the remote ones; each cell a pair (its
    index in `pairs` for the detail view), its state, RTT, checks and failure."""
    mine = peer_of(result, role)
    rows = list(mine.candidates)
    columns = list(mine.remote_candidates or peer_of(result, other_role(role)).candidates)
    indexed = [(i, p) for i, p in enumerate(result.pairs) if p.agent == role]
    for _, pair in indexed:
        if not any(pair.remote.same_as(c) for c in columns):
            columns.append(pair.remote)
        if not any(pair.local.same_as(c) for c in rows):
            rows.append(pair.local)
    chosen = result.selected.get(role)
    cells = []
    for row in rows:
        line = []
        for column in columns:
            found = next(((i, p) for i, p in indexed if p.joins(row, column)), None)
            line.append(_cell(found, chosen, key))
        cells.append(GridRow(row, row.text(), line))
    return Grid(role, [c.text() for c in columns], cells, len(indexed))


def _cell(
    found: tuple[int, CandidatePair] | None, chosen: SelectedPair | None, key: str
) -> GridCell:
    if found is None:
        return GridCell("none", "-", "no pair", None)
    index, pair = found
    failure = pair.failure or {}
    dropped = failure.get("dropped_at") or {}
    selected = bool(chosen and pair.joins(chosen.local, chosen.remote))
    state = str(pair.state or "unknown")
    text = {"succeeded": "ok", "failed": "fail"}.get(state, state)
    if state == "succeeded" and pair.rtt_ms is not None:
        text += f" {pair.rtt_text()}"  # `≤ 212.9 ms` where it only bounds the round trip
    why = ""
    if failure:
        why = str(failure.get("code") or failure.get("reason") or "")
        if dropped:
            why += f" @ {dropped.get('node')}"
    # as the result holds them: `None` where the agent does not count (a browser)
    checks = f"{pair.extra.get('checks_sent', '?')}/{pair.extra.get('responses_received', '?')}"
    title = f"{state}; checks sent/answered {checks}"
    if failure:
        title += f"; {failure.get('message') or failure.get('reason')}"
    return GridCell(
        state=state,
        text=text,
        title=title,
        index=index,
        why=why,
        checks=checks,
        selected=selected,
        nominated=pair.nominated,
        id=f"{key}-pair-{index}",
    )


def timeline(result: RunResult) -> Timeline:
    """The run's events on one clock (seconds since the peers started): gathering per peer
    and server, ICE state changes, connected."""
    events: list[Event] = []
    for role in ROLES:
        peer = peer_of(result, role)
        gathered = result.timings.gathering_s.get(role)
        if gathered is not None:
            servers = sorted({c.server for c in peer.candidates if c.server})
            events.append(
                Event(
                    gathered,
                    role,
                    f"gathering done: {len(peer.candidates)} candidates"
                    + (f" from {', '.join(servers)}" if servers else ""),
                    "gathering",
                )
            )
        for error in peer.extra.get("gathering_errors") or []:
            what = f"no candidate from {error.get('url')}: {error.get('reason')}"
            events.append(Event(gathered, role, what, "error"))
        for change in peer.extra.get("ice_states") or []:
            events.append(Event(change.get("t_s"), role, f"ICE {change.get('state')}", "state"))
    connected = result.timings.connected_s
    if connected is not None:
        chosen = result.selected.get("viewer")
        what = "connected: the echo came back" + (
            f" over {_selected_text(chosen)}" if chosen else ""
        )
        events.append(Event(connected, "viewer", what, "connected"))
    timed = sorted((e for e in events if e.t is not None), key=_time)
    untimed = [e for e in events if e.t is None]
    end = _place_on(timed)
    checks = wire_checks(result.pairs)
    return Timeline(timed + untimed, timed, end, checks, _place_on(checks))


def _time(event: Event) -> float:
    return event.t or 0.0


def _place_on(events: list[Event]) -> float:
    """Give each event its x (percent of the clock's span); the span's end."""
    end = max([_time(e) for e in events] + [0.001])
    for event in events:
        event.x = round(100 * _time(event) / end, 2)
    return end


def wire_checks(pairs: list[CandidatePair]) -> list[Event]:
    """Each connectivity check the capture saw (--capture), on the capture's clock: when it
    first crossed a link, for which pair, and how it ended (answered, dropped where)."""
    checks = []
    for pair in pairs:
        for check in (pair.trail or {}).get("checks") or []:
            hops = check.get("hops") or []
            if not hops or hops[0].get("t") is None:
                continue
            ended = check.get("ended") or {}
            how = str(ended.get("kind") or "?")
            if ended.get("node"):
                how += f" at {ended['node']} ({ended.get('rule')})"
            kind = "answered" if how == "answered" else "lost"
            what = f"{pair.local.text()} -> {pair.remote.text()}: {how}"
            checks.append(Event(hops[0]["t"], pair.agent, what, kind))
    return sorted(checks, key=_time)


def classify(ends: tuple[str | None, str | None] | None, outcome: str | None) -> str:
    """direct, relay or failed: the colour of a matrix or compare cell, from the outcome and
    the types of the viewer's selected pair's ends (None: no selected pair)."""
    if outcome not in (None, "connected") or not ends:
        return "failed"
    return "relay" if "relay" in ends else "direct"


def render_matrix(document: JsonObject) -> str:
    """The viewer x master grid, each cell coloured, linked to its own report below."""
    presets = [p["name"] for p in document.get("presets") or []]
    by_pair = {(c.get("viewer"), c.get("master")): c for c in document.get("cells") or []}
    rows = []
    reports = []
    for viewer in presets:
        line = []
        for master in presets:
            cell = by_pair.get((viewer, master))
            result = _cell_result(cell)
            line.append(_matrix_cell(viewer, master, cell, result))
            if result is not None:
                key = f"cell-{viewer}-{master}"
                reports.append(CellReport(key, f"{viewer} x {master}", result_context(result, key)))
        rows.append(MatrixRow(viewer, line))
    template = _environment().get_template("matrix.html.j2")
    return template.render(
        title="ice-lab matrix", document=document, presets=presets, rows=rows, reports=reports
    )


def _cell_result(cell: JsonObject | None) -> RunResult | None:
    """The run result a matrix cell holds (None: the cell did not run or its run failed)."""
    if cell and isinstance(cell.get("result"), dict):
        return RunResult.from_json(cell["result"])
    return None


def _end(candidate: Candidate) -> str:
    """`relay/udp`, `srflx`: a candidate's type and, for a relay, its protocol."""
    protocol = candidate.relay_protocol
    return candidate.type + (f"/{protocol}" if protocol else "")


def _matrix_cell(
    viewer: str, master: str, cell: JsonObject | None, result: RunResult | None
) -> MatrixCell:
    if cell is None:
        return MatrixCell("none", "not run", "", None)
    chosen = result.selected.get("viewer") if result else None
    outcome = result.outcome if result else None
    ends = (chosen.local.type, chosen.remote.type) if chosen else None
    text = (
        f"{_end(chosen.local)}-{_end(chosen.remote)}"
        if chosen
        else str(outcome or cell.get("error") or "failed")
    )
    expected = cell.get("libwebrtc") or {}
    expectation = ""
    if expected:
        how = "relay" if expected.get("relayed") else "direct"
        expectation = f"libwebrtc: {expected.get('local')}-{expected.get('remote')} ({how})"
    return MatrixCell(
        kind=classify(ends, outcome or cell.get("outcome")),
        text=text,
        expected=expectation,
        agrees=cell.get("agrees"),
        link=f"cell-{viewer}-{master}" if result is not None else None,
        explanation=cell.get("explanation") or "",
    )


def render_compare(document: JsonObject) -> str:
    """Scenarios down, agent combinations across; each cell coloured and its summary."""
    combos = [c["name"] for c in document.get("combos") or []]
    rows = []
    for row in document.get("scenarios") or []:
        differing = {d.get("combo") for d in row.get("differences") or []}
        cells = [
            _compare_cell((row.get("cells") or {}).get(combo), combo in differing)
            for combo in combos
        ]
        rows.append(CompareRow(row.get("scenario"), cells))
    template = _environment().get_template("compare.html.j2")
    return template.render(title="ice-lab compare", document=document, combos=combos, rows=rows)


def _compare_cell(cell: JsonObject | None, differs: bool) -> CompareCell:
    """A compare cell (lab/sweeps/compare.py's summary: the selected pair's ends by type)."""
    if cell is None:
        return CompareCell("none", "not run", "", differs)
    chosen = (cell.get("selected") or {}).get("viewer")
    ends = (chosen.get("local"), chosen.get("remote")) if chosen else None
    kind = "failed" if cell.get("outcome") == "error" else classify(ends, cell.get("outcome"))
    text = str(cell.get("outcome"))
    if chosen:
        text += f": {chosen.get('local')}->{chosen.get('remote')}"
    return CompareCell(kind, text, json.dumps(cell, indent=1), differs)


def write_report(document: Any, source: str, out: Path) -> None:
    """Render and write the page (nothing is written when the document is not one of ours)."""
    page = render_document(document, source)
    out.write_text(page, encoding="utf-8")
