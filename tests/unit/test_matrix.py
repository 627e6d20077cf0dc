"""`lab matrix` without root: libwebrtc's table, the networks of each row, how a cell is
judged against libwebrtc, and what is printed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from lab.core.errors import LabInputError
from lab.network.nat import APD, EI
from lab.scenario.scenario import load_scenario
from lab.sweeps.libwebrtc_matrix import CONFIGS, KMATRIX, NO_EXPECTATION, RESULTS, expectation
from lab.sweeps.matrix import (
    agreement_line,
    describe_cell,
    difference_lines,
    judge,
    matrix_document,
    parse_rows,
    render_grid,
    run_cells,
    unsupported,
)
from lab.sweeps.matrix_cells import (
    FIREWALL_ROWS,
    LAB_VARIANTS,
    NAT_ROWS,
    PROXY_ROWS,
    ROWS,
    cell_documents,
)
from lab.sweeps.progress import Sweep
from tests.result_docs import typed

AIORTC = {"viewer": "aiortc", "master": "aiortc"}


def test_libwebrtc_table_is_twelve_by_twelve_and_every_code_is_known() -> None:
    assert len(CONFIGS) == 12 and len(KMATRIX) == 12
    assert all(len(row) == 12 for row in KMATRIX)
    assert {code for row in KMATRIX for code in row} <= set(RESULTS) | set(NO_EXPECTATION)


@pytest.mark.parametrize(
    ("viewer", "master", "code", "relayed"),
    [
        ("open", "open", "LULU", False),
        ("port-restricted-cone", "symmetric", "RUPU", True),
        ("symmetric", "port-restricted-cone", "PURU", True),
        # libwebrtc's double-cone is two open cones: a symmetric peer's new port gets in.
        ("double-cone", "symmetric", "SUPU", False),
        ("symmetric", "double-cone", "PUSU", False),
        ("symmetric-then-cone", "symmetric-then-cone", "PURU", True),
        ("open", "udp-blocked", "LTPT", False),
        ("block-udp-and-incoming-tcp", "open", "PTLT", False),
    ],
)
def test_expectations_read_from_libwebrtc(
    viewer: str, master: str, code: str, relayed: bool
) -> None:
    expected = expectation(viewer, master)
    assert expected is not None and expected.code == code and expected.relayed is relayed


def test_cells_libwebrtc_does_not_run_have_no_expectation_and_say_why() -> None:
    expected = expectation("full-cone", "udp-blocked")
    assert expected is not None and not expected.exists and expected.relayed is None
    assert "not implemented" in (expected.reason or "")
    assert expectation("tcp-web-only", "open").code == "LSRS"  # type: ignore[union-attr]
    assert expectation("double-port-restricted-cone", "open") is None  # the lab's own row


def test_seven_nat_rows_by_default_and_groups_expand() -> None:
    assert parse_rows(",".join(NAT_ROWS)) == list(NAT_ROWS)
    assert parse_rows("all") == [*NAT_ROWS, *FIREWALL_ROWS, *PROXY_ROWS] == list(CONFIGS)
    assert parse_rows("open,nats") == list(NAT_ROWS)  # each row once, first place kept
    with pytest.raises(LabInputError, match="--nat: unknown row sideways"):
        parse_rows("open,sideways")
    with pytest.raises(LabInputError, match=r"\(none\)"):
        parse_rows(" , ")


def nats_of(scenario: dict[str, Any], role: str) -> list[str | None]:
    conditions = scenario["conditions"]
    return [conditions.get(f"{role}-{n}", {}).get("nat") for n in ("home", "cgn")]


def test_double_cone_is_two_open_cones_and_symmetric_then_cone_has_the_symmetric_outside() -> None:
    _, scenario = cell_documents("double-cone", "symmetric-then-cone")
    assert nats_of(scenario, "viewer") == ["full-cone", "full-cone"]
    assert nats_of(scenario, "master") == ["full-cone", "symmetric"]  # home inside, cgn outside


def test_the_lab_variants_keep_the_port_restricted_cascades_under_their_own_names() -> None:
    _, scenario = cell_documents(*LAB_VARIANTS)
    assert nats_of(scenario, "viewer") == ["port-restricted-cone", "port-restricted-cone"]
    assert nats_of(scenario, "master") == ["port-restricted-cone", "symmetric"]


def test_the_carrier_nat_sits_outside_the_home_nat() -> None:
    topology, _ = cell_documents("symmetric-then-cone", "open")
    assert topology["nodes"]["viewer-home"]["gateway"] == "100.64.2.1"
    assert topology["nodes"]["viewer-cgn"]["gateway"] == "198.51.100.1"
    assert topology["nodes"]["master"]["gateway"] == "198.51.100.17"  # open: on the internet
    assert "master-home" not in topology["nodes"]


def test_a_firewall_row_is_an_office_nat_with_that_firewall() -> None:
    topology, scenario = cell_documents("udp-blocked", "tcp-web-only")
    assert scenario["conditions"]["viewer-fw"] == {
        "nat": "port-restricted-cone",
        "firewall": "udp-blocked",
    }
    assert scenario["conditions"]["master-fw"]["firewall"] == "tcp-web-only"
    assert topology["nodes"]["viewer"]["gateway"] == "10.2.0.1"


@pytest.mark.parametrize("row", list(ROWS))
def test_every_row_makes_a_valid_scenario(tmp_path: Path, row: str) -> None:
    topology, scenario = cell_documents(row, "symmetric-then-cone")
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(topology))
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    loaded = load_scenario(str(tmp_path / "scenario.yaml"))
    assert loaded.conditions["master-cgn"].nat.mapping == APD  # type: ignore[union-attr]
    assert loaded.conditions["master-home"].nat.filtering == EI  # type: ignore[union-attr]


# -- judging cells ----------------------------------------------------------------------


def candidate(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "address": "198.51.100.2", "port": 40000, **fields}


def entry(
    viewer: str,
    master: str,
    local: str | None,
    remote: str = "srflx",
    peers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A cell's entry whose result (a complete document) has the viewer select a
    `local`-`remote` pair (`local` None: the run left no result)."""
    if local is None:
        return {"viewer": viewer, "master": master, "result": None, "error": "boom"}
    relay = "udp" if local == "relay" else None
    selected = {"local": candidate(local, relay_protocol=relay), "remote": candidate(remote)}
    document: dict[str, Any] = {"selected": {"viewer": selected}}
    if peers is not None:
        document["peers"] = peers
    return {"viewer": viewer, "master": master, "result": typed(document).to_json()}


