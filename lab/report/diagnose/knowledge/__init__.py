"""What lab diagnose knows of the KVS WebRTC C SDK, loaded from the data files beside this one.

The facts (status codes, log messages, state machines, which function belongs to which
component, browser and JS SDK error strings) are YAML tables that name the SDK version
they come from; this module only loads them, compiles the message patterns and answers
look-ups. The docs site renders its tables from the same data (`status_table`,
`message_table`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml

from lab.core.documents import JsonObject

#: Finding data fields that are numbers in a message's pattern groups.
INTEGER_GROUPS = ("port", "ms", "lifetime_s", "count", "status", "state")
FLOAT_GROUPS = ("rtt_ms",)
#: Keys of a message entry that describe it; every other key is constant finding data.
DESCRIPTIVE = ("id", "component", "level", "function", "format", "means", "kind", "pattern")
#: The C SDK's status families (the high byte of a status code), for codes newer than the table.
FAMILIES = {
    0x00: "common",
    0x55: "session_description",
    0x56: "sdp",
    0x57: "stun",
    0x58: "networking",
    0x59: "dtls",
    0x5A: "ice",
    0x5B: "srtp",
    0x5C: "rtp",
    0x5D: "signaling",
    0x5E: "peer_connection",
    0x5F: "sctp",
    0x60: "rtcp",
    0x61: "rolling_buffer",
}


@dataclass(frozen=True)
class Message:
    """One C SDK log message: where it comes from, what it means, and how it is read."""

    id: str
    component: str
    level: str
    function: str
    format: str
    means: str
    kind: str
    pattern: re.Pattern[str]
    constants: JsonObject = field(default_factory=dict)

    def read(self, text: str) -> JsonObject | None:
        """The finding data the message gives in this text, None when it is not there."""
        m = self.pattern.search(text)
        if not m:
            return None
        data = dict(self.constants)
        for name, value in m.groupdict().items():
            if value is None:
                continue
            if name in INTEGER_GROUPS:
                data[name] = int(value)
            elif name in FLOAT_GROUPS:
                data[name] = float(value)
            else:
                data[name] = value
        return data


def _load(name: str) -> JsonObject:
    return yaml.safe_load(resources.files(__name__).joinpath(name).read_text())


@cache
def status_codes() -> dict[str, JsonObject]:
    """Every status code of the table by its `0x%08x` text."""
    return {row["code"]: row for row in _load("status_codes.yaml")["codes"]}


@cache
def status_source() -> JsonObject:
    return _load("status_codes.yaml")["source"]


@cache
def messages() -> tuple[Message, ...]:
    """The C SDK's log messages, in the table's order."""
    rows = _load("messages.yaml")["messages"]
    return tuple(
        Message(
            id=row["id"],
            component=row["component"],
            level=str(row["level"]),
            function=str(row["function"]),
            format=row["format"],
            means=row["means"],
            kind=row["kind"],
            pattern=re.compile(row["pattern"]),
            constants={k: v for k, v in row.items() if k not in DESCRIPTIVE},
        )
        for row in rows
    )


@cache
def state_machines() -> JsonObject:
    return _load("state_machines.yaml")["machines"]


@cache
def _components() -> tuple[tuple[str, re.Pattern[str]], ...]:
    rows = _load("components.yaml")["components"]
    return tuple((row["component"], re.compile(row["pattern"])) for row in rows)


@cache
def browser_errors() -> JsonObject:
    return _load("browser_errors.yaml")


def status(code: str) -> JsonObject:
    """The table's row for a status code; a code newer than the table gets its family only."""
    code = code.lower()
    known = status_codes().get(code)
    if known:
        return known
    family = FAMILIES.get(int(code, 16) >> 24, "unknown")
    return {
        "code": code,
        "name": "unknown status",
        "group": family,
        "meaning": f"a {family} status the table's SDK version does not have",
        "cause": _family_cause(family),
    }


def _family_cause(family: str) -> str:
    return {"signaling": "signaling", "ice": "network", "networking": "network"}.get(family, "sdk")


def is_status(code: str) -> bool:
    """A code of the SDK's status families (known or newer than the table), not 0 (success)."""
    value = int(code, 16)
    return value != 0 and (code.lower() in status_codes() or (value >> 24) in FAMILIES)


def component_of(function: str | None) -> str:
    """The component a function of the SDK belongs to ('other' when no rule names it)."""
    if not function:
        return "other"
    for component, pattern in _components():
        if pattern.search(function):
            return component
    return "other"


def status_table() -> list[JsonObject]:
    """The status-code table's rows (code, name, group, meaning, cause, advice), for the docs."""
    return list(status_codes().values())


def message_table() -> list[dict[str, str]]:
    """The message table's rows (id, component, level, function, format, means), for the docs."""
    return [
        {
            "id": m.id,
            "component": m.component,
            "level": m.level,
            "function": m.function,
            "format": m.format,
            "means": m.means,
        }
        for m in messages()
    ]
