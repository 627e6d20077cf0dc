"""Scenarios: a topology plus the conditions on its nodes, servers, peers and expectations.

`load_scenario` accepts a bundled name or a path, validates against the JSON Schema,
then checks what a schema cannot (that every named node exists and fits its job).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab.core.addresses import family
from lab.core.documents import JsonObject, load_document
from lab.core.errors import LabInputError
from lab.network.conditions import NodeConditions
from lab.network.firewall import FirewallPolicy, firewall_from_spec
from lab.network.impairments import Impairments, impairments_from_spec
from lab.network.ipv6 import nat64_problem
from lab.network.nat import nat_from_spec
from lab.network.topology import REPO_ROOT, Interface, Node, Topology, load_topology
from lab.scenario.call_events import Call, CallEvent, parse_call
from lab.scenario.dns import DEFAULT_REGION, DnsSettings, ServiceNames, dns_from_spec
from lab.scenario.dns import NAME as DNS_NAME

SCENARIO_DIR = REPO_ROOT / "scenarios"
ROLES = ("viewer", "master")
MODES = ("stun-turn", "turn-only", "stun-only", "disabled")
URL_HOST = re.compile(r"^(?P<scheme>stun|turns?):(?P<host>[^:?]+)(?P<rest>.*)$")

DEFAULT_ICE_SERVERS: list[JsonObject] = [
    {"urls": ["stun:{stun_turn}:3478"]},
    {
        "urls": [
            "turn:{stun_turn}:3478?transport=udp",
            "turn:{stun_turn}:3478?transport=tcp",
            "turns:{stun_turn}:443?transport=tcp",
        ],
        "credentials": "rest",
    },
]


@dataclass(frozen=True)
class PeerPlacement:
    role: str
    host: str
    mode: str = "stun-turn"
    agent: str = "aiortc"  # which ICE agent runs this peer (lab/peers/agents.py)
    reveal_host_addresses: bool = False  # a browser announces its real host addresses


@dataclass(frozen=True)
class StunTurnServer:
    host: str
    software: str = "coturn"
    denied_peers: tuple[str, ...] = ()
    faults: JsonObject = field(default_factory=dict)


@dataclass(frozen=True)
class IceServer:
    """One RTCIceServer entry with node names already resolved to addresses."""

    urls: tuple[str, ...]
    credentials: str | dict[str, str] = "none"
    ttl_s: int = 300


def kvs_ice_servers(
    spec: JsonObject, addresses: list[str], names: ServiceNames | None = None
) -> list[JsonObject]:
    """The service's ICE servers: STUN on 443, then TURN sets of three URLs on 443.

    Set i uses the STUN/TURN node's address i (the node may have several), as the
    service's sets name different TURN hosts; with `names`, by the service's host names
    (`stun.kinesisvideo.<region>.amazonaws.com`, `<a-b-c-d>.t-<8hex>...`), not addresses.
    """
    sets = spec.get("turn_sets", 2)
    used = 1 if spec.get("use_sets", "all") == "first" else sets
    ttl = spec.get("ttl_s", 300)
    stun = names.stun if names else addresses[0]
    servers: list[JsonObject] = [{"urls": [f"stun:{stun}:443"]}]
    for index in range(used):
        host = addresses[index % len(addresses)]
        host = names.turn(host) if names else host
        urls = [
            f"turn:{host}:443?transport=udp",
            f"turns:{host}:443?transport=udp",
            f"turns:{host}:443?transport=tcp",
        ]
        servers.append({"urls": urls, "credentials": "rest", "ttl_s": ttl})
    return servers


@dataclass
class Scenario:
    name: str
    description: str
    teaches: str
    topology: Topology
    conditions: dict[str, NodeConditions]
    peers: dict[str, PeerPlacement]
    stun_turn: StunTurnServer | None
    signaling_host: str
    ice_servers: list[IceServer]
    timing: str
    expect: JsonObject
    source: Path
    document: JsonObject = field(repr=False, default_factory=dict)
    #: The service's region: its host names, ARNs and SigV4 scope (lab/servers/dns.py).
    region: str = DEFAULT_REGION
    dns: DnsSettings = field(default_factory=DnsSettings)

    @property
    def service_names(self) -> ServiceNames:
        return ServiceNames.for_region(self.region)

    #: An ongoing call and the network changes during it (lab/scenario/call_events.py).
    call: Call | None = None
    events: tuple[CallEvent, ...] = ()

    @property
    def added_rtt_ms(self) -> float:
        """The most the scenario's delays and jitter add to a round trip (every impaired
        interface of every node summed: an upper bound for any path), for stretching STUN
        timeouts."""
        return sum(i.added_rtt_ms for c in self.conditions.values() for i in c.impairments)

    @property
    def loss_percent(self) -> float:
        """The highest loss of any impaired interface (0 without loss)."""
        return max(
            (i.loss_percent for c in self.conditions.values() for i in c.impairments),
            default=0.0,
        )

    def resolved_conditions(self) -> JsonObject:
        """Each node's NAT behaviour, firewall and impairments, spelled out."""
        return {
            node: {
                "nat": c.nat.describe() if c.nat else None,
                "firewall": _firewall_doc(c.firewall),
                "impairments": c.describe_impairments(),
                **({"nat64": True} if c.nat64 else {}),
            }
            for node, c in self.conditions.items()
        }

    def resolved(self) -> JsonObject:
        """The scenario with defaults filled in and the topology spelled out (`lab show`)."""
        return {
            "name": self.name,
            "description": self.description,
            "teaches": self.teaches,
            "source": str(self.source),
            "topology": self.topology.resolved(),
            "conditions": self.resolved_conditions(),
            "peers": {
                r: {"host": p.host, "mode": p.mode, "agent": p.agent}
                | ({"reveal_host_addresses": True} if p.reveal_host_addresses else {})
                for r, p in self.peers.items()
            },
            "servers": {
                "stun_turn": (
                    {
                        "host": self.stun_turn.host,
                        "software": self.stun_turn.software,
                        "denied_peers": list(self.stun_turn.denied_peers),
                        "faults": self.stun_turn.faults,
                    }
                    if self.stun_turn
                    else None
                ),
                "signaling": {"host": self.signaling_host},
            },
            "ice_servers": [
                {"urls": list(s.urls), "credentials": s.credentials, "ttl_s": s.ttl_s}
                for s in self.ice_servers
            ],
            "timing": self.timing,
            "region": self.region,
            "dns": asdict(self.dns),
            **self._resolved_call(),
            "expect": self.expect,
        }

    def _resolved_call(self) -> JsonObject:
        """The ongoing call and its events, when the scenario has one."""
        if self.call is None:
            return {}
        return {"call": self.call.as_dict(), "events": [e.as_dict() for e in self.events]}