def test_a_cell_agrees_on_direct_versus_relay_even_when_the_relay_is_the_other_sides() -> None:
    # libwebrtc: relay-prflx; the lab: the viewer's srflx to the master's relay.
    judged = judge(entry("port-restricted-cone", "symmetric", "srflx", "relay"), AIORTC)
    assert judged["agrees"] is True and judged["same_types"] is False
    assert judged["libwebrtc"]["code"] == "RUPU" and judged["explanation"] is None


def test_a_direct_cell_libwebrtc_expects_relayed_differs_and_is_unexplained() -> None:
    judged = judge(entry("symmetric", "symmetric", "prflx", "srflx"), AIORTC)
    assert judged["agrees"] is False and judged["explanation"].startswith("unexplained")


def test_a_tcp_pair_libwebrtc_forms_is_a_relay_for_aiortc_and_that_is_explained() -> None:
    judged = judge(entry("open", "udp-blocked", "host", "relay"), AIORTC)
    assert judged["agrees"] is False
    assert judged["explanation"].startswith("aiortc has no ICE over TCP (viewer aiortc, master")


def test_two_browsers_without_a_passive_tcp_candidate_are_explained_from_their_candidates() -> None:
    active = candidate("host", protocol="tcp", tcp_type="active")
    udp = candidate("host", tcp_type=None)
    viewer_only = {"viewer": {"candidates": [active, udp]}, "master": {"candidates": []}}
    cell = entry("udp-blocked", "open", "relay", "host", viewer_only)
    judged = judge(cell, {"viewer": "chromium", "master": "chromium"})
    assert judged["agrees"] is False
    assert judged["explanation"].startswith(
        "no peer gathered a passive TCP candidate (TCP host candidates: viewer active, master none)"
    )
    passive = {**viewer_only, "master": {"candidates": [dict(active, tcp_type="passive")]}}
    cell = entry("udp-blocked", "open", "relay", "host", passive)
    assert judge(cell, {"viewer": "chromium", "master": "chromium"})["explanation"].startswith(
        "unexplained"
    )


def test_cells_without_expectation_are_neither_agreeing_nor_differing() -> None:
    judged = judge(entry("full-cone", "udp-blocked", "srflx", "relay"), AIORTC)
    assert judged["agrees"] is None and judged["libwebrtc"]["reason"]
    assert judge(entry("double-port-restricted-cone", "open", "srflx"), AIORTC)["libwebrtc"] is None


def test_a_run_without_result_is_an_error_and_differs() -> None:
    judged = judge(entry("open", "open", None), AIORTC)
    assert describe_cell(judged) == "error" and judged["agrees"] is False
    assert "boom" in judged["explanation"]


