"""One self-contained HTML file for a result, a matrix or a compare document.

Jinja2 templates (lab/report/html/templates) with autoescaping; CSS, script and SVG inline, no
fetch of anything, so the file works as a ticket attachment. The pair data the page
shows on click travels inside the page as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from lab.core.errors import LabInputError
from lab.report.explain import describe, explain
from lab.report.html.topology_svg import drawing

ROLES = ("viewer", "master")


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
    from markupsafe import Markup

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
        return render_result(document)
    if kind == "matrix":
        return render_matrix(document)
    if kind == "compare":
        return render_compare(document)
    raise LabInputError(
        f"{source}: not a result, matrix or compare document "
        "(a result has `peers` and `pairs`, a matrix `presets` and `cells`, "
        "a compare document `combos` and `scenarios`)"
    )


def render_result(result: dict[str, Any]) -> str:
    template = _environment().get_template("result.html.j2")
    return template.render(r=result_context(result, "run"), title=_title(result))


def _title(result: dict[str, Any]) -> str:
    return f"ice-lab: {result.get('scenario', 'run')} ({result.get('outcome', '?')})"


def result_context(result: dict[str, Any], key: str) -> dict[str, Any]:
    """Everything the result's part of a page shows; `key` keeps element ids unique when a
    page holds many results (a matrix)."""
    return {
        "key": key,
        "result": result,
        "agents": _agents(result),
        "drawing": drawing(result),
        "grids": [pair_grid(result, role, key) for role in ROLES],
        "pairs": result.get("pairs") or [],
        "timeline": timeline(result),
        "call": result.get("call"),
        "explain": explain(result),
        "selected": {
            role: _selected_text((result.get("selected") or {}).get(role)) for role in ROLES
        },
    }


def _agents(result: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for role in ROLES:
        peer = (result.get("peers") or {}).get(role) or {}
        software = peer.get("software") or {}
        rows.append(
            {
                "role": role,
                "host": str(peer.get("host") or ""),
                "agent": str(peer.get("agent") or ""),
                "software": " ".join(
                    str(software[k]) for k in ("name", "version") if software.get(k)
                ),
                "mode": str(peer.get("mode") or ""),
                "error": str(peer.get("error") or ""),
            }
        )
    return rows


def _selected_text(pair: dict[str, Any] | None) -> str:
    if not pair:
        return "none"
    rtt = f", rtt {pair['rtt_ms']} ms" if pair.get("rtt_ms") is not None else ""
    return f"{describe(pair['local'])} -> {describe(pair['remote'])}{rtt}"


def _key(candidate: dict[str, Any]) -> tuple[Any, ...]:
    return (candidate.get("address"), candidate.get("port"), candidate.get("protocol", "udp"))


def pair_grid(result: dict[str, Any], role: str, key: str) -> dict[str, Any]:
    """Rows: the agent's local candidates; columns: the remote ones; each cell a pair (its
    index in `pairs` for the detail view), its state, RTT, checks and failure."""
    peers = result.get("peers") or {}
    rows = list((peers.get(role) or {}).get("candidates") or [])
    other = "master" if role == "viewer" else "viewer"
    columns = list(
        (peers.get(role) or {}).get("remote_candidates")
        or (peers.get(other) or {}).get("candidates")
        or []
    )
    indexed = [(i, p) for i, p in enumerate(result.get("pairs") or []) if p.get("agent") == role]
    for _, pair in indexed:
        if not any(_key(pair["remote"]) == _key(c) for c in columns):
            columns.append(pair["remote"])
        if not any(_key(pair["local"]) == _key(c) for c in rows):
            rows.append(pair["local"])
    chosen = (result.get("selected") or {}).get(role)
    cells = []
    for row in rows:
        line = []
        for column in columns:
            found = next(
                (
                    (i, p)
                    for i, p in indexed
                    if _key(p["local"]) == _key(row) and _key(p["remote"]) == _key(column)
                ),
                None,
            )
            line.append(_cell(found, chosen, key))
        cells.append({"candidate": row, "label": describe(row), "cells": line})
    return {
        "role": role,
        "columns": [describe(c) for c in columns],
        "rows": cells,
        "count": len(indexed),
    }


def _cell(
    found: tuple[int, dict[str, Any]] | None, chosen: dict[str, Any] | None, key: str
) -> dict[str, Any]:
    if found is None:
        return {"state": "none", "text": "-", "title": "no pair", "index": None}
    index, pair = found
    failure = pair.get("failure") or {}
    dropped = failure.get("dropped_at") or {}
    selected = bool(
        chosen
        and _key(chosen["local"]) == _key(pair["local"])
        and _key(chosen["remote"]) == _key(pair["remote"])
    )
    state = str(pair.get("state") or "unknown")
    text = {"succeeded": "ok", "failed": "fail"}.get(state, state)
    if state == "succeeded" and pair.get("rtt_ms") is not None:
        text += f" {pair['rtt_ms']:.1f} ms"
    why = ""
    if failure:
        why = str(failure.get("code") or failure.get("reason") or "")
        if dropped:
            why += f" @ {dropped.get('node')}"
    checks = f"{pair.get('checks_sent', '?')}/{pair.get('responses_received', '?')}"
    title = f"{state}; checks sent/answered {checks}"
    if failure:
        title += f"; {failure.get('message') or failure.get('reason')}"
    return {
        "state": state,
        "text": text,
        "why": why,
        "checks": checks,
        "selected": selected,
        "nominated": bool(pair.get("nominated")),
        "title": title,
        "index": index,
        "id": f"{key}-pair-{index}",
    }


def timeline(result: dict[str, Any]) -> dict[str, Any]:
    """The run's events on one clock (seconds since the peers started): gathering per peer
    and server, ICE state changes, connected."""
    events: list[dict[str, Any]] = []
    peers = result.get("peers") or {}
    for role in ROLES:
        peer = peers.get(role) or {}
        gathered = (result.get("timings") or {}).get("gathering_s", {}).get(role)
        if gathered is not None:
            servers = sorted({c["server"] for c in peer.get("candidates") or [] if c.get("server")})
            events.append(
                {
                    "t": gathered,
                    "lane": role,
                    "what": f"gathering done: {len(peer.get('candidates') or [])} candidates"
                    + (f" from {', '.join(servers)}" if servers else ""),
                    "kind": "gathering",
                }
            )
        for error in peer.get("gathering_errors") or []:
            events.append(
                {
                    "t": gathered,
                    "lane": role,
                    "what": f"no candidate from {error.get('url')}: {error.get('reason')}",
                    "kind": "error",
                }
            )
        for change in peer.get("ice_states") or []:
            events.append(
                {
                    "t": change.get("t_s"),
                    "lane": role,
                    "what": f"ICE {change.get('state')}",
                    "kind": "state",
                }
            )
    connected = (result.get("timings") or {}).get("connected_s")
    if connected is not None:
        chosen = (result.get("selected") or {}).get("viewer")
        events.append(
            {
                "t": connected,
                "lane": "viewer",
                "what": "connected: the echo came back"
                + (f" over {_selected_text(chosen)}" if chosen else ""),
                "kind": "connected",
            }
        )
    timed = sorted((e for e in events if e["t"] is not None), key=lambda e: e["t"])
    untimed = [e for e in events if e["t"] is None]
    end = _place_on(timed)
    checks = wire_checks(result)
    return {
        "events": timed + untimed,
        "timed": timed,
        "end": end,
        "checks": checks,
        "checks_end": _place_on(checks),
    }


def _place_on(events: list[dict[str, Any]]) -> float:
    """Give each event its x (percent of the clock's span); the span's end."""
    end = max([e["t"] for e in events] + [0.001])
    for event in events:
        event["x"] = round(100 * event["t"] / end, 2)
    return end


def wire_checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each connectivity check the capture saw (--capture), on the capture's clock: when it
    first crossed a link, for which pair, and how it ended (answered, dropped where)."""
    checks = []
    for pair in result.get("pairs") or []:
        for check in (pair.get("trail") or {}).get("checks") or []:
            hops = check.get("hops") or []
            if not hops or hops[0].get("t") is None:
                continue
            ended = check.get("ended") or {}
            how = str(ended.get("kind") or "?")
            if ended.get("node"):
                how += f" at {ended['node']} ({ended.get('rule')})"
            checks.append(
                {
                    "t": hops[0]["t"],
                    "lane": pair.get("agent"),
                    "kind": "answered" if how == "answered" else "lost",
                    "what": f"{describe(pair['local'])} -> {describe(pair['remote'])}: {how}",
                }
            )
    return sorted(checks, key=lambda c: c["t"])


def classify(selected: dict[str, Any] | None, outcome: str | None) -> str:
    """direct, relay or failed: the colour of a matrix or compare cell."""
    if outcome not in (None, "connected") or not selected:
        return "failed"
    kinds = (selected.get("local"), selected.get("remote"))
    kinds = tuple(k.get("type") if isinstance(k, dict) else k for k in kinds)
    return "relay" if "relay" in kinds else "direct"


def render_matrix(document: dict[str, Any]) -> str:
    """The viewer x master grid, each cell coloured, linked to its own report below."""
    presets = [p["name"] for p in document.get("presets") or []]
    by_pair = {(c.get("viewer"), c.get("master")): c for c in document.get("cells") or []}
    rows = []
    reports = []
    for viewer in presets:
        line = []
        for master in presets:
            cell = by_pair.get((viewer, master))
            line.append(_matrix_cell(viewer, master, cell))
            if cell and isinstance(cell.get("result"), dict):
                key = f"cell-{viewer}-{master}"
                reports.append({"key": key, "title": f"{viewer} x {master}", **_ctx(cell, key)})
        rows.append({"viewer": viewer, "cells": line})
    template = _environment().get_template("matrix.html.j2")
    return template.render(
        title="ice-lab matrix", document=document, presets=presets, rows=rows, reports=reports
    )


def _ctx(cell: dict[str, Any], key: str) -> dict[str, Any]:
    return {"r": result_context(cell["result"], key)}


def _end(candidate: dict[str, Any]) -> str:
    """`relay/udp`, `srflx`: a candidate's type and, for a relay, its protocol."""
    protocol = candidate.get("relay_protocol")
    return candidate.get("type", "?") + (f"/{protocol}" if protocol else "")


def _matrix_cell(viewer: str, master: str, cell: dict[str, Any] | None) -> dict[str, Any]:
    if cell is None:
        return {"kind": "none", "text": "not run", "expected": "", "agrees": None}
    result = cell.get("result") or {}
    chosen = (result.get("selected") or {}).get("viewer")
    kind = classify(chosen, result.get("outcome") or cell.get("outcome"))
    text = (
        f"{_end(chosen['local'])}-{_end(chosen['remote'])}"
        if chosen
        else str(result.get("outcome") or cell.get("error") or "failed")
    )
    expected = cell.get("libwebrtc") or {}
    expectation = ""
    if expected:
        how = "relay" if expected.get("relayed") else "direct"
        expectation = f"libwebrtc: {expected.get('local')}-{expected.get('remote')} ({how})"
    return {
        "kind": kind,
        "text": text,
        "expected": expectation,
        "agrees": cell.get("agrees"),
        "link": f"cell-{viewer}-{master}" if isinstance(cell.get("result"), dict) else None,
        "explanation": cell.get("explanation") or "",
    }


def render_compare(document: dict[str, Any]) -> str:
    """Scenarios down, agent combinations across; each cell coloured and its summary."""
    combos = [c["name"] for c in document.get("combos") or []]
    rows = []
    for row in document.get("scenarios") or []:
        cells = []
        differing = {d.get("combo") for d in row.get("differences") or []}
        for combo in combos:
            cell = (row.get("cells") or {}).get(combo)
            cells.append(_compare_cell(cell, combo in differing))
        rows.append({"scenario": row.get("scenario"), "cells": cells})
    template = _environment().get_template("compare.html.j2")
    return template.render(title="ice-lab compare", document=document, combos=combos, rows=rows)


def _compare_cell(cell: dict[str, Any] | None, differs: bool) -> dict[str, Any]:
    if cell is None:
        return {"kind": "none", "text": "not run", "detail": "", "differs": differs}
    chosen = (cell.get("selected") or {}).get("viewer")
    kind = "failed" if cell.get("outcome") == "error" else classify(chosen, cell.get("outcome"))
    text = str(cell.get("outcome"))
    if chosen:
        text += f": {chosen.get('local')}->{chosen.get('remote')}"
    return {
        "kind": kind,
        "text": text,
        "detail": json.dumps(cell, indent=1),
        "differs": differs,
    }


def write_report(document: Any, source: str, out: Path) -> None:
    """Render and write the page (nothing is written when the document is not one of ours)."""
    page = render_document(document, source)
    out.write_text(page, encoding="utf-8")
