"""Link impairments: loss, rate, delay, jitter, reordering, duplication and burst loss on
interfaces of a node.

A node has one `Impairments` per impaired interface (a router or NAT has several links,
and each can suffer its own conditions), or two when the directions differ (one `out`,
one `in`); everything below works per interface.

Every value applies to each direction the impairment covers (`direction: both`, the
default): `loss_percent: 10` drops 10 % of the packets leaving through the interface
AND 10 % of those arriving through it; `delay_ms: 40` adds 40 ms each way (80 ms to a
round trip); `rate_kbit: 1000` caps each direction at 1000 kbit/s.

How, inside the node's namespace:

- loss: `iifname IF numgen random mod 10000 < N drop` in an nftables prerouting chain
  (before conntrack) where the packets arrive: on the interface itself for arriving
  packets, on the other end of the link (the neighbour's namespace) for leaving ones,
  so that no sender is told about the drop (see `arrival_losses`). Only IPv4 is
  dropped (ARP is spared, so a figure of 10 % means 10 % of IP packets).
- rate: a TBF qdisc on the interface's egress; arriving traffic is redirected to an
  `ifb` device (`ifb-<interface>`) whose egress carries the same TBF.
- delay, jitter, reordering, duplication and burst loss (what needs a clock per packet)
  have a `mechanism`: `netem`, a netem qdisc (root, with the TBF as its child when a
  rate is set; needs the kernel module `sch_netem`), or `delay-line`, a transparent
  userspace wire spliced into the link (lab.network.wires: a namespace of its own whose
  two address-less interfaces a process joins through packet sockets, after the delay;
  the TBF stays on the node). `auto` (the default) takes netem where the kernel has it
  and the delay line where it does not; ICELAB_IMPAIRMENT_MECHANISM overrides `auto`.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError
from lab.network.delay_line import TABLE_LIMIT, BurstLoss, LineSpec
from lab.network.topology import Interface, Topology

DIRECTIONS = ("both", "out", "in")
MECHANISMS = ("netem", "delay-line")
#: Overrides `mechanism: auto` (the default) for every impairment: netem or delay-line.
MECHANISM_ENV = "ICELAB_IMPAIRMENT_MECHANISM"
#: How much traffic a TBF queues before it drops (its `latency`), in ms.
QUEUE_MS = 100
#: Smallest TBF bucket: two full-size Ethernet frames, or a frame could never pass.
MIN_BURST_BYTES = 3200
#: Packets per second a delayed direction must be able to hold for its whole delay
#: (netem's `limit`, the delay line's too): 100k/s is 1.2 Gbit/s of 1500-byte frames.
QUEUE_PPS = 100_000
#: netem's default `limit`, the least either mechanism holds.
MIN_LIMIT = 1000
#: A netem rate far above any link's: with a rate set netem never lets a packet leave
#: before the one ahead of it, which is how it keeps order under jitter.
IN_ORDER_RATE = "100gbit"


@dataclass(frozen=True)
class Impairments:
    """What one interface of a node suffers, per direction covered."""

    interface: str
    loss_percent: float = 0.0
    rate_kbit: int | None = None
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    direction: str = "both"  # both | out (leaving the node) | in (arriving)
    jitter_distribution: str = "uniform"  # uniform | normal | pareto | paretonormal
    jitter_reorders: bool = True  # a packet may overtake the one ahead (netem's default)
    reorder_percent: float = 0.0  # sent at once, ahead of the delayed ones (netem reorder)
    duplicate_percent: float = 0.0
    burst_loss: BurstLoss | None = None  # Gilbert-Elliott, netem's `loss gemodel`
    mechanism: str = "auto"  # auto | netem | delay-line (see choose_mechanism)

    @property
    def needs_emulator(self) -> bool:
        """Whether netem or the delay line must carry it: anything but loss and rate."""
        return bool(
            self.delay_ms
            or self.jitter_ms
            or self.reorder_percent
            or self.duplicate_percent
            or self.burst_loss
        )

    @property
    def carrier(self) -> str | None:
        """netem or delay-line for what needs a clock per packet; None for loss and rate."""
        return choose_mechanism(self.mechanism) if self.needs_emulator else None

    @property
    def directions(self) -> tuple[str, ...]:
        return ("out", "in") if self.direction == "both" else (self.direction,)

    @property
    def added_rtt_ms(self) -> float:
        """The most this impairment can add to a round trip through the interface."""
        return (self.delay_ms + self.jitter_ms) * len(self.directions)

    @property
    def queue_limit(self) -> int:
        """Packets held at once per direction: QUEUE_PPS for the longest delay drawn."""
        spread = 1.0 if self.jitter_distribution == "uniform" else TABLE_LIMIT
        longest_s = (self.delay_ms + self.jitter_ms * spread) / 1000
        return max(MIN_LIMIT, math.ceil(QUEUE_PPS * longest_s))

    def resolved(self) -> Impairments:
        """This impairment with `auto` replaced by the mechanism that will carry it."""
        carrier = self.carrier
        return replace(self, mechanism=carrier) if carrier else self

    def line_spec(self) -> LineSpec:
        """One direction of the delay line for this impairment."""
        return LineSpec(
            delay_ms=self.delay_ms,
            jitter_ms=self.jitter_ms,
            jitter_distribution=self.jitter_distribution,
            jitter_reorders=self.jitter_reorders,
            reorder_percent=self.reorder_percent,
            duplicate_percent=self.duplicate_percent,
            burst_loss=self.burst_loss,
            limit=self.queue_limit,
        )

    def describe(self) -> JsonObject:
        doc: JsonObject = {"interface": self.interface, "direction": self.direction}
        if self.loss_percent:
            doc["loss_percent"] = self.loss_percent
        if self.rate_kbit:
            doc["rate_kbit"] = self.rate_kbit
        if self.delay_ms:
            doc["delay_ms"] = self.delay_ms
        if self.jitter_ms:
            doc["jitter_ms"] = self.jitter_ms
            doc["jitter_distribution"] = self.jitter_distribution
            doc["jitter_reorders"] = self.jitter_reorders
        if self.reorder_percent:
            doc["reorder_percent"] = self.reorder_percent
        if self.duplicate_percent:
            doc["duplicate_percent"] = self.duplicate_percent
        if self.burst_loss:
            doc["burst_loss"] = _burst_loss_doc(self.burst_loss)
        if self.needs_emulator:
            doc["mechanism"] = self.carrier
        return doc


def _burst_loss_doc(model: BurstLoss) -> JsonObject:
    return {
        "p_percent": model.p_percent,
        "r_percent": model.r_percent,
        "bad_loss_percent": model.bad_loss_percent,
        "good_loss_percent": model.good_loss_percent,
    }


def choose_mechanism(requested: str = "auto") -> str:
    """What carries delay and the rest: the scenario's choice, else the environment's
    (MECHANISM_ENV), else netem where the kernel has it and the delay line where not."""
    if requested in MECHANISMS:
        return requested
    wanted = os.environ.get(MECHANISM_ENV) or "auto"
    if wanted in MECHANISMS:
        return wanted
    if wanted != "auto":
        raise LabInputError(f"{MECHANISM_ENV}={wanted}: expected auto, netem or delay-line")
    return "netem" if netem_available() else "delay-line"


def impairments_from_spec(spec: JsonObject | None, interface: str) -> Impairments | None:
    """Build Impairments from a scenario's `impairments:` value (schema-valid)."""
    if spec is None:
        return None
    loss = spec.get("burst_loss")
    return Impairments(
        interface=spec.get("interface", interface),
        loss_percent=float(spec.get("loss_percent", 0)),
        rate_kbit=spec.get("rate_kbit"),
        delay_ms=float(spec.get("delay_ms", 0)),
        jitter_ms=float(spec.get("jitter_ms", 0)),
        direction=spec.get("direction", "both"),
        jitter_distribution=spec.get("jitter_distribution", "uniform"),
        jitter_reorders=spec.get("jitter_reorders", True),
        reorder_percent=float(spec.get("reorder_percent", 0)),
        duplicate_percent=float(spec.get("duplicate_percent", 0)),
        burst_loss=BurstLoss(**{k: float(v) for k, v in loss.items()}) if loss else None,
        mechanism=spec.get("mechanism", "auto"),
    )


