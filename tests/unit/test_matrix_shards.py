"""`lab matrix --shard I/N` and `lab merge`: every cell in exactly one shard, merged shards
equal the unsharded matrix, and shards that do not belong together are refused; the
Kubernetes Job and the CI workflow that run them have the shape they need."""

from __future__ import annotations

import copy
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from lab.commands import app
from lab.core.errors import LabInputError
from lab.sweeps.matrix import judge, matrix_document, matrix_options, render_grid
from lab.sweeps.matrix_cells import GROUPS
from lab.sweeps.shards import (
    Shard,
    merge_documents,
    parse_shard,
    shard_cells,
    shard_order,
)
from tests.result_docs import typed

ROOT = Path(__file__).resolve().parents[2]
AIORTC = {"viewer": "aiortc", "master": "aiortc"}
ROWS = ["open", "full-cone", "symmetric"]
COMBOS = [(v, m) for v in ROWS for m in ROWS]


def combos_of(group: str) -> list[tuple[str, str]]:
    rows = GROUPS[group]
    return [(v, m) for v in rows for m in rows]


# -- --shard I/N ----------------------------------------------------------------------


def test_shards_count_from_zero_as_kubernetes_does() -> None:
    assert parse_shard("0/4") == Shard(0, 4)
    assert parse_shard("3/4") == Shard(3, 4)
    assert parse_shard("0/1") == Shard(0, 1)
    assert str(Shard(2, 4)) == "2/4" and Shard(2, 4).record() == {"index": 2, "count": 4}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("3/2", "must be below N: 0/2 to 1/2"),
        ("4/4", "must be below N: 0/4 to 3/4"),
        ("0/0", "the number of shards N must be at least 1"),
        ("x/4", "expected I/N"),
        ("-1/4", "expected I/N"),
        ("1", "expected I/N"),
        ("1/4/2", "expected I/N"),
        ("", "expected I/N"),
    ],
)
def test_a_bad_shard_is_bad_input_naming_the_option(text: str, says: str) -> None:
    with pytest.raises(LabInputError) as raised:
        parse_shard(text)
    assert str(raised.value).startswith("--shard: ") and says in str(raised.value)


@pytest.mark.parametrize("text", ["3/2", "x/4", "0/0"])
def test_lab_matrix_refuses_a_bad_shard_with_exit_2_before_anything_runs(text: str) -> None:
    completed = CliRunner().invoke(app, ["matrix", "--nat", "open", "--shard", text])
    assert completed.exit_code == 2
    assert completed.output.count("\n") == 1 and "error: --shard: " in completed.output


@pytest.mark.parametrize("group", ["nats", "all"])
def test_every_cell_is_in_exactly_one_shard_and_shards_are_balanced(group: str) -> None:
    combos = combos_of(group)
    for count in [*range(1, 13), 48, 49, 50, len(combos) - 1, len(combos), len(combos) + 7]:
        shards = [shard_cells(combos, Shard(i, count)) for i in range(count)]
        flat = [combo for shard in shards for combo in shard]
        assert sorted(flat) == sorted(combos), (group, count)  # each cell exactly once
        sizes = [len(shard) for shard in shards]
        assert max(sizes) - min(sizes) <= 1, (group, count, sizes)
        assert (0 in sizes) == (count > len(combos)), (group, count, sizes)
        for shard in shards:  # each shard's cells in the matrix's order
            assert shard == sorted(shard, key=combos.index)


def test_the_slices_are_deterministic_and_keep_topologies_together() -> None:
    combos = combos_of("nats")
    first = [shard_cells(combos, Shard(i, 4)) for i in range(4)]
    assert first == [shard_cells(list(combos), Shard(i, 4)) for i in range(4)]
    # The cells of one topology are adjacent before slicing, so 4 contiguous slices split
    # at most 3 topology groups: each shard's workers build few networks.
    from lab.sweeps.workers import topology_key

    groups = {topology_key(*combo) for combo in combos}
    per_shard = [{topology_key(*combo) for combo in shard} for shard in first]
    assert sum(len(keys) for keys in per_shard) <= len(groups) + 3


def test_the_order_groups_by_key_in_first_appearance() -> None:
    order = shard_order(COMBOS, key=lambda combo: combo[1])
    assert order[:3] == [("open", "open"), ("full-cone", "open"), ("symmetric", "open")]
    assert sorted(order) == sorted(COMBOS)


# -- merge ---------------------------------------------------------------------------


def cell(viewer: str, master: str) -> dict[str, Any]:
    """A judged cell with a result that says which (the pair types vary by cell)."""
    local = "relay" if viewer == master == "symmetric" else "srflx"
    pair = {
        "local": {"type": local, "address": "198.51.100.2", "port": 40000},
        "remote": {"type": "host", "address": "198.51.100.18", "port": 40000},
    }
    result = typed({"selected": {"viewer": pair}}).to_json()
    return judge({"viewer": viewer, "master": master, "result": result, "reused": True}, AIORTC)


