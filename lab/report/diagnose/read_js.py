"""The browser console log of the JS SDK's sample page (examples/viewer.js, master.js, app.js).

The sample logs with a role prefix (`[VIEWER] Generated ICE candidate`, `[MASTER]
Received ICE candidate`), the ICE servers it was given, the peer connection's state
(`PeerConnection state: failed`, `Connection to peer successful!`) and, at the verbose
level, each candidate's SDP line and the chosen pair. A candidate line belongs to the
local side after "Generated"/"Sending" and to the remote side after "Received".
"""

from __future__ import annotations

import re

from lab.report.diagnose.findings import ADDRESS, Finding

ROLE = re.compile(r"\[(VIEWER|MASTER)\]")
CANDIDATE = re.compile(
    r"candidate:\S+ \d+ (?P<protocol>udp|tcp|UDP|TCP) \d+ (?P<address>\S+) (?P<port>\d+) "
    r"typ (?P<type>host|srflx|prflx|relay)"
)
URL = re.compile(r"\b(?P<url>(?:stuns?|turns?):[A-Za-z0-9.\-_\[\]:]+(?:\?transport=(?:udp|tcp))?)")
STATE = re.compile(r"PeerConnection state: (?P<state>\w+)")
SUCCESS = re.compile(r"Connection to peer successful")
FAILED = re.compile(r"Connection to \S+ failed|Connection failed after \d+ seconds")
CHOSEN = re.compile(r"Chosen candidate pair")
#: The sample's signaling milestones and errors (examples/viewer.js, master.js).
SIGNALING = (
    (re.compile(r"Connected to signaling service"), "signaling_state", {"name": "Connected"}),
    (re.compile(r"Received SDP (?P<message>offer|answer)"), "signaling_event", {}),
    (re.compile(r"Signaling client error:?\s*(?P<message>.*)$"), "signaling_error", {}),
)
TYPE_FIELD = re.compile(
    r"(?:candidateType|\btype)['\"]?\s*:\s*['\"](?P<type>host|srflx|prflx|relay)['\"]"
)
RELAY_FIELD = re.compile(r"relayProtocol['\"]?\s*:\s*['\"](?P<p>udp|tcp|tls)['\"]")
LOCAL_MARKERS = ("Generated ICE candidate", "Sending ICE candidate", "ICE candidate:")
REMOTE_MARKERS = ("Received ICE candidate",)


def looks_like_js(text: str) -> bool:
    return bool(ROLE.search(text)) and "ICE" in text


def read_js_log(text: str) -> list[Finding]:
    """Findings from the sample page's console log."""
    findings: list[Finding] = []
    role: str | None = None
    side = "local"
    lines = text.splitlines()
    for index, raw in enumerate(lines):
        number, line = index + 1, raw.strip()
        marker = ROLE.search(line)
        if marker:
            role = marker[1].lower()
            if not any(f.kind == "role" for f in findings):
                findings.append(
                    Finding(
                        "role", number, line, role, {"role": role, "how": f"[{marker[1]}] prefix"}
                    )
                )
        if any(m in line for m in REMOTE_MARKERS):
            side = "remote"
        elif any(m in line for m in LOCAL_MARKERS[:2]):
            side = "local"
        findings.extend(_line_findings(number, line, role, side))
        if CHOSEN.search(line):
            findings.extend(_chosen(lines, index, role))
    return findings


def _line_findings(number: int, line: str, role: str | None, side: str) -> list[Finding]:
    found = []
    candidate = CANDIDATE.search(line)
    if candidate:
        found.append(
            Finding(
                "candidate",
                number,
                line,
                role,
                {
                    "side": side,
                    "type": candidate["type"],
                    "address": candidate["address"]
                    if re.fullmatch(ADDRESS, candidate["address"])
                    else None,
                    "port": int(candidate["port"]),
                    "protocol": candidate["protocol"].lower(),
                },
            )
        )
    if "ICE servers" in line:
        found += [
            Finding("ice_server", number, line, role, {"url": m["url"]}) for m in URL.finditer(line)
        ]
    for pattern, kind, constants in SIGNALING:
        m = pattern.search(line)
        if m:
            found.append(Finding(kind, number, line, role, {**constants, **m.groupdict()}))
    state = STATE.search(line)
    if state and state["state"] in ("connected", "failed"):
        found.append(Finding("outcome", number, line, role, {"outcome": state["state"]}))
    elif SUCCESS.search(line):
        found.append(Finding("outcome", number, line, role, {"outcome": "connected"}))
    elif FAILED.search(line):
        found.append(Finding("outcome", number, line, role, {"outcome": "failed"}))
    return found


def _chosen(lines: list[str], index: int, role: str | None) -> list[Finding]:
    """The chosen pair the sample prints: the first candidate type is the local one."""
    block = " ".join(lines[index : index + 20])
    types = [m["type"] for m in TYPE_FIELD.finditer(block)]
    if not types:
        return []
    relay = RELAY_FIELD.search(block)
    data = {"local": types[0], "remote": types[1] if len(types) > 1 else None}
    if relay:
        data["relay_protocol"] = relay["p"]
    return [Finding("selected", index + 1, lines[index].strip(), role, data)]
