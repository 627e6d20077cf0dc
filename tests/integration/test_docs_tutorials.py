"""The tutorials' shell examples run as written, and print what their pages claim.

Each tutorial page is read for its commands: the `$ ` lines of its console blocks (the lines
under one are the output the page claims) and the lines of its sh blocks. They run in order,
as root, in a scratch directory that sees the repository's `.venv` and `tests`. A claimed
line must appear in the real output once both are normalised for what differs from run to
run: port numbers, times, ids, TURN's relay transport, table widths and line wrapping."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scripts.docs.sources import REPO

pytestmark = pytest.mark.root

TUTORIALS = REPO / "docs" / "tutorials"
#: Commands a page says exit with another status than 0, by a part of the command.
EXIT_STATUS = {"--mode stun-turn": 1, "ping -c1 -W1 192.168.1.10": 1}
#: What differs between two runs of one command (applied to the page and to the output).
RUN_TO_RUN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"[\u2500-\u257f]"), " "),  # table borders: their widths follow the contents
    (re.compile(r"\buser: \S+"), "user: U"),  # ICE usernames
    (re.compile(r"\b[0-9a-f]{8,}\b"), "H"),  # candidate ids, transaction ids
    # Among relays of one priority, the first whose check is answered wins.
    (re.compile(r"/(udp|tcp|tls)\b"), "/P"),
    (re.compile(r"\bover (udp|tcp|tls)\b", re.IGNORECASE), "over P"),
    (re.compile(r"\d+"), "0"),  # ports, times, pids
    (re.compile(r"\s+"), " "),  # column padding and wrapping
]
#: A browser reaches a public peer's hidden host address through its srflx or prflx twin.
BROWSER_TWINS = (re.compile(r"\b[sp]rflx\b"), "rflx")


@dataclass
class Example:
    command: str
    claimed: list[str] = field(default_factory=list)


def examples(page: Path) -> Iterator[Example]:
    """The page's commands in order, each with the output lines the page shows for it."""
    kind, current = None, None
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            kind = None if kind else line[3:].strip()
            if current:
                yield current
            current = None
        elif kind == "console":
            if line.startswith("$ "):
                if current:
                    yield current
                current = Example(line[2:])
            elif current:
                current.claimed.append(line)
        elif kind == "sh" and line.strip() and not line.lstrip().startswith("#"):
            yield Example(line.split("  #", 1)[0].strip())


def normalise(text: str, extra: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, replacement in RUN_TO_RUN + extra:
        text = pattern.sub(replacement, text)
    return text.strip()


@dataclass
class Session:
    """A scratch directory where a page's commands run one after another."""

    directory: Path
    outputs: list[tuple[str, str]] = field(default_factory=list)

    def run(self, example: Example) -> str:
        command = self._resolve(example.command.removeprefix("sudo "))
        done = subprocess.run(
            ["bash", "-c", command.replace("sudo ", "")],
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "COLUMNS": "100"},
        )
        output = done.stdout + done.stderr
        expected = next((s for part, s in EXIT_STATUS.items() if part in command), 0)
        assert done.returncode == expected, f"{command}: exit {done.returncode}\n{output}"
        self.outputs.append((command, output))
        return output

    def _resolve(self, command: str) -> str:
        """The page's `--pair 16` is a pair number of its own run: take this run's."""
        if "--pair " not in command:
            return command
        listing = next(
            out for cmd, out in reversed(self.outputs) if "lab trace" in cmd and "--pair" not in cmd
        )
        number = re.search(r"^\s*(\d+)\s+viewer: host \S+ -> srflx", listing, re.MULTILINE)
        assert number, listing
        return re.sub(r"--pair \d+", f"--pair {number[1]}", command)


def check_claims(example: Example, output: str) -> None:
    extra = [BROWSER_TWINS] if "lab compare" in example.command else []
    seen = normalise(output, extra)
    for line in example.claimed:
        for piece in line.split("..."):
            wanted = normalise(piece, extra)
            if wanted and wanted not in ("(", ")"):
                assert wanted in seen, f"{example.command}: the page claims {line!r}\n{output}"


def run_page(name: str, tmp_path: Path, before_leaving: Callable[[Session], None] | None = None):
    for entry in (".venv", "tests"):
        (tmp_path / entry).symlink_to(REPO / entry)
    session = Session(tmp_path)
    try:
        for example in examples(TUTORIALS / name):
            check_claims(example, session.run(example))
    finally:
        if before_leaving:
            before_leaving(session)
    return session


def _down(session: Session) -> None:
    subprocess.run([str(REPO / ".venv/bin/lab"), "down"], capture_output=True, timeout=60)


def test_the_support_engineers_tutorial(tmp_path: Path) -> None:
    session = run_page("support-engineer.md", tmp_path)
    assert (tmp_path / "customer.html").stat().st_size > 10_000
    assert any("reproduced: yes" in out for _, out in session.outputs)


def test_the_developers_tutorial(tmp_path: Path) -> None:
    run_page("developer-ci.md", tmp_path)
    assert (tmp_path / "matrix.html").stat().st_size > 10_000


def test_the_teachers_lesson_plan(tmp_path: Path) -> None:
    session = run_page("teacher.md", tmp_path, before_leaving=_down)
    traces = [out for cmd, out in session.outputs if "--pair" in cmd]
    assert traces and "dropped_at: master-gw / port-restricted filter / inbound" in traces[0]


def test_the_parser_finds_each_pages_commands_and_claims() -> None:
    commands = [e.command for e in examples(TUTORIALS / "teacher.md")]
    assert commands[0] == ".venv/bin/lab show symmetric-both"
    assert "sudo .venv/bin/lab down" in commands
    claims = next(e for e in examples(TUTORIALS / "teacher.md") if "probe-nat" in e.command)
    assert any("address-and-port-dependent" in line for line in claims.claimed)


def test_a_claim_is_checked_up_to_what_differs_from_run_to_run() -> None:
    example = Example("lab trace", ["  => dropped by master-gw: port-restricted filter, ..."])
    check_claims(example, "  => dropped by master-gw: port-restricted filter, no prior outbound")
    with pytest.raises(AssertionError, match="the page claims"):
        check_claims(example, "  => dropped by viewer-gw: port-restricted filter, no prior")
    ports = Example(
        "lab run", ["selected (viewer): prflx 198.51.100.2:59211 -> relay 203.0.113.10:60718/udp"]
    )
    check_claims(ports, "selected (viewer): prflx 198.51.100.2:4122 -> relay\n203.0.113.10:1/tls")
    with pytest.raises(AssertionError):
        check_claims(
            ports, "selected (viewer): srflx 198.51.100.2:4122 -> relay 203.0.113.10:1/tls"
        )