def _firewall_doc(policy: FirewallPolicy | None) -> JsonObject | None:
    if policy is None:
        return None
    return asdict(policy)


def bundled_scenarios() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.yaml"))


def resolve_scenario_path(reference: str) -> Path:
    """A bundled scenario name or a path to a scenario file."""
    path = Path(reference)
    if reference.endswith((".yaml", ".yml")) or "/" in reference:
        if path.is_file():
            return path
        raise LabInputError(f"{reference}: no such scenario file")
    bundled = SCENARIO_DIR / f"{reference}.yaml"
    if bundled.is_file():
        return bundled
    known = ", ".join(p.stem for p in bundled_scenarios())
    raise LabInputError(f"unknown scenario '{reference}' (bundled: {known}; see `lab list`)")


def load_scenario(reference: str) -> Scenario:
    """Load, validate and cross-check a scenario and its topology."""
    path = resolve_scenario_path(reference)
    document = load_document(path, "scenario")
    try:
        topology = load_topology(document["topology"], relative_to=path)
    except LabInputError as exc:
        if str(exc).startswith("unknown topology"):
            raise LabInputError(f"{path}: topology: {exc}") from None
        raise
    return build_scenario(document, topology, path)


def build_scenario(document: JsonObject, topology: Topology, path: Path) -> Scenario:
    """Turn a schema-valid scenario document into a checked Scenario."""
    checker = _Checker(path, topology)
    peers = {
        role: PeerPlacement(
            role,
            spec["host"],
            spec.get("mode", "stun-turn"),
            spec.get("agent", "aiortc"),
            spec.get("reveal_host_addresses", False),
        )
        for role, spec in document["peers"].items()
    }
    for role, placement in peers.items():
        checker.node(f"peers.{role}.host", placement.host, {"peer"})
    if peers["viewer"].host == peers["master"].host:
        raise LabInputError(f"{path}: peers: viewer and master need hosts of their own")
    servers = document.get("servers", {})
    stun_turn = _stun_turn(servers, topology, checker)
    signaling_host = servers.get("signaling", {}).get("host") or checker.only_role("signaling")
    checker.node("servers.signaling.host", signaling_host, {"signaling"})
    server_hosts = [h for h in (stun_turn.host if stun_turn else None, signaling_host) if h]
    conditions = _conditions(document.get("conditions", {}), topology, checker, server_hosts)
    region = document.get("region", DEFAULT_REGION)
    ice_servers = _ice_servers(document, topology, stun_turn, checker, region)
    dns = dns_from_spec(document.get("dns"), checker.fail)
    for node in dns.lan_resolvers:
        checker.node(f"dns.lan_resolvers.{node}", node, {"nat", "firewall", "router"})
    _one_resolver_per_gateway(conditions, dns.lan_resolvers, checker)
    nat_nodes = {name for name, c in conditions.items() if c.nat is not None}
    turn_host = stun_turn.host if stun_turn else None
    firewall_nodes = frozenset(name for name, c in conditions.items() if c.firewall is not None)
    call, events = parse_call(document, checker, nat_nodes, turn_host, firewall_nodes)
    _call_expectations(document["expect"], events, checker)
    _address_expectations(document["expect"], checker)
    return Scenario(
        name=document["name"],
        description=document["description"],
        teaches=document.get("teaches", "").strip(),
        topology=topology,
        conditions=conditions,
        peers=peers,
        stun_turn=stun_turn,
        signaling_host=signaling_host,
        ice_servers=ice_servers,
        timing=document.get("timing", "fast"),
        expect=document["expect"],
        source=path,
        document=document,
        region=region,
        dns=dns,
        call=call,
        events=events,
    )


