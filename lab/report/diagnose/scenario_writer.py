"""The scenario that should reproduce what the artifact shows.

It starts from the bundled `two-homes` topology with home routers (port-restricted cone
NATs) and coturn with the lab's default ICE servers, merges the fragments of the rules
that held, and expects what the artifact showed (outcome, absent candidate types, the
C SDK status of a failed connection). A rule whose fragment names another topology (the
peers on one LAN, or behind one NAT) sets it; conditions for nodes that topology lacks are
left out and the description says so. The lesson goes into `teaches:`.
"""

from __future__ import annotations

import copy
from pathlib import Path

from lab.core.documents import JsonObject
from lab.network.topology import load_topology
from lab.report.diagnose.facts import Facts
from lab.report.diagnose.findings import ICE_FAILURES
from lab.report.diagnose.rules import Inference, fragment_for

TOPOLOGY = "two-homes"
#: Artifacts a browser wrote: the peer they show is rerun in Chromium, so the selected
#: pair is chosen by the same ICE agent (libwebrtc) as in the customer's browser.
BROWSER_FORMATS = ("webrtc-internals", "chromium-report", "js-console")


def base_scenario(name: str) -> JsonObject:
    return {
        "name": name,
        "description": "",
        "teaches": "",
        "topology": TOPOLOGY,
        "conditions": {
            "viewer-gw": {"nat": "port-restricted-cone"},
            "master-gw": {"nat": "port-restricted-cone"},
        },
        "peers": {"viewer": {"host": "viewer"}, "master": {"host": "master"}},
        "expect": {},
    }


def merge(into: JsonObject, fragment: JsonObject) -> JsonObject:
    """Deep-merge a fragment; lists (firewall rules) add up, else a later rule's value wins."""
    for key, value in fragment.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        elif isinstance(value, list) and isinstance(into.get(key), list):
            into[key] += [copy.deepcopy(v) for v in value if v not in into[key]]
        else:
            into[key] = copy.deepcopy(value)
    return into


def build(facts: Facts, inferences: list[Inference], source: Path) -> JsonObject:
    """The scenario document for these inferences (schema-valid; not yet checked)."""
    name = "diagnosed-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in source.stem)
    doc = base_scenario(name[:60])
    fragments = [fragment_for(i.rule, i.role, i.values) for i in inferences]
    topology = next((f["topology"] for f in fragments if "topology" in f), None)
    if topology:
        doc["topology"], doc["conditions"] = topology, {}
    for fragment in fragments:
        merge(doc, fragment)
    dropped = _drop_unknown_nodes(doc)
    if facts.format in BROWSER_FORMATS:
        for role in facts.peers:
            doc["peers"][role]["agent"] = "chromium"
    doc["description"] = _description(source, inferences) + (
        f" Left out (not in {doc['topology']}): conditions for {', '.join(dropped)}."
        if dropped
        else ""
    )
    doc["teaches"] = " ".join(dict.fromkeys(i.rule.lesson for i in inferences)) or (
        "The artifact showed no condition the rule table knows; this is the baseline of two "
        "home networks behind ordinary routers."
    )
    doc["expect"] = _expect(facts, inferences)
    return doc


def _drop_unknown_nodes(doc: JsonObject) -> list[str]:
    """Remove conditions for nodes the scenario's topology does not have; their names."""
    if doc["topology"] == TOPOLOGY:
        return []
    nodes = set(load_topology(doc["topology"]).nodes)
    dropped = [name for name in doc["conditions"] if name not in nodes]
    for name in dropped:
        del doc["conditions"][name]
    return dropped


def _description(source: Path, inferences: list[Inference]) -> str:
    rules = (
        ", ".join(dict.fromkeys(f"{i.rule.name} ({i.role})" for i in inferences)) or "no rule held"
    )
    return f"Reproduces {source.name} as lab diagnose read it: {rules}."


def _expect(facts: Facts, inferences: list[Inference]) -> JsonObject:
    expect: JsonObject = {}
    outcomes = {p.outcome for p in facts.peers.values()} - {None}
    # the schema wants an outcome: what the artifact shows, else what the conditions give
    expect["outcome"] = "failed" if "failed" in outcomes else "connected"
    absent: dict[str, list[str]] = {}
    for inference in inferences:
        if inference.rule.absent and facts.peers[inference.role].gathered():
            types = absent.setdefault(inference.role, [])
            types.extend(t for t in inference.rule.absent if t not in types)
    if absent:
        expect["absent_candidates"] = absent
    statuses = [s for p in facts.peers.values() for s in p.statuses if s in ICE_FAILURES]
    if expect["outcome"] == "failed" and statuses:
        expect["kvs_status"] = statuses[0]
    return expect