def unsharded(wall_s: float = 9.5) -> dict[str, Any]:
    cells = [cell(v, m) for v, m in COMBOS]
    return matrix_document(AIORTC, ROWS, cells, wall_s, matrix_options(None, None, False))


def sharded(count: int, walls: list[float] | None = None) -> list[dict[str, Any]]:
    """The documents `lab matrix --shard i/count --json` would write for the same cells."""
    documents = []
    for index in range(count):
        mine = shard_cells(COMBOS, Shard(index, count))
        cells = [cell(v, m) for v, m in mine]
        wall_s = walls[index] if walls else 1.0
        document = matrix_document(AIORTC, ROWS, cells, wall_s, matrix_options(None, None, False))
        document["shard"] = Shard(index, count).record()
        documents.append(document)
    return documents


def named(documents: list[dict[str, Any]]) -> list[tuple[Path, Any]]:
    return [(Path(f"shard-{i}.json"), d) for i, d in enumerate(documents)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 9, 12])
def test_merged_shards_equal_the_unsharded_matrix_in_any_order(count: int) -> None:
    walls = [float(i + 2) for i in range(count)]
    documents = sharded(count, walls)
    random.Random(count).shuffle(documents)
    merged = merge_documents(named(documents))
    assert merged == unsharded(wall_s=max(walls))
    assert list(merged) == list(unsharded())  # the same fields, in the same order
    assert json.dumps(merged, indent=2) == json.dumps(unsharded(max(walls)), indent=2)


def test_an_unsharded_document_merges_to_itself() -> None:
    assert merge_documents([(Path("m.json"), unsharded())]) == unsharded()


def test_the_merged_table_is_the_unsharded_table() -> None:
    def table(document: dict[str, Any]) -> str:
        output = io.StringIO()
        names = [p["name"] for p in document["presets"]]
        Console(file=output, width=200).print(render_grid(document["cells"], names, AIORTC))
        return output.getvalue()

    assert table(merge_documents(named(sharded(4)))) == table(unsharded())


def refusal(documents: list[tuple[Path, Any]], allow_partial: bool = False) -> str:
    with pytest.raises(LabInputError) as raised:
        merge_documents(documents, allow_partial)
    return str(raised.value)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("agents", {"viewer": "chromium", "master": "aiortc"}, "agents"),
        ("options", matrix_options("mock", None, False), "options"),
        ("options", matrix_options(None, None, True), '"fresh": true'),
    ],
)
def test_shards_of_another_matrix_are_refused_naming_the_file_and_what_differs(
    field: str, value: Any, says: str
) -> None:
    documents = sharded(3)
    documents[2][field] = value
    message = refusal(named(documents))
    assert message.startswith("shard-2.json: a different matrix from shard-0.json: ")
    assert says in message


def test_shards_of_other_rows_are_refused() -> None:
    documents = sharded(2)
    documents[1]["presets"] = list(reversed(documents[1]["presets"]))
    assert "rows " in refusal(named(documents))


def test_a_cell_in_two_shards_is_refused_naming_both_files() -> None:
    documents = sharded(3)
    documents[2]["cells"].append(copy.deepcopy(documents[0]["cells"][0]))
    first = documents[0]["cells"][0]
    assert refusal(named(documents)) == (
        f"shard-2.json: cell viewer {first['viewer']} x master {first['master']} is also in "
        "shard-0.json"
    )


def test_missing_cells_are_refused_naming_the_cells_and_the_shards_not_given() -> None:
    documents = sharded(4)
    absent = shard_cells(COMBOS, Shard(2, 4))
    message = refusal(named([documents[0], documents[1], documents[3]]))
    assert message.startswith(f"lab merge: {len(absent)} of 9 cells are in no shard given")
    assert "(shard 2/4 not given)" in message and "--allow-partial" in message
    for viewer, master in absent:
        assert f"viewer {viewer} x master {master}" in message


def test_allow_partial_marks_the_missing_cells_in_the_document_and_the_table() -> None:
    documents = sharded(3)
    merged = merge_documents(named(documents[:2]), allow_partial=True)
    absent = shard_cells(COMBOS, Shard(2, 3))
    assert merged["missing"] == [{"viewer": v, "master": m} for v, m in absent]
    assert [(c["viewer"], c["master"]) for c in merged["cells"]] == [
        combo for combo in COMBOS if combo not in absent
    ]
    assert sum(merged["agreement"][k] for k in ("agree", "differ")) == 9 - len(absent)
    output = io.StringIO()
    Console(file=output, width=200).print(render_grid(merged["cells"], ROWS, AIORTC, "missing"))
    assert output.getvalue().count("missing") == len(absent)


