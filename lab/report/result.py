"""The result document of a run, and its readable summary in the terminal.

The document's field names are fixed by `lab schema result`; the terminal shows
the same facts: candidates per peer, the pairs, the selected pairs, the outcome.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from lab.core.documents import schema_errors
from lab.core.errors import LabRunError
from lab.observations.call_timeline import call_lines
from lab.observations.capture.trail import drop_lines
from lab.observations.ice import attribute_turn_refusals, endpoint, merge_pairs, selected_pairs
from lab.report.address_families import family_lines
from lab.report.expectations import evaluate
from lab.report.kvs_sdk import failed_before_ice, kvs_log_lines, kvs_status
from lab.scenario.scenario import Scenario

PEER_FIELDS = (
    "host", "mode", "agent", "software", "command", "host_addresses", "proxy", "candidates",
    "remote_candidates",
    "unresolved_remote_candidates", "gathering_errors", "skipped_servers", "ice_state",
    "ice_states", "ice_role", "gathering_s", "connected_s", "error", "kvs_sdk",
)  # fmt: skip


def network_conditions(scenario: Scenario) -> dict[str, Any]:
    """The network the result was observed on, so a saved result describes itself: the
    topology and each node's NAT behaviour, firewall and impairments (one object, or a list
    with one entry per impaired interface, as the scenario wrote them)."""
    return {
        "topology": scenario.topology.name,
        "conditions": scenario.resolved_conditions(),
        **topology_graph(scenario),
    }


def topology_graph(scenario: Scenario) -> dict[str, Any]:
    """The topology's nodes and links, compact, so a report can draw a saved result's network
    even when its topology file is gone (`lab report`)."""
    topology = scenario.topology
    return {
        "nodes": {
            n.name: {"role": n.role, "description": n.description, "addresses": n.all_addresses}
            for n in topology.nodes.values()
        },
        "links": [
            {
                "endpoints": [f"{e.node}:{e.name}" for e in (link.a, link.b)],
                "addresses": [e.all_addresses for e in (link.a, link.b)],
            }
            for link in topology.links
        ],
        **({"vpns": [t.describe() for t in topology.vpns]} if topology.vpns else {}),
    }


def build_result(
    scenario: Scenario,
    observations: dict[str, dict[str, Any]],
    timing_profile: str,
    total_s: float,
    servers: dict[str, Any],
    call: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble and validate the result document from both peers' observations (and the
    ongoing call's section, lab/observations/call_timeline.py, when the scenario has one)."""
    viewer, master = observations["viewer"], observations["master"]
    echo = bool(viewer.get("echo"))
    result: dict[str, Any] = {
        "scenario": scenario.name,
        "description": scenario.description,
        "outcome": "connected" if echo else "failed",
        "expectations_met": False,
        "timing_profile": timing_profile,
        "network": network_conditions(scenario),
        "servers": servers,
        "echo": echo,
        "peers": {
            role: {k: observations[role].get(k) for k in PEER_FIELDS if k in observations[role]}
            for role in ("viewer", "master")
        },
        "pairs": merge_pairs(observations),
        "selected": selected_pairs(observations),
        "timings": {
            "gathering_s": {
                "viewer": viewer.get("gathering_s"),
                "master": master.get("gathering_s"),
            },
            "connected_s": viewer.get("connected_s"),
            "total_s": round(total_s, 3),
        },
    }
    attribute_turn_refusals(
        result["pairs"], servers.get("turn", {}).get("requests") or [], scenario.name
    )
    result["kvs_status"] = kvs_status(result)
    if call is not None:
        result["call"] = call
    result["expectations"] = evaluate(scenario.expect, result)
    if any(p.get("agent") == "command" for p in observations.values()):
        # A user's program is opaque (no candidates, no pairs): only the outcome, which its
        # exit status gives, can be judged against the scenario.
        result["expectations"] = [
            c for c in result["expectations"] if c["check"].startswith("outcome")
        ]
    result["expectations_met"] = all(c["met"] for c in result["expectations"])
    errors = schema_errors(result, "result")
    if errors:
        raise LabRunError(f"the lab built an invalid result ({errors[0]}): please report this")
    return result


def describe_candidate(candidate: dict[str, Any]) -> str:
    """`relay 203.0.113.10:50349/tls`: type, address, port and relay protocol."""
    text = f"{candidate['type']} {endpoint(candidate['address'], candidate['port'])}"
    if candidate.get("relay_protocol"):
        text += f"/{candidate['relay_protocol']}"
    return text


