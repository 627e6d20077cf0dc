"""Results for unit tests: a partial result document, as a test writes only the parts it
is about, completed with neutral defaults and read as the typed result."""

from __future__ import annotations

from typing import Any

from lab.report.result import RunResult

DEFAULTS: dict[str, Any] = {
    "scenario": "test",
    "outcome": "connected",
    "expectations_met": True,
    "peers": {"viewer": {"candidates": []}, "master": {"candidates": []}},
    "pairs": [],
    "selected": {"viewer": None, "master": None},
    "timings": {"gathering_s": {"viewer": None, "master": None}, "connected_s": None, "total_s": 0},
}


def typed(document: dict[str, Any]) -> RunResult:
    """`document` over the defaults, each candidate completed with its optional keys."""
    full = {**DEFAULTS, **document}
    for part in ("selected", "timings"):
        full[part] = {**DEFAULTS[part], **full[part]}
    return RunResult.from_json(_complete(full))


def _complete(value: Any) -> Any:
    if isinstance(value, dict):
        value = {k: _complete(v) for k, v in value.items()}
        if {"type", "address"} <= value.keys():
            value = {"port": 9, "protocol": "udp", "relay_protocol": None, "server": None, **value}
        if "local" in value and (
            "agent" in value or "state" in value
        ):  # a pair, not a selected one
            somewhere = _complete({"type": "host", "address": "192.0.2.9"})
            value = {"agent": "viewer", "remote": somewhere, "state": "succeeded",
                     "nominated": False, "rtt_ms": None, **value}  # fmt: skip
        return value
    if isinstance(value, list):
        return [_complete(v) for v in value]
    return value
