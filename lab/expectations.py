"""Check a result against the scenario's `expect:` block.

Each check is reported with what was observed, so a failed expectation says why.
"""

from __future__ import annotations

from typing import Any


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def evaluate(expect: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per expectation: {check, met, observed}."""
    checks = [
        {
            "check": f"outcome is {expect['outcome']}",
            "met": result["outcome"] == expect["outcome"],
            "observed": result["outcome"],
        }
    ]
    if "kvs_status" in expect:
        observed = (result.get("kvs_status") or {}).get("code")
        checks.append(
            {
                "check": f"the KVS C SDK would report {expect['kvs_status']}",
                "met": observed == expect["kvs_status"],
                "observed": observed,
            }
        )
    for role, wanted in expect.get("selected", {}).items():
        checks += _selected_checks(role, wanted, result["selected"].get(role))
    for role, absent in expect.get("absent_candidates", {}).items():
        types = sorted({c["type"] for c in result["peers"][role]["candidates"]})
        checks.append(
            {
                "check": f"{role} has no {'/'.join(absent)} candidate",
                "met": not set(absent) & set(types),
                "observed": types,
            }
        )
    return checks


def _selected_checks(
    role: str, wanted: dict[str, Any], pair: dict[str, Any] | None
) -> list[dict[str, Any]]:
    checks = []
    for side in ("local", "remote"):
        if side in wanted:
            types = _as_list(wanted[side])
            observed = pair[side]["type"] if pair else None
            checks.append(
                {
                    "check": f"{role}'s selected {side} candidate is {'/'.join(types)}",
                    "met": observed in types,
                    "observed": observed,
                }
            )
    if "involves" in wanted:
        types = _as_list(wanted["involves"])
        observed = [pair["local"]["type"], pair["remote"]["type"]] if pair else None
        checks.append(
            {
                "check": f"{role}'s selected pair involves a {'/'.join(types)} candidate",
                "met": bool(observed and set(observed) & set(types)),
                "observed": observed,
            }
        )
    if "relay_protocol" in wanted:
        protocols = wanted["relay_protocol"]
        observed = pair["local"]["relay_protocol"] if pair else None
        checks.append(
            {
                "check": f"{role}'s selected relay is reached over {'/'.join(protocols)}",
                "met": observed in protocols,
                "observed": observed,
            }
        )
    return checks
