"""An ongoing call and the network changes during it: the scenario's `call` and `events`.

A run normally ends once the peers have connected and every pair has a final state. With
`call`, the peers keep the call going for `duration_s` with steady data channel traffic,
and `events` change the network under it at times counted from the moment both peers are
connected: a link outage, a lossy spell, a NAT that forgets its mappings or moves them to
new ports, a firewall whose idle timeout shortens. `pauses` stop the application's
messages for a while, as an application with nothing to say does: only then does an idle
timeout matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError
from lab.network.topology import Interface, Node, Topology

DEFAULT_MESSAGES_PER_S = 20.0
DEFAULT_MESSAGE_BYTES = 200


@dataclass(frozen=True)
class Pause:
    """The viewer sends no message from `at_s` for `for_s` (the call's clock)."""

    at_s: float
    for_s: float

    @property
    def ends_s(self) -> float:
        return self.at_s + self.for_s

    def as_dict(self) -> dict[str, float]:
        return {"at_s": self.at_s, "for_s": self.for_s}


@dataclass(frozen=True)
class Call:
    duration_s: float
    messages_per_s: float = DEFAULT_MESSAGES_PER_S
    message_bytes: int = DEFAULT_MESSAGE_BYTES
    #: The application restarts ICE when the connection is lost (agents that can).
    ice_restart: bool = False
    pauses: tuple[Pause, ...] = ()

    def as_dict(self) -> JsonObject:
        return {
            "duration_s": self.duration_s,
            "messages_per_s": self.messages_per_s,
            "message_bytes": self.message_bytes,
            "ice_restart": self.ice_restart,
            "pauses": [p.as_dict() for p in self.pauses],
        }


@dataclass(frozen=True)
class CallEvent:
    """One change: `kind` is link-down, link-loss, nat-flush, nat-rebind, idle-timeout
    (`idle_timeout_s`), turn-restart or uplink-switch (the host's default uplink goes away;
    `interface` is the one left)."""

    at_s: float
    kind: str
    node: str
    interface: str | None = None
    duration_s: float = 0.0  # how long a link-down or link-loss lasts
    loss_percent: float = 0.0
    idle_timeout_s: float = 0.0

    @property
    def ends_s(self) -> float:
        return self.at_s + self.duration_s

    @property
    def target(self) -> str:
        return f"{self.node}:{self.interface}" if self.interface else self.node

    def describe(self) -> str:
        if self.kind == "link-down":
            return f"{self.target} down for {self.duration_s:g} s"
        if self.kind == "link-loss":
            return f"{self.target} loses {self.loss_percent:g} % for {self.duration_s:g} s"
        if self.kind == "uplink-switch":
            return f"{self.node} loses its default uplink and moves to {self.interface}"
        if self.kind == "turn-restart":
            return "the TURN server restarts (its allocations are lost)"
        if self.kind == "nat-rebind":
            return f"{self.node} moves its NAT mappings to new public ports"
        if self.kind == "idle-timeout":
            return f"{self.node} forgets UDP flows idle for {self.idle_timeout_s:g} s"
        return f"{self.node} forgets its NAT mappings"

    def as_dict(self) -> JsonObject:
        return {
            "at_s": self.at_s,
            "kind": self.kind,
            "target": self.target,
            "duration_s": self.duration_s,
            "loss_percent": self.loss_percent or None,
            "idle_timeout_s": self.idle_timeout_s or None,
            "what": self.describe(),
        }


class Checker(Protocol):
    """The scenario loader's cross-reference checker (lab/scenario/scenario.py)."""

    topology: Topology

    def fail(self, where: str, message: str) -> LabInputError: ...

    def node(self, where: str, name: str, roles: set[str] | None = None) -> Node: ...


def parse_call(
    document: JsonObject,
    checker: Checker,
    nat_nodes: set[str],
    turn_host: str | None = None,
    firewall_nodes: frozenset[str] = frozenset(),
) -> tuple[Call | None, tuple[CallEvent, ...]]:
    """The scenario's call and its events, cross-checked against the topology."""
    spec = document.get("call")
    events_spec = document.get("events") or []
    if events_spec and spec is None:
        raise checker.fail("events", "events happen during a call: add `call: {duration_s: ...}`")
    if spec is None:
        return None, ()
    call = Call(
        float(spec["duration_s"]),
        float(spec.get("messages_per_s", DEFAULT_MESSAGES_PER_S)),
        int(spec.get("message_bytes", DEFAULT_MESSAGE_BYTES)),
        bool(spec.get("ice_restart", False)),
        _pauses(spec, checker),
    )
    stateful = {"nat": nat_nodes, "stateful": nat_nodes | firewall_nodes}
    events = tuple(
        _event(entry, checker, f"events[{n}]", stateful, turn_host)
        for n, entry in enumerate(events_spec)
    )
    for n, event in enumerate(events):
        if event.at_s >= call.duration_s:
            raise checker.fail(
                f"events[{n}].at_s",
                f"{event.at_s:g} s is past the call's end (call.duration_s: {call.duration_s:g})",
            )
    return call, events


def _pauses(spec: JsonObject, checker: Checker) -> tuple[Pause, ...]:
    """The call's pauses, in time order, each within the call and apart from the others."""
    pauses = sorted(
        (Pause(float(p["at_s"]), float(p["for_s"])) for p in spec.get("pauses") or []),
        key=lambda p: p.at_s,
    )
    duration = float(spec["duration_s"])
    for n, pause in enumerate(pauses):
        if pause.ends_s >= duration:
            raise checker.fail(
                f"call.pauses[{n}]",
                f"ends at {pause.ends_s:g} s, not before the call's end ({duration:g} s): "
                "data must flow again to show whether the call survived",
            )
        if n and pause.at_s < pauses[n - 1].ends_s:
            raise checker.fail(f"call.pauses[{n}]", "overlaps the pause before it")
    return tuple(pauses)


def _event(
    spec: JsonObject,
    checker: Checker,
    where: str,
    stateful: dict[str, set[str]],
    turn_host: str | None,
) -> CallEvent:
    at_s = float(spec["at_s"])
    if "switch_uplink" in spec:
        _only(spec, {"at_s", "host", "switch_uplink"}, checker, where)
        if "host" not in spec:
            raise checker.fail(f"{where}.host", "name the host that changes networks")
        node = checker.node(f"{where}.host", spec["host"])
        moves_to = [
            i.name for g in node.other_gateways if (i := node.interface_towards(g)) is not None
        ]
        if spec["switch_uplink"] not in moves_to:
            raise checker.fail(
                f"{where}.switch_uplink",
                f"'{spec['switch_uplink']}' is none of {node.name}'s further uplinks "
                f"({', '.join(moves_to) or 'it has none: topology other_gateways'})",
            )
        return CallEvent(at_s, "uplink-switch", node.name, spec["switch_uplink"])
    if "server" in spec:
        _only(spec, {"at_s", "server", "restart"}, checker, where)
        if not spec.get("restart"):
            raise checker.fail(f"{where}.restart", "say `restart: true` (the one server event)")
        if turn_host is None:
            raise checker.fail(f"{where}.server", "this scenario runs no STUN/TURN server")
        return CallEvent(at_s, "turn-restart", turn_host)
    if "idle_timeout_s" in spec:
        _only(spec, {"at_s", "node", "idle_timeout_s"}, checker, where)
        node = _stateful_node(spec, checker, where, stateful["stateful"], "a NAT or firewall")
        return CallEvent(at_s, "idle-timeout", node, idle_timeout_s=float(spec["idle_timeout_s"]))
    if "nat" in spec:
        _only(spec, {"at_s", "node", "nat"}, checker, where)
        node = _stateful_node(spec, checker, where, stateful["nat"], "a NAT")
        return CallEvent(at_s, f"nat-{spec['nat']}", node)
    if "link" not in spec:
        raise checker.fail(
            where,
            "say what happens: `link` with down_s or loss_percent, `nat`, `idle_timeout_s`, "
            "`server` or `switch_uplink`",
        )
    node, interface = _link(spec["link"], checker, f"{where}.link")
    if "down_s" in spec:
        _only(spec, {"at_s", "link", "down_s"}, checker, where)
        return CallEvent(at_s, "link-down", node.name, interface.name, float(spec["down_s"]))
    if "loss_percent" in spec:
        _only(spec, {"at_s", "link", "loss_percent", "for_s"}, checker, where)
        if "for_s" not in spec:
            raise checker.fail(f"{where}.for_s", "say how long the loss lasts")
        return CallEvent(
            at_s,
            "link-loss",
            node.name,
            interface.name,
            float(spec["for_s"]),
            float(spec["loss_percent"]),
        )
    raise checker.fail(where, "a link event needs down_s, or loss_percent with for_s")


def _stateful_node(
    spec: JsonObject, checker: Checker, where: str, allowed: set[str], what: str
) -> str:
    """The event's `node`, which must have `what` in the scenario's conditions."""
    if "node" not in spec:
        raise checker.fail(f"{where}.node", f"name the node ({what}) whose state changes")
    checker.node(f"{where}.node", spec["node"])
    if spec["node"] not in allowed:
        named = what.removeprefix("a ")
        raise checker.fail(
            f"{where}.node", f"node '{spec['node']}' has no {named} in this scenario's conditions"
        )
    return str(spec["node"])


def _only(spec: JsonObject, allowed: set[str], checker: Checker, where: str) -> None:
    extra = sorted(set(spec) - allowed)
    if extra:
        raise checker.fail(f"{where}.{extra[0]}", "does not belong to this kind of event")


def _link(reference: str, checker: Checker, where: str) -> tuple[Node, Interface]:
    """NODE or NODE:INTERFACE -> the node and the interface (default its uplink or only one)."""
    name, _, interface_name = reference.partition(":")
    node = checker.node(where, name)
    if interface_name:
        for interface in node.interfaces:
            if interface.name == interface_name:
                return node, interface
        known = ", ".join(i.name for i in node.interfaces)
        raise checker.fail(where, f"node '{name}' has no interface '{interface_name}' ({known})")
    default = node.uplink() or (node.interfaces[0] if len(node.interfaces) == 1 else None)
    if default is None:
        raise checker.fail(where, f"node '{name}' has several interfaces and no uplink: name one")
    return node, default
