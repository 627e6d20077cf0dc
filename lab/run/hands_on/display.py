"""What `lab up` and `lab status` show: the hosts, roles, addresses and servers of the
network that is up, as text lines or as `lab status --json`."""

from __future__ import annotations

import time

from lab.core.documents import JsonObject
from lab.core.terminal import console, errors
from lab.run.hands_on.processes import daemon_alive

NOTHING_UP = "nothing is up; start one with `lab up SCENARIO`"


def say(*lines: str, err: bool = False) -> None:
    """Print lines as they are (no markup, no wrapping), on stdout or stderr."""
    for line in lines:
        (errors if err else console).print(line, highlight=False, markup=False, soft_wrap=True)


def status_document(state: JsonObject | None) -> JsonObject:
    """`lab status --json`."""
    if state is None:
        return {"up": False}
    if not daemon_alive(state):
        return {"up": False, "stale": {"scenario": state.get("scenario"), "pid": state.get("pid")}}
    return {
        "up": True,
        "status": state.get("status"),
        "scenario": state.get("scenario"),
        "source": state.get("source"),
        "pid": state.get("pid"),
        "started": state.get("started"),
        "run_directory": state.get("run_directory"),
        "log": state.get("log"),
        "peers": state.get("peers", {}),
        "hosts": [
            {"name": h["name"], "role": h["role"], "addresses": h["addresses"]}
            for h in state.get("hosts", [])
        ],
        "servers": state.get("servers", {}),
    }


def status_lines(state: JsonObject | None) -> list[str]:
    """`lab status` in words: what is up, or that nothing is (and why, if it died)."""
    if state is None:
        return [NOTHING_UP]
    if not daemon_alive(state):
        return [
            f"nothing is up: the `lab up` of '{state.get('scenario')}' (pid "
            f"{state.get('pid')}) has died; `sudo lab clean` removes what it left"
        ]
    return [
        f"{state['scenario']} is {state.get('status')} since {state['started']} "
        f"({up_for(state)}), pid {state['pid']}, run directory {state['run_directory']}",
        *describe(state),
    ]


def up_lines(state: JsonObject, took: float) -> list[str]:
    """What `lab up` prints once the network is up: what it is and what to try."""
    title = f"up: {state['scenario']} (pid {state['pid']}, {took:.1f} s)"
    return [f"{title}: {state.get('description', '')}", *describe(state), *next_steps(state)]


def describe(state: JsonObject) -> list[str]:
    """The hosts, roles, addresses and servers of a network that is up, as text lines."""
    hosts = state.get("hosts", [])
    width = max((len(h["name"]) for h in hosts), default=4)
    lines = [f"  {'host':<{width}}  {'role':<10} addresses"]
    for host in hosts:
        lines.append(
            f"  {host['name']:<{width}}  {host['role']:<10} {', '.join(host['addresses'])}"
        )
    servers = state.get("servers") or {}
    turn = servers.get("stun_turn")
    if turn:
        lines.append(f"STUN/TURN ({turn['software']}) on {turn['host']}: {' '.join(turn['urls'])}")
        lines.append(
            f"  TURN username {turn['username']}  password {turn['password']}  "
            f"(valid until {turn['credentials_expire']}; shared secret {turn['secret']})"
        )
    signaling = servers.get("signaling")
    if signaling:
        lines.append(f"signaling on {signaling['host']}: {signaling['url']}")
        if signaling.get("service_url"):
            lines.append(
                f"  service APIs: {signaling['service_url']} (region {signaling['region']}; "
                f"for boto3: set -a; . {signaling['env_file']}; set +a)"
            )
    return lines


def next_steps(state: JsonObject) -> list[str]:
    """Commands worth trying on this network (so a newcomer need not look them up)."""
    peers = state.get("peers") or {}
    peer = peers.get("viewer") or next(iter(peers.values()), "HOST")
    lines = ["try:", f"  sudo lab exec {peer} -- ip addr"]
    turn = (state.get("servers") or {}).get("stun_turn")
    if turn:
        address = turn["addresses"][0]
        lines.append(f"  sudo lab exec {peer} -- ping -c1 {address}")
        lines.append(f"  sudo lab exec {peer} -- timeout 3 turnutils_stunclient {address}")
    service_url = ((state.get("servers") or {}).get("signaling") or {}).get("service_url")
    if service_url:  # hosts resolve the service's names through the lab's DNS
        lines.append(f"  sudo lab exec {peer} -- getent hosts {service_url.split('//')[-1]}")
    nat = next((h["name"] for h in state.get("hosts", []) if h["role"] == "nat"), None)
    if nat:
        lines.append(f"  sudo lab exec {nat} -- nft list ruleset")
    lines += ["  lab status", "  sudo lab down"]
    return lines


def up_for(state: JsonObject) -> str:
    """How long the network has been up, e.g. 1h05m or 3m07s."""
    seconds = int(time.time() - float(state.get("started_epoch") or time.time()))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
