"""The result of a run, built from both peers' observations and what the servers saw,
checked against the scenario's expectations and validated against the result schema."""

from __future__ import annotations

from lab.core.documents import schema_errors
from lab.core.errors import LabRunError
from lab.core.roles import ROLES
from lab.observations.ice import JsonObject, attribute_turn_refusals, merge_pairs, selected_pairs
from lab.report.expectations import evaluate
from lab.report.kvs_sdk import kvs_status
from lab.report.result import Expectation, PeerResult, RunResult, ServerFacts, Timings
from lab.scenario.by_agent import expect_for, reasons_for
from lab.scenario.scenario import Scenario

PEER_FIELDS = (
    "host", "mode", "agent", "software", "command", "host_addresses", "proxy", "candidates",
    "remote_candidates",
    "unresolved_remote_candidates", "gathering_errors", "skipped_servers", "ice_state",
    "ice_states", "ice_role", "gathering_s", "connected_s", "error", "kvs_sdk", "not_exposed",
)  # fmt: skip


def network_conditions(scenario: Scenario) -> JsonObject:
    """The network the result was observed on, so a saved result describes itself: the
    topology and each node's NAT behaviour, firewall and impairments (one object, or a list
    with one entry per impaired interface, as the scenario wrote them)."""
    return {
        "topology": scenario.topology.name,
        "conditions": scenario.resolved_conditions(),
        **topology_graph(scenario),
    }


def topology_graph(scenario: Scenario) -> JsonObject:
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
    observations: dict[str, JsonObject],
    timing_profile: str,
    total_s: float,
    servers: JsonObject,
    call: JsonObject | None = None,
) -> RunResult:
    """Assemble and validate the result document from both peers' observations (and the
    ongoing call's section, lab/observations/call_timeline.py, when the scenario has one)."""
    viewer, master = observations["viewer"], observations["master"]
    echo = bool(viewer.get("echo"))
    facts = ServerFacts.from_json(servers)
    result = RunResult(
        scenario=scenario.name,
        description=scenario.description,
        outcome="connected" if echo else "failed",
        expectations_met=False,
        timing_profile=timing_profile,
        network=network_conditions(scenario),
        servers=facts,
        echo=echo,
        peers={
            role: PeerResult.from_json(
                {k: observations[role].get(k) for k in PEER_FIELDS if k in observations[role]}
            )
            for role in ROLES
        },
        pairs=merge_pairs(observations),
        selected=selected_pairs(observations),
        timings=Timings(
            gathering_s={role: observations[role].get("gathering_s") for role in ROLES},
            connected_s=viewer.get("connected_s"),
            total_s=round(total_s, 3),
        ),
        call=call,
    )
    attribute_turn_refusals(result.pairs, facts.turn_requests, scenario.name)
    result.kvs_status = kvs_status(result)
    agents = {role: peer.agent for role, peer in result.peers.items()}
    result.expectations = evaluate(expect_for(scenario.expect, agents), result)
    for why in reasons_for(scenario.expect, agents):
        # The scenario expects something else of these agents, and says why.
        result.expectations.append(Expectation(f"for these agents: {why}", True, agents))
    if any(p.get("agent") == "command" for p in (viewer, master)):
        # A user's program is opaque (no candidates, no pairs): only the outcome, which its
        # exit status gives, can be judged against the scenario.
        result.expectations = [c for c in result.expectations if c.check.startswith("outcome")]
    result.expectations_met = all(c.met for c in result.expectations)
    errors = schema_errors(result.to_json(), "result")
    if errors:
        raise LabRunError(f"the lab built an invalid result ({errors[0]}): please report this")
    return result
