"""Hands-on mode: `lab up`, `lab exec`, `lab status`, `lab down`.

`lab up SCENARIO` starts a detached daemon (`python -m lab.hands_on`) that builds the
scenario's network and servers, writes a state file and stays until SIGTERM (or
SIGINT), when it tears everything down and removes the state file. One network is up
at a time; a file lock serialises `lab up`, `lab down` and `lab clean`.

Everything the daemon starts (Mininet shells, servers) and everything `lab exec`
starts carries `ICELAB_UP=<token>` in its environment, so what a crashed daemon left
is found by that mark (and by the recorded shells' pid and start time), never by a
pattern over process names. A daemon that died leaves a stale state file: the next
`lab up`, `lab down` or `lab clean` notices it and removes what it left.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from lab.errors import LabError, LabInputError, LabRunError

#: `lab.run.RUN_ROOT / "up"` (not imported from lab.run: that pulls in the peers' code,
#: and `lab exec` should start fast; a unit test checks the two agree).
STATE_DIR = Path("/run/ice-lab/up")
STATE_NAME = "state.json"
MARK = "ICELAB_UP"
READY_TIMEOUT_S = 60.0
DOWN_TIMEOUT_S = 20.0
LOCK_TIMEOUT_S = READY_TIMEOUT_S + 10
CREDENTIALS_TTL_S = 24 * 3600
NOTHING_UP = "nothing is up; start one with `lab up SCENARIO`"


# -- state file --------------------------------------------------------------------------


def read_state(directory: Path | None = None) -> dict[str, Any] | None:
    """The state of the network that is up (or was, if its daemon died); None if none.

    An unreadable file comes back as a state without a daemon (so it counts as stale).
    """
    path = (directory or STATE_DIR) / STATE_NAME
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"scenario": "?", "pid": 0, "pid_start": None, "hosts": [], "broken": True}
    return state if isinstance(state, dict) else {"scenario": "?", "pid": 0, "broken": True}


def write_state(state: dict[str, Any], directory: Path | None = None) -> None:
    """Replace the state file atomically (readers never see half a file)."""
    directory = directory or STATE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{STATE_NAME}.{os.getpid()}"
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, directory / STATE_NAME)


def remove_state(directory: Path | None = None, pid: int | None = None) -> bool:
    """Remove the state file; with `pid`, only if it is that daemon's."""
    directory = directory or STATE_DIR
    state = read_state(directory)
    if state is None or (pid is not None and state.get("pid") != pid):
        return False
    with contextlib.suppress(FileNotFoundError):
        (directory / STATE_NAME).unlink()
    return True


