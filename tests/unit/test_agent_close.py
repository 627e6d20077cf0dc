"""A closed ICE agent still reports what it found: on a lossy link the master may close
the call (and so the viewer's agent) before the viewer has written its observations."""

from __future__ import annotations

import asyncio

from lab.peers.ice_agent import LabConnection
from lab.peers.ice_servers import plan_servers


def test_local_candidates_and_selection_survive_close() -> None:
    async def scenario() -> tuple[int, int, bool]:
        connection = LabConnection(
            plan=plan_servers([], "stun-turn"),
            gathering_timeout_s=0.5,
            ssl_context=None,
            ice_controlling=True,
        )
        await connection.gather_candidates()
        before = len(connection.local_candidates)
        await connection.close()
        return before, len(connection.local_candidates), connection.selected_pair() is None

    before, after, nothing_selected = asyncio.run(scenario())
    assert before > 0
    assert after == before
    assert nothing_selected


def test_the_controlled_agent_keeps_the_highest_priority_pair_the_other_nominated() -> None:
    """Firefox's nICEr nominates several pairs; the selected one is the best of them."""
    from aioice.candidate import Candidate
    from aioice.ice import CandidatePair

    def candidate(kind: str, priority: int, port: int) -> Candidate:
        return Candidate("f", 1, "udp", priority, "198.51.100.2", port, kind)

    async def scenario() -> tuple[CandidatePair, CandidatePair]:
        connection = LabConnection(
            plan=plan_servers([], "stun-turn"),
            gathering_timeout_s=0.5,
            ssl_context=None,
            ice_controlling=False,
        )
        await connection.gather_candidates()
        local = connection._protocols[0]
        best, worse = (
            CandidatePair(local, candidate("host", 2130706431, 1000)),
            CandidatePair(local, candidate("relay", 16777215, 2000)),
        )
        for pair in (best, worse):  # nominated and answered in this order
            connection._check_list.append(pair)
            pair.nominated = True
            pair.state = CandidatePair.State.SUCCEEDED
            connection.check_complete(pair)
        selected = connection.selected_pair()
        await connection.close()
        return selected, best

    selected, best = asyncio.run(scenario())
    assert selected is best
