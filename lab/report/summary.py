"""A run's summary in the terminal: candidates per peer, the pair grid, the selected
pairs, the outcome and the expectations; the same facts the result document holds."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from lab.core.roles import ROLES
from lab.observations.call_timeline import call_lines
from lab.observations.capture.trail import drop_lines
from lab.observations.ice import Candidate, CandidatePair, endpoint
from lab.report.address_families import family_lines
from lab.report.kvs_sdk import failed_before_ice, kvs_log_lines
from lab.report.result import PeerResult, RunResult


def render(
    result: RunResult,
    console: Console,
    *,
    kvs_log: bool = False,
    server_log: bool = False,
    pair_list: bool = False,
) -> None:
    """Print the run's summary: candidates, pairs, selected pairs, outcome, expectations."""
    console.print(f"[bold]{result.scenario}[/bold]: {result.description}")
    for role in ROLES:
        _render_candidates(role, result.peers[role], console)
    if pair_list:
        _render_pairs(result.pairs, console)
    console.print(pair_grid(result))
    for line in drop_lines(result.pairs):  # with --capture: which hop dropped them
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if kvs_log:
        for role in ROLES:
            console.print(f"[bold]{role}: what the KVS C SDK would log[/bold]")
            for line in kvs_log_lines(result, role):
                console.print(f"  {line}", highlight=False, markup=False)
    if server_log:
        _render_server_log(result, console)
    for role in ROLES:
        pair = result.selected.get(role)
        if pair:
            rtt = f", rtt {pair.rtt_text(2)}" if pair.rtt_ms is not None else ""
            console.print(f"selected ({role}): {pair.text()}{rtt}", highlight=False)
        else:
            console.print(f"selected ({role}): none")
    timings = result.timings
    connected = timings.connected_s
    colour = "green" if result.outcome == "connected" else "red"
    console.print(
        f"outcome: [{colour}]{result.outcome}[/{colour}]"
        + (f" in {connected:.3f} s" if connected is not None else "")
        + f" (run {timings.total_s:.2f} s, timing {result.timing_profile}"
        + (f", slowdown {result.slowdown:g}" if result.slowdown else "")
        + ")"
    )
    for line in family_lines(result):
        console.print(line, highlight=False, markup=False)
    status = result.kvs_status
    viewer = result.peers["viewer"]
    if status:
        console.print(
            f"KVS C SDK status: {status['code']} {status['name']}: {status['meaning']}",
            highlight=False,
        )
    elif result.outcome != "connected" and failed_before_ice(viewer):
        console.print(
            "KVS C SDK status: none from ICE: the viewer failed before its ICE agent "
            f"started ({viewer.error}); the C SDK fails in signaling there",
            highlight=False,
            markup=False,
        )
    if result.call:
        for line in call_lines(result.call):
            console.print(line, highlight=False, markup=False)
    for check in result.expectations:
        mark = "[green]ok[/green]  " if check.met else "[red]FAIL[/red]"
        console.print(f"  {mark} {check.check} (observed: {check.observed})")


def _render_candidates(role: str, peer: PeerResult, console: Console) -> None:
    software = peer.software or {}
    agent = f", {software['name']} {software['version']}" if software else ""
    table = Table(title=f"{role} ({peer.host}{agent}) local candidates", title_justify="left")
    for column in ("type", "address", "port", "relay", "server"):
        table.add_column(column)
    for c in peer.candidates:
        table.add_row(c.type, c.address, str(c.port), c.relay_protocol or "", c.server or "")
    console.print(table)
    for error in peer.extra.get("gathering_errors") or []:
        console.print(f"  gathering error: {error['url']}: {error['reason']}")
    for skipped in peer.extra.get("skipped_servers") or []:
        console.print(f"  skipped: {skipped['url']}: {skipped['reason']}")
    command = peer.extra.get("command")
    if command:
        status = command.get("exit_status")
        console.print(
            f"  {role} program: {' '.join(command['argv'])} -> exit {status} after "
            f"{command.get('duration_s', 0):g} s",
            highlight=False,
            markup=False,
        )
        for line in command.get("output", [])[-5:]:
            console.print(f"    | {line}", highlight=False, markup=False)
        signaling = (command.get("wire") or {}).get("signaling") or []
        seen = [e.get("action") or e["event"] for e in signaling]
        console.print(f"  signaling saw: {', '.join(seen) or 'nothing'}", highlight=False)
    proxy = peer.extra.get("proxy")
    if proxy:
        how = "used" if proxy["used"] else f"not used: {proxy.get('reason')}"
        console.print(f"  proxy {proxy['url']}: {how}", highlight=False)
    if peer.error:
        console.print(f"  [yellow]{role}: {peer.error}[/yellow]")