@contextlib.contextmanager
def state_lock(directory: Path | None = None, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Serialise `lab up` / `lab down` / `lab clean` (a starting `lab up` holds it).

    The lock is on the state directory itself, so no lock file is left behind.
    """
    directory = directory or STATE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabInputError(
                        "another `lab up`, `lab down` or `lab clean` is busy; try again"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


# -- processes ---------------------------------------------------------------------------


def parse_start_time(stat: str) -> int | None:
    """Start time (clock ticks since boot) from /proc/PID/stat text; None for a zombie."""
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of the whole line


def start_time(pid: int) -> int | None:
    """When a live process started (to tell it from a later one with the same pid)."""
    if pid <= 0:
        return None
    try:
        return parse_start_time(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def is_same_process(pid: int, started: int | None) -> bool:
    return started is not None and start_time(pid) == started


def daemon_alive(state: dict[str, Any]) -> bool:
    return is_same_process(int(state.get("pid") or 0), state.get("pid_start"))


def marked_processes(token: str | None) -> list[int]:
    """Pids whose environment carries `ICELAB_UP=<token>` (any token if None)."""
    wanted = f"{MARK}=".encode() + (token.encode() if token else b"")
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry.name}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(v == wanted if token else v.startswith(wanted) for v in environ):
            found.append(int(entry.name))
    return found


def leftovers(state: dict[str, Any]) -> list[int]:
    """Processes of that network still alive: its daemon, its marked processes (servers,
    `lab exec` commands) and its recorded namespace shells."""
    alive = {p for p in marked_processes(state.get("token") or "-") if start_time(p) is not None}
    if daemon_alive(state):
        alive.add(int(state["pid"]))
    for host in state.get("hosts", []):
        if is_same_process(host.get("shell_pid", 0), host.get("shell_start")):
            alive.add(host["shell_pid"])
    return sorted(alive)


def purge(state: dict[str, Any] | None, any_mark: bool = False) -> list[int]:
    """SIGKILL what a network left: its marked processes, its recorded shells, and every
    process in their namespaces. Removes its state file and run directory too."""
    from lab.network.build import namespace_members

    ours = set(marked_processes(None)) if any_mark else set()
    if state is not None:
        ours |= set(leftovers(state))
    own_namespace = os.readlink("/proc/self/ns/net")
    namespaces = set()
    for pid in ours:
        with contextlib.suppress(OSError):
            namespaces.add(os.readlink(f"/proc/{pid}/ns/net"))
    namespaces.discard(own_namespace)  # never anything in the machine's own namespace
    targets = (ours | set(namespace_members(namespaces))) - {os.getpid()}
    killed = []
    for pid in sorted(targets):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            continue
    if state is not None:
        _remove_run_directory(state)
        remove_state(pid=state.get("pid"))
    return killed


def _remove_run_directory(state: dict[str, Any]) -> None:
    from lab.run import RUN_ROOT

    path = Path(state.get("run_directory") or "/nonexistent")
    if path.parent == RUN_ROOT and path.name.startswith("run-"):
        shutil.rmtree(path, ignore_errors=True)


def wait_gone(state: dict[str, Any], timeout: float) -> bool:
    """Wait until the daemon has exited; True if it did within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while daemon_alive(state):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_no_leftovers(state: dict[str, Any], timeout: float = 3.0) -> list[int]:
    """SIGKILLed processes take a moment to go: wait for that network's to be gone."""
    deadline = time.monotonic() + timeout
    while (left := leftovers(state)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def stop(state: dict[str, Any]) -> str:
    """Tear down the network of `state` (live or stale); say what happened.

    Raises LabRunError if anything of it is still alive afterwards.
    """
    name, pid = state.get("scenario", "?"), state.get("pid")
    if daemon_alive(state):
        os.kill(int(state["pid"]), signal.SIGTERM)
        if wait_gone(state, DOWN_TIMEOUT_S):
            how = f"'{name}' (pid {pid}) torn down"
        else:  # purge() below kills it, and what it had not torn down yet
            how = f"'{name}' (pid {pid}) did not stop in {DOWN_TIMEOUT_S:.0f} s: killed it"
    else:
        how = f"the `lab up` of '{name}' (pid {pid}) had died: removed what it left"
    killed = purge(state)
    if killed:
        how += f" (killed {len(killed)} leftover process(es))"
    left = wait_no_leftovers(state)
    if left:
        raise LabRunError(f"{how}, but processes {left} are still alive")
    return how


# -- the daemon ----------------------------------------------------------------------------


def iso_time(epoch: float) -> str:
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
                "addresses": node.addresses,
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


def servers_state(scenario: Any, servers: Any, software: str) -> dict[str, Any]:
    """How to reach the servers, with TURN REST credentials valid for a day."""
    from lab.servers.credentials import rest_credentials

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
        },
        "ca_file": str(servers.ca_file),
        "logs": {name: str(path) for name, path in servers.logs.items()},
    }


def daemon(reference: str, software: str, ready_fd: int) -> int:
    """Build the network and servers, report readiness on `ready_fd`, wait for SIGTERM."""
    from lab.network.build import LabNetwork
    from lab.run import Terminated, run_directory, sigterm_raises
    from lab.scenario import load_scenario
    from lab.servers.launch import start_servers

    token = secrets.token_hex(8)
    os.environ[MARK] = token  # inherited by the shells and servers: how leftovers are found
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    ready = os.fdopen(ready_fd, "w")
    reported = False

    def report(message: dict[str, Any]) -> None:
        nonlocal reported
        if not reported:
            reported = True
            with contextlib.suppress(OSError):
                ready.write(json.dumps(message) + "\n")
                ready.close()

    status = 0
    try:
        with sigterm_raises(), run_directory(keep=False) as workdir:
            _log_to(workdir / "daemon.log")
            scenario = load_scenario(reference)
            with LabNetwork(scenario.topology, scenario.conditions, workdir) as network:
                state = build_state(scenario, network, token, workdir, software)
                write_state(state)
                servers = start_servers(network, scenario, workdir, software)
                state["servers"] = servers_state(scenario, servers, software)
                state["status"] = "up"
                write_state(state)
                logging.info("up: %s (pid %d)", scenario.name, os.getpid())
                report({"ok": True})
                while True:
                    signal.pause()
    except (Terminated, KeyboardInterrupt):
        logging.info("stopping on a signal")
        report({"ok": False, "error": "interrupted while starting", "input": False})
    except LabError as exc:
        logging.error("%s", exc)
        report({"ok": False, "error": str(exc), "input": isinstance(exc, LabInputError)})
        status = 3
    except BaseException as exc:  # anything else: say what, rather than die silently
        traceback.print_exc()
        report({"ok": False, "error": f"{type(exc).__name__}: {exc}", "input": False})
        status = 3
    finally:
        remove_state(pid=os.getpid())
    return status