def _one_resolver_per_gateway(
    conditions: dict[str, NodeConditions], lan_resolvers: Any, checker: _Checker
) -> None:
    """A NAT64 gateway's DNS64 is its LAN's resolver: it cannot also run the LAN resolver
    that `dns.lan_resolvers` or a firewall's rules by name would give it."""
    for name, condition in conditions.items():
        if not condition.nat64:
            continue
        if name in lan_resolvers:
            raise checker.fail(
                f"dns.lan_resolvers.{name}", "the node runs DNS64 (nat64), its LAN's resolver"
            )
        if condition.firewall is not None and condition.firewall.name_sets():
            raise checker.fail(
                f"conditions.{name}.firewall",
                "rules by name need the node's LAN resolver, but it runs DNS64 (nat64)",
            )


def _call_expectations(
    expect: JsonObject, events: tuple[CallEvent, ...], checker: _Checker
) -> None:
    """Recovery can only be expected of a call with events."""
    for key in ("recovers_within_s", "call_breaks", "ice_restart", "selected_pair_changes_to"):
        if key in expect and not events:
            raise checker.fail(f"expect.{key}", "needs `events` (and `call`) to judge recovery")


def _address_expectations(expect: JsonObject, checker: _Checker) -> None:
    """Each entry of `candidate_addresses` is an address or a node of the topology."""
    for role, by_type in expect.get("candidate_addresses", {}).items():
        for kind, entries in by_type.items():
            for n, entry in enumerate(entries):
                if family(entry) == "unknown":  # not an address: a node's name
                    checker.node(f"expect.candidate_addresses.{role}.{kind}[{n}]", entry)


class _Checker:
    """Cross-reference checks whose errors name the scenario file and field."""

    def __init__(self, path: Path, topology: Topology) -> None:
        self.path = path
        self.topology = topology

    def fail(self, where: str, message: str) -> LabInputError:
        return LabInputError(f"{self.path}: {where}: {message}")

    def node(self, where: str, name: str, roles: set[str] | None = None) -> Node:
        """The named node, which must exist (and have one of `roles`, if given)."""
        node = self.topology.nodes.get(name)
        if node is None:
            known = ", ".join(self.topology.nodes)
            raise self.fail(where, f"no node '{name}' in topology {self.topology.name} ({known})")
        if roles is not None and node.role not in roles:
            raise self.fail(where, f"node '{name}' is a {node.role}, expected {'/'.join(roles)}")
        return node

    def only_role(self, role: str) -> str:
        names = [n.name for n in self.topology.nodes.values() if n.role == role]
        if len(names) != 1:
            raise self.fail("servers", f"name the {role} host (topology has {len(names)})")
        return names[0]


def _stun_turn(servers: JsonObject, topology: Topology, checker: _Checker) -> StunTurnServer | None:
    spec = servers.get("stun_turn")
    if spec is None:
        hosts = [n.name for n in topology.nodes.values() if n.role == "stun-turn"]
        if not hosts:
            return None
        spec = {"host": hosts[0]}
    checker.node("servers.stun_turn.host", spec["host"], {"stun-turn"})
    return StunTurnServer(
        host=spec["host"],
        software=spec.get("software", "coturn"),
        denied_peers=tuple(spec.get("denied_peers", ())),
        faults=dict(spec.get("faults", {})),
    )


