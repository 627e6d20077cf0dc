"""One line of a C SDK log, whatever wraps it: its level, function, message and time.

The SDK's logger prints `DATE TIME[.micro] LEVEL   function(): message` (the PIC's
addLogMetadata with the DLOG macros' `"%s(): " fmt`), optionally with `(thread-0x...)`
after the level. Applications route the same lines through their own loggers, so a line
may carry a prefix (`[debug] <time> kvs: function(): ...`, `[<time>] [KVS]function(): ...`,
`> ` from a quote, a syslog header), embedded ports print `KVS_DBG function: message`, and
a terminal or a paste may wrap a line after `function():`. Each form is recognised here;
what a message means is the knowledge tables' business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

LEVELS = ("VERBOSE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "PROFILE")
#: How other loggers spell the SDK's levels (application prefixes, embedded ports).
LEVEL_ALIASES = {
    "VER": "VERBOSE",
    "TRACE": "VERBOSE",
    "DBG": "DEBUG",
    "INF": "INFO",
    "WRN": "WARN",
    "WARNING": "WARN",
    "ERR": "ERROR",
    "FTL": "FATAL",
    "PRF": "PROFILE",
    "PROF": "PROFILE",
}
#: The SDK's own format: date, time (milliseconds or microseconds optional), level, thread id.
SDK_LINE = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)\s+"
    r"(?P<level>VERBOSE|DEBUG|INFO|WARN|ERROR|FATAL|PROFILE)\b\s*"
    r"(?:\(thread-0x[0-9a-fA-F]+\)\s*)?"
    r"(?:(?P<function>[A-Za-z_]\w*)\(\):\s?)?(?P<message>.*)$"
)
#: Any `function(): message`, the DLOG macros' signature, wherever a logger put it.
FUNCTION_CALL = re.compile(r"(?<![\w.])(?P<function>[A-Za-z_]\w*)\(\):\s?(?P<message>.*)$")
#: Embedded ports' own printer: `KVS_DBG function: message`.
EMBEDDED = re.compile(
    r"\bKVS_(?P<level>VER|DBG|INF|WRN|WARN|ERR|FTL|PRF|PROF)\s+(?P<function>[A-Za-z_]\w*):\s?"
    r"(?P<message>.*)$"
)
#: A level word an application's logger put before the SDK's message.
PREFIX_LEVEL = re.compile(
    r"(?<![A-Za-z])(?P<level>verbose|trace|debug|info|warn(?:ing)?|error|fatal|profile)(?![A-Za-z])",
    re.IGNORECASE,
)
TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)")


@dataclass(frozen=True)
class LogLine:
    """A line with the parts of the SDK's format it has (None for the parts it lacks)."""

    number: int
    text: str
    level: str | None
    function: str | None
    message: str
    seconds: float | None
    form: str | None  # "sdk", "prefixed", "embedded", or None: not the SDK's format

    @property
    def is_sdk(self) -> bool:
        """Whether the line has the SDK's format in one of its forms."""
        return self.form is not None


def level_name(word: str | None) -> str | None:
    """The SDK's name for a level however a logger spelled it."""
    if not word:
        return None
    upper = word.upper()
    return upper if upper in LEVELS else LEVEL_ALIASES.get(upper)


def seconds(text: str) -> float | None:
    """The first time stamp's seconds (for differences only), None without one."""
    m = TIMESTAMP.search(text)
    if not m:
        return None
    try:
        return datetime.fromisoformat(f"{m[1]}T{m[2].replace(',', '.')}").timestamp()
    except ValueError:
        return None


def parse(number: int, text: str) -> LogLine:
    """The line's level, function and message in whichever form it has."""
    line = text.rstrip()
    sdk = SDK_LINE.search(line)
    if sdk and (sdk["function"] or not FUNCTION_CALL.search(sdk["message"])):
        return LogLine(
            number,
            line,
            sdk["level"],
            sdk["function"],
            sdk["message"],
            seconds(line),
            "sdk",
        )
    embedded = EMBEDDED.search(line)
    if embedded:
        level = level_name(embedded["level"])
        return _found(number, line, level, embedded, "embedded")
    call = FUNCTION_CALL.search(line)
    if call:
        prefix = PREFIX_LEVEL.search(line[: call.start()])
        level = level_name(prefix["level"]) if prefix else (sdk["level"] if sdk else None)
        return _found(number, line, level, call, "prefixed")
    return LogLine(number, line, None, None, line.strip(), seconds(line), None)


def _found(number: int, line: str, level: str | None, m: re.Match[str], form: str) -> LogLine:
    return LogLine(number, line, level, m["function"], m["message"], seconds(line), form)


def parse_lines(text: str) -> list[LogLine]:
    """Every line, with a line a paste wrapped after `function():` joined to its message."""
    raw = text.splitlines()
    lines: list[LogLine] = []
    index = 0
    while index < len(raw):
        line = parse(index + 1, raw[index])
        if _wrapped(line) and index + 1 < len(raw) and not parse(index + 2, raw[index + 1]).is_sdk:
            continuation = raw[index + 1].strip()
            joined = f"{line.text} {continuation}"
            line = LogLine(
                line.number,
                joined,
                line.level,
                line.function,
                continuation,
                line.seconds,
                line.form,
            )
            index += 1
        lines.append(line)
        index += 1
    return lines


def _wrapped(line: LogLine) -> bool:
    return line.is_sdk and line.function is not None and not line.message.strip()