def _log_to(path: Path) -> None:
    """Send the daemon's stdout, stderr and logging to a file in its run directory."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.hands_on", description=__doc__)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--servers", required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    args = parser.parse_args(argv)
    return daemon(args.scenario, args.servers, args.ready_fd)


# -- starting it -----------------------------------------------------------------------


def start(scenario: Any, software: str) -> tuple[dict[str, Any], float, str]:
    """Start the daemon and wait until it is up: (state, seconds it took, note)."""
    began = time.monotonic()
    note = ""
    with state_lock():
        state = read_state()
        if state is not None:
            if daemon_alive(state):
                raise LabInputError(already_up(state))
            note = stop(state)
        read_end, write_end = os.pipe()
        process = subprocess.Popen(
            [
                sys.executable, "-m", "lab.hands_on",
                "--scenario", str(scenario.source.resolve()),
                "--servers", software,
                "--ready-fd", str(write_end),
            ],
            pass_fds=(write_end,),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
        )  # fmt: skip
        os.close(write_end)
        try:
            message = _await_ready(read_end, process)
        except BaseException:
            _abandon(process)
            raise
        finally:
            os.close(read_end)
        if not message.get("ok"):
            _abandon(process)
            error = message.get("error") or "the lab daemon failed"
            raise (LabInputError if message.get("input") else LabRunError)(error)
        state = read_state()
        if state is None or state.get("pid") != process.pid:
            _abandon(process)
            raise LabRunError("the lab daemon reported ready but wrote no state")
    return state, time.monotonic() - began, note


def _await_ready(read_end: int, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([read_end], [], [], 0.2)
        if not ready:
            continue
        chunk = os.read(read_end, 4096)
        if not chunk:  # the daemon exited without a word
            status = process.wait(timeout=10)
            return {"ok": False, "error": f"the lab daemon exited (status {status}) before "
                    "the network was up"}  # fmt: skip
        buffer += chunk
        if buffer.endswith(b"\n"):
            return json.loads(buffer)
    return {"ok": False, "error": f"the network was not up after {READY_TIMEOUT_S:.0f} s"}


def _abandon(process: subprocess.Popen[bytes]) -> None:
    """A daemon that failed or is no longer wanted: stop it, then remove what it left."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=DOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    state = read_state()
    if state is not None and state.get("pid") == process.pid:
        purge(state)


def already_up(state: dict[str, Any]) -> str:
    return (
        f"'{state.get('scenario')}' is already up (since {state.get('started')}, "
        f"pid {state.get('pid')}): run `lab down` first"
    )


def clean_up_state() -> str:
    """For `lab clean`: tear down a network that is up or remove what a dead one left.

    Never raises: `lab clean` goes on with the rest whatever happens here.
    """
    messages = []
    try:
        with state_lock():
            state = read_state()
            if state is not None:
                messages.append(stop(state))
            stray = purge(None, any_mark=True)  # e.g. a daemon killed before it wrote state
            if stray:
                messages.append(f"killed {len(stray)} process(es) of a `lab up` without state")
    except LabError as exc:
        messages.append(f"could not stop it: {exc}")
    return "; ".join(messages)


# -- showing it --------------------------------------------------------------------------


def status_document(state: dict[str, Any] | None) -> dict[str, Any]:
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


def describe(state: dict[str, Any]) -> list[str]:
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
    return lines


def next_steps(state: dict[str, Any]) -> list[str]:
    peers = state.get("peers") or {}
    peer = peers.get("viewer") or next(iter(peers.values()), "HOST")
    lines = ["try:", f"  sudo lab exec {peer} -- ip addr"]
    turn = (state.get("servers") or {}).get("stun_turn")
    if turn:
        address = turn["addresses"][0]
        lines.append(f"  sudo lab exec {peer} -- ping -c1 {address}")
        lines.append(f"  sudo lab exec {peer} -- timeout 3 turnutils_stunclient {address}")
    nat = next((h["name"] for h in state.get("hosts", []) if h["role"] == "nat"), None)
    if nat:
        lines.append(f"  sudo lab exec {nat} -- nft list ruleset")
    lines += ["  lab status", "  sudo lab down"]
    return lines


def command_line(command: list[str] | None) -> list[str]:
    """`lab exec HOST -- CMD...`: the command after the `--` (a shell if none)."""
    argv = list(command or [])
    if argv[:1] == ["--"]:
        argv = argv[1:]
    return argv or [os.environ.get("SHELL") or "/bin/sh"]


def up_for(state: dict[str, Any]) -> str:
    seconds = int(time.time() - float(state.get("started_epoch") or time.time()))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