def _render_pairs(pairs: list[CandidatePair], console: Console) -> None:
    table = Table(title="candidate pairs", title_justify="left")
    for column in ("agent", "local", "remote", "state", "nom", "rtt ms"):
        table.add_column(column)
    for p in pairs:
        rtt = "" if p.rtt_ms is None else f"{'≤' if p.rtt_upper_bound else ''}{p.rtt_ms:.1f}"
        table.add_row(
            p.agent, p.local.text(), p.remote.text(), p.state, "*" if p.nominated else "", rtt
        )
    console.print(table)


def _cell(pair: CandidatePair | None, selected: bool) -> str:
    if pair is None:
        return "-"
    state = pair.state
    text = {"succeeded": "ok", "failed": "fail"}.get(state, state)
    failure = pair.failure
    if state == "succeeded" and pair.rtt_ms is not None:
        text += f" {'≤' if pair.rtt_upper_bound else ''}{pair.rtt_ms:.1f}"
    elif state == "failed" and failure:
        text += " " + {
            "timeout": "t/o",
            "turn_error": str(failure.get("code", "turn")),
        }.get(failure["reason"], failure["reason"])
    return f"[bold]*{text}[/bold]" if selected else text


def _address(candidate: Candidate) -> str:
    """The address, an mDNS name cut to its first 8 characters (`1d5aeb18….local`)."""
    address = candidate.address
    if address.endswith(".local") and len(address) > 14:
        return address[:8] + "….local"
    return address


def _short(candidate: Candidate) -> str:
    label = f"{candidate.type} {endpoint(_address(candidate), candidate.port)}"
    if candidate.protocol == "tcp":
        label += f" tcp/{candidate.extra.get('tcp_type', '')}".rstrip("/")
    if candidate.relay_protocol:
        label += f"/{candidate.relay_protocol}"
    return label


def pair_grid(result: RunResult) -> Table:
    """Rows: the viewer's local candidates; columns: the master's; cells: the viewer's checks.

    A cell shows the pair's final state (ok with the RTT in ms, `≤` where it only bounds the
    round trip, or fail with why: t/o for no response, a TURN error code); `*` marks the pair
    the viewer selected. A pair sits in the row of its valid local candidate (a check from
    the host base that came back through a NAT belongs to the srflx row); peer-reflexive
    candidates add rows or columns.
    """
    viewer = list(result.peers["viewer"].candidates)
    columns = list(result.peers["master"].candidates)
    pairs = result.pairs_of("viewer")
    for pair in pairs:
        if not any(pair.remote.same_as(c) for c in columns):
            columns.append(pair.remote)
        if not any(pair.local.same_as(c) for c in viewer):
            viewer.append(pair.local)  # a peer-reflexive local learned from a check
    selected = result.selected.get("viewer")
    table = Table(
        title="pairs (viewer's checks; rows: viewer, columns: master)", title_justify="left"
    )
    table.add_column("viewer \\ master", no_wrap=True)
    for column in columns:
        table.add_column(_header(column), justify="center")
    for row in viewer:
        cells = []
        for column in columns:
            pair = next((p for p in pairs if p.joins(row, column)), None)
            chosen = bool(
                selected
                and pair
                and selected.local.same_as(row)
                and selected.remote.same_as(column)
            )
            cells.append(_cell(pair, chosen))
        table.add_row(_short(row), *cells)
    return table


def _header(candidate: Candidate) -> str:
    """Two short lines, `relay/tls` over `.10:50219`, so five columns fit in 100."""
    kind = candidate.type + (f"/{candidate.relay_protocol}" if candidate.relay_protocol else "")
    address, port = candidate.address, candidate.port
    if address.endswith(".local"):
        return f"{kind}\n{address[:4]}….local:{port}"
    if ":" in address:  # IPv6: its last group
        return f"{kind}\n[…:{address.rsplit(':', 1)[-1]}]:{port}"
    return f"{kind}\n.{address.rsplit('.', 1)[-1]}:{port}"


def _render_server_log(result: RunResult, console: Console) -> None:
    servers = result.servers
    software = servers.turn_software if servers else None
    table = Table(title=f"STUN/TURN server requests ({software})", title_justify="left")
    for column in ("s", "client", "transport", "method", "outcome", "code", "reason", "fault"):
        table.add_column(column, no_wrap=column in ("client", "method"))
    requests = servers.turn_requests if servers else []
    start = min((r["t"] for r in requests if isinstance(r.get("t"), int | float)), default=0)
    for r in requests:
        table.add_row(
            f"{r['t'] - start:.3f}" if isinstance(r.get("t"), int | float) else "",
            str(r.get("client") or ""),
            str(r.get("transport") or ""),
            str(r.get("method") or ""),
            str(r.get("outcome") or ""),
            str(r.get("error_code") or ""),
            str(r.get("reason") or ""),
            str(r.get("fault") or ""),
        )
    console.print(table)