def render(
    result: dict[str, Any],
    console: Console,
    *,
    kvs_log: bool = False,
    server_log: bool = False,
    pair_list: bool = False,
) -> None:
    """Print the run's summary: candidates, pairs, selected pairs, outcome, expectations."""
    console.print(f"[bold]{result['scenario']}[/bold]: {result.get('description', '')}")
    for role in ("viewer", "master"):
        _render_candidates(role, result["peers"][role], console)
    if pair_list:
        _render_pairs(result["pairs"], console)
    console.print(pair_grid(result))
    for line in drop_lines(result["pairs"]):  # with --capture: which hop dropped them
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if kvs_log:
        for role in ("viewer", "master"):
            console.print(f"[bold]{role}: what the KVS C SDK would log[/bold]")
            for line in kvs_log_lines(result, role):
                console.print(f"  {line}", highlight=False, markup=False)
    if server_log:
        _render_server_log(result, console)
    for role in ("viewer", "master"):
        pair = result["selected"].get(role)
        if pair:
            rtt = f", rtt {pair['rtt_ms']} ms" if pair.get("rtt_ms") is not None else ""
            console.print(
                f"selected ({role}): {describe_candidate(pair['local'])} -> "
                f"{describe_candidate(pair['remote'])}{rtt}"
            )
        else:
            console.print(f"selected ({role}): none")
    timings = result["timings"]
    connected = timings["connected_s"]
    colour = "green" if result["outcome"] == "connected" else "red"
    console.print(
        f"outcome: [{colour}]{result['outcome']}[/{colour}]"
        + (f" in {connected:.3f} s" if connected is not None else "")
        + f" (run {timings['total_s']:.2f} s, timing {result['timing_profile']})"
    )
    for line in family_lines(result):
        console.print(line, highlight=False, markup=False)
    status = result.get("kvs_status")
    if status:
        console.print(
            f"KVS C SDK status: {status['code']} {status['name']}: {status['meaning']}",
            highlight=False,
        )
    elif result["outcome"] != "connected" and failed_before_ice(result["peers"]["viewer"]):
        console.print(
            "KVS C SDK status: none from ICE: the viewer failed before its ICE agent "
            f"started ({result['peers']['viewer']['error']}); the C SDK fails in signaling "
            "there",
            highlight=False,
            markup=False,
        )
    if result.get("call"):
        for line in call_lines(result["call"]):
            console.print(line, highlight=False, markup=False)
    for check in result["expectations"]:
        mark = "[green]ok[/green]  " if check["met"] else "[red]FAIL[/red]"
        console.print(f"  {mark} {check['check']} (observed: {check['observed']})")


def _render_candidates(role: str, peer: dict[str, Any], console: Console) -> None:
    software = peer.get("software") or {}
    agent = f", {software['name']} {software['version']}" if software else ""
    table = Table(
        title=f"{role} ({peer.get('host')}{agent}) local candidates", title_justify="left"
    )
    for column in ("type", "address", "port", "relay", "server"):
        table.add_column(column)
    for c in peer.get("candidates", []):
        table.add_row(
            c["type"], c["address"], str(c["port"]), c["relay_protocol"] or "", c["server"] or ""
        )
    console.print(table)
    for error in peer.get("gathering_errors") or []:
        console.print(f"  gathering error: {error['url']}: {error['reason']}")
    for skipped in peer.get("skipped_servers") or []:
        console.print(f"  skipped: {skipped['url']}: {skipped['reason']}")
    command = peer.get("command")
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
    proxy = peer.get("proxy")
    if proxy:
        how = "used" if proxy["used"] else f"not used: {proxy.get('reason')}"
        console.print(f"  proxy {proxy['url']}: {how}", highlight=False)
    if peer.get("error"):
        console.print(f"  [yellow]{role}: {peer['error']}[/yellow]")


def _render_pairs(pairs: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="candidate pairs", title_justify="left")
    for column in ("agent", "local", "remote", "state", "nom", "rtt ms"):
        table.add_column(column)
    for p in pairs:
        rtt = "" if p["rtt_ms"] is None else f"{p['rtt_ms']:.1f}"
        table.add_row(
            p["agent"],
            describe_candidate(p["local"]),
            describe_candidate(p["remote"]),
            p["state"],
            "*" if p["nominated"] else "",
            rtt,
        )
    console.print(table)


