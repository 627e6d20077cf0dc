"""The result of a run, typed: what every reader takes (the terminal summary, `lab
explain`, the HTML report, `lab diagnose`'s verdict, `lab compare`, `lab matrix`).

`RunResult.to_json()` is the one serializer to the document `lab schema result`
describes (the schema stays the contract; a test checks every bundled scenario's result
against it), and `RunResult.from_json()` reads such a document back, a saved one too.
Keys a class does not model ride along in its `extra`, so a document reads and writes
back unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.core.errors import LabInputError
from lab.core.roles import ROLES
from lab.observations.ice import Candidate, CandidatePair, JsonObject, SelectedPair


@dataclass
class PeerResult:
    """One peer: the candidates its agent gathered and learned, and how it ended
    (`$defs/peer`)."""

    candidates: list[Candidate]
    #: The other side's candidates as this agent learned them (None: not recorded).
    remote_candidates: list[Candidate] | None = None
    #: host, mode, agent, software, error, ice_state, gathering_errors, command, proxy...
    extra: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, document: JsonObject) -> PeerResult:
        remote = document.get("remote_candidates")
        rest = {k: v for k, v in document.items() if k not in ("candidates", "remote_candidates")}
        return cls(
            [Candidate.from_json(c) for c in document.get("candidates", [])],
            None if remote is None else [Candidate.from_json(c) for c in remote],
            rest,
        )

    def to_json(self) -> JsonObject:
        document: JsonObject = {}
        for key in ("host", "mode", "agent", "software"):  # the order peers are read in
            if key in self.extra:
                document[key] = self.extra[key]
        document["candidates"] = [c.to_json() for c in self.candidates]
        if self.remote_candidates is not None:
            document["remote_candidates"] = [c.to_json() for c in self.remote_candidates]
        return {**document, **{k: v for k, v in self.extra.items() if k not in document}}

    @property
    def host(self) -> str | None:
        return self.extra.get("host")

    @property
    def agent(self) -> str | None:
        return self.extra.get("agent")

    @property
    def error(self) -> str | None:
        """Why the peer could not do its part (None: it did)."""
        return self.extra.get("error")

    @property
    def software(self) -> JsonObject | None:
        """The agent's own name and version (a browser's from the browser itself)."""
        return self.extra.get("software")


@dataclass
class Timings:
    """How long the run took (`timings`): gathering per peer, connecting, the whole run
    and each of its stages (`phases`)."""

    gathering_s: dict[str, float | None]
    connected_s: float | None
    total_s: float
    phases: dict[str, float] | None = None
    extra: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, document: JsonObject) -> Timings:
        rest = {k: v for k, v in document.items() if k not in _TIMING_KEYS}
        return cls(document["gathering_s"], document["connected_s"], document["total_s"],
                   document.get("phases"), rest)  # fmt: skip

    def to_json(self) -> JsonObject:
        document: JsonObject = {
            "gathering_s": self.gathering_s,
            "connected_s": self.connected_s,
            "total_s": self.total_s,
        }
        if self.phases is not None:
            document["phases"] = self.phases
        return {**document, **self.extra}


_TIMING_KEYS = ("gathering_s", "connected_s", "total_s", "phases")


@dataclass
class ServerFacts:
    """What the run's servers saw (`servers`): the STUN/TURN server's requests and what
    each host's resolver was told."""

    turn_software: str | None
    turn_requests: list[JsonObject]
    dns_answers: list[JsonObject] | None = None
    extra: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, document: JsonObject) -> ServerFacts:
        turn, dns = document.get("turn") or {}, document.get("dns")
        rest = {k: v for k, v in document.items() if k not in ("turn", "dns")}
        answers = None if dns is None else dns.get("answers", [])
        return cls(turn.get("software"), turn.get("requests") or [], answers, rest)

    def to_json(self) -> JsonObject:
        document: JsonObject = {
            "turn": {"software": self.turn_software, "requests": self.turn_requests}
        }
        if self.dns_answers is not None:
            document["dns"] = {"answers": self.dns_answers}
        return {**document, **self.extra}


@dataclass
class Expectation:
    """One check of the scenario's `expect:` block against the run."""

    check: str
    met: bool
    observed: Any
    extra: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, document: JsonObject) -> Expectation:
        rest = {k: v for k, v in document.items() if k not in ("check", "met", "observed")}
        return cls(document["check"], document["met"], document.get("observed"), rest)

    def to_json(self) -> JsonObject:
        return {"check": self.check, "met": self.met, "observed": self.observed, **self.extra}