def test_a_cell_outside_the_matrix_and_a_document_that_is_no_matrix_are_refused() -> None:
    documents = sharded(2)
    documents[1]["cells"].append(cell("open", "double-cone"))
    assert refusal(named(documents)) == (
        "shard-1.json: cell viewer open x master double-cone is not in the matrix"
    )
    assert refusal([(Path("r.json"), {"peers": {}, "pairs": []})]).startswith(
        "r.json: not a lab matrix --json document (`presets` missing"
    )
    broken = sharded(1)[0]
    broken["cells"][3] = {"viewer": "open"}
    assert refusal([(Path("b.json"), broken)]) == "b.json: cells[3] has no `viewer` and `master`"
    unknown = sharded(1)[0]
    unknown["presets"][0]["name"] = "sideways"
    assert refusal([(Path("u.json"), unknown)]) == "u.json: presets: unknown row sideways"


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("wall_s", "soon", "w.json: `wall_s` is not a number"),
        ("shard", {"index": "1"}, 'w.json: `shard` is not {"index": I, "count": N}'),
        ("agents", ["aiortc"], "w.json: not a lab matrix --json document (`agents` missing"),
    ],
)
def test_malformed_fields_are_one_line_naming_the_file(field: str, value: Any, says: str) -> None:
    document = sharded(1)[0]
    document[field] = value
    assert refusal([(Path("w.json"), document)]).startswith(says)


def test_lab_merge_writes_the_document_and_exits_2_naming_a_bad_file(tmp_path: Path) -> None:
    paths = []
    for index, document in enumerate(sharded(2, [3.0, 4.0])):
        paths.append(tmp_path / f"shard-{index}.json")
        paths[-1].write_text(json.dumps(document))
    out = tmp_path / "matrix.json"
    runner = CliRunner()
    done = runner.invoke(app, ["merge", *map(str, paths), "--json", str(out)])
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text()) == unsharded(wall_s=4.0)
    assert "cells agree with libwebrtc on direct versus relay" in done.output
    assert "9 cells in 4.0 s" in done.output
    (tmp_path / "bad.json").write_text("{not json")
    bad = runner.invoke(app, ["merge", str(paths[0]), str(tmp_path / "bad.json")])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1
    assert f"{tmp_path / 'bad.json'}: not JSON" in bad.output
    partial = runner.invoke(app, ["merge", str(paths[0])])
    assert partial.exit_code == 2 and "cells are in no shard given" in partial.output


# -- the Kubernetes Job and the CI workflow -----------------------------------------------


def test_the_kubernetes_job_runs_one_privileged_shard_per_completion_index() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy/kubernetes/matrix-job.yaml").read_text()))
    (job,) = [d for d in documents if d["kind"] == "Job"]
    (claim,) = [d for d in documents if d["kind"] == "PersistentVolumeClaim"]
    spec = job["spec"]
    assert job["apiVersion"] == "batch/v1" and spec["completionMode"] == "Indexed"
    count = spec["completions"]
    assert 1 <= spec["parallelism"] <= count
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["securityContext"]["privileged"] is True
    (index,) = [e for e in container["env"] if e["name"] == "JOB_COMPLETION_INDEX"]
    assert index["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    command = [*container["command"], *container["args"]]
    assert command[:2] == ["lab", "matrix"]
    assert command[command.index("--shard") + 1] == f"$(JOB_COMPLETION_INDEX)/{count}"
    assert command[command.index("--json") + 1] == "/results/shard-$(JOB_COMPLETION_INDEX).json"
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/results"
    (volume,) = pod["volumes"]
    assert volume["name"] == mount["name"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # pods on several nodes
    # Every index the Job hands out is a shard `lab matrix` accepts.
    assert [parse_shard(f"{i}/{count}") for i in range(count)]

    merge = yaml.safe_load((ROOT / "deploy/kubernetes/matrix-merge.yaml").read_text())
    (merger,) = merge["spec"]["template"]["spec"]["containers"]
    assert "securityContext" not in merger  # merging needs no privileges
    assert merger["args"][0].startswith("lab merge /results/shard-*.json --json /results/")
    (claimed,) = merge["spec"]["template"]["spec"]["volumes"]
    assert claimed["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_the_ci_workflow_runs_each_shard_and_merges_after_all_of_them() -> None:
    workflow = yaml.safe_load((ROOT / "examples/ci/matrix-shards.github.yml").read_text())
    shard, merge = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    shards = shard["strategy"]["matrix"]["shard"]
    assert shards == list(range(len(shards))) == [0, 1, 2, 3]
    run = next(s for s in shard["steps"] if "lab matrix" in s.get("run", ""))
    assert f'--shard "$SHARD/{len(shards)}"' in run["run"] and "--json" in run["run"]
    assert run["env"]["SHARD"] == "${{ matrix.shard }}"
    upload = next(s for s in shard["steps"] if s.get("uses", "").startswith("actions/upload"))
    assert upload["with"]["name"] == "matrix-shard-${{ matrix.shard }}"
    # a shard whose cells could not all run exits 3: its document is still kept and merged
    assert upload["if"] == merge["if"] == "${{ !cancelled() }}"
    assert merge["needs"] == "shard"
    download = next(s for s in merge["steps"] if s.get("uses", "").startswith("actions/download"))
    assert download["with"]["pattern"] == "matrix-shard-*" and download["with"]["merge-multiple"]
    assert any("lab merge shards/shard-*.json" in s.get("run", "") for s in merge["steps"])
