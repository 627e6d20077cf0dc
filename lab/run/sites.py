"""The build stage of a run: a site is a built network with its servers (and the capture,
when asked) in a run directory, where the peers then run.

`FreshSites` builds a site for each run and tears it down after it, as `lab run` does.
`ReusedSites` keeps one site up across runs whose network and servers would be built
the same way, and gives the network each run's conditions in place
(lab/network/reconfigure.py): how a `lab matrix` worker saves a build per cell. Either
way the run that follows is the same pipeline (lab/run/pipeline.py), and its result reads
only what its own run logged (`LogWindow`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lab.core.lifecycle import Stopwatch, run_directory
from lab.network.build import LabNetwork
from lab.network.reconfigure import NotReconfigurable, reconfigure
from lab.observations.capture.capture import Capture, start_capture
from lab.run.plan import Plan
from lab.servers.idle import leftovers
from lab.servers.launch import RunningServers, start_servers
from lab.servers.proxy import proxies_of

#: How long the servers may take to let go of the previous run's peers.
SERVER_IDLE_TIMEOUT_S = 3.0


class ReuseRefused(Exception):
    """The kept site cannot serve this run (the caller runs it on a fresh site)."""


class LogWindow:
    """The run directory's logs as one run wrote them: all of a fresh site's, and of a
    kept site's logs only what was written since the run began (copied to a directory of
    their own, under the same names, so every log reader works unchanged)."""

    def __init__(self, workdir: Path, offsets: dict[str, int] | None = None) -> None:
        self.workdir = workdir
        self.offsets = offsets

    @classmethod
    def from_now(cls, workdir: Path) -> LogWindow:
        return cls(workdir, {p.name: p.stat().st_size for p in workdir.glob("*.log")})

    def directory(self, tag: str) -> Path:
        """Where this run's logs are: the run directory itself, or `tag/` inside it."""
        if self.offsets is None:
            return self.workdir
        piece = self.workdir / tag
        piece.mkdir(exist_ok=True)
        for log in self.workdir.glob("*.log"):
            with open(log, "rb") as source:
                source.seek(self.offsets.get(log.name, 0))
                (piece / log.name).write_bytes(source.read())
        return piece


@dataclass
class Site:
    """A built network and its servers, where one run's peers run."""

    network: LabNetwork
    servers: RunningServers
    workdir: Path
    software: str
    logs: LogWindow
    capture: Capture | None = None
    #: Tear the network down now (a fresh site, once the peers are done); a kept site
    #: stays up for the next run.
    release: Callable[[], None] = field(default=lambda: None)


class Sites(Protocol):
    """How a run gets its site: built for it, or kept from the run before."""

    def site(self, plan: Plan, mark: Stopwatch) -> AbstractContextManager[Site]: ...


class FreshSites:
    """A new site for each run, torn down after it: what `lab run` and `lab up` do."""

    def __init__(
        self,
        keep_workdir: bool = False,
        on_directory: Callable[[Path], None] | None = None,
        on_network: NetworkHook | None = None,
    ) -> None:
        self.keep_workdir = keep_workdir
        self.on_directory = on_directory
        self.on_network = on_network

    @contextmanager
    def site(self, plan: Plan, mark: Stopwatch) -> Iterator[Site]:
        scenario = plan.scenario
        with run_directory(self.keep_workdir) as workdir, ExitStack() as built:
            if self.on_directory is not None:
                self.on_directory(workdir)
            network = built.enter_context(
                LabNetwork(scenario.topology, scenario.conditions, workdir)
            )
            if self.on_network is not None:
                self.on_network(network, workdir)
            mark("network_s")
            capture = start_capture(network, workdir) if plan.options.capture else None
            servers = start_servers(network, scenario, workdir, plan.software)
            mark("servers_s")
            yield Site(
                network, servers, workdir, plan.software, LogWindow(workdir), capture,
                release=built.close,
            )  # fmt: skip


#: Called once the network is built, before its servers start (`lab up` writes its
#: state file there, so what a crash leaves can be found).
NetworkHook = Callable[[LabNetwork, Path], None]


@dataclass
class Kept:
    key: str
    stack: ExitStack
    workdir: Path
    network: LabNetwork
    servers: RunningServers
    software: str
    #: What the site needs alive: its servers and the network's own processes.
    serving: list[subprocess.Popen[bytes]] = field(default_factory=list)
    runs: int = 0