def ifb_name(interface: str) -> str:
    """The ifb device that carries an interface's arriving traffic (15 characters at most)."""
    return f"ifb-{interface}"[:15]


def _number(value: float) -> str:
    return f"{value:g}"


def _tbf(rate_kbit: int) -> str:
    burst = max(MIN_BURST_BYTES, rate_kbit * 1000 // 8 // 100)  # 10 ms at the rate
    return f"tbf rate {rate_kbit}kbit burst {burst} latency {QUEUE_MS}ms"


def render_netem(impairments: Impairments) -> str:
    """netem's arguments for everything but loss and rate (pure)."""
    words = ["netem", f"limit {impairments.queue_limit}"]
    if impairments.delay_ms:
        words.append(f"delay {_number(impairments.delay_ms)}ms")
        if impairments.jitter_ms:
            words[-1] += f" {_number(impairments.jitter_ms)}ms"
            if impairments.jitter_distribution != "uniform":  # no table: netem's uniform
                words.append(f"distribution {impairments.jitter_distribution}")
    if impairments.reorder_percent:
        words.append(f"reorder {_number(impairments.reorder_percent)}%")
    if impairments.duplicate_percent:
        words.append(f"duplicate {_number(impairments.duplicate_percent)}%")
    if impairments.burst_loss:
        model = impairments.burst_loss
        shares = (model.p_percent, model.r_percent, model.bad_loss_percent, model.good_loss_percent)
        words.append("loss gemodel " + " ".join(f"{_number(v)}%" for v in shares))
    if impairments.jitter_ms and not impairments.jitter_reorders:
        words.append(f"rate {IN_ORDER_RATE}")
    return " ".join(words)


def _qdiscs(device: str, impairments: Impairments) -> list[str]:
    """Root qdisc(s) on `device`: netem with a TBF child, netem alone, or TBF alone (the
    delay line leaves only the TBF here: it delays outside the node)."""
    commands = []
    if impairments.carrier == "netem":
        commands.append(f"tc qdisc add dev {device} root handle 1: {render_netem(impairments)}")
        if impairments.rate_kbit:
            commands.append(
                f"tc qdisc add dev {device} parent 1:1 handle 10: {_tbf(impairments.rate_kbit)}"
            )
    elif impairments.rate_kbit:
        commands.append(f"tc qdisc add dev {device} root handle 1: {_tbf(impairments.rate_kbit)}")
    return commands


def render_impairments(impairments: Impairments | None) -> list[str]:
    """Shell commands (run in the node's namespace) for the rate and, when netem carries
    them, delay and the rest (pure)."""
    if impairments is None:
        return []
    device = impairments.interface
    commands = []
    if "out" in impairments.directions:
        commands += _qdiscs(device, impairments)
    if "in" in impairments.directions and (impairments.rate_kbit or impairments.carrier == "netem"):
        ifb = ifb_name(device)
        commands += [
            f"ip link add {ifb} type ifb",
            f"ip link set {ifb} up",
            f"tc qdisc add dev {device} handle ffff: ingress",
            f"tc filter add dev {device} parent ffff: protocol all u32 match u32 0 0 "
            f"action mirred egress redirect dev {ifb}",
            *_qdiscs(ifb, impairments),
        ]
    return commands


@dataclass(frozen=True)
class ArrivalLoss:
    """Drop `percent` of the IP packets arriving through `device` (of the node it is for)."""

    device: str
    percent: float
    cause: str  # which impairment asked for it, for the ruleset's comment


def arrival_losses(
    topology: Topology, impairments: Mapping[str, Sequence[Impairments]]
) -> dict[str, list[ArrivalLoss]]:
    """Per node, the losses its interfaces apply to arriving packets.

    A node's loss on arriving packets (`in`) is dropped at its own interface. Its loss on
    leaving packets (`out`) is dropped where they arrive: at the other end of the link,
    in the neighbour's namespace. Dropping them on the way out instead (netdev egress or
    postrouting hooks) would tell the sending socket (ENOBUFS, EPERM): ping and TCP would
    just send again at once, and the loss would not be a loss.
    """
    losses: dict[str, list[ArrivalLoss]] = {}
    for name, entries in impairments.items():
        for impairment in entries:
            for node, arrival in _arrivals(topology, name, impairment):
                losses.setdefault(node, []).append(arrival)
    return losses


def _arrivals(
    topology: Topology, name: str, impairment: Impairments
) -> list[tuple[str, ArrivalLoss]]:
    """Where one interface's loss is dropped: (node, loss) per direction it covers."""
    if not impairment.loss_percent:
        return []
    percent = impairment.loss_percent
    where = f"{name}:{impairment.interface}"
    arrivals = []
    if "in" in impairment.directions:
        arrivals.append((name, ArrivalLoss(impairment.interface, percent, f"{where} in")))
    if "out" in impairment.directions:
        far = _far_end(topology, name, impairment.interface)
        if far is not None:
            arrivals.append((far.node, ArrivalLoss(far.name, percent, f"{where} out")))
    return arrivals


def _far_end(topology: Topology, node: str, interface: str) -> Interface | None:
    for link in topology.links:
        if (link.a.node, link.a.name) == (node, interface):
            return link.b
        if (link.b.node, link.b.name) == (node, interface):
            return link.a
    return None


def render_loss_ruleset(losses: Sequence[ArrivalLoss]) -> str:
    """An nftables table dropping a share of the IP packets arriving through interfaces (pure).

    The drop sits in prerouting before conntrack (priority raw - 50), as loss on the wire
    would: before the node's NAT and firewall, and after an `ifb` rate limit or delay on
    the same packets (a netdev ingress chain would be skipped for packets an ifb
    re-injects). Only IPv4 is dropped (ARP is spared, so 10 % means 10 % of IP packets).
    """
    if not losses:
        return ""
    rules = []
    for loss in losses:
        threshold = round(loss.percent * 100)  # in hundredths of a percent
        rules.append(f"        # {loss.percent:g} % loss: {loss.cause}")
        rules.append(f'        iifname "{loss.device}" numgen random mod 10000 < {threshold} drop')
    body = "\n".join(rules)
    return f"""table ip icelab_impair {{
    chain loss {{
        type filter hook prerouting priority raw - 50; policy accept;
{body}
    }}
}}
"""


# -- netem support ------------------------------------------------------------------------


def netem_available() -> bool:
    """Whether this kernel can run a netem qdisc (loaded, built in, or loadable)."""
    return _kernel_has_netem()


@functools.cache
def _kernel_has_netem() -> bool:
    """Asked once per process. The last resort is to try: add a netem qdisc on the
    loopback of a throw-away network namespace (`unshare -n`), which also makes the
    kernel load the module if it can."""
    if Path("/sys/module/sch_netem").exists():
        return True
    release = Path("/proc/sys/kernel/osrelease").read_text().strip()
    for listing in ("modules.builtin", "modules.dep"):  # built in, or there to load
        path = Path(f"/lib/modules/{release}/{listing}")
        if path.is_file() and "/sch_netem.ko" in path.read_text():
            return True
    if shutil.which("unshare") is None or shutil.which("tc") is None:
        return False
    probe = "ip link set lo up && tc qdisc add dev lo root netem delay 1ms"
    try:
        completed = subprocess.run(
            ["unshare", "-n", "sh", "-c", probe], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0
