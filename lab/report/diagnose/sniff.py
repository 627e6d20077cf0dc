"""Which reader an artifact needs, and a clear error for what none can read."""

from __future__ import annotations

import json
from pathlib import Path

from lab.core.errors import LabInputError
from lab.report.diagnose.findings import Finding
from lab.report.diagnose.read_js import looks_like_js, read_js_log
from lab.report.diagnose.read_json import (
    is_internals_dump,
    is_peer_report,
    read_internals,
    read_peer_report,
)
from lab.report.diagnose.read_kvs import read_kvs_log

EXPECTED = (
    "expected a KVS C SDK log (any level and logger prefix, an excerpt will do), the output of "
    "`lab run --log kvs`, the JS SDK sample's browser console log, a chrome://webrtc-internals "
    "dump (JSON) or the lab's Chromium peer report"
)
FORMATS = {
    "kvs-log": "KVS C SDK log / lab run --log kvs output",
    "js-console": "JS SDK sample console log",
    "webrtc-internals": "chrome://webrtc-internals dump",
    "chromium-report": "the lab's Chromium peer report",
}


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LabInputError(f"{path}: cannot read it ({exc.strerror})") from None
    if not data.strip():
        raise LabInputError(f"{path}: the file is empty; {EXPECTED}")
    if b"\0" in data[:65536]:
        raise LabInputError(f"{path}: binary data, not a log; {EXPECTED}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        if sum(not (c.isprintable() or c.isspace()) for c in text[:4096]) > 40:
            raise LabInputError(f"{path}: binary data, not a log; {EXPECTED}") from None
        return text


def read_artifact(path: Path) -> tuple[str, list[Finding]]:
    """The artifact's format and its findings; LabInputError if it is not one we read."""
    text = _text(path)
    fmt, findings = _read(path, text)
    if not findings:  # not one line of a known format (a line no message explains still counts)
        raise LabInputError(f"{path}: found nothing lab diagnose understands; {EXPECTED}")
    return fmt, findings


def _read(path: Path, text: str) -> tuple[str, list[Finding]]:
    if text.lstrip().startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            # "[app] ..." or a JSON-per-line log is text; a cut-off dump is an error
            fmt, findings = _read_text(text)
            if findings:
                return fmt, findings
            raise LabInputError(
                f"{path}: line {exc.lineno}: invalid JSON ({exc.msg}); {EXPECTED}"
            ) from None
        if is_internals_dump(doc):
            return "webrtc-internals", read_internals(doc, text)
        if is_peer_report(doc):
            role = (
                path.name.split(".")[0] if path.name.split(".")[0] in ("viewer", "master") else None
            )
            return "chromium-report", read_peer_report(doc, text, role)
        raise LabInputError(
            f"{path}: JSON without PeerConnections (webrtc-internals) or stats/ice_states "
            f"(Chromium peer report); {EXPECTED}"
        )
    return _read_text(text)


def _read_text(text: str) -> tuple[str, list[Finding]]:
    if looks_like_js(text):
        return "js-console", read_js_log(text)
    return "kvs-log", read_kvs_log(text)
