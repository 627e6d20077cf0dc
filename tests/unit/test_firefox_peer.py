"""The Firefox peer's own logic without a browser: a start the lab stops is cancelled
(and reports), and URLs in Firefox's console lose their presigned query."""

from __future__ import annotations

import asyncio

from lab.peers.firefox_peer import until_stopped, without_query


def test_a_stop_during_start_up_cancels_the_start() -> None:
    async def main() -> tuple[object, list[str]]:
        seen: list[str] = []

        async def slow_start() -> str:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                seen.append("cancelled")  # launch kills Firefox here
                raise
            return "browser"

        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, stop.set)
        return await until_stopped(slow_start(), stop), seen  # type: ignore[arg-type]

    assert asyncio.run(main()) == (None, ["cancelled"])


def test_a_start_that_finishes_first_gives_the_browser() -> None:
    async def main() -> object:
        async def quick_start() -> str:
            return "browser"

        return await until_stopped(quick_start(), asyncio.Event())  # type: ignore[arg-type]

    assert asyncio.run(main()) == "browser"


def test_console_urls_lose_their_presigned_query() -> None:
    text = (
        "Firefox can’t establish a connection to the server at "
        "wss://m-1.kinesisvideo.us-west-2.amazonaws.com/?X-Amz-Credential=AKIA%2F1"
        "&X-Amz-Signature=84be."
    )
    assert without_query(text) == (
        "Firefox can’t establish a connection to the server at "
        "wss://m-1.kinesisvideo.us-west-2.amazonaws.com/?…"
    )
    assert without_query("ICE failed, add a TURN server") == "ICE failed, add a TURN server"


def test_the_other_peers_wait_grows_by_firefoxs_start_up() -> None:
    from lab.peers.agents import START_UP_S
    from lab.peers.config import PeerConfig
    from lab.peers.launch import introduced, start_up_s

    def config(role: str, agent: str) -> PeerConfig:
        timing = {"signaling_timeout_s": 8.0, "check_timeout_s": 4.0}
        return PeerConfig(
            role, role, "stun-turn", "wss://s", "v", "ca.pem", [], timing, "r", agent=agent
        )

    configs = {"viewer": config("viewer", "firefox"), "master": config("master", "aiortc")}
    grown = introduced(configs)
    assert grown["master"].timing["signaling_timeout_s"] == 8.0 + START_UP_S["firefox"]
    assert grown["viewer"].timing["signaling_timeout_s"] == 8.0  # an aiortc master is quick
    assert configs["master"].timing["signaling_timeout_s"] == 8.0  # the input is not changed
    assert start_up_s(configs) == START_UP_S["firefox"]
    plain = {"viewer": config("viewer", "chromium"), "master": config("master", "aiortc")}
    told = introduced(plain)
    assert [told[r].timing for r in plain] == [plain[r].timing for r in plain]
    assert (told["viewer"].other_agent, told["master"].other_agent) == ("aiortc", "chromium")
    assert start_up_s(plain) == 0.0


def test_a_browser_call_without_consent_records_knows_nothing_of_consent() -> None:
    from lab.observations.call_timeline import consent_summary

    unknown = {"checks": None, "unanswered_in_a_row_max": None, "expired": None}
    assert consent_summary([], browser=True) == unknown
    assert consent_summary([], browser=False)["unanswered_in_a_row_max"] == 0
