"""A closed ICE agent still reports what it found: on a lossy link the master may close
the call (and so the viewer's agent) before the viewer has written its observations."""

from __future__ import annotations

import asyncio

from lab.peers.ice_agent import LabConnection
from lab.peers.ice_servers import plan_servers


async def gathered_agent(controlling: bool) -> LabConnection:
    """An agent with no STUN or TURN server, its host candidates gathered."""
    connection = LabConnection(
        plan=plan_servers([], "stun-turn"),
        gathering_timeout_s=0.5,
        ssl_context=None,
        ice_controlling=controlling,
    )
    await connection.gather_candidates()
    return connection


def test_local_candidates_and_selection_survive_close() -> None:
    async def scenario() -> tuple[int, int, bool]:
        connection = await gathered_agent(controlling=True)
        before = len(connection.local_candidates)
        await connection.close()
        return before, len(connection.local_candidates), connection.selected_pair() is None

    before, after, nothing_selected = asyncio.run(scenario())
    assert before > 0
    assert after == before
    assert nothing_selected


def test_the_controlled_agent_keeps_the_highest_priority_pair_the_other_nominated() -> None:
    """Firefox's nICEr nominates several pairs at once; the selected one is the best of
    them. A later nomination moves the selected pair."""
    from aioice.candidate import Candidate
    from aioice.ice import CandidatePair

    def candidate(kind: str, priority: int, port: int) -> Candidate:
        return Candidate("f", 1, "udp", priority, "198.51.100.2", port, kind)

    async def scenario(later_s: float) -> tuple[bool, bool]:
        connection = await gathered_agent(controlling=False)
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
            if connection.first_nominated_at is not None:
                connection.first_nominated_at -= later_s
        selected = connection.selected_pair()
        await connection.close()
        return selected is best, selected is worse

    # One round of aggressive nomination: the best pair of the round.
    assert asyncio.run(scenario(later_s=0.1)) == (True, False)
    # A nomination seconds later is a renomination (a browser moving the call): followed.
    assert asyncio.run(scenario(later_s=5.0)) == (False, True)
