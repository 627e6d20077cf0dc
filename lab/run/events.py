"""Change the network under an ongoing call, at the scenario's times (lab/scenario/call_events.py).

The schedule starts when both peers say they are connected (each writes
`<role>.connected` in the run directory), so `at_s` means the same on a fast and on a
slow network. A link outage or a lossy spell is an nftables table of its own in the
node's namespace, added at the start and deleted at the end; a NAT flush empties the
node's conntrack table; a NAT rebind also forgets the mappings the NAT's ruleset learned
(lab/network/nat.py), so that new ones take new ports; an idle timeout lowers the node's
UDP conntrack timeouts. All of it lives in the lab's namespaces and goes with them.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lab.core.documents import JsonObject
from lab.network.build import LabNetwork
from lab.network.topology import Node
from lab.scenario.call_events import CallEvent

log = logging.getLogger(__name__)

#: How often the schedule looks for the peers' "connected" marks.
POLL_S = 0.02
#: After a NAT event, when to look at the mappings the call's next packets made.
MAPPINGS_AFTER_S = 0.5
_CONNTRACK_TUPLE = re.compile(r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)")


def connected_mark(workdir: Path, role: str) -> Path:
    """The file a peer writes once its call is up (the schedule's time zero)."""
    return workdir / f"{role}.connected"


def event_table(index: int) -> str:
    return f"icelab_event_{index}"


def render_event_ruleset(event: CallEvent, index: int) -> str:
    """The nftables table that carries a link event (pure): nothing, or a share, of the
    IPv4 packets crossing the interface is dropped, both ways, before conntrack sees them
    on the way in and after NAT on the way out, as a dead or lossy wire would."""
    if event.kind == "link-down":
        verdict = "drop"
        what = f"outage of {event.interface}"
    else:
        verdict = f"numgen random mod 10000 < {round(event.loss_percent * 100)} drop"
        what = f"{event.loss_percent:g} % loss on {event.interface}"
    return f"""table ip {event_table(index)} {{
    # {what}: {event.describe()}
    chain arriving {{
        type filter hook prerouting priority raw - 60; policy accept;
        iifname "{event.interface}" {verdict}
    }}
    chain leaving {{
        type filter hook postrouting priority 300; policy accept;
        oifname "{event.interface}" {verdict}
    }}
}}
"""


#: The NAT ruleset's learned mappings (lab/network/nat.py). `mapped_ports` is kept: the
#: ports it holds stay taken, so a rebound mapping cannot get its old port back.
LEARNED_MAPPINGS = ("map ei_out", "map ad_out", "map inbound", "set contacted")
REBIND_HOLD_TABLE = "icelab_rebind_hold"


def rebind_commands() -> list[str]:
    """Move a NAT's mappings to new public ports (pure): hold the UDP it forwards for the
    moment of the swap (or a packet in flight re-learns an old mapping), forget the
    learned mappings and every conntrack entry, then let the packets through again."""
    hold = (
        f"table ip {REBIND_HOLD_TABLE} {{ chain hold {{ type filter hook prerouting "
        "priority raw - 70; policy accept; meta l4proto udp drop; }; }"
    )
    forget = "; ".join(f"flush {what}" for what in _learned("ip icelab_nat"))
    return [
        f"nft -f - <<'EOF'\n{hold}\n{forget}\nEOF",
        f"trap 'nft delete table ip {REBIND_HOLD_TABLE}' EXIT",  # released even on failure
        "conntrack -F",
    ]


def _learned(table: str) -> list[str]:
    return [f"{kind} {table} {name}" for kind, name in (m.split() for m in LEARNED_MAPPINGS)]


def udp_mappings(conntrack_listing: str) -> list[dict[str, str]]:
    """The source-NAT mappings in `conntrack -L -p udp` output (pure): inside endpoint,
    the public endpoint it leaves as, and the remote endpoint, sorted."""
    mappings = []
    for line in conntrack_listing.splitlines():
        tuples = _CONNTRACK_TUPLE.findall(line)
        if len(tuples) < 2:
            continue
        (src, dst, sport, dport), (_, public, _, public_port) = tuples[:2]
        if (src, sport) != (public, public_port):
            mappings.append(
                {
                    "inside": f"{src}:{sport}",
                    "public": f"{public}:{public_port}",
                    "remote": f"{dst}:{dport}",
                }
            )
    return sorted(mappings, key=lambda m: (m["inside"], m["remote"]))


def idle_timeout_sysctls(event: CallEvent) -> dict[str, str]:
    """The node's UDP conntrack timeouts, both unreplied and replied (pure). Per namespace,
    and read at each packet, so a flow open before the event gets them with its next
    packet. Measured on this kernel: an nftables `ct timeout` object with a `ct timeout
    set` rule at priority raw loads, but left old and new flows at the default 30 s."""
    seconds = str(round(event.idle_timeout_s))
    return {
        "net.netfilter.nf_conntrack_udp_timeout": seconds,
        "net.netfilter.nf_conntrack_udp_timeout_stream": seconds,
    }


def uplink_switch_commands(node: Node, event: CallEvent) -> list[str]:
    """The host's default uplink goes away (its interface down: its routes go with it,
    as when a phone leaves Wi-Fi) and the default route moves to the uplink left (pure)."""
    old = node.uplink()
    assert old is not None and event.interface is not None
    gateway = next(
        g
        for g in node.other_gateways
        if (i := node.interface_towards(g)) and i.name == event.interface
    )
    return [
        f"ip link set {old.name} down",
        f"ip route replace default via {gateway} dev {event.interface}",
    ]


class CallEventRunner:
    """Runs the events in a thread; `log` holds what was done, with epoch times."""

    def __init__(
        self,
        network: LabNetwork,
        events: tuple[CallEvent, ...],
        workdir: Path,
        restart_turn: Callable[[], None] | None = None,
    ) -> None:
        self.network = network
        self.restart_turn = restart_turn
        self.events = events
        self.workdir = workdir
        self.log: list[JsonObject] = []
        self.call_started_at: float | None = None  # epoch seconds, both peers connected
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="call-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the schedule (the call is over); an event in progress is left to the
        namespace's tear-down."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _main(self) -> None:
        marks = [connected_mark(self.workdir, role) for role in ("viewer", "master")]
        while not all(mark.exists() for mark in marks):
            if self._stop.wait(POLL_S):
                return
        self.call_started_at = time.time()
        zero = time.monotonic()
        for at_s, index, action in self._schedule():
            if self._stop.wait(max(0.0, zero + at_s - time.monotonic())):
                return
            action(index)

    def _schedule(self) -> list[tuple[float, int, Callable[[int], None]]]:
        steps: list[tuple[float, int, Callable[[int], None]]] = []
        for index, event in enumerate(self.events):
            steps.append((event.at_s, index, self._begin))
            if event.kind in ("link-down", "link-loss"):
                steps.append((event.ends_s, index, self._end))
            if event.kind in ("nat-flush", "nat-rebind"):
                steps.append((event.at_s + MAPPINGS_AFTER_S, index, self._mappings_after))
        return sorted(steps, key=lambda step: step[0])

    def _begin(self, index: int) -> None:
        event = self.events[index]
        if event.kind == "turn-restart":
            self._restart_turn(index)
            return
        if event.kind == "uplink-switch":
            script = "; ".join(
                uplink_switch_commands(self.network.topology.node(event.node), event)
            )
            done = self.network.run(event.node, ["sh", "-ec", script])
            self._note(index, "began", done.returncode, done.stderr)
            return
        if event.kind in ("nat-flush", "nat-rebind"):
            self._nat_event(index, event)
            return
        if event.kind == "idle-timeout":
            settings = [f"{k}={v}" for k, v in idle_timeout_sysctls(event).items()]
            done = self.network.run(event.node, ["sysctl", "-qw", *settings])
        else:
            ruleset = render_event_ruleset(event, index).encode()
            done = self.network.run(event.node, ["nft", "-f", "-"], input=ruleset)
        self._note(index, "began", done.returncode, done.stderr)

    def _nat_event(self, index: int, event: CallEvent) -> None:
        """Flush or rebind the NAT, noting its UDP mappings just before."""
        before = self._mappings(event.node)
        if event.kind == "nat-flush":
            done = self.network.run(event.node, ["conntrack", "-F"])
        else:
            done = self.network.run(event.node, ["sh", "-ec", "\n".join(rebind_commands())])
        self._note(index, "began", done.returncode, done.stderr)
        self.log[-1]["mappings_before"] = before

    def _mappings_after(self, index: int) -> None:
        """The mappings the call's packets made after a NAT event: new public ports?"""
        for entry in self.log:
            if entry["event"] == index and entry["what"] == "began":
                entry["mappings_after"] = self._mappings(self.events[index].node)

    def _mappings(self, node: str) -> list[dict[str, str]]:
        done = self.network.run(node, ["conntrack", "-L", "-p", "udp"])
        return udp_mappings(done.stdout.decode(errors="replace"))

    def _restart_turn(self, index: int) -> None:
        """Stop the TURN server and start it again; the event ends once it listens."""
        self._note(index, "began", 0, b"")
        try:
            assert self.restart_turn is not None, "the run's servers cannot restart"
            self.restart_turn()
        except Exception as exc:  # noqa: BLE001 - reported in the result, the call goes on
            self._note(index, "ended", 1, str(exc).encode())
            return
        self._note(index, "ended", 0, b"")

    def _end(self, index: int) -> None:
        event = self.events[index]
        done = self.network.run(event.node, ["nft", "delete", "table", "ip", event_table(index)])
        self._note(index, "ended", done.returncode, done.stderr)

    def _note(self, index: int, what: str, status: int, stderr: bytes) -> None:
        event = self.events[index]
        entry = {"event": index, "what": what, "at": time.time(), "ok": status == 0}
        if status != 0:
            entry["error"] = stderr.decode(errors="replace").strip()
            log.error("call event %s %s failed: %s", event.describe(), what, entry["error"])
        else:
            log.info("call event %s: %s", what, event.describe())
        self.log.append(entry)
