"""STUN, TURN and DTLS in a run's pcaps, decoded by tshark (Wireshark's dissectors).

The link files are merged (mergecap keeps one interface per file, in order) and read
in one tshark pass, so the dissectors load once. STUN is dissected on any port by
tshark's default UDP/TCP heuristics; a check relayed through TURN is dissected inside
ChannelData and Send/Data indications by enabling the heuristics Wireshark ships
disabled (`turnchannel_stun`, `stun_turn`). SCTP rides inside DTLS encrypted: only the
DTLS record headers are visible.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from lab.core.documents import JsonObject
from lab.core.errors import LabRunError
from lab.observations.ice import endpoint

#: Heuristic dissectors Wireshark ships disabled: STUN inside TURN ChannelData and inside
#: a Send/Data indication's DATA attribute, and DTLS there.
HEURISTICS = ("turnchannel_stun", "stun_turn", "dtls_stun")
FIELDS = (
    "frame.interface_id", "frame.time_epoch", "ip.src", "udp.srcport", "tcp.srcport",
    "ip.dst", "udp.dstport", "tcp.dstport", "stun.type.class", "stun.type.method",
    "stun.id", "stun.channel", "stun.att.ipv4", "stun.att.port", "stun.att.channelnum",
    "dtls.record.content_type",
    "_ws.col.Protocol", "_ws.col.Info",
    "ipv6.src", "ipv6.dst", "stun.att.ipv6",
)  # fmt: skip
METHODS = {
    0x001: "Binding", 0x003: "Allocate", 0x004: "Refresh", 0x006: "Send",
    0x007: "Data", 0x008: "CreatePermission", 0x009: "ChannelBind",
}  # fmt: skip
#: tshark gives the class bits (0x0110 of the type) shifted right by 4.
CLASSES = {0x00: "request", 0x01: "indication", 0x10: "success", 0x11: "error"}
DTLS_CONTENT = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"}
TIMEOUT_S = 60


@dataclass(frozen=True)
class Message:
    """One STUN message: method and class as RFC 8489 names them, and its transaction."""

    method: str
    cls: str
    transaction_id: str


@dataclass
class Packet:
    """One captured frame that carries STUN or DTLS, on one link."""

    t: float
    link: str
    transport: str  # udp | tcp
    src: str  # address:port
    dst: str
    #: STUN messages, outermost first: a check relayed in a Data indication is the second.
    messages: list[Message] = field(default_factory=list)
    channel: int | None = None  # TURN ChannelData channel number
    dtls: list[str] = field(default_factory=list)  # DTLS record content types
    #: The first address attribute (XOR-RELAYED-, XOR-PEER- or XOR-MAPPED-ADDRESS).
    address: str | None = None
    channel_number: int | None = None  # a ChannelBind's CHANNEL-NUMBER
    info: str = ""  # tshark's one-line summary

    @property
    def relayed(self) -> bool:
        """Whether the STUN message is wrapped in TURN (ChannelData or Send/Data)."""
        return self.channel is not None or (
            len(self.messages) > 1 and self.messages[0].method in ("Send", "Data")
        )

    @property
    def check(self) -> Message | None:
        """The innermost STUN message: the ICE check a TURN wrapper carries, or the message."""
        return self.messages[-1] if self.messages else None


def _ints(value: str) -> list[int]:
    return [int(v, 0) for v in value.split(";") if v]


def parse_line(line: str, links: list[str]) -> Packet | None:
    """One tshark `-T fields` line as a Packet (None for a frame with nothing to say)."""
    values = dict(zip(FIELDS, line.rstrip("\n").split("\t"), strict=False))
    src, dst = (
        values.get("ip.src") or values.get("ipv6.src"),
        values.get("ip.dst") or values.get("ipv6.dst"),
    )
    if not src or not dst:
        return None
    transport = "udp" if values.get("udp.srcport") else "tcp"
    sport, dport = values.get(f"{transport}.srcport", ""), values.get(f"{transport}.dstport", "")
    classes = _ints(values.get("stun.type.class", ""))
    methods = _ints(values.get("stun.type.method", ""))
    ids = [v for v in values.get("stun.id", "").split(";") if v]
    messages = [
        Message(METHODS.get(m, hex(m)), CLASSES.get(c, str(c)), i)
        for c, m, i in zip(classes, methods, ids, strict=False)
    ]
    channel = values.get("stun.channel", "").split(";")[0]
    dtls = [DTLS_CONTENT.get(c, str(c)) for c in _ints(values.get("dtls.record.content_type", ""))]
    interface = int(values["frame.interface_id"].split(";")[0])
    ip = (values.get("stun.att.ipv4") or values.get("stun.att.ipv6") or "").split(";")[0]
    port = values.get("stun.att.port", "")
    number = values.get("stun.att.channelnum", "").split(";")[0]
    return Packet(
        t=float(values["frame.time_epoch"]),
        link=links[interface] if interface < len(links) else f"interface {interface}",
        transport=transport,
        src=endpoint(src.split(";")[0], sport.split(";")[0]),
        dst=endpoint(dst.split(";")[0], dport.split(";")[0]),
        messages=messages,
        channel=int(channel, 0) if channel else None,
        dtls=dtls,
        address=endpoint(ip, port.split(";")[0]) if ip else None,
        channel_number=int(number, 0) if number else None,
        info=values.get("_ws.col.Info", ""),
    )


def tshark_command(path: Path) -> list[str]:
    command = ["tshark", "-n", "-r", str(path), "-Y", "stun or dtls", "-T", "fields"]
    for heuristic in HEURISTICS:
        command += ["--enable-heuristic", heuristic]
    command += ["-E", "occurrence=a", "-E", "aggregator=;"]
    for name in FIELDS:
        command += ["-e", name]
    return command


def merge(directory: Path, files: list[str], into: Path) -> None:
    """One pcapng of every link, interface i being files[i] (mergecap keeps them apart)."""
    done = subprocess.run(
        ["mergecap", "-w", str(into), *(str(directory / f) for f in files)],
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    if done.returncode != 0:
        raise LabRunError(f"mergecap failed on {directory}: {done.stderr.decode().strip()}")


class Decoding:
    """tshark reading a capture's merged pcap in the background (the run tears its network
    down meanwhile); `packets` waits for it."""

    def __init__(self, manifest: JsonObject) -> None:
        self.directory = Path(manifest["directory"])
        self.links = [link["link"] for link in manifest["links"]]
        self.merged = self.directory / "all-links.pcapng"
        merge(self.directory, [link["file"] for link in manifest["links"]], self.merged)
        self.process = subprocess.Popen(
            tshark_command(self.merged), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def packets(self) -> list[Packet]:
        """Every STUN/TURN/DTLS frame of every link, in time order."""
        try:
            stdout, stderr = self.process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise LabRunError(f"tshark took over {TIMEOUT_S} s on {self.directory}") from None
        finally:
            self.merged.unlink(missing_ok=True)
        if self.process.returncode != 0:
            raise LabRunError(f"tshark could not read {self.directory}: {stderr.decode().strip()}")
        packets = [parse_line(line, self.links) for line in stdout.decode().splitlines()]
        return sorted((p for p in packets if p is not None), key=lambda p: p.t)


#: Decodings started as a capture stopped, by capture directory, for `decode` to collect.
_started: dict[str, Decoding] = {}


def start_decode(manifest: JsonObject) -> None:
    """Start decoding a stopped capture now; `decode` collects the packets later."""
    _started[str(manifest["directory"])] = Decoding(manifest)


def decode(manifest: JsonObject) -> list[Packet]:
    """Every STUN/TURN/DTLS frame of every link of a capture, in time order."""
    decoding = _started.pop(str(manifest["directory"]), None) or Decoding(manifest)
    return decoding.packets()
