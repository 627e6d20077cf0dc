"""The evidence of a captured run, put into its result: each pair's trail, `dropped_at`
for the pairs a rule killed, and where the pcaps are kept (`lab trace`, `lab pcap`)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from lab.core.documents import JsonObject, schema_errors
from lab.core.errors import LabInputError, LabRunError
from lab.observations.capture.capture import LAST_CAPTURE, MANIFEST
from lab.observations.capture.decode import Packet, decode
from lab.observations.capture.trail import pair_trails
from lab.observations.capture.verdicts import read_traces

RESULT = "result.json"


def link_summary(manifest: JsonObject, packets: list[Packet]) -> list[JsonObject]:
    """Per link: its pcap and how many STUN messages and DTLS records crossed it."""
    stun = Counter(p.link for p in packets if p.messages)
    dtls = Counter(p.link for p in packets if p.dtls)
    return [
        {
            "link": link["link"],
            "captured_at": f"{link['node']}:{link['interface']}",
            "file": link["file"],
            "stun": stun[link["link"]],
            "dtls": dtls[link["link"]],
        }
        for link in manifest["links"]
    ]


def keep_session_capture(capture: Any, scenario: str) -> None:
    """`lab up --capture` ends: keep its pcaps as the last capture, for `lab pcap` (a
    session has no pairs to trail; the pcaps hold whatever was done in it)."""
    manifest = capture.stop(decode=False)
    links = [
        {"link": link["link"], "captured_at": f"{link['node']}:{link['interface']}",
         "file": link["file"]}
        for link in manifest["links"]
    ]  # fmt: skip
    result = {"scenario": scenario, "pairs": [], "capture": {"pcap_dir": str(LAST_CAPTURE),
                                                             "links": links}}  # fmt: skip
    replace_last(manifest, result)


def keep_pcaps(manifest: JsonObject, into: Path) -> None:
    """Copy the run's pcapng files (and what `lab trace` needs beside them) into `into`."""
    source = Path(manifest["directory"])
    into.mkdir(parents=True, exist_ok=True)
    for link in manifest["links"]:
        shutil.copy2(source / link["file"], into / link["file"])
        (into / link["file"]).chmod(0o644)  # dumpcap writes 0600: Wireshark runs as a user
    for node in manifest["traced_nodes"]:
        if (source / f"{node}.trace").exists():
            shutil.copy2(source / f"{node}.trace", into / f"{node}.trace")
    (into / MANIFEST).write_text(json.dumps({**manifest, "directory": "."}, indent=2))


def replace_last(manifest: JsonObject, result: JsonObject) -> None:
    """The last captured run's pcaps and result, swapped in whole (runs may overlap)."""
    LAST_CAPTURE.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix="capture-new-", dir=LAST_CAPTURE.parent))
    keep_pcaps(manifest, fresh)
    (fresh / RESULT).write_text(json.dumps(result, indent=2) + "\n")
    old = LAST_CAPTURE.with_name(f"capture-old-{fresh.name}")
    if LAST_CAPTURE.exists():
        LAST_CAPTURE.rename(old)
    fresh.rename(LAST_CAPTURE)
    shutil.rmtree(old, ignore_errors=True)


def attach_evidence(result: JsonObject, manifest: JsonObject, pcap_dir: Path | None) -> None:
    """Decode the capture, give every pair its trail, keep the pcaps."""
    packets = decode(manifest)
    traces = read_traces(Path(manifest["directory"]), manifest["traced_nodes"])
    pair_trails(result["pairs"], packets, manifest, traces)
    if pcap_dir is not None:
        try:
            keep_pcaps(manifest, pcap_dir)
        except OSError as exc:
            raise LabInputError(f"--pcap: cannot write {pcap_dir}: {exc.strerror}") from None
    result["capture"] = {
        "pcap_dir": str((pcap_dir or LAST_CAPTURE).resolve()),
        "links": link_summary(manifest, packets),
    }
    errors = schema_errors(result, "result")
    if errors:
        raise LabRunError(f"the lab built an invalid result ({errors[0]}): please report this")
    replace_last(manifest, result)
    if pcap_dir is not None:
        (pcap_dir / RESULT).write_text(json.dumps(result, indent=2) + "\n")
