"""The result document of a run, and its readable summary in the terminal.

The document's field names are fixed by `lab schema result`; the terminal shows
the same facts: candidates per peer, the pairs, the selected pairs, the outcome.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from lab.documents import schema_errors
from lab.errors import LabRunError
from lab.expectations import evaluate
from lab.observations import merge_pairs, selected_pairs
from lab.scenario import Scenario

PEER_FIELDS = (
    "host", "mode", "candidates", "remote_candidates", "gathering_errors",
    "skipped_servers", "ice_state", "ice_role", "error",
)  # fmt: skip


def build_result(
    scenario: Scenario,
    observations: dict[str, dict[str, Any]],
    timing_profile: str,
    total_s: float,
    servers: str,
) -> dict[str, Any]:
    """Assemble and validate the result document from both peers' observations."""
    viewer, master = observations["viewer"], observations["master"]
    echo = bool(viewer.get("echo"))
    result: dict[str, Any] = {
        "scenario": scenario.name,
        "description": scenario.description,
        "outcome": "connected" if echo else "failed",
        "expectations_met": False,
        "timing_profile": timing_profile,
        "servers": {"stun_turn": servers},
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
    result["expectations"] = evaluate(scenario.expect, result)
    result["expectations_met"] = all(c["met"] for c in result["expectations"])
    errors = schema_errors(result, "result")
    if errors:
        raise LabRunError(f"the lab built an invalid result ({errors[0]}): please report this")
    return result


def describe_candidate(candidate: dict[str, Any]) -> str:
    """`relay 203.0.113.10:50349/tls`: type, address, port and relay protocol."""
    text = f"{candidate['type']} {candidate['address']}:{candidate['port']}"
    if candidate.get("relay_protocol"):
        text += f"/{candidate['relay_protocol']}"
    return text


def render(result: dict[str, Any], console: Console) -> None:
    """Print the run's summary: candidates, pairs, selected pairs, outcome, expectations."""
    console.print(f"[bold]{result['scenario']}[/bold]: {result.get('description', '')}")
    for role in ("viewer", "master"):
        _render_candidates(role, result["peers"][role], console)
    _render_pairs(result["pairs"], console)
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
    for check in result["expectations"]:
        mark = "[green]ok[/green]  " if check["met"] else "[red]FAIL[/red]"
        console.print(f"  {mark} {check['check']} (observed: {check['observed']})")


def _render_candidates(role: str, peer: dict[str, Any], console: Console) -> None:
    table = Table(title=f"{role} ({peer.get('host')}) local candidates", title_justify="left")
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
