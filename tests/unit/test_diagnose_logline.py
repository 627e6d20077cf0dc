"""The C SDK's line format in every form a customer pastes it (lab diagnose's logline)."""

from __future__ import annotations

import pytest

from lab.report.diagnose.logline import LEVELS, parse, parse_lines
from lab.report.diagnose.read_kvs import read_kvs_log

MESSAGE = "socket connection check failed with errno Operation already in progress"
CHECK = f"socketConnectionIsConnected(): {MESSAGE}"


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("time", ["19:48:16", "19:48:16.218", "19:48:16.218407"])
def test_every_level_with_and_without_fractions_of_a_second(level, time):
    line = parse(7, f"2020-03-06 {time} {level:<7} socketConnectionIsConnected(): {MESSAGE}")
    assert (line.level, line.function, line.message, line.form) == (
        level,
        "socketConnectionIsConnected",
        MESSAGE,
        "sdk",
    )
    assert line.seconds is not None and line.number == 7


@pytest.mark.parametrize(
    ("text", "level", "form"),
    [
        # an application's logger before the SDK's own line
        (
            f"[07-06  22:22:25 ]2022-07-06 22:22:25 WARN    {CHECK}",
            "WARN",
            "sdk",
        ),
        (f"> 2022-03-11 10:22:05 DEBUG   socketConnectionIsConnected(): {MESSAGE}", "DEBUG", "sdk"),
        (
            f"Dec  6 10:00:01 cam kvs[812]: 2026-12-06 10:00:01.5 ERROR   {CHECK}",
            "ERROR",
            "sdk",
        ),
        # the thread id build option
        (
            f"2020-03-07 07:20:43 WARN    (thread-0x700002917000) {CHECK}",
            "WARN",
            "sdk",
        ),
        # the level in the application's prefix, the SDK's date after it
        (
            f"[debug] 2022-03-25 20:06:12.253084 kvs: socketConnectionIsConnected(): {MESSAGE}",
            "DEBUG",
            "prefixed",
        ),
        (f"W/KVS (1234): socketConnectionIsConnected(): {MESSAGE}", None, "prefixed"),
        (f"[2020-10-17 12:06:12] [KVS]socketConnectionIsConnected(): {MESSAGE}", None, "prefixed"),
        # an embedded port's printer
        (f"7:38.759 KVS_WRN socketConnectionIsConnected: {MESSAGE}", "WARN", "embedded"),
    ],
)
def test_prefixed_and_embedded_forms(text, level, form):
    line = parse(1, text)
    assert (line.level, line.function, line.message, line.form) == (
        level,
        "socketConnectionIsConnected",
        MESSAGE,
        form,
    )
    (finding,) = [f for f in read_kvs_log(text) if f.kind == "socket_check"]
    assert finding.data["reason"] == "Operation already in progress"


def test_a_line_wrapped_after_the_function_is_joined():
    lines = parse_lines(
        "2020-03-07 07:20:43 WARN    (thread-0x7000) turnConnectionStepState():\n"
        "TurnConnection in TURN_STATE_FAILED due to 0x5a000020\n"
        "an application's line\n"
    )
    assert [(line.number, line.function, line.message) for line in lines] == [
        (1, "turnConnectionStepState", "TurnConnection in TURN_STATE_FAILED due to 0x5a000020"),
        (3, None, "an application's line"),
    ]
    found = read_kvs_log("\n".join(line.text for line in lines))
    assert {f.kind for f in found} >= {"turn_failed", "status"}


def test_a_line_not_of_the_sdk_is_no_sdk_line():
    line = parse(1, "192.168.43.53:5353 : question PTR _raop._tcp.local.")
    assert not line.is_sdk and line.function is None and line.level is None
