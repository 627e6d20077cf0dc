"""The KVS C SDK's log (any level, any excerpt) and the lab's `lab run --log kvs` output.

Patterns follow the SDK's own format strings (src/source/Ice/IceAgent.c,
IceAgentStateMachine.c, TurnConnection.c, TurnConnectionStateMachine.c) and the lines
the lab prints for the same events (lab/report/kvs_sdk.py, lab/report/result.py). Each is searched
anywhere in a line, so timestamps, log levels, thread ids and the application's own
prefixes do not matter. A line a terminal wrapped is joined with the next one when only
the two together match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from lab.report.diagnose.findings import (
    ADDRESS,
    ROLES,
    Finding,
    status_codes,
    status_name,
    turn_phrase,
)

TYPED = r"(?P<type>host|srflx|prflx|relay)"
Handler = Callable[[re.Match[str]], tuple[str, dict[str, Any]] | None]


def _candidate_sdk(m: re.Match[str]) -> tuple[str, dict[str, Any]]:
    return "candidate", {
        "side": m["side"].lower(),
        "type": m["type"],
        "address": m["address"],
        "port": int(m["port"]),
    }


def _turn_error(m: re.Match[str]) -> tuple[str, dict[str, Any]]:
    code = int(m["code"])
    phrase = (m["phrase"] or "").strip().rstrip(".") or turn_phrase(code)
    return "turn_error", {"code": code, "phrase": phrase, "message_type": m["mtype"]}


def _gathering_error(m: re.Match[str]) -> tuple[str, dict[str, Any]]:
    reason = m["reason"].strip()
    data: dict[str, Any] = {"url": m["url"], "reason": reason}
    code = re.search(r"TURN error (\d{3})", reason)
    if code:
        data["code"] = int(code[1])
    return "gathering_error", data


def _selected_lab(m: re.Match[str]) -> tuple[str, dict[str, Any]]:
    local_relay = m["lproto"]
    return "selected", {
        "role": m["role"],
        "local": m["ltype"],
        "remote": m["rtype"],
        "relay_protocol": local_relay,
        "remote_relay_protocol": m["rproto"],
        "rtt_ms": float(m["rtt"]) if m["rtt"] else None,
    }


#: (pattern, handler). Handlers return (kind, data); the order only matters for speed.
PATTERNS: list[tuple[re.Pattern[str], Handler]] = [
    (
        re.compile(
            r"New (?P<side>local|remote) ice candidate discovered\. Id: \S+\. "
            rf"Ip: (?P<address>{ADDRESS}|\S+):(?P<port>\d+)\. Type: "
            rf"{TYPED}"
        ),
        _candidate_sdk,
    ),
    (
        re.compile(
            r"New (?P<side>local|remote) candidate \w+: "
            rf"{TYPED} (?P<address>\S+):(?P<port>\d+)\s*$"
        ),
        _candidate_sdk,
    ),
    (
        re.compile(r"New remote peer reflexive candidate found"),
        lambda m: ("candidate", {"side": "remote", "type": "prflx"}),
    ),
    (
        re.compile(r"Ice agent state changed from (?P<a>\w+) to (?P<b>\w+)\."),
        lambda m: ("agent_state", {"from": m["a"], "to": m["b"]}),
    ),
    (
        re.compile(
            r"Ice candidate pair (?P<id>\S+) is connected\. Round trip time: (?P<rtt>\d+)\s*ms"
        ),
        lambda m: ("pair", {"state": "succeeded", "id": m["id"], "rtt_ms": float(m["rtt"])}),
    ),
    (
        re.compile(r"mark candidate pair (?P<id>\S+) as failed"),
        lambda m: ("pair", {"state": "failed", "id": m["id"]}),
    ),
    (
        re.compile(
            r"Selected pair (?P<id>\S+), local candidate type: (?P<type>\w+)\. "
            r"Round trip time (?P<rtt>\d+) ms"
        ),
        lambda m: ("selected", {"local": m["type"], "rtt_ms": float(m["rtt"])}),
    ),
    (
        re.compile(
            r"(?P<side>Local|Remote) Candidate (?P<field>IP Address|type|port|transport protocol|"
            r"relay protocol|Ice server source): (?P<value>.*\S)"
        ),
        lambda m: ("selected_detail", {"side": m["side"].lower(), m["field"]: m["value"]}),
    ),
    (
        re.compile(
            r"Received STUN error response\. Error type: (?P<mtype>0x[0-9a-fA-F]+), "
            r"Error Code: (?P<code>\d{3})\.(?: attribute len \d+,)? Error detail: (?P<phrase>.*)$"
        ),
        _turn_error,
    ),
    (
        re.compile(r"Turn connection state changed from (?P<a>\w+) to (?P<b>\w+)"),
        lambda m: ("turn_state", {"from": m["a"], "to": m["b"]}),
    ),
    (
        re.compile(r"TURN Allocation succeeded"),
        lambda m: ("turn_state", {"from": "TURN_STATE_ALLOCATION", "to": "allocated"}),
    ),
    (
        re.compile(r"create permission succeeded for peer (?P<peer>\S+)"),
        lambda m: ("turn_state", {"from": "permission", "to": "granted", "peer": m["peer"]}),
    ),
    (
        re.compile(r"connect\(\) failed with errno (?P<error>.+?)\s*$"),
        lambda m: ("socket_error", {"reason": m["error"]}),
    ),
    (
        re.compile(r"Candidate gathering completed"),
        lambda m: ("gathering_done", {}),
    ),
    (
        re.compile(r"Nominating candidate pair"),
        lambda m: ("role", {"role": "viewer", "how": "only the controlling agent nominates"}),
    ),
    (
        re.compile(r"received candidate with USE_CANDIDATE flag"),
        lambda m: (
            "role",
            {"role": "master", "how": "the controlled agent receives USE_CANDIDATE"},
        ),
    ),
    (
        re.compile(r"\[KVS (?P<role>Master|Viewer)|ROLE_TYPE_(?P<role2>MASTER|VIEWER)"),
        lambda m: ("role", {"role": (m["role"] or m["role2"]).lower(), "how": "the sample says"}),
    ),
    # the lab's own summary (lab/report/result.py)
    (
        re.compile(r"gathering error: (?P<url>\S+?): (?P<reason>.+)$"),
        _gathering_error,
    ),
    (
        re.compile(r"skipped: (?P<url>\S+?): (?P<reason>.+)$"),
        lambda m: ("skipped_server", {"url": m["url"], "reason": m["reason"].strip()}),
    ),
    (
        re.compile(
            r"selected \((?P<role>viewer|master)\): (?P<ltype>\w+) "
            r"\S+?(?:/(?P<lproto>udp|tcp|tls))? "
            r"-> (?P<rtype>\w+) \S+?(?:/(?P<rproto>udp|tcp|tls))?(?:, rtt (?P<rtt>[\d.]+) ms)?$"
        ),
        _selected_lab,
    ),
    (
        re.compile(r"^\s*outcome: (?P<outcome>connected|failed)"),
        lambda m: ("outcome", {"outcome": m["outcome"]}),
    ),
]
#: The lab's candidate tables: "│ srflx │ 198.51.100.2 │ 57770 │ udp │ stun:... │" or plain rows.
TABLE_ROW = re.compile(
    rf"^\s*[│|]?\s*{TYPED}\s*[│|]?\s+(?P<address>{ADDRESS}|\S+)\s*[│|]?\s+"
    r"(?P<port>\d+)\s*[│|]?\s*(?P<relay>udp|tcp|tls)?\s*[│|]?\s*"
    r"(?P<server>(?:stuns?|turns?):\S+)?\s*[│|]?\s*$"
)
#: A row of the lab's pair grid: the viewer's local candidate, then one cell per remote.
GRID_ROW = re.compile(rf"^\s*[│|]?\s*{TYPED} (?P<address>\S+):(?P<port>\d+)")
SECTION = re.compile(
    r"^\s*(?P<role>viewer|master)(?: \(.*\) local candidates|: what the KVS C SDK would log)"
)
#: Findings whose time stamps give the timings (gathering, checks).
TIMED = ("candidate", "gathering_done", "agent_state", "selected")
EXPECTATION = re.compile(r"^\s*(ok|FAIL)\s{1,3}\S")
STATUS_LINE = re.compile(r"KVS C SDK status: (?P<code>0x[0-9a-fA-F]{8})")
#: The SDK's file and console logger start lines with the local time.
TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)")


def _seconds(line: str) -> float | None:
    """The line's timestamp in seconds (for differences only), None without one."""
    m = TIMESTAMP.search(line)
    if not m:
        return None
    try:
        return datetime.fromisoformat(f"{m[1]}T{m[2]}").timestamp()
    except ValueError:
        return None


