"""One run, stage by stage: prepare the plan -> build the site (network, servers,
capture) -> run the peers -> collect what the servers saw -> build the result.

Every run goes through these functions: `lab run`, `lab compare` and `lab diagnose --run`
(which run `lab run`), a `lab matrix` cell, fresh or on a kept network (lab/run/sites.py:
reuse is how the build stage gets its site, not another pipeline), and `lab up` (the plan
and the build stage, held open). Everything a run creates is torn down on success,
failure, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from lab.core.documents import JsonObject
from lab.core.lifecycle import Stopwatch, sigterm_raises
from lab.observations.call_timeline import call_section
from lab.observations.capture.evidence import attach_evidence
from lab.peers.command_peer import wire_seen
from lab.peers.launch import peer_config, run_peers
from lab.report.build import build_result
from lab.report.result import RunResult
from lab.run.events import CallEventRunner
from lab.run.plan import Plan, RunOptions, prepare
from lab.run.sites import FreshSites, Site, Sites
from lab.scenario.scenario import ROLES, Scenario
from lab.servers.dns import read_answers
from lab.servers.requestlog import read_requests


@dataclass
class PeersRan:
    """What the peers stage leaves: each peer's observations and the call's events."""

    observations: dict[str, JsonObject]
    call_events: CallEventRunner | None


def run_scenario(scenario: Scenario, options: RunOptions, sites: Sites | None = None) -> RunResult:
    """The whole run on a site from `sites` (a fresh one by default); return the result."""
    plan = prepare(scenario, options)
    started = time.monotonic()
    phases: dict[str, float] = {}
    mark = Stopwatch(phases)
    sites = sites or FreshSites(keep_workdir=options.keep_workdir)
    with sigterm_raises(), sites.site(plan, mark) as site:
        ran = run_the_peers(plan, site)
        mark("peers_s")
        captured = site.capture.stop() if site.capture else None
        site.release()
        mark("teardown_s")
        servers = what_the_servers_saw(plan, site, ran)
        result = build_result(
            scenario, ran.observations, plan.profile.name, time.monotonic() - started,
            servers, call_of(plan, ran),
        )  # fmt: skip
        result.timings.phases = phases
        if plan.profile.slowdown > 1:
            result.slowdown = plan.profile.slowdown
        if captured is not None:  # the evidence is written beside the pcaps, as JSON
            document = result.to_json()
            attach_evidence(document, captured, options.pcap_dir)
            result = RunResult.from_json(document)
        return result


def run_the_peers(plan: Plan, site: Site) -> PeersRan:
    """Both peers to the end on the site, with the call's network events while they run."""
    for role in ROLES:  # a peer that writes nothing must not leave the last run's files
        for suffix in ("observations.json", "config.json", "log"):
            (site.workdir / f"{role}.{suffix}").unlink(missing_ok=True)
    options, scenario = plan.options, plan.scenario
    configs = {
        role: peer_config(
            scenario, site.servers, role, plan.modes[role], plan.profile, site.workdir,
            options.kvs_log, plan.agents[role], options.reveal_host_addresses,
        )
        for role in ROLES
    }  # fmt: skip
    for role, config in configs.items():
        if plan.agents[role] == "command":
            config.extra["command"] = getattr(options, f"{role}_command")
    if site.capture:
        site.capture.ready()
    call_events = (
        CallEventRunner(site.network, scenario.events, site.workdir, site.servers.restart_turn)
        if scenario.call
        else None
    )
    observations = run_peers(site.network, configs, plan.profile, site.workdir, call_events)
    return PeersRan(observations, call_events)


def what_the_servers_saw(plan: Plan, site: Site, ran: PeersRan) -> JsonObject:
    """The result's `servers`: the TURN requests and DNS answers of this run (and, for a
    user's program as a peer, what the servers saw of it), from this run's logs."""
    logs = site.logs.directory(f"run-{id(ran):x}")
    turn_log = _in(logs, site.servers.logs.get("stun_turn"))
    facts: JsonObject = {
        "turn": {"software": site.software, "requests": read_requests(site.software, turn_log)},
        "dns": {"answers": read_answers(logs)},  # what each host was told, by name
    }
    signaling_log = _in(logs, site.servers.logs.get("signaling"))
    for role, observed in ran.observations.items():
        if observed.get("agent") == "command" and "command" in observed:
            turn = facts["turn"]["requests"]
            observed["command"]["wire"] = wire_seen(role, signaling_log, turn)
    return facts


def call_of(plan: Plan, ran: PeersRan) -> JsonObject | None:
    """The result's `call` section, for a scenario with an ongoing call."""
    events = ran.call_events
    if events is None:
        return None
    call = plan.scenario.call
    return call_section(
        plan.scenario.events, events.log, events.call_started_at, ran.observations,
        call.pauses if call else (),
    )  # fmt: skip


def _in(directory: Path, log: Path | None) -> Path | None:
    """The same log in this run's log directory."""
    return None if log is None else directory / log.name