def _conditions(
    spec: JsonObject,
    topology: Topology,
    checker: _Checker,
    server_hosts: list[str] | None = None,
) -> dict[str, NodeConditions]:
    conditions = {}
    for name, node in topology.nodes.items():
        if node.role == "nat":
            conditions[name] = NodeConditions(nat=nat_from_spec("port-restricted-cone", name))
    for name, condition in spec.items():
        roles = {"nat", "firewall", "router", "peer"}
        if set(condition) <= {"impairments"}:
            roles |= {"stun-turn", "signaling"}  # any node's link can be impaired
        node = checker.node(f"conditions.{name}", name, roles)
        if node.uplink() is None and ("nat" in condition or "firewall" in condition):
            raise checker.fail(f"conditions.{name}", "the node has no gateway, so no uplink")
        default_nat = conditions.get(name, NodeConditions()).nat
        nat = (
            nat_from_spec(condition["nat"], f"{checker.path}: conditions.{name}.nat")
            if "nat" in condition
            else default_nat
        )
        firewall = _firewall(condition.get("firewall"), checker, name, server_hosts)
        impairments = _impairments(condition.get("impairments"), node, checker, name)
        listed = isinstance(condition.get("impairments"), list)
        nat64 = bool(condition.get("nat64"))
        if nat64 and (problem := nat64_problem(node)):
            raise checker.fail(f"conditions.{name}.nat64", problem)
        conditions[name] = NodeConditions(nat, firewall, impairments, listed, nat64)
    return conditions


def _firewall(
    spec: str | JsonObject | None,
    checker: _Checker,
    name: str,
    server_hosts: list[str] | None,
) -> FirewallPolicy | None:
    """The node's firewall, with host names (`allow_hosts`, rules' `hosts`) resolved to
    every address of those nodes."""
    where = f"conditions.{name}.firewall"
    if isinstance(spec, dict) and "allow_hosts" in spec and spec.get("preset") != "allowlist":
        raise checker.fail(f"{where}.allow_hosts", "only an allowlist has it (preset: allowlist)")
    for direction in ("outbound", "inbound"):
        rules = (spec.get(direction) or {}).get("rules", ()) if isinstance(spec, dict) else ()
        for index, rule in enumerate(rules):
            for n, name in enumerate(rule.get("names", ())):
                if not DNS_NAME.match(name):
                    raise checker.fail(
                        f"{where}.{direction}.rules[{index}].names[{n}]",
                        f"'{name}' is not a DNS name (e.g. *.kinesisvideo.us-west-2.amazonaws.com)",
                    )
            if rule.get("names") and (rule.get("addresses") or rule.get("hosts")):
                raise checker.fail(
                    f"{where}.{direction}.rules[{index}].names",
                    "a rule by name cannot also have addresses or hosts (write two rules)",
                )

    def resolve(field: str, host: str) -> list[str]:
        return checker.node(f"{where}.{field}", host).addresses

    return firewall_from_spec(spec, resolve, server_hosts or ())


def _impairments(
    spec: JsonObject | list[JsonObject] | None, node: Node, checker: _Checker, name: str
) -> tuple[Impairments, ...]:
    """The node's link impairments: one object (on the interface named, else the uplink or
    only link) or a list with one entry per interface, since a node can have several links."""
    where = f"conditions.{name}.impairments"
    if spec is None:
        return ()
    if isinstance(spec, dict):
        default = node.uplink() or (node.interfaces[0] if len(node.interfaces) == 1 else None)
        missing = f"node '{name}' has several interfaces and no uplink: name one"
        return (_impairment(spec, node, checker, where, default, missing),)
    only = node.interfaces[0] if len(node.interfaces) == 1 else None
    missing = f"node '{name}' has several interfaces: every entry of the list names one"
    entries = tuple(
        _impairment(entry, node, checker, f"{where}[{n}]", only, missing)
        for n, entry in enumerate(spec)
    )
    _one_entry_per_interface(entries, checker, where)
    return entries


def _impairment(
    spec: JsonObject,
    node: Node,
    checker: _Checker,
    where: str,
    default: Interface | None,
    missing: str,
) -> Impairments:
    """One interface's impairments; `missing` says why `interface` is needed without default."""
    names = [i.name for i in node.interfaces]
    if "interface" in spec:
        if spec["interface"] not in names:
            raise checker.fail(
                f"{where}.interface",
                f"node '{node.name}' has no interface '{spec['interface']}' ({', '.join(names)})",
            )
    elif default is None:
        raise checker.fail(f"{where}.interface", f"{missing} ({', '.join(names)})")
    _check_impairment_fields(spec, checker, where)
    impairments = impairments_from_spec(spec, default.name if default else "")
    assert impairments is not None  # spec is not None
    try:
        return impairments.resolved()  # `auto` -> what will carry it, for show and result
    except LabInputError as exc:
        raise checker.fail(f"{where}.mechanism", str(exc)) from None