def _match(line: str) -> tuple[str, dict[str, Any]] | None:
    for pattern, handler in PATTERNS:
        m = pattern.search(line)
        if m:
            return handler(m)
    return None


def _statuses(number: int, line: str, role: str | None) -> Iterator[Finding]:
    for code in status_codes(line):
        yield Finding(
            "status", number, line.strip(), role, {"code": code, "name": status_name(code)}
        )


def _grid_errors(number: int, line: str) -> Iterator[Finding]:
    """`fail 403` cells of the lab's pair grid: the viewer's checks the TURN server refused."""
    row = GRID_ROW.match(line)
    if not row:
        return
    for code in re.findall(r"fail (\d{3})\b", line):
        yield Finding(
            "turn_error",
            number,
            line.strip(),
            "viewer",
            {"code": int(code), "phrase": turn_phrase(int(code)), "local": row["type"]},
        )


def _joined(lines: list[str], index: int) -> tuple[str, bool]:
    """The line, or the line and the next one when only together they match a pattern."""
    line = lines[index]
    if _match(line) or index + 1 >= len(lines) or _match(lines[index + 1]):
        return line, False
    for glue in (" ", ""):
        candidate = line.rstrip() + glue + lines[index + 1].strip()
        if _match(candidate):
            return candidate, True
    return line, False


