"""Pages made from the code's own tables: the KVS C SDK's status codes, the diagnose rules."""

from __future__ import annotations

from scripts.docs.sources import diagnose_rules, kvs_sdk


def kvs_status_page() -> str:
    """The status codes a failed run names, and the C SDK's agent states."""
    module = kvs_sdk()
    meanings = getattr(module, "MEANINGS", {})
    rows = ["| code | name | meaning |", "|---|---|---|"]
    for code, name in module.STATUS_CODES.items():
        rows.append(f"| `{code}` | `{name}` | {meanings.get(code, '')} |")
    states = ["| the agent's ICE state | the C SDK's agent state |", "|---|---|"]
    for state, name in getattr(module, "AGENT_STATES", {}).items():
        states.append(f"| `{state}` | `{name}` |")
    return "\n".join(
        [
            "# KVS status codes",
            "",
            "For a failed run the lab names the status code the customer's KVS WebRTC C SDK",
            "would have logged (`kvs_status` in the result, `KVS C SDK status:` in the summary),",
            "so a customer's log can be matched to a scenario. The codes the lab derives:",
            "",
            *rows,
            "",
            "A viewer that fails before its ICE agent starts (the service's names or addresses",
            "out of reach) gets no status: the C SDK fails in signaling there and names no ICE",
            "status, and the report says so with the error.",
            "",
            "`lab run --log kvs` prints the lines the C SDK logs for the same events; the ICE",
            "agent's states are named as the C SDK names them:",
            "",
            *states,
            "",
        ]
    )


def diagnose_rules_page() -> str:
    """`lab diagnose`'s rule table, as the code holds it."""
    return "\n".join(
        [
            "# Diagnose rules",
            "",
            "The rules `lab diagnose` applies to each peer the artifact shows: when one holds,",
            "its scenario fragment goes into the written scenario (SIDE is the peer the",
            "evidence is about, OTHER the other one; nodes are the bundled `two-homes`",
            "topology's) and its advice into the report. Several may hold at once; their",
            "fragments are merged in table order. See [the support engineer's",
            "tutorial](../tutorials/support-engineer.md) for them at work.",
            "",
            diagnose_rules().rule_table(),
            "",
        ]
    )
