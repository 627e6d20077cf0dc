"""Expectations that differ by ICE agent: a scenario's `expect.where_agents` entries, and
the agent combinations it is not meant for (`expect.not_for_agents`), each with its why.

An entry applies when every role it names runs one of the agents it lists; it replaces
the expectations it names, per role for those given per role (`selected`, `gathered`...)
and whole for the rest (`failing_pairs`, `outcome`), and removes those it `drop`s.
"""

from __future__ import annotations

from collections.abc import Mapping

from lab.core.documents import JsonObject

#: Keys of an entry that say when, why and what no longer applies, not what to expect.
ENTRY_KEYS = ("when", "why", "drop")


def applies(when: JsonObject, agents: Mapping[str, str | None]) -> bool:
    """Whether every role `when` names runs one of the agents it lists."""
    return all(agents.get(role) in allowed for role, allowed in when.items())


def expect_for(expect: JsonObject, agents: Mapping[str, str | None]) -> JsonObject:
    """The scenario's expectations for a run with these agents."""
    effective = {k: v for k, v in expect.items() if k not in ("where_agents", "not_for_agents")}
    for entry in expect.get("where_agents", []):
        if not applies(entry["when"], agents):
            continue
        for key, value in entry.items():
            if key in ENTRY_KEYS:
                continue
            if isinstance(value, dict) and isinstance(effective.get(key), dict):
                effective[key] = {**effective[key], **value}
            else:
                effective[key] = value
        for path in entry.get("drop", []):
            _drop(effective, path)
    return effective


def _drop(expect: JsonObject, path: str) -> None:
    """Remove `name` or `name.role` from the expectations (a name left empty goes too)."""
    name, _, role = path.partition(".")
    if role and isinstance(expect.get(name), dict):
        expect[name] = {k: v for k, v in expect[name].items() if k != role}
        if expect[name]:
            return
    expect.pop(name, None)


def reasons_for(expect: JsonObject, agents: Mapping[str, str | None]) -> list[str]:
    """Why this run's expectations differ from the scenario's first ones (empty: they don't)."""
    return [e["why"] for e in expect.get("where_agents", []) if applies(e["when"], agents)]


def not_meant_for(expect: JsonObject, agents: Mapping[str, str | None]) -> str | None:
    """Why the scenario is not meant for these agents (None: it is)."""
    for entry in expect.get("not_for_agents", []):
        if applies(entry["when"], agents):
            return str(entry["why"])
    return None