def _cell(pair: dict[str, Any] | None, selected: bool) -> str:
    if pair is None:
        return "-"
    state = pair["state"]
    text = {"succeeded": "ok", "failed": "fail"}.get(state, state)
    if state == "succeeded" and pair.get("rtt_ms") is not None:
        text += f" {pair['rtt_ms']:.1f}"
    elif state == "failed" and pair.get("failure"):
        text += " " + {
            "timeout": "t/o",
            "turn_error": str(pair["failure"].get("code", "turn")),
        }.get(pair["failure"]["reason"], pair["failure"]["reason"])
    return f"[bold]*{text}[/bold]" if selected else text


def _address(candidate: dict[str, Any]) -> str:
    """The address, an mDNS name cut to its first 8 characters (`1d5aeb18….local`)."""
    address = candidate["address"]
    if address.endswith(".local") and len(address) > 14:
        return address[:8] + "….local"
    return address


def _short(candidate: dict[str, Any]) -> str:
    label = f"{candidate['type']} {endpoint(_address(candidate), candidate['port'])}"
    if candidate.get("protocol") == "tcp":
        label += f" tcp/{candidate.get('tcp_type', '')}".rstrip("/")
    if candidate.get("relay_protocol"):
        label += f"/{candidate['relay_protocol']}"
    return label


def pair_grid(result: dict[str, Any]) -> Table:
    """Rows: the viewer's local candidates; columns: the master's; cells: the viewer's checks.

    A cell shows the pair's final state (ok with the RTT in ms, or fail with why: t/o for
    no response, a TURN error code); `*` marks the pair the viewer selected. A pair sits in
    the row of its valid local candidate (a check from the host base that came back through
    a NAT belongs to the srflx row); peer-reflexive candidates add rows or columns.
    """
    viewer = list(result["peers"]["viewer"].get("candidates", []))
    columns = list(result["peers"]["master"].get("candidates", []))
    pairs = [p for p in result["pairs"] if p["agent"] == "viewer"]
    for pair in pairs:
        if not any(_same(pair["remote"], c) for c in columns):
            columns.append(pair["remote"])
        if not any(_same(pair["local"], c) for c in viewer):
            viewer.append(pair["local"])  # a peer-reflexive local learned from a check
    selected = result["selected"].get("viewer")
    table = Table(
        title="pairs (viewer's checks; rows: viewer, columns: master)", title_justify="left"
    )
    table.add_column("viewer \\ master", no_wrap=True)
    for column in columns:
        table.add_column(_header(column), justify="center")
    for row in viewer:
        cells = []
        for column in columns:
            pair = next(
                (p for p in pairs if _same(p["local"], row) and _same(p["remote"], column)), None
            )
            chosen = bool(
                selected
                and pair
                and _same(selected["local"], row)
                and _same(selected["remote"], column)
            )
            cells.append(_cell(pair, chosen))
        table.add_row(_short(row), *cells)
    return table


def _header(candidate: dict[str, Any]) -> str:
    """Two short lines, `relay/tls` over `.10:50219`, so five columns fit in 100."""
    kind = candidate["type"] + (
        f"/{candidate['relay_protocol']}" if candidate.get("relay_protocol") else ""
    )
    if candidate["address"].endswith(".local"):
        return f"{kind}\n{candidate['address'][:4]}….local:{candidate['port']}"
    if ":" in candidate["address"]:  # IPv6: its last group
        return f"{kind}\n[…:{candidate['address'].rsplit(':', 1)[-1]}]:{candidate['port']}"
    host = candidate["address"].rsplit(".", 1)[-1]
    return f"{kind}\n.{host}:{candidate['port']}"


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def key(c: dict[str, Any]) -> tuple[Any, ...]:
        return (c["address"], c["port"], c.get("protocol", "udp"))

    return key(a) == key(b)


def _render_server_log(result: dict[str, Any], console: Console) -> None:
    turn = result.get("servers", {}).get("turn", {})
    table = Table(title=f"STUN/TURN server requests ({turn.get('software')})", title_justify="left")
    for column in ("s", "client", "transport", "method", "outcome", "code", "reason", "fault"):
        table.add_column(column, no_wrap=column in ("client", "method"))
    requests = turn.get("requests", [])
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
