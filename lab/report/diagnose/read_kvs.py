"""The KVS C SDK's log (any level, any excerpt, any wrapping logger) and `lab run --log kvs`.

Each line is parsed for the SDK's format (`logline`: date, level, function, message, in
whatever prefix or embedded form it came), then read against the SDK's messages
(`knowledge/messages.yaml`); the lab's own lines for the same events (its summary, the
candidate tables and the pair grid of `lab run --log kvs`) have their patterns here. A line
of the SDK's format that no message explains becomes an `other` finding classified by its
function's component, so nothing the SDK said is dropped; status codes are read from every
line. A line a terminal wrapped is joined with the next one when only together they match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from lab.core.documents import JsonObject
from lab.report.diagnose import knowledge
from lab.report.diagnose.findings import (
    ADDRESS,
    ROLES,
    Finding,
    status_codes,
    status_name,
    turn_phrase,
)
from lab.report.diagnose.logline import LogLine, parse

TYPED = r"(?P<type>host|srflx|prflx|relay)"
Handler = Callable[[re.Match[str]], tuple[str, JsonObject] | None]


def _candidate_lab(m: re.Match[str]) -> tuple[str, JsonObject]:
    return "candidate", {
        "side": m["side"].lower(),
        "type": m["type"],
        "address": m["address"],
        "port": int(m["port"]),
    }


def _gathering_error(m: re.Match[str]) -> tuple[str, JsonObject]:
    reason = m["reason"].strip()
    data: JsonObject = {"url": m["url"], "reason": reason}
    code = re.search(r"TURN error (\d{3})", reason)
    if code:
        data["code"] = int(code[1])
    return "gathering_error", data


def _selected_lab(m: re.Match[str]) -> tuple[str, JsonObject]:
    return "selected", {
        "role": m["role"],
        "local": m["ltype"],
        "remote": m["rtype"],
        "relay_protocol": m["lproto"],
        "remote_relay_protocol": m["rproto"],
        "rtt_ms": float(m["rtt"]) if m["rtt"] else None,
    }


#: The lab's own lines (lab/report/kvs_sdk.py, the run summary) and the samples' role lines.
LAB_PATTERNS: list[tuple[re.Pattern[str], Handler]] = [
    (
        re.compile(
            r"New (?P<side>local|remote) candidate \w+: "
            rf"{TYPED} (?P<address>\S+):(?P<port>\d+)\s*$"
        ),
        _candidate_lab,
    ),
    (
        re.compile(r"\[KVS (?P<role>Master|Viewer)|ROLE_TYPE_(?P<role2>MASTER|VIEWER)"),
        lambda m: ("role", {"role": (m["role"] or m["role2"]).lower(), "how": "the sample says"}),
    ),
    (re.compile(r"gathering error: (?P<url>\S+?): (?P<reason>.+)$"), _gathering_error),
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
#: Findings whose time stamps give the timings and sequences (gathering, checks, TURN).
TIMED = (
    "candidate",
    "gathering_done",
    "agent_state",
    "selected",
    "turn_state",
    "turn_failed",
    "socket_check",
    "turn_relay",
    "turn_error",
)
EXPECTATION = re.compile(r"^\s*(ok|FAIL)\s{1,3}\S")
STATUS_LINE = re.compile(r"KVS C SDK status: (?P<code>0x[0-9a-fA-F]{8})")


def _normalise(kind: str, data: JsonObject) -> JsonObject:
    """The SDK message's data in the shape the facts read (as the lab's own lines give it)."""
    if kind == "candidate":
        data["side"] = data.get("side", "local").lower()
        if data.get("protocol"):
            data["protocol"] = data["protocol"].lower()
    elif kind == "selected_detail":
        return {"side": data["side"].lower(), data["field"]: data["value"]}
    elif kind == "turn_error":
        code = int(data["code"])
        phrase = (data.get("phrase") or "").strip().rstrip(".") or turn_phrase(code)
        return {"code": code, "phrase": phrase, "message_type": data.get("mtype")}
    elif kind == "pair":
        data.setdefault("state", "succeeded")
    elif kind == "role":
        data["how"] = "the SDK's own line"
    return data


def _sdk_match(text: str) -> tuple[str, JsonObject, knowledge.Message] | None:
    for message in knowledge.messages():
        data = message.read(text)
        if data is not None:
            return message.kind, _normalise(message.kind, data), message
    return None


def _lab_match(text: str) -> tuple[str, JsonObject] | None:
    for pattern, handler in LAB_PATTERNS:
        m = pattern.search(text)
        if m:
            return handler(m)
    return None


def _match(text: str) -> tuple[str, JsonObject, knowledge.Message | None] | None:
    sdk = _sdk_match(text)
    if sdk:
        return sdk
    lab = _lab_match(text)
    return (*lab, None) if lab else None


def _statuses(line: LogLine, role: str | None) -> Iterator[Finding]:
    for code in status_codes(line.text):
        data = {"code": code, "name": status_name(code)}
        if line.function:
            data["function"] = line.function
        yield Finding("status", line.number, line.text.strip(), role, data)


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
    """The line, or the line and the next one when only together they are read: a wrap after
    `function():` (the next line is its message) or one in the middle of a message."""
    line = lines[index]
    if index + 1 >= len(lines):
        return line, False
    parsed, following = parse(index + 1, line), parse(index + 2, lines[index + 1])
    if parsed.function and not parsed.message.strip() and not following.is_sdk:
        return line.rstrip() + " " + lines[index + 1].strip(), True
    if _match(line) or _match(lines[index + 1]):
        return line, False
    for glue in (" ", ""):
        candidate = line.rstrip() + glue + lines[index + 1].strip()
        if _match(candidate):
            return candidate, True
    return line, False


def read_kvs_log(text: str) -> list[Finding]:
    """Findings from a C SDK log or the lab's output; an empty list if no line was read."""
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
            findings.extend(_statuses(parse(number, raw), None))
            continue
        if in_grid:
            findings.extend(_grid_errors(number, raw))
            continue
        table = TABLE_ROW.match(raw)
        if table and role in ROLES:
            findings.append(_table_candidate(number, raw, role, table))
            continue
        text, skip_next = _joined(lines, index)
        line = parse(number, text)
        findings.extend(_line_findings(line, role))
    return findings


def _line_findings(line: LogLine, role: str | None) -> list[Finding]:
    """What one (joined) line says: its message, else its component, and its status codes."""
    found: list[Finding] = []
    text = line.text.strip()
    matched = _match(line.text)
    if matched:
        kind, data, _message = matched
        owner = data.pop("role", None) if kind in ("role", "selected") else None
        if kind == "role":
            found.append(Finding(kind, line.number, text, owner, {**data, "role": owner}))
            return found
        if kind != "status":  # the status scan below reads the code with its function
            # the lab's outcome line is the run's, not the last section's peer's
            where = None if kind == "outcome" else owner or role
            if line.seconds is not None and kind in TIMED:
                data["at_s"] = line.seconds
            found.append(Finding(kind, line.number, text, where, data))
    elif line.function:
        found.append(
            Finding(
                "other",
                line.number,
                text,
                role,
                {
                    "component": knowledge.component_of(line.function),
                    "function": line.function,
                    "level": line.level,
                },
            )
        )
    found.extend(_statuses(line, role))
    return found


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