#: Fields that need another one set: netem refuses them alone, and so does the lab.
_NEEDS = {
    "jitter_ms": ("delay_ms", "jitter varies a delay: set delay_ms too"),
    "reorder_percent": (
        "delay_ms",
        "reordering sends some packets ahead of delayed ones: set delay_ms too",
    ),
    "jitter_distribution": ("jitter_ms", "the distribution draws the jitter: set jitter_ms too"),
    "jitter_reorders": ("jitter_ms", "says what jitter does to the order: set jitter_ms too"),
}
_EMULATED = ("delay_ms", "jitter_ms", "reorder_percent", "duplicate_percent", "burst_loss")


def _check_impairment_fields(spec: JsonObject, checker: _Checker, where: str) -> None:
    """What the schema cannot say: fields that need others, and an entry that does nothing."""
    for field_name, (needed, message) in _NEEDS.items():
        if _given(spec, field_name) and not _given(spec, needed):
            raise checker.fail(f"{where}.{field_name}", message)
    if not any(spec.get(k) for k in ("loss_percent", "rate_kbit", *_EMULATED)):
        raise checker.fail(where, "set at least one of loss_percent, rate_kbit, delay_ms")
    if spec.get("mechanism", "auto") != "auto" and not any(spec.get(k) for k in _EMULATED):
        raise checker.fail(
            f"{where}.mechanism",
            "only delay, jitter, reordering, duplication and burst loss need one: "
            "loss_percent and rate_kbit work the same on every kernel",
        )


def _given(spec: JsonObject, name: str) -> bool:
    """Whether the field says something: any flag or word, a number other than 0."""
    value = spec.get(name)
    return isinstance(value, bool) or value not in (None, 0)


def _one_entry_per_interface(
    entries: tuple[Impairments, ...], checker: _Checker, where: str
) -> None:
    """Two entries for one interface would stack qdiscs and ifb devices that clash: refuse,
    unless one covers only `out` and the other only `in` (different figures each way)."""
    first: dict[tuple[str, str], int] = {}
    for n, entry in enumerate(entries):
        for direction in entry.directions:
            key = (entry.interface, direction)
            if key in first:
                raise checker.fail(
                    f"{where}[{n}].interface",
                    f"interface '{entry.interface}' is already impaired by "
                    f"{where}[{first[key]}]: one entry per interface (or two, one with "
                    "direction: out and one with direction: in)",
                )
            first[key] = n


def _ice_servers(
    document: JsonObject,
    topology: Topology,
    stun_turn: StunTurnServer | None,
    checker: _Checker,
    region: str = DEFAULT_REGION,
) -> list[IceServer]:
    if isinstance(document.get("ice_servers"), dict):
        spec = document["ice_servers"]["kvs"]
        host = spec.get("host") or (stun_turn.host if stun_turn else None)
        if host is None:
            raise checker.fail("ice_servers.kvs.host", "no STUN/TURN node to point at")
        checker.node("ice_servers.kvs.host", host, {"stun-turn"})
        names = ServiceNames.for_region(region)
        raw = kvs_ice_servers(spec, topology.node(host).addresses, names)
    elif "ice_servers" in document:
        raw = document["ice_servers"]
    elif stun_turn is not None:
        raw = [
            {**s, "urls": [u.format(stun_turn=stun_turn.host) for u in s["urls"]]}
            for s in DEFAULT_ICE_SERVERS
        ]
    else:
        raw = []
    servers = []
    for index, spec in enumerate(raw):
        urls = tuple(
            _resolve_url(url, topology, checker, f"ice_servers[{index}].urls[{n}]")
            for n, url in enumerate(spec["urls"])
        )
        servers.append(IceServer(urls, spec.get("credentials", "none"), spec.get("ttl_s", 300)))
    return servers


def _resolve_url(url: str, topology: Topology, checker: _Checker, where: str) -> str:
    """Replace a node name in a STUN/TURN URL by that node's primary address; a DNS name
    (with a dot) is kept, for the run's DNS server to answer (lab/servers/dns.py)."""
    match = URL_HOST.match(url)
    if match is None:
        raise checker.fail(where, f"not a STUN/TURN URL: {url}")
    host = match["host"]
    if host in topology.nodes:
        host = topology.node(host).primary_address
    elif not re.fullmatch(r"[0-9.]+", host) and "." not in host:
        raise checker.fail(where, f"'{host}' is neither a node of the topology nor an address")
    return f"{match['scheme']}:{host}{match['rest']}"
