"""`lab matrix --shard I/N` and `lab merge`: one matrix run as N slices (on N machines,
pods or CI jobs) and joined again into the document and table one unsharded run makes.

A slice is deterministic: the cells in the matrix's order, regrouped so that cells of one
topology are adjacent (a reused-network worker builds each topology once), then cut into
N contiguous blocks whose sizes differ by at most one. Every cell is in exactly one shard;
no shard is empty unless there are more shards than cells. Shards are numbered from 0, as
Kubernetes numbers an Indexed Job's pods (`JOB_COMPLETION_INDEX`).

Each shard's document is a whole `lab matrix --json` document of its own cells, with
`"shard": {"index", "count"}`; its rows, agents and options say which matrix it belongs
to. `lab merge` refuses shards of different matrices, a cell given twice and cells no
shard has (unless `--allow-partial`), then builds the merged document with the same code
as an unsharded run (`lab.sweeps.matrix.matrix_document`) and prints it with the same code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError
from lab.sweeps.matrix import matrix_document
from lab.sweeps.matrix_cells import ROWS
from lab.sweeps.workers import topology_key

Combo = tuple[str, str]
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Slice `index` (0-based) of `count`."""

    index: int
    count: int

    def record(self) -> dict[str, int]:
        """What a shard's document says about it."""
        return {"index": self.index, "count": self.count}

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`--shard I/N` with 0 <= I < N; anything else is bad input naming the option."""
    match = _SHARD.fullmatch(text)
    if match is None:
        raise LabInputError(f"--shard: expected I/N (two whole numbers, 0 <= I < N), got {text!r}")
    index, count = int(match[1]), int(match[2])
    if count == 0:
        raise LabInputError(f"--shard: {text!r}: the number of shards N must be at least 1")
    if index >= count:
        raise LabInputError(
            f"--shard: {text!r}: the index counts from 0 (as Kubernetes' JOB_COMPLETION_INDEX) "
            f"and must be below N: 0/{count} to {count - 1}/{count}"
        )
    return Shard(index, count)


def _topology_key(combo: Combo) -> str:

    return topology_key(*combo)


def shard_order(
    combos: Sequence[Combo], key: Callable[[Combo], str] = _topology_key
) -> list[Combo]:
    """The cells with each topology's cells adjacent (in the order topologies first appear,
    each topology's cells in matrix order): contiguous slices then share networks."""
    groups: dict[str, list[Combo]] = {}
    for combo in combos:
        groups.setdefault(key(combo), []).append(combo)
    return [combo for cells in groups.values() for combo in cells]


def shard_cells(
    combos: Sequence[Combo], shard: Shard, key: Callable[[Combo], str] = _topology_key
) -> list[Combo]:
    """The cells of one shard, in matrix order: block `index` of `count` near-equal
    contiguous blocks of `shard_order`."""
    ordered = shard_order(combos, key)
    start = shard.index * len(ordered) // shard.count
    end = (shard.index + 1) * len(ordered) // shard.count
    mine = set(ordered[start:end])
    return [combo for combo in combos if combo in mine]


def shard_summary(shard: Shard, ran: int, total: int) -> str:
    """The line under a shard's table: which slice it ran and how to join the slices."""
    if ran == 0:
        return f"shard {shard} has no cells: {total} cell(s) over {shard.count} shards"
    return (
        f"shard {shard} (0-based): {ran} of the matrix's {total} cells; "
        "`lab merge SHARD.json...` joins the shards' documents"
    )


# -- merge --------------------------------------------------------------------------------


def definition(document: Mapping[str, Any]) -> JsonObject:
    """What makes shards parts of one matrix: its rows (and their order), agents, options."""
    return {
        "rows": [p["name"] for p in document["presets"]],
        "agents": document["agents"],
        "options": document.get("options"),
    }


def _check_shape(path: Path, document: Any) -> None:
    """A `lab matrix --json` document, or bad input naming the file and the field."""
    if not isinstance(document, dict):
        raise LabInputError(f"{path}: not a lab matrix --json document (not a JSON object)")
    for field, kind in (("presets", list), ("cells", list), ("agents", dict)):
        if not isinstance(document.get(field), kind):
            raise LabInputError(
                f"{path}: not a lab matrix --json document (`{field}` missing or not a "
                f"{kind.__name__})"
            )
    for index, preset in enumerate(document["presets"]):
        if not isinstance(preset, dict) or not isinstance(preset.get("name"), str):
            raise LabInputError(f"{path}: presets[{index}] has no `name`")
    for index, cell in enumerate(document["cells"]):
        if not isinstance(cell, dict) or not all(
            isinstance(cell.get(side), str) for side in ("viewer", "master")
        ):
            raise LabInputError(f"{path}: cells[{index}] has no `viewer` and `master`")
    if not isinstance(document.get("wall_s", 0), int | float):
        raise LabInputError(f"{path}: `wall_s` is not a number")
    shard = document.get("shard")
    if shard is not None and not (
        isinstance(shard, dict)
        and all(isinstance(shard.get(key), int) for key in ("index", "count"))
    ):
        raise LabInputError(f'{path}: `shard` is not {{"index": I, "count": N}}')


