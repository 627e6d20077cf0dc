"""`lab trace` (the ladder of one pair's checks) and `lab pcap` (a captured run's pcaps).

Both read a result written by `lab run --capture` (`--json FILE`), a directory holding one
(`--pcap DIR`), or, by default, the last captured run (/run/ice-lab/last-capture).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError
from lab.core.terminal import console, fail
from lab.observations.capture.capture import LAST_CAPTURE
from lab.observations.capture.trail import describe_end
from lab.observations.ice import CandidatePair
from lab.report.result import RunResult, load_result

RESULT = "result.json"


def captured_document(path: Path | None) -> tuple[JsonObject, Path]:
    """A capture's document and the file it came from (a directory: its result.json): a
    captured run's result, or what `lab up --capture` kept of its session (no pairs)."""
    source = path or LAST_CAPTURE
    file = source / RESULT if source.is_dir() else source
    if not file.exists():
        hint = "" if path else " (run `lab run SCENARIO --capture` first)"
        raise LabInputError(f"{file}: no captured result here{hint}")
    try:
        document = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise LabInputError(f"{file}: not a result document ({exc})") from None
    if not isinstance(document, dict) or "capture" not in document:
        raise LabInputError(f"{file}: capture: missing (was the run made with --capture?)")
    return document, file


def captured_result(path: Path | None) -> tuple[RunResult, Path]:
    """A captured run's result, typed, and the file it came from."""
    document, file = captured_document(path)
    if "outcome" not in document:
        raise LabInputError(
            f"{file}: a `lab up --capture` session has no pairs to trace (`lab pcap` lists "
            "its pcaps)"
        )
    return load_result(file), file


def pair_label(pair: CandidatePair) -> str:
    local, remote = pair.local, pair.remote
    return f"{pair.agent}: {local.type} {local.endpoint} -> {remote.type} {remote.endpoint}"


def ladder_lines(pair: CandidatePair) -> list[str]:
    """One line per hop of each check: time, link, addresses as seen there, message; then
    where the check ended."""
    lines = []
    trail = pair.trail or {"checks": [], "summary": "no trail (run without --capture)"}
    for check in trail["checks"]:
        lines.append(f"check {check['transaction_id']} (sent {check['sent']}x)")
        hops = [("->", h) for h in check["hops"]] + [("<-", h) for h in check["response"]]
        for arrow, hop in sorted(hops, key=lambda item: item[1]["t"]):
            via = f"  [{hop['via']}]" if hop.get("via") else ""
            lines.append(
                f"  {hop['t']:9.6f}  {arrow} {hop['link']:<34} {hop['src']:>21} -> "
                f"{hop['dst']:<21} {hop['message']}{via}"
            )
        lines.append(f"  => {describe_end(check['ended'])}")
    lines.append(f"verdict: {pair.state}: {trail['summary']}")
    failure = pair.failure or {}
    if failure.get("dropped_at"):
        at = failure["dropped_at"]
        lines.append(f"dropped_at: {at['node']} / {at['rule']} / {at['direction']}")
    return lines


def pair_list(pairs: list[CandidatePair]) -> list[str]:
    return [
        f"{index:3}  {pair_label(pair)}  {pair.state}: {(pair.trail or {}).get('summary', '')}"
        for index, pair in enumerate(pairs)
    ]


def register(app: typer.Typer) -> None:
    """Add `trace` and `pcap` to the CLI."""

    @app.command()
    def trace(
        result_path: Annotated[
            Path | None,
            typer.Argument(help="result (or its directory) of lab run --capture; default: last"),
        ] = None,
        pair: Annotated[
            int | None, typer.Option(help="the pair's index in the result (default: list them)")
        ] = None,
    ) -> None:
        """The ladder of one pair's checks: each hop, each NAT's translation, where it ended.

        Each check ends answered, or dropped at a node by a named nftables rule."""
        try:
            result, file = captured_result(result_path)
            if pair is None:
                console.print(f"{file}: pairs (lab trace --pair N)", highlight=False)
                for line in pair_list(result.pairs):
                    console.print(line, highlight=False, markup=False, soft_wrap=True)
                return
            if not 0 <= pair < len(result.pairs):
                raise LabInputError(
                    f"--pair: {pair} is not a pair of {file} (0..{len(result.pairs) - 1})"
                )
            chosen = result.pairs[pair]
        except LabInputError as exc:
            raise fail(exc) from None
        console.print(f"[bold]{pair_label(chosen)}[/bold]", highlight=False)
        for line in ladder_lines(chosen):
            console.print(line, highlight=False, markup=False, soft_wrap=True)

    @app.command()
    def pcap(
        run: Annotated[
            Path | None,
            typer.Argument(help="result (or its directory) of lab run --capture; default: last"),
        ] = None,
        export: Annotated[
            Path | None, typer.Option(help="copy the pcapng files (one per link) here")
        ] = None,
    ) -> None:
        """List a captured run's pcapng files (one per link), or export them."""
        try:
            document, file = captured_document(run)
            capture = document["capture"]
            directory = Path(capture["pcap_dir"])
            if (
                not directory.is_dir()
                and file.parent.joinpath(capture["links"][0]["file"]).exists()
            ):
                directory = file.parent
            missing = [
                ln["file"] for ln in capture["links"] if not (directory / ln["file"]).exists()
            ]
            if missing:
                raise LabInputError(
                    f"{directory}: pcaps missing ({', '.join(missing)}): replaced by a later run?"
                )
            if export is not None:
                export.mkdir(parents=True, exist_ok=True)
                for link in capture["links"]:
                    shutil.copy2(directory / link["file"], export / link["file"])
                directory = export
        except LabInputError as exc:
            raise fail(exc) from None
        except OSError as exc:
            raise fail(LabInputError(f"--export: cannot write {export}: {exc.strerror}")) from None
        for link in capture["links"]:
            counts = f"  (STUN {link['stun']}, DTLS {link['dtls']})" if "stun" in link else ""
            console.print(
                f"{directory / link['file']}  {link['link']}{counts}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