def read_kvs_log(text: str) -> list[Finding]:
    """Findings from a C SDK log or the lab's output; an empty list if none matched."""
    lines = text.splitlines()
    findings: list[Finding] = []
    role: str | None = None
    in_grid = False
    skip_next = False
    for index, raw in enumerate(lines):
        number = index + 1
        if skip_next:
            skip_next = False
            continue
        section = SECTION.match(raw)
        if section:
            role = section["role"]
            in_grid = False
            continue
        if "viewer's checks" in raw:
            in_grid = True
            continue
        if EXPECTATION.match(raw):
            continue
        status = STATUS_LINE.search(raw)
        if status:
            findings.extend(_statuses(number, raw, None))
            continue
        if in_grid:
            findings.extend(_grid_errors(number, raw))
            continue
        table = TABLE_ROW.match(raw)
        if table and role in ROLES:
            findings.append(_table_candidate(number, raw, role, table))
            continue
        line, skip_next = _joined(lines, index)
        matched = _match(line)
        if matched:
            kind, data = matched
            owner = data.pop("role", None) if kind in ("role", "selected") else None
            if kind == "role":
                findings.append(Finding(kind, number, line.strip(), owner, {**data, "role": owner}))
                continue
            # the lab's outcome line is the run's, not the last section's peer's
            where = None if kind == "outcome" else owner or role
            at = _seconds(line)
            if at is not None and kind in TIMED:
                data["at_s"] = at
            findings.append(Finding(kind, number, line.strip(), where, data))
        findings.extend(_statuses(number, line, role))
    return findings


def _table_candidate(number: int, raw: str, role: str, m: re.Match[str]) -> Finding:
    return Finding(
        "candidate",
        number,
        raw.strip(),
        role,
        {
            "side": "local",
            "type": m["type"],
            "address": m["address"],
            "port": int(m["port"]),
            "relay_protocol": m["relay"],
            "server": m["server"],
        },
    )