def test_unsupported_rows_name_the_side_and_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    import lab.sweeps.matrix

    monkeypatch.setitem(lab.sweeps.matrix.UNSUPPORTED, ("open", "aiortc"), "no way")
    assert unsupported("full-cone", "open", AIORTC) == "master aiortc on open: no way"
    assert unsupported("full-cone", "full-cone", AIORTC) is None


def test_aiortc_cannot_use_a_proxy_and_chromium_can() -> None:
    reason = unsupported("https-proxy", "open", AIORTC)
    assert reason and reason.startswith("viewer aiortc on https-proxy: aiortc cannot use a proxy")
    assert unsupported("socks5-proxy", "open", {"viewer": "chromium", "master": "aiortc"}) is None


def test_a_proxy_row_is_an_edge_without_nat_running_that_proxy() -> None:
    _, scenario = cell_documents("https-proxy", "socks5-proxy")
    assert scenario["conditions"]["viewer-fw"] == {"nat": "none", "firewall": "https-proxy"}
    assert scenario["conditions"]["master-fw"]["firewall"] == "socks5-proxy"


def test_cells_run_in_order_judged_with_progress_and_unsupported_ones_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lab.sweeps.matrix

    monkeypatch.setitem(lab.sweeps.matrix.UNSUPPORTED, ("symmetric", "aiortc"), "cannot")
    combos = [("open", "open"), ("open", "symmetric"), ("full-cone", "open")]
    output = io.StringIO()
    with Sweep("matrix", len(combos), Console(file=output, width=200)) as sweep:
        cells = run_cells(
            combos, [], 2, AIORTC, sweep, run=lambda v, m, extra: entry(v, m, "srflx", "host")
        )
    assert [(c["viewer"], c["master"]) for c in cells] == combos
    assert cells[1]["unsupported"] and describe_cell(cells[1]) == "n/a"
    lines = output.getvalue().splitlines()
    assert len(lines) == 3 and all(line.startswith("[") for line in lines)
    assert any("not run: master aiortc on symmetric: cannot" in line for line in lines)
    assert sweep.done == 3 and sweep.running == 0


def test_grid_summary_and_document() -> None:
    cells = [
        judge(entry("open", "open", "host", "host"), AIORTC),
        judge(entry("open", "symmetric", "host", "prflx"), AIORTC),
        judge(entry("symmetric", "open", "prflx", "host"), AIORTC),
        judge(entry("symmetric", "symmetric", "prflx", "srflx"), AIORTC),
    ]
    output = io.StringIO()
    Console(file=output, width=200).print(render_grid(cells, ["open", "symmetric"], AIORTC))
    text = output.getvalue()
    assert "= host-host" in text and "x prflx-relay" in text
    assert agreement_line(cells) == (
        "3 of 4 cells agree with libwebrtc on direct versus relay (3 also on both candidate types)"
    )
    lines = difference_lines(cells)
    assert len(lines) == 1 and lines[0].startswith("differs: viewer symmetric x master symmetric")
    document = matrix_document(AIORTC, ["open", "symmetric"], cells, 1.5)
    assert document["presets"][1] == {
        "name": "symmetric",
        "libwebrtc": "NAT_SYMMETRIC",
        "what": "one symmetric NAT",
    }
    assert document["agreement"] == {
        "agree": 3,
        "differ": 1,
        "same_types": 3,
        "no_expectation": 0,
        "not_run": 0,
    }


def test_cells_not_run_are_no_verdict_and_one_line_per_side_and_row() -> None:
    reason = unsupported("open", "socks5-proxy", AIORTC)
    cells = [
        judge(
            {"viewer": v, "master": "socks5-proxy", "result": None, "unsupported": reason}, AIORTC
        )
        for v in ("open", "full-cone")
    ]
    # libwebrtc expects open x socks5-proxy to pair over TCP; not run, it is no difference.
    assert cells[0]["libwebrtc"]["code"] == "LTPT" and cells[0]["agrees"] is None
    assert difference_lines(cells) == [f"not run (2 cells): {reason}"]
    assert agreement_line(cells).endswith("; 2 cells not run")


def test_a_cell_without_result_is_named_for_the_exit_status() -> None:
    """Not connecting is an outcome; a cell the lab could not run at all makes
    `lab matrix` exit 3, naming it."""
    from lab.sweeps.matrix import cells_without_result

    cells = [
        {"viewer": "open", "master": "open", "result": None, "error": "timed out"},
        {"viewer": "open", "master": "symmetric", "unsupported": "n/a", "result": None},
        {"viewer": "symmetric", "master": "symmetric",
         "result": typed({"outcome": "failed"}).to_json()},
    ]  # fmt: skip
    assert cells_without_result(cells) == ["open/open"]
