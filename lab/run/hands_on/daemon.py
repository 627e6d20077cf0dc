"""The `lab up` daemon (`python -m lab.run.hands_on`): builds a scenario's network and
servers, writes the state file and holds them until SIGTERM (or SIGINT), when it tears
everything down and removes the state file.

Only the daemon process imports this module, so the network and server code it pulls
in never slows down `lab exec` or `lab status`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import signal
import time
import traceback
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from lab.core.documents import JsonObject
from lab.core.errors import LabError, LabInputError
from lab.core.lifecycle import Stopwatch, Terminated, sigterm_raises
from lab.core.processes import start_time
from lab.network.build import LabNetwork
from lab.observations.capture.capture import LAST_CAPTURE
from lab.observations.capture.evidence import keep_session_capture
from lab.run.hands_on.processes import MARK
from lab.run.hands_on.state import remove_state, write_state
from lab.run.plan import RunOptions, prepare
from lab.run.sites import FreshSites
from lab.scenario.scenario import load_scenario
from lab.servers.credentials import rest_credentials

CREDENTIALS_TTL_S = 24 * 3600


class Readiness:
    """The one line `lab up` waits for on its pipe: up, or why not (said once only)."""

    def __init__(self, fd: int) -> None:
        self._pipe = os.fdopen(fd, "w")
        self._sent = False

    def send(self, message: JsonObject) -> None:
        """Tell `lab up` (if it is still listening); later messages are dropped."""
        if self._sent:
            return
        self._sent = True
        with contextlib.suppress(OSError):
            self._pipe.write(json.dumps(message) + "\n")
            self._pipe.close()


def iso_time(epoch: float) -> str:
    """A local time with its offset, as `lab status` shows it."""
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


def build_state(scenario: Any, network: Any, token: str, workdir: Path, software: str) -> dict:
    """The state file's content once the network is built (servers still starting)."""
    hosts = []
    for node in scenario.topology.nodes.values():
        pid = network.pid_of(node.name)
        hosts.append(
            {
                "name": node.name,
                "role": node.role,
                "addresses": node.all_addresses,  # IPv6 too (an IPv6-only host has no other)
                "description": node.description,
                "shell_pid": pid,
                "shell_start": start_time(pid),
            }
        )
    now = time.time()
    return {
        "status": "starting",
        "scenario": scenario.name,
        "description": scenario.description,
        "source": str(scenario.source),
        "pid": os.getpid(),
        "pid_start": start_time(os.getpid()),
        "started": iso_time(now),
        "started_epoch": now,
        "token": token,
        "software": software,
        "run_directory": str(workdir),
        "log": str(workdir / "daemon.log"),
        "peers": {role: p.host for role, p in scenario.peers.items()},
        "hosts": hosts,
        "servers": {},
    }


def servers_state(scenario: Any, servers: Any, software: str) -> JsonObject:
    """How to reach the servers, with TURN REST credentials valid for a day."""
    turn = None
    if scenario.stun_turn is not None:
        credentials = rest_credentials(servers.turn_secret, "hands-on", ttl_s=CREDENTIALS_TTL_S)
        turn = {
            "host": scenario.stun_turn.host,
            "software": software,
            "addresses": scenario.topology.node(scenario.stun_turn.host).addresses,
            "urls": [url for server in scenario.ice_servers for url in server.urls],
            "secret": servers.turn_secret,
            "username": credentials.username,
            "password": credentials.password,
            "credentials_expire": iso_time(credentials.expires_at),
        }
    return {
        "stun_turn": turn,
        "signaling": {
            "host": scenario.signaling_host,
            "url": servers.signaling_url,
            "channel_arn": servers.channel_arn,
            "service_url": servers.service_url,
            "region": servers.region,
            "env_file": str(servers.env_file) if servers.env_file else None,
        },
        "ca_file": str(servers.ca_file),
        "logs": {name: str(path) for name, path in servers.logs.items()},
    }


def run(reference: str, software: str, ready_fd: int, capture: bool = False) -> int:
    """Build the network and servers, report readiness on `ready_fd`, wait for SIGTERM."""
    token = secrets.token_hex(8)
    os.environ[MARK] = token  # inherited by the shells and servers: how leftovers are found
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    readiness = Readiness(ready_fd)
    status = 0
    try:
        _hold(reference, software, token, readiness, capture)
    except (Terminated, KeyboardInterrupt):
        logging.info("stopping on a signal")
        readiness.send({"ok": False, "error": "interrupted while starting", "input": False})
    except LabError as exc:
        logging.error("%s", exc)
        readiness.send({"ok": False, "error": str(exc), "input": isinstance(exc, LabInputError)})
        status = 3
    except BaseException as exc:  # anything else: say what, rather than die silently
        traceback.print_exc()
        readiness.send({"ok": False, "error": f"{type(exc).__name__}: {exc}", "input": False})
        status = 3
    finally:
        remove_state(pid=os.getpid())
    return status


def _hold(
    reference: str, software: str, token: str, readiness: Readiness, capture: bool = False
) -> None:
    """Bring the scenario up, say so, and keep it up until a signal ends the waiting: the
    run pipeline's plan and build stage (lab/run/sites.py), held open instead of peers."""
    scenario = load_scenario(reference)
    plan = prepare(scenario, RunOptions(servers=software, capture=capture), with_peers=False)
    state: JsonObject = {}

    def network_built(network: LabNetwork, workdir: Path) -> None:
        state.update(build_state(scenario, network, token, workdir, software))
        write_state(state)  # before the servers start: what a crash leaves is found

    sites = FreshSites(on_directory=lambda workdir: _log_to(workdir / "daemon.log"),
                       on_network=network_built)  # fmt: skip
    with sigterm_raises(), sites.site(plan, Stopwatch({})) as site, ExitStack() as stack:
        if site.capture:  # every link until `lab down`; `lab pcap` lists the files then
            site.capture.ready()
            state["capture"] = str(LAST_CAPTURE)
            stack.callback(keep_session_capture, site.capture, scenario.name)
        state["servers"] = servers_state(scenario, site.servers, software)
        state["status"] = "up"
        write_state(state)
        logging.info("up: %s (pid %d)", scenario.name, os.getpid())
        readiness.send({"ok": True})
        while True:
            signal.pause()


def _log_to(path: Path) -> None:
    """Send the daemon's stdout, stderr and logging to a file in its run directory."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


def main(argv: list[str] | None = None) -> int:
    """The daemon's command line, as `lab up` (lab.run.hands_on.launch) starts it."""
    parser = argparse.ArgumentParser(prog="python -m lab.run.hands_on", description=__doc__)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--servers", required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--capture", action="store_true")
    args = parser.parse_args(argv)
    return run(args.scenario, args.servers, args.ready_fd, args.capture)