@dataclass
class RunResult:
    """Everything one run observed, and what it means for the scenario."""

    scenario: str
    outcome: str  # connected | failed
    expectations_met: bool
    peers: dict[str, PeerResult]
    pairs: list[CandidatePair]
    selected: dict[str, SelectedPair | None]
    timings: Timings
    description: str = ""
    timing_profile: str | None = None
    #: ICE_LAB_SLOWDOWN when the run had one (lab/core/slowdown.py): every wait multiplied.
    slowdown: float | None = None
    #: The network the run was observed on: topology, each node's conditions, the graph.
    network: JsonObject | None = None
    servers: ServerFacts | None = None
    echo: bool = False
    #: The C SDK status a KVS application would have seen (lab/report/kvs_sdk.py).
    kvs_status: JsonObject | None = None
    expectations: list[Expectation] = field(default_factory=list)
    #: A scenario with an ongoing call: its timeline (lab/observations/call_timeline.py).
    call: JsonObject | None = None
    #: With --capture: where the pcaps are (lab/observations/capture/evidence.py).
    capture: JsonObject | None = None
    extra: JsonObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, document: JsonObject) -> RunResult:
        servers = document.get("servers")
        return cls(
            scenario=document["scenario"],
            outcome=document["outcome"],
            expectations_met=document["expectations_met"],
            peers={role: PeerResult.from_json(p) for role, p in document["peers"].items()},
            pairs=[CandidatePair.from_json(p) for p in document["pairs"]],
            selected={role: SelectedPair.from_json(s) for role, s in document["selected"].items()},
            timings=Timings.from_json(document["timings"]),
            description=document.get("description", ""),
            timing_profile=document.get("timing_profile"),
            slowdown=document.get("slowdown"),
            network=document.get("network"),
            servers=None if servers is None else ServerFacts.from_json(servers),
            echo=bool(document.get("echo", False)),
            kvs_status=document.get("kvs_status"),
            expectations=[Expectation.from_json(e) for e in document.get("expectations", [])],
            call=document.get("call"),
            capture=document.get("capture"),
            extra={k: v for k, v in document.items() if k not in _RESULT_KEYS},
        )

    def to_json(self) -> JsonObject:
        """The result document (`lab schema result`)."""
        document: JsonObject = {"scenario": self.scenario, "description": self.description,
                                "outcome": self.outcome,
                                "expectations_met": self.expectations_met}  # fmt: skip
        if self.timing_profile is not None:
            document["timing_profile"] = self.timing_profile
        if self.slowdown is not None:
            document["slowdown"] = self.slowdown
        if self.network is not None:
            document["network"] = self.network
        if self.servers is not None:
            document["servers"] = self.servers.to_json()
        document |= {
            "echo": self.echo,
            "peers": {role: peer.to_json() for role, peer in self.peers.items()},
            "pairs": [pair.to_json() for pair in self.pairs],
            "selected": {role: s and s.to_json() for role, s in self.selected.items()},
            "timings": self.timings.to_json(),
            "kvs_status": self.kvs_status,
        }
        if self.call is not None:
            document["call"] = self.call
        document["expectations"] = [e.to_json() for e in self.expectations]
        if self.capture is not None:
            document["capture"] = self.capture
        return {**document, **self.extra}

    def pairs_of(self, role: str) -> list[CandidatePair]:
        """The pairs `role`'s agent checked."""
        return [p for p in self.pairs if p.agent == role]

    def selected_pair_of(self, role: str) -> CandidatePair | None:
        """`role`'s selected pair as its agent checked it (its state, checks and failure)."""
        chosen = self.selected.get(role)
        if chosen is None:
            return None
        return next((p for p in self.pairs_of(role) if p.joins(chosen.local, chosen.remote)), None)

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(role for role in ROLES if role in self.peers)


_RESULT_KEYS = (
    "scenario", "description", "outcome", "expectations_met", "timing_profile", "slowdown",
    "network", "servers", "echo", "peers", "pairs", "selected", "timings", "kvs_status",
    "expectations", "call", "capture",
)  # fmt: skip


def load_result(path: Path) -> RunResult:
    """A saved result (`lab run --json`), read back; bad input names the file."""
    try:
        document = json.loads(path.read_text())
        return RunResult.from_json(document)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LabInputError(f"{path}: not a lab run result ({exc})") from None