class ReusedSites:
    """One site kept up across runs whose topology and servers are the same; each run
    gets its conditions in place and the servers' logs from its own start. Use as a
    context manager: the kept site is torn down on exit."""

    def __init__(self) -> None:
        self.kept: Kept | None = None
        self.flush = True  # tests turn it off to show what the flush of conntrack removes

    def __enter__(self) -> ReusedSites:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Tear down the kept network and servers (processes by pid, then namespaces)."""
        kept, self.kept = self.kept, None
        if kept is not None:
            kept.stack.close()

    @contextmanager
    def site(self, plan: Plan, mark: Stopwatch) -> Iterator[Site]:
        kept = self.ready_for(plan, mark)
        window = LogWindow.from_now(kept.workdir)
        capture = start_capture(kept.network, kept.workdir) if plan.options.capture else None
        try:
            yield Site(kept.network, kept.servers, kept.workdir, kept.software, window, capture)
        except BaseException:
            self.close()  # whatever state it is in, the next run starts from scratch
            raise
        kept.runs += 1
        if plan.scenario.events:  # the call's events changed the network under it
            self.close()

    def ready_for(self, plan: Plan, mark: Stopwatch) -> Kept:
        """The kept site, given the plan's conditions; built first if there is none, or
        if the one kept cannot serve the plan (another topology, servers still busy)."""
        refusal = reuse_refusal(plan)
        if refusal:
            raise ReuseRefused(refusal)
        key = site_key(plan)
        kept = self.kept
        if kept is not None and (key != kept.key or not _intact(kept) or not _idle(kept)):
            self.close()
        if self.kept is None:
            self.kept = _build(plan, key, mark)
            return self.kept
        try:
            reconfigure(self.kept.network, plan.scenario.conditions, self.flush)
        except NotReconfigurable as exc:
            self.close()
            raise ReuseRefused(str(exc)) from exc
        mark("network_s")
        mark.phases["servers_s"] = 0.0  # already up
        return self.kept


def reuse_refusal(plan: Plan) -> str | None:
    """Why no kept site can serve this plan (None: one can)."""
    scenario = plan.scenario
    if proxies_of(scenario):
        return "its proxies are servers started per run"
    if any(c.impairments for c in scenario.conditions.values()):
        return "impaired links need their delay lines built per run"
    if any(c.nat64 for c in scenario.conditions.values()):
        return "a NAT64 gateway is started with the network"
    return None


def site_key(plan: Plan) -> str:
    """Plans with the same key build the same network (less its conditions) and servers."""
    scenario = plan.scenario
    return json.dumps(
        {
            "topology": scenario.topology.resolved(),
            "software": plan.software,
            "stun_turn": repr(scenario.stun_turn),
            "signaling": scenario.signaling_host,
            "region": scenario.region,
            "dns": repr(scenario.dns),
        },
        sort_keys=True,
        default=str,
    )


def _build(plan: Plan, key: str, mark: Stopwatch) -> Kept:
    scenario = plan.scenario
    stack = ExitStack()
    try:
        workdir = stack.enter_context(run_directory(keep=False))
        network = stack.enter_context(LabNetwork(scenario.topology, scenario.conditions, workdir))
        mark("network_s")
        servers = start_servers(network, scenario, workdir, plan.software)
        mark("servers_s")
    except BaseException:
        stack.close()
        raise
    print(f"kept site {os.getpid()}: network and servers up in {workdir}", file=sys.stderr)
    serving = [p for p in network.processes if isinstance(p, subprocess.Popen)]
    return Kept(key, stack, workdir, network, servers, plan.software, serving)


def _intact(kept: Kept) -> bool:
    """Whether the network and servers are all still there (`lab clean` elsewhere on the
    machine kills every lab namespace and removes run directories)."""
    shells = [host.shell for host in kept.network.hosts.values()]
    return (
        kept.workdir.is_dir()
        and all(p.poll() is None for p in kept.serving)
        and all(shell is not None and shell.poll() is None for shell in shells)
    )


def _idle(kept: Kept) -> bool:
    """Whether the servers let go of the runs before within SERVER_IDLE_TIMEOUT_S; if not
    (a peer that died holding its allocation), the caller rebuilds."""
    deadline = time.monotonic() + SERVER_IDLE_TIMEOUT_S
    while left := leftovers(kept.servers, kept.software):
        if time.monotonic() > deadline:
            print(f"kept site {os.getpid()}: rebuilding, the servers still hold the "
                  f"previous run's {left[0]}", file=sys.stderr)  # fmt: skip
            return False
        time.sleep(0.02)
    return True
