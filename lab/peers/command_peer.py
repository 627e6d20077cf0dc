"""A user's own program as a peer (`--viewer-command` / `--master-command`).

The program runs in the peer's network namespace (and its resolver) with everything it
needs to join the call in its environment — the names the AWS SDKs read for the
emulated service, plus the lab's own (ENVIRONMENT below) — so a customer's application,
a boto3 script or an SDK sample joins the scenario unchanged. The lab cannot see inside
it: the peer's observations are its exit status and output, what the lab's servers saw
of it on the wire (signaling messages, TURN requests: lab/run/pipeline.py adds them), and, if the
program writes them to $ICELAB_OBSERVATIONS, its own candidates and pairs in the lab's
record shapes. Exit status 0 means "I connected", the contract a run judges it by.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import time
from pathlib import Path

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError
from lab.core.slowdown import scaled
from lab.peers.config import PeerConfig

#: The environment a command gets beside its own (docs/how-to/your-own-program.md).
ENVIRONMENT = {
    "AWS_ENDPOINT_URL_KINESIS_VIDEO": "the service's control plane (HTTPS)",
    "AWS_REGION": "the service's region (also AWS_DEFAULT_REGION)",
    "AWS_ACCESS_KEY_ID": "the run's access key",
    "AWS_SECRET_ACCESS_KEY": "its secret",
    "AWS_CA_BUNDLE": "the run's CA (also SSL_CERT_FILE, NODE_EXTRA_CA_CERTS)",
    "ICE_LAB_CHANNEL_ARN": "the run's signaling channel",
    "ICELAB_ROLE": "viewer or master",
    "ICELAB_CLIENT_ID": "the viewer's client id (X-Amz-ClientId)",
    "ICELAB_SIGNALING_URL": "a presigned wss:// URL for this role (no control plane needed)",
    "ICELAB_ICE_SERVERS": "the run's ICE servers as RTCIceServer JSON (urls, username, credential)",
    "ICELAB_DEADLINE_S": "seconds the lab gives the program before it is stopped",
    "ICELAB_OBSERVATIONS": "a file where the program may write its candidates and pairs (JSON)",
}
OUTPUT_LINES = 40
STOP_GRACE_S = 2.0


def command_environment(
    config: PeerConfig, deadline_s: float, observations: Path
) -> dict[str, str]:
    """ENVIRONMENT's values for this peer (pure)."""
    service = config.service or {}
    environment = {
        "ICELAB_ROLE": config.role,
        "ICELAB_CLIENT_ID": config.client_id,
        "ICELAB_SIGNALING_URL": config.signaling_url,
        "ICELAB_ICE_SERVERS": json.dumps(
            [
                {
                    k: v
                    for k, v in (
                        ("urls", s.urls),
                        ("username", s.username),
                        ("credential", s.password),
                    )
                    if v
                }
                for s in config.ice_servers
            ]
        ),
        "ICELAB_DEADLINE_S": f"{deadline_s:g}",
        "ICELAB_OBSERVATIONS": str(observations),
        "AWS_CA_BUNDLE": config.ca_file,
        "SSL_CERT_FILE": config.ca_file,
        "NODE_EXTRA_CA_CERTS": config.ca_file,
    }
    if service:
        environment |= {
            "AWS_ENDPOINT_URL_KINESIS_VIDEO": service["endpoint_url"],
            "AWS_REGION": service["region"],
            "AWS_DEFAULT_REGION": service["region"],
            "AWS_ACCESS_KEY_ID": service["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": service["secret_access_key"],
            "ICE_LAB_CHANNEL_ARN": service["channel_arn"],
        }
    return environment


def deadline_for(config: PeerConfig) -> float:
    """How long the program may run: signaling wait, gathering and the check budget."""
    timing = config.timing
    return float(timing["signaling_timeout_s"] + timing["check_timeout_s"] + scaled(5.0))


def tail(text: str, lines: int = OUTPUT_LINES) -> list[str]:
    return text.splitlines()[-lines:]


def own_observations(path: Path) -> JsonObject:
    """What the program wrote about itself: candidates, pairs, selected (if anything)."""
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text())
    except ValueError as exc:
        return {"command_observations_error": f"{path.name}: not JSON ({exc})"}
    keys = ("candidates", "remote_candidates", "pairs", "selected", "connected_s")
    return {k: document[k] for k in keys if k in document}


async def observe(config: PeerConfig) -> JsonObject:
    """Run the user's program to its end (or the deadline); return what the lab saw."""
    argv = list(config.extra["command"])
    deadline_s = deadline_for(config)
    observations_path = Path(config.result_path).with_name(f"{config.role}.command.json")
    environment = os.environ | command_environment(config, deadline_s, observations_path)
    started = time.monotonic()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    base: JsonObject = {
        "role": config.role,
        "host": config.host,
        "mode": config.mode,
        "agent": "command",
        "software": {"name": Path(argv[0]).name, "version": "unknown"},
        "candidates": [],
        "pairs": [],
        "selected": None,
    }
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return base | {"echo": False, "error": f"the command could not start: {exc}"}
    output = asyncio.create_task(process.communicate())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([output, stopped], timeout=deadline_s, return_when=asyncio.FIRST_COMPLETED)
    timed_out = not output.done()
    if timed_out:
        await _stop(process)
    stdout, _ = await output
    stopped.cancel()
    elapsed = round(time.monotonic() - started, 3)
    status = process.returncode
    lines = tail(stdout.decode(errors="replace"))
    error = None
    if timed_out:
        error = f"the command ran past the lab's {deadline_s:g} s and was stopped"
    elif status != 0:
        error = f"the command exited with status {status}" + (f": {lines[-1]}" if lines else "")
    return (
        base
        | {
            "echo": status == 0 and not timed_out,
            "connected_s": elapsed if status == 0 and not timed_out else None,
            "error": error,
            "command": {
                "argv": argv,
                "exit_status": status,
                "duration_s": elapsed,
                "output": lines,
            },
        }
        | own_observations(observations_path)
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the program's group, SIGKILL what is left after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_GRACE_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def parse_command(text: str, where: str) -> list[str]:
    """A command line as the shell would split it; LabInputError naming `where` if empty."""
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise LabInputError(f"{where}: {exc}") from None
    if not argv:
        raise LabInputError(f"{where}: give the program to run")
    return argv


def wire_seen(role: str, signaling_log: Path | None, turn_requests: list[JsonObject]) -> dict:
    """What the lab's servers saw of a peer it cannot look inside (pure but for the read):
    its signaling connects, messages and errors, and the TURN requests per user name (the
    program's own, from GetIceServerConfig, or the lab's ICELAB_ICE_SERVERS ones)."""
    events = []
    if signaling_log is not None and signaling_log.exists():
        for line in signaling_log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("role") == role:
                    events.append(
                        {k: entry[k] for k in ("t", "event", "action", "error") if k in entry}
                    )
    by_user: dict[str, dict[str, int]] = {}
    for request in turn_requests:
        methods = by_user.setdefault(request.get("user") or "(none)", {})
        key = request["method"] + ("" if request["outcome"] == "success" else " error")
        methods[key] = methods.get(key, 0) + 1
    return {"signaling": events, "turn_requests_by_user": by_user}
