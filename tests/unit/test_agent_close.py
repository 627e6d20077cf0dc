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