# -- the commands -------------------------------------------------------------------------


def say(*lines: str, err: bool = False) -> None:
    """Print lines as they are (no markup, no wrapping), on stdout or stderr."""
    from lab.cli import console, errors

    for line in lines:
        (errors if err else console).print(line, highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the hands-on commands to the CLI."""

    @app.command()
    def up(
        scenario: Annotated[str, typer.Argument(help="scenario name or path")],
        servers: Annotated[
            str | None, typer.Option(help="STUN/TURN server software: coturn or mock")
        ] = None,
    ) -> None:
        """Build a scenario's network and servers and keep them up (see `lab exec`)."""
        from lab.cli import fail
        from lab.preflight import require_impairment_support, require_root, require_tools
        from lab.scenario import load_scenario

        try:
            if servers not in (None, "coturn", "mock"):
                raise LabInputError(f"--servers: unknown software '{servers}' (coturn or mock)")
            require_root()
            loaded = load_scenario(scenario)
            turn = loaded.stun_turn
            software = servers or (turn.software if turn else "none")
            if turn and turn.faults and software != "mock":
                raise LabInputError(
                    f"{loaded.source}: servers.stun_turn.faults: fault injection needs the "
                    "mock server (software: mock or --servers mock)"
                )
            require_tools(need_coturn=software == "coturn")
            require_impairment_support(loaded)
            state, took, note = start(loaded, software)
        except LabError as exc:
            raise fail(exc) from None
        except KeyboardInterrupt:
            say("interrupted: nothing is up", err=True)
            raise typer.Exit(130) from None
        if note:
            say(note, err=True)
        title = f"up: {state['scenario']} (pid {state['pid']}, {took:.1f} s)"
        say(f"{title}: {state.get('description', '')}", *describe(state), *next_steps(state))

    @app.command(
        "exec",
        context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    )
    def exec_(
        host: Annotated[
            str, typer.Argument(metavar="HOST", help="a host of the network that is up")
        ],
        command: Annotated[
            list[str] | None,
            typer.Argument(metavar="-- CMD...", help="the command (default: a shell)"),
        ] = None,
    ) -> None:
        """Run a command in a host's namespace: `lab exec viewer -- ip addr`."""
        from lab.cli import fail
        from lab.preflight import require_root

        try:
            require_root()
            state = read_state()
            if state is None:
                raise LabInputError(NOTHING_UP)
            if not daemon_alive(state):
                raise LabInputError(
                    f"the `lab up` of '{state.get('scenario')}' (pid {state.get('pid')}) has "
                    "died: run `lab clean` (or `lab up` again)"
                )
            if state.get("status") != "up":
                raise LabInputError(f"'{state.get('scenario')}' is still starting; try again")
            hosts = {h["name"]: h for h in state.get("hosts", [])}
            if host not in hosts:
                known = ", ".join(hosts)
                raise LabInputError(
                    f"unknown host '{host}' in {state['scenario']} (hosts: {known})"
                )
            shell = hosts[host]
            if not is_same_process(shell["shell_pid"], shell.get("shell_start")):
                raise LabRunError(f"host '{host}' is gone (its namespace shell exited)")
        except LabError as exc:
            raise fail(exc) from None
        argv = command_line(command)
        env = dict(os.environ, **{MARK: state["token"]})
        try:
            os.execvpe("mnexec", ["mnexec", "-a", str(shell["shell_pid"]), *argv], env)
        except OSError as exc:
            raise fail(LabInputError(f"cannot run mnexec: {exc}")) from None

    @app.command()
    def status(
        as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    ) -> None:
        """What `lab up` has up: scenario, hosts with roles and addresses, servers."""
        state = read_state()
        document = status_document(state)
        if as_json:
            print(json.dumps(document, indent=2))
            return
        if not document["up"]:
            if state is None:
                say(NOTHING_UP)
            else:
                say(
                    f"nothing is up: the `lab up` of '{state.get('scenario')}' (pid "
                    f"{state.get('pid')}) has died; `sudo lab clean` removes what it left"
                )
            return
        say(
            f"{state['scenario']} is {state.get('status')} since {state['started']} "
            f"({up_for(state)}), pid {state['pid']}, run directory {state['run_directory']}",
            *describe(state),
        )

    @app.command()
    def down() -> None:
        """Tear down what `lab up` started (nothing up: says so, exit status 0)."""
        from lab.cli import fail
        from lab.preflight import require_root

        try:
            require_root()
            began = time.monotonic()
            with state_lock():
                state = read_state()
                if state is None:
                    say("nothing is up")
                    return
                how = stop(state)
        except LabError as exc:
            raise fail(exc) from None
        say(f"down: {how} in {time.monotonic() - began:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
