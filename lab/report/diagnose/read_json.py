"""A chrome://webrtc-internals dump, or the lab's Chromium peer report (getStats() and events).

The dump Chrome downloads is `{"getUserMedia", "PeerConnections": {id: {pid,
rtcConfiguration, constraints, url, updateLog: [{time, type, value}], stats: {"<stat
id>-<field>": {statsType, startTime, endTime, values: "<JSON list>"}}}}, "UserAgent"}`
(chromium's content/browser/webrtc/resources). The stats series collapse to their last
value, which gives the same records as getStats(): candidates, candidate pairs and the
transport's selected pair. The lab's peer report carries getStats() directly.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lab.core.documents import JsonObject
from lab.report.diagnose.findings import Finding, turn_phrase

CANDIDATE = re.compile(
    r"candidate:\S+ \d+ (?P<protocol>udp|tcp) \d+ (?P<address>\S+) "
    r"(?P<port>\d+) typ (?P<type>host|srflx|prflx|relay)",
    re.IGNORECASE,
)
URL = re.compile(r"(?:stuns?|turns?):[A-Za-z0-9.\-_\[\]:]+(?:\?transport=(?:udp|tcp))?")


def is_internals_dump(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("PeerConnections"), dict)


def is_peer_report(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("stats"), list) and "ice_states" in doc


def line_of(raw: str, needle: str) -> int:
    """The line of the raw text where `needle` first appears (1 if not found)."""
    at = raw.find(needle)
    return raw.count("\n", 0, at) + 1 if at >= 0 else 1


def read_internals(doc: JsonObject, raw: str) -> list[Finding]:
    """Findings from every peer connection of a webrtc-internals dump."""
    findings: list[Finding] = []
    for pc_id, record in doc["PeerConnections"].items():
        if not isinstance(record, dict):
            continue
        log = record.get("updateLog") or []
        role = _role(log)
        if role:
            findings.append(
                Finding(
                    "role", 1, f"{pc_id}: {role[1]}", role[0], {"role": role[0], "how": role[1]}
                )
            )
        who = role[0] if role else None
        for url in URL.findall(json.dumps(record.get("rtcConfiguration", ""))):
            findings.append(Finding("ice_server", line_of(raw, url), url, who, {"url": url}))
        for entry in log:
            findings.extend(_update(entry, who, raw))
        findings.extend(from_stats(_collapse(record.get("stats") or {}), who, raw))
    return findings


def _role(log: list[JsonObject]) -> tuple[str, str] | None:
    for entry in log:
        kind = str(entry.get("type", ""))
        value = str(entry.get("value", ""))
        if kind.startswith("createOffer"):
            return "viewer", "it created the offer (the viewer offers)"
        if kind.startswith("createAnswer") or (kind == "setRemoteDescription" and "offer" in value):
            return "master", "it answered an offer (the master answers)"
    return None


def _update(entry: JsonObject, role: str | None, raw: str) -> list[Finding]:
    kind = str(entry.get("type", "")).lower()
    value = str(entry.get("value", ""))
    text = f"{entry.get('type')}: {value}".replace("\n", " ")[:300]
    line = line_of(raw, value[:60]) if value else 1
    if kind in ("icecandidate", "onicecandidate", "addicecandidate"):
        m = CANDIDATE.search(value)
        if not m:
            return []
        side = "remote" if kind == "addicecandidate" else "local"
        data = {"side": side, "type": m["type"], "address": m["address"], "port": int(m["port"])}
        return [Finding("candidate", line, text, role, data)]
    if kind in ("iceconnectionstatechange", "connectionstatechange") and value.strip() in (
        "connected",
        "failed",
    ):
        return [Finding("outcome", line, text, role, {"outcome": value.strip()})]
    if "icecandidateerror" in kind:
        return [_candidate_error(value, line, text, role)]
    return []


def _candidate_error(value: str, line: int, text: str, role: str | None) -> Finding:
    fields = dict(re.findall(r"(\w+): ([^\n,]*)", value))
    url = fields.get("url", "").strip()
    code = int(fields["error_code"]) if fields.get("error_code", "").strip().isdigit() else None
    reason = fields.get("error_text", "").strip() or "error"
    data: JsonObject = {"url": url, "reason": f"{code} {reason}" if code else reason}
    if code and 300 <= code < 700:
        data["code"] = code
        data["reason"] = f"TURN error {code} {reason or turn_phrase(code)}"
    return Finding("gathering_error", line, text, role, data)


def _collapse(stats: JsonObject) -> list[JsonObject]:
    """`{"<id>-<field>": {statsType, values}}` -> getStats()-shaped records (last values)."""
    records: dict[str, JsonObject] = {}
    for key, series in stats.items():
        if not isinstance(series, dict) or "-" not in key:
            continue
        stat_id, name = key.rsplit("-", 1)
        try:
            values = json.loads(series.get("values", "[]"))
        except (TypeError, json.JSONDecodeError):
            continue
        record = records.setdefault(stat_id, {"id": stat_id, "type": series.get("statsType")})
        if isinstance(values, list) and values:
            record[name] = values[-1]
    return list(records.values())


def from_stats(stats: list[JsonObject], role: str | None, raw: str) -> list[Finding]:
    """Candidates, pair outcomes and the selected pair from getStats() records."""
    by_id = {s.get("id"): s for s in stats if isinstance(s, dict)}
    findings = []
    for stat in by_id.values():
        kind = stat.get("type")
        if kind in ("local-candidate", "remote-candidate"):
            findings.append(_stat_candidate(stat, role, raw))
        elif kind == "candidate-pair" and stat.get("state") in ("succeeded", "failed"):
            text = f"candidate-pair {stat['id']}: {stat['state']}"
            findings.append(
                Finding("pair", line_of(raw, str(stat["id"])), text, role, {"state": stat["state"]})
            )
    selected = _selected(by_id)
    if selected:
        pair, local, remote = selected
        types = f"{local.get('candidateType')} -> {remote.get('candidateType')}"
        text = f"transport selectedCandidatePairId {pair['id']}: {types}"
        data = {
            "local": local.get("candidateType"),
            "remote": remote.get("candidateType"),
            "relay_protocol": local.get("relayProtocol"),
            "rtt_ms": round(pair["currentRoundTripTime"] * 1000, 1)
            if pair.get("currentRoundTripTime") is not None
            else None,
        }
        findings.append(Finding("selected", line_of(raw, str(pair["id"])), text, role, data))
    return [f for f in findings if f is not None]


def _stat_candidate(stat: JsonObject, role: str | None, raw: str) -> Finding:
    side = "remote" if stat["type"] == "remote-candidate" else "local"
    data = {
        "side": side,
        "type": stat.get("candidateType"),
        "address": stat.get("address") or stat.get("ip") or None,
        "port": stat.get("port"),
        "protocol": stat.get("protocol"),
        "relay_protocol": stat.get("relayProtocol"),
        "server": stat.get("url"),
    }
    text = f"{stat['type']} {stat.get('id')}: {data['type']} {data['address']}:{data['port']}"
    return Finding("candidate", line_of(raw, str(stat.get("id"))), text, role, data)


def _selected(by_id: dict[Any, JsonObject]) -> tuple[dict, dict, dict] | None:
    for stat in by_id.values():
        if stat.get("type") == "transport" and stat.get("selectedCandidatePairId") in by_id:
            pair = by_id[stat["selectedCandidatePairId"]]
            local, remote = (
                by_id.get(pair.get("localCandidateId")),
                by_id.get(pair.get("remoteCandidateId")),
            )
            if local and remote:
                return pair, local, remote
    return None


def read_peer_report(doc: JsonObject, raw: str, role: str | None) -> list[Finding]:
    """Findings from the lab's Chromium peer report (`<role>.chromium-report.json`)."""
    findings = []
    if role:
        findings.append(
            Finding(
                "role",
                1,
                f"file name: {role}.chromium-report.json",
                role,
                {"role": role, "how": "the report's file name"},
            )
        )
    for error in doc.get("candidate_errors") or []:
        value = (
            "\n".join(f"{k}: {v}" for k, v in error.items())
            if isinstance(error, dict)
            else str(error)
        )
        value = value.replace("errorCode", "error_code").replace("errorText", "error_text")
        findings.append(
            _candidate_error(
                value, line_of(raw, "candidate_errors"), value.replace("\n", " "), role
            )
        )
    final = doc.get("ice_state")
    if final in ("connected", "completed", "failed"):
        outcome = "failed" if final == "failed" else "connected"
        findings.append(
            Finding(
                "outcome",
                line_of(raw, '"ice_state"'),
                f"ice_state: {final}",
                role,
                {"outcome": outcome},
            )
        )
    return findings + from_stats(doc.get("stats") or [], role, raw)
