"""The pure parts of fast sweeps (lab/sweeps/workers.py): which cells share a network, how they are
chunked, what the servers still hold, the reload script, and falling back to a fresh run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab.network.reconfigure import node_ruleset, reload_script
from lab.servers.idle import live_turn_sessions, signaling_leftovers
from lab.sweeps.matrix import default_jobs
from lab.sweeps.matrix_cells import GROUPS, NAT_ROWS
from lab.sweeps.workers import (
    MIN_CHUNK,
    Options,
    ReusedSweep,
    WorkerProcess,
    not_reusable,
    plan_chunks,
    topology_key,
)


def combos(rows: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(v, m) for v in rows for m in rows]


def test_cells_whose_rows_differ_only_in_their_nats_share_a_topology() -> None:
    assert topology_key("full-cone", "symmetric") == topology_key("symmetric", "restricted-cone")
    assert topology_key("double-cone", "open") == topology_key("symmetric-then-cone", "open")
    # An open side has a public address, a NAT side a LAN: another network.
    assert topology_key("open", "symmetric") != topology_key("full-cone", "symmetric")
    assert topology_key("double-cone", "open") != topology_key("open", "double-cone")
    assert topology_key("udp-blocked", "open") == topology_key("tcp-web-only", "open")
    assert topology_key("udp-blocked", "open") != topology_key("full-cone", "open")


def test_only_proxy_rows_start_servers_of_their_own_and_run_fresh() -> None:
    assert not_reusable("symmetric", "tcp-web-only") is None
    assert "https-proxy" in (not_reusable("open", "https-proxy") or "")
    assert "viewer" in (not_reusable("socks5-proxy", "open") or "")


@pytest.mark.parametrize("rows", ["nats", "all"])
@pytest.mark.parametrize("jobs", [1, 2, 6, 9])
def test_chunks_hold_every_cell_once_one_topology_each_largest_first(rows: str, jobs: int) -> None:
    cells = combos(GROUPS[rows])
    chunks = plan_chunks(cells, jobs)
    flat = [cell for chunk in chunks for cell in chunk]
    assert sorted(flat) == sorted(cells)
    assert all(len({topology_key(*cell) for cell in chunk}) == 1 for chunk in chunks)
    assert [len(c) for c in chunks] == sorted((len(c) for c in chunks), reverse=True)
    share = max(MIN_CHUNK, -(-len(cells) // jobs))
    assert max(len(c) for c in chunks) <= share


def test_a_big_topology_is_split_so_every_worker_has_work() -> None:
    cells = combos(NAT_ROWS)
    assert len(plan_chunks(cells, 1)) == 9  # one chunk (one build) per topology
    assert len(plan_chunks(cells, 6)) > 9  # the 16 one-NAT x one-NAT cells are split
    # A chunk is never smaller than a build is worth, unless its topology has fewer cells.
    assert len(plan_chunks(combos(("full-cone", "symmetric")), 4)) == 1


# coturn's own lines (a kept run directory of `lab run`), trimmed.
COTURN_LOG = """\
0: : session 001000000000000002: new, realm=<ice-lab>, username=<1:viewer-m>, lifetime=600
0: : session 001000000000000004: new, realm=<ice-lab>, username=<1:viewer-m>, lifetime=600, cipher=X
0: : session 000000000000000002: new, realm=<ice-lab>, username=<1:master-m>, lifetime=600
0: : session 001000000000000006: new, realm=<ice-lab>, username=<1:master-m>, lifetime=600
1: : session 001000000000000004: refreshed, realm=<ice-lab>, username=<1:v>, lifetime=0, cipher=X
1: : session 001000000000000004: closed (2nd stage), user <1:viewer-m> realm <ice-lab> origin <>
1: : session 001000000000000002: refreshed, realm=<ice-lab>, username=<1:viewer-m>, lifetime=0
1: : session 001000000000000006: delete: realm=<ice-lab>, username=<1:master-m>
1: : session 000000000000000002: refreshed, realm=<ice-lab>, username=<1:master-m>, lifetime=600
"""


def test_turn_allocations_live_until_released_deleted_or_closed() -> None:
    assert live_turn_sessions(COTURN_LOG) == {"000000000000000002"}
    assert live_turn_sessions("") == set()


def event(kind: str, role: str, **fields: Any) -> str:
    return json.dumps({"t": 1.0, "event": kind, "role": role, "client_id": None, **fields})


def test_the_signaling_service_is_idle_once_every_client_left_and_nothing_is_held() -> None:
    cell = [
        event("connect", "viewer", client_id="v1"),
        event("message", "viewer", client_id="v1", action="SDP_OFFER", held=True),
        event("connect", "master"),  # the held offer is delivered now
        event("disconnect", "viewer", client_id="v1"),
        event("disconnect", "master"),
    ]
    assert signaling_leftovers(cell) == []
    assert signaling_leftovers(cell[:-1]) == ["master connected"]
    late = [*cell, event("message", "viewer", client_id="v1", action="ICE_CANDIDATE", held=True)]
    assert signaling_leftovers(late) == ["1 message(s) held for an absent master"]
    assert signaling_leftovers(['{"t": 1, "event": "conn']) == []  # a line being written


def test_the_reload_replaces_the_tables_in_one_transaction_then_forgets_connections() -> None:
    ruleset = node_ruleset("table ip icelab_nat {\n}\n").splitlines()
    assert ruleset[0] == "flush ruleset" and ruleset[1] == "table ip icelab_nat {"
    assert node_ruleset("") == "flush ruleset\n"  # a node without rules loses the last cell's
    script = reload_script(Path("/run/x/viewer-home.cell.nft"), ["sysctl -q -w a=1"])
    lines = script.splitlines()
    assert lines[:3] == ["set -e", "nft -f /run/x/viewer-home.cell.nft", "sysctl -q -w a=1"]
    assert "conntrack -F" in lines[-1]
    assert "conntrack" not in reload_script(Path("/x.nft"), [], flush=False)


class FakeWorker:
    def __init__(self, entry: dict[str, Any]) -> None:
        self.entry = entry
        self.cells: list[tuple[str, str]] = []

    def run(self, viewer: str, master: str) -> dict[str, Any]:
        self.cells.append((viewer, master))
        return {"viewer": viewer, "master": master, **self.entry}


def sweep_with(fresh_calls: list[tuple[str, str]]) -> ReusedSweep:
    def fresh(viewer: str, master: str) -> dict[str, Any]:
        fresh_calls.append((viewer, master))
        return {"viewer": viewer, "master": master, "result": {"outcome": "connected"}}

    return ReusedSweep(Options(), 1, fresh, lambda: None, lambda entry: None)


def test_a_reused_cell_is_the_workers_and_a_failed_preparation_runs_fresh_saying_why() -> None:
    calls: list[tuple[str, str]] = []
    sweep = sweep_with(calls)
    reused = FakeWorker({"result": {"outcome": "connected"}, "reused": True})
    entry = sweep._cell(reused, "open", "symmetric")  # type: ignore[arg-type]
    assert entry["reused"] and calls == []
    failing = FakeWorker({"result": None, "fallback": "reloading node 'viewer-home' failed"})
    entry = sweep._cell(failing, "open", "symmetric")  # type: ignore[arg-type]
    assert calls == [("open", "symmetric")]
    assert entry["fresh"] == "reloading node 'viewer-home' failed"
    assert entry["result"] == {"outcome": "connected"}


def test_proxy_cells_never_reach_a_worker() -> None:
    calls: list[tuple[str, str]] = []
    worker = FakeWorker({"result": None})
    entry = sweep_with(calls)._cell(worker, "https-proxy", "open")  # type: ignore[arg-type]
    assert worker.cells == [] and calls == [("https-proxy", "open")]
    assert "proxy" in entry["fresh"]


def test_the_worker_command_carries_the_matrix_options() -> None:
    command = WorkerProcess(Options(servers="mock", viewer="chromium")).command()
    assert command[1:3] == ["-m", "lab.sweeps.cell_worker"]
    assert command[3:] == ["--servers", "mock", "--viewer", "chromium"]


def test_reused_sweeps_run_more_jobs_than_fresh_ones_and_browsers_two() -> None:
    aiortc = {"viewer": "aiortc", "master": "aiortc"}
    assert default_jobs(aiortc, fresh=False) > default_jobs(aiortc, fresh=True)
    assert default_jobs({"viewer": "chromium", "master": "aiortc"}, fresh=False) == 2


def test_only_nodes_with_a_ruleset_or_another_setup_are_reloaded_between_cells() -> None:
    from lab.network.build import NodeSetup
    from lab.network.reconfigure import unchanged_and_stateless

    host = NodeSetup(commands=["ip addr add 10.0.0.2/24 dev eth0"])
    nat = NodeSetup(ruleset="table ip nat {}", after_ruleset=["sysctl -w x=1"])
    assert unchanged_and_stateless(host, NodeSetup(commands=list(host.commands)))
    # A ruleset holds state (tracked connections, NAT maps) even when it is the same.
    assert not unchanged_and_stateless(nat, NodeSetup(**vars(nat)))
    assert not unchanged_and_stateless(
        host, NodeSetup(commands=["ip addr add 10.0.0.3/24 dev eth0"])
    )
    assert not unchanged_and_stateless(NodeSetup(), nat)