def _difference(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str:
    """Which part of two matrices' definitions differs, in words."""
    parts = []
    for field in ("rows", "agents", "options"):
        if ours[field] != theirs[field]:
            parts.append(f"{field} {json.dumps(ours[field])}, not {json.dumps(theirs[field])}")
    return "; ".join(parts)


def _cell_names(combos: Sequence[Combo]) -> str:
    return ", ".join(f"viewer {viewer} x master {master}" for viewer, master in combos)


def _absent_shards(documents: Sequence[Mapping[str, Any]]) -> str:
    """` (shards 1/4, 3/4 not given)` when the shards given say how many there were."""
    records = [d.get("shard") for d in documents]
    counts = {r["count"] for r in records if r is not None}
    if len(counts) != 1 or None in records:
        return ""  # an unsharded document, or shards of different counts: no shard list
    (count,) = counts
    given = {r["index"] for r in records if r is not None}
    absent = [f"{index}/{count}" for index in range(count) if index not in given]
    return f" (shard{'s' * (len(absent) > 1)} {', '.join(absent)} not given)" if absent else ""


def merge_documents(
    documents: Sequence[tuple[Path, Any]], allow_partial: bool = False
) -> JsonObject:
    """One matrix document from its shards': the document an unsharded `lab matrix --json`
    writes (cells in matrix order, the agreement counted over all of them, `wall_s` the
    longest shard's, as they run side by side), plus `missing` when `allow_partial` let
    cells be absent. Shards of different matrices, a cell twice, a cell outside the
    matrix or (without `allow_partial`) cells no shard has are bad input."""

    if not documents:
        raise LabInputError("lab merge: no shard documents given")
    for path, document in documents:
        _check_shape(path, document)
    rows = _rows(*documents[0])
    combos = [(viewer, master) for viewer in rows for master in rows]
    cells = _cells_by_combo(documents, combos)
    missing = [combo for combo in combos if combo not in cells]
    if missing and not allow_partial:
        raise LabInputError(
            f"lab merge: {len(missing)} of {len(combos)} cells are in no shard given"
            f"{_absent_shards([d for _, d in documents])}: {_cell_names(missing)} "
            "(give every shard's document, or --allow-partial to mark them missing)"
        )
    ordered = [cells[combo] for combo in combos if combo in cells]
    wall_s = max(float(document.get("wall_s") or 0) for _, document in documents)
    first = documents[0][1]
    merged = matrix_document(first["agents"], rows, ordered, wall_s, first.get("options"))
    if missing:
        merged["missing"] = [{"viewer": viewer, "master": master} for viewer, master in missing]
    return merged


def _rows(path: Path, document: Mapping[str, Any]) -> list[str]:
    """The matrix's rows, each one the lab knows (a document of another lab version's rows
    cannot be rendered by this one)."""

    rows = definition(document)["rows"]
    unknown = [row for row in rows if row not in ROWS]
    if unknown:
        raise LabInputError(f"{path}: presets: unknown row {', '.join(unknown)}")
    return rows


def _cells_by_combo(
    documents: Sequence[tuple[Path, Any]], combos: Sequence[Combo]
) -> dict[Combo, JsonObject]:
    """Every cell of every shard, once each, from shards of the first one's matrix."""
    first_path, first = documents[0]
    wanted = definition(first)
    owner: dict[Combo, Path] = {}
    cells: dict[Combo, JsonObject] = {}
    for path, document in documents:
        theirs = definition(document)
        if theirs != wanted:
            raise LabInputError(
                f"{path}: a different matrix from {first_path}: {_difference(theirs, wanted)}"
            )
        for cell in document["cells"]:
            combo = (cell["viewer"], cell["master"])
            if combo not in combos:
                raise LabInputError(f"{path}: cell {_cell_names([combo])} is not in the matrix")
            if combo in owner:
                raise LabInputError(
                    f"{path}: cell {_cell_names([combo])} is also in {owner[combo]}"
                )
            owner[combo], cells[combo] = path, cell
    return cells


def _write(path: Path, document: Mapping[str, Any]) -> None:
    try:
        path.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise LabInputError(f"{path}: cannot write it ({exc.strerror or exc})") from None
