"""`lab compare`'s bookkeeping on hand-made results: which agent combinations run, what
counts as a difference between agents, and the table and JSON document it produces."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from rich.console import Console

from lab.core.errors import LabInputError
from lab.observations.ice import Candidate
from lab.report.result import RunResult
from lab.sweeps.compare import (
    Combo,
    choose_combos,
    combos_for,
    compare_document,
    describe_differences,
    differences,
    exit_status,
    notes,
    pair_text,
    parse_agents,
    parse_combos,
    passthrough,
    render_table,
    report_lines,
    run_all,
    scenario_row,
    sides_disagree,
    summarize,
)
from lab.sweeps.progress import Sweep
from tests.result_docs import typed

AIORTC = {"name": "aiortc", "version": "1.16.0"}
CELL_KEYS = {
    "outcome",
    "selected",
    "connected_s",
    "software",
    "expectations_met",
    "failed_checks",
    "peer_errors",
    "error",
    "exit_status",
}
CHROMIUM = {"name": "chromium", "version": "156.0.8078.114", "product": "Chrome/156"}


def candidate(kind: str, relay: str | None = None) -> dict[str, Any]:
    return {
        "type": kind,
        "protocol": "udp",
        "address": "198.51.100.2",
        "port": 40000,
        "relay_protocol": relay,
        "server": None,
    }


def result(
    outcome: str = "connected",
    viewer_pair: tuple[dict[str, Any], dict[str, Any]] | None = None,
    software: tuple[dict[str, str], dict[str, str]] = (AIORTC, AIORTC),
    connected_s: float | None = 0.4,
    viewer_error: str | None = None,
    failed_check: str | None = None,
) -> RunResult:
    """A result with the parts `lab compare` reads; the master's pair mirrors the
    viewer's."""
    local, remote = viewer_pair or (candidate("srflx"), candidate("srflx"))
    connected = outcome == "connected"
    met = connected and not failed_check
    document = {
        "scenario": "home-nat-both",
        "outcome": outcome,
        "expectations_met": met,
        "expectations": [{"check": failed_check or "outcome is connected", "met": met}],
        "peers": {
            "viewer": {"candidates": [], "software": software[0], "error": viewer_error},
            "master": {"candidates": [], "software": software[1], "error": None},
        },
        "selected": {
            "viewer": {"local": local, "remote": remote, "rtt_ms": 1.0} if connected else None,
            "master": {"local": remote, "remote": local, "rtt_ms": 1.0} if connected else None,
        },
        "timings": {
            "gathering_s": {"viewer": 0.1, "master": 0.1},
            "connected_s": connected_s if connected else None,
            "total_s": 3.0,
        },
    }
    return typed(document)


def master_selects(run: RunResult, local: dict[str, Any]) -> None:
    """The master's selected pair starts at `local` instead."""
    selected = run.selected["master"]
    assert selected is not None
    selected.local = Candidate.from_json(local)


def test_agents_give_the_four_combinations_in_the_documented_order() -> None:
    combos = combos_for(parse_agents("aiortc, chromium"))
    assert [c.name for c in combos] == [
        "aiortc/aiortc",
        "chromium/chromium",
        "chromium/aiortc",  # a browser viewer meets an embedded master
        "aiortc/chromium",
    ]
    assert combos[2] == Combo(viewer="chromium", master="aiortc")
    assert [c.name for c in combos_for(parse_agents("chromium,chromium"))] == ["chromium/chromium"]


def test_the_first_agent_named_is_the_baseline() -> None:
    assert combos_for(parse_agents("chromium,aiortc"))[0].name == "chromium/chromium"
    assert choose_combos(None, None)[0].name == "aiortc/aiortc"  # default: aiortc,chromium


def test_explicit_combinations_keep_their_order() -> None:
    combos = parse_combos("chromium/aiortc, aiortc/aiortc,chromium/aiortc")
    assert [c.name for c in combos] == ["chromium/aiortc", "aiortc/aiortc"]
    assert choose_combos(None, "aiortc/chromium") == [Combo("aiortc", "chromium")]


@pytest.mark.parametrize(
    ("agents", "combos", "words"),
    [
        ("aiortc,safari", None, ["--agents", "safari", "aiortc, chromium"]),
        (" , ", None, ["--agents", "no agent"]),
        (None, "chromium-aiortc", ["--combos", "chromium-aiortc", "VIEWER/MASTER"]),
        (None, "chromium/safari", ["--combos", "safari"]),
        ("aiortc", "aiortc/aiortc", ["--agents and --combos"]),
    ],
)
def test_bad_agent_arguments_name_the_option(
    agents: str | None, combos: str | None, words: list[str]
) -> None:
    with pytest.raises(LabInputError) as raised:
        choose_combos(agents, combos)
    assert all(word in str(raised.value) for word in words)


def test_passthrough_options_are_checked_once() -> None:
    assert passthrough({"--timing": "kvs", "--servers": None}) == ["--timing", "kvs"]
    with pytest.raises(LabInputError, match="--servers: unknown value 'nginx'"):
        passthrough({"--servers": "nginx"})


def test_a_cell_keeps_types_relay_protocols_time_and_software() -> None:
    cell = summarize(
        result(
            viewer_pair=(candidate("relay", "tcp"), candidate("srflx")),
            software=(CHROMIUM, AIORTC),
            connected_s=1.26,
        ),
        exit_status=0,
    )
    assert cell["outcome"] == "connected"
    assert cell["selected"]["viewer"] == {
        "local": "relay",
        "remote": "srflx",
        "relay_protocol": "tcp",
        "remote_relay_protocol": None,
    }
    assert cell["selected"]["master"]["remote_relay_protocol"] == "tcp"
    assert cell["software"] == {
        "viewer": {"name": "chromium", "version": "156.0.8078.114"},
        "master": AIORTC,
    }
    assert cell["connected_s"] == 1.26 and cell["error"] is None and cell["peer_errors"] == {}
    assert pair_text(cell) == "relay/tcp->srflx"


def test_the_remote_relay_protocol_comes_from_the_other_side_when_stats_lack_it() -> None:
    run = result(viewer_pair=(candidate("srflx"), candidate("relay")))
    master_selects(run, candidate("relay", "tls"))
    assert pair_text(summarize(run)) == "srflx->relay/tls"


def test_sides_that_name_incompatible_pairs_are_noted_not_filled_in() -> None:
    # Seen in enterprise-firewall, chromium/chromium: the master reported its relay/udp
    # candidate while the viewer's pair ended at the master's srflx candidate.
    run = result(viewer_pair=(candidate("relay", "tls"), candidate("srflx")))
    master_selects(run, candidate("relay", "udp"))
    cell = summarize(run)
    assert pair_text(cell) == "relay/tls->srflx"
    assert sides_disagree(cell)
    assert (
        "sides disagree: x aiortc/aiortc: viewer relay/tls->srflx, master relay/udp->relay/tls"
        in (notes({"scenarios": [scenario_row("x", {"aiortc/aiortc": cell})]}))
    )
    # A relay learned from a check (prflx) is the same pair seen from the other side.
    learned = result(viewer_pair=(candidate("srflx"), candidate("prflx")))
    master_selects(learned, candidate("relay", "udp"))
    assert not sides_disagree(summarize(learned))
    assert pair_text(summarize(learned)) == "srflx->prflx/udp"
    assert not sides_disagree(summarize(result("failed")))


def test_a_run_without_result_is_an_error_cell() -> None:
    cell = summarize(None, "error: coturn did not start", exit_status=3)
    assert cell["outcome"] == "error" and cell["error"] == "error: coturn did not start"
    assert pair_text(cell) == "-"
    assert summarize(None)["error"] == "the run wrote no result"


def test_peer_errors_are_kept_by_role() -> None:
    cell = summarize(result(viewer_error="browser crashed"))
    assert cell["peer_errors"] == {"viewer": "browser crashed"}


def cells(**by_combo: RunResult) -> dict[str, dict[str, Any]]:
    return {name.replace("_", "/"): summarize(r) for name, r in by_combo.items()}


def test_same_pairs_at_different_speeds_are_no_difference() -> None:
    same = cells(aiortc_aiortc=result(connected_s=0.4), chromium_aiortc=result(connected_s=1.9))
    assert differences(same) == []


def test_a_different_pair_is_reported_field_by_field() -> None:
    found = differences(
        cells(
            aiortc_aiortc=result(viewer_pair=(candidate("prflx"), candidate("relay", "udp"))),
            chromium_aiortc=result(viewer_pair=(candidate("relay", "udp"), candidate("prflx"))),
            chromium_chromium=result(viewer_pair=(candidate("prflx"), candidate("relay", "udp"))),
        )
    )
    assert {d["combo"] for d in found} == {"chromium/aiortc"}
    assert {d["field"]: (d["value"], d["baseline"]) for d in found} == {
        "selected.viewer.local": ("relay", "prflx"),
        "selected.viewer.remote": ("prflx", "relay"),
        "selected.viewer.relay_protocol": ("udp", None),
        "selected.viewer.remote_relay_protocol": (None, "udp"),
    }
    assert all(d["against"] == "aiortc/aiortc" for d in found)


def test_only_the_relay_protocol_can_differ() -> None:
    found = differences(
        cells(
            aiortc_aiortc=result(viewer_pair=(candidate("relay", "udp"), candidate("srflx"))),
            chromium_chromium=result(viewer_pair=(candidate("relay", "tcp"), candidate("srflx"))),
        )
    )
    assert [(d["field"], d["value"], d["baseline"]) for d in found] == [
        ("selected.viewer.relay_protocol", "tcp", "udp")
    ]


def test_a_different_outcome_is_one_difference_not_a_pair_of_them() -> None:
    found = differences(cells(aiortc_aiortc=result(), chromium_chromium=result("failed")))
    assert found == [
        {
            "combo": "chromium/chromium",
            "field": "outcome",
            "value": "failed",
            "baseline": "connected",
            "against": "aiortc/aiortc",
        }
    ]


def test_an_error_cell_differs_in_outcome() -> None:
    row = {"aiortc/aiortc": summarize(result()), "chromium/aiortc": summarize(None, "boom")}
    assert [(d["field"], d["value"]) for d in differences(row)] == [("outcome", "error")]
    assert differences({}) == []


def sample_document() -> dict[str, Any]:
    combos = combos_for(["aiortc", "chromium"])
    relayed = (candidate("prflx"), candidate("relay", "udp"))
    rows = [
        scenario_row(
            "home-nat-both",
            {c.name: summarize(result(software=(AIORTC, CHROMIUM)), exit_status=0) for c in combos},
        ),
        scenario_row(
            "symmetric-both",
            {
                "aiortc/aiortc": summarize(result(viewer_pair=relayed), exit_status=0),
                "chromium/chromium": summarize(result("failed"), exit_status=1),
                "chromium/aiortc": summarize(
                    result(
                        viewer_pair=(candidate("relay", "udp"), candidate("prflx")),
                        failed_check="host -> host/srflx pairs fail",
                    ),
                    exit_status=1,
                ),
                "aiortc/chromium": summarize(None, "error: lab failed", exit_status=3),
            },
        ),
    ]
    return compare_document(combos, rows, wall_s=12.5)


def test_the_document_is_json_and_describes_itself() -> None:
    document = json.loads(json.dumps(sample_document()))
    assert document["baseline"] == "aiortc/aiortc"
    assert document["combos"][2] == {
        "name": "chromium/aiortc",
        "viewer": "chromium",
        "master": "aiortc",
    }
    assert [row["scenario"] for row in document["scenarios"]] == ["home-nat-both", "symmetric-both"]
    for row in document["scenarios"]:
        assert list(row["cells"]) == [c["name"] for c in document["combos"]]
        for cell in row["cells"].values():
            assert set(cell) == CELL_KEYS
    assert document["scenarios"][0]["differences"] == []
    assert {d["combo"] for d in document["scenarios"][1]["differences"]} == {
        "chromium/chromium",
        "chromium/aiortc",
        "aiortc/chromium",
    }


def test_the_table_has_a_column_per_combination_and_highlights_differences() -> None:
    document = sample_document()
    console = Console(file=io.StringIO(), width=200, record=True, color_system="truecolor")
    console.print(render_table(document))
    text = console.export_text(styles=False, clear=False)
    header = next(line for line in text.splitlines() if "┃ scenario" in line)
    for name in ("aiortc/aiortc", "chromium/chromium", "chromium/aiortc", "aiortc/chromium"):
        assert name in header
    assert "connected 0.40 s" in text and "relay/udp->prflx" in text and "error" in text
    styled = console.export_text(styles=True)
    assert "\x1b[1;33mrelay/udp->prflx" in styled  # the differing pair, bold yellow
    assert "\x1b[1;33mfailed" in styled
    assert "0.40 s !" in text  # chromium/aiortc: an expectation did not hold


def test_the_report_lists_differences_in_words_per_scenario() -> None:
    document = sample_document()
    assert describe_differences(document["scenarios"][1]) == [
        "chromium/chromium: failed (aiortc/aiortc: connected)",
        "chromium/aiortc: relay/udp->prflx (aiortc/aiortc: prflx->relay/udp)",
        "aiortc/chromium: error (aiortc/aiortc: connected)",
    ]
    lines = report_lines(document)
    assert lines[0] == "8 runs in 12.5 s; software: aiortc 1.16.0, chromium 156.0.8078.114"
    assert "  home-nat-both: none" in lines
    assert any(line.startswith("  symmetric-both: chromium/chromium: failed") for line in lines)
    assert lines[-3:] == [
        "error: symmetric-both aiortc/chromium: error: lab failed",
        "expectation not met: symmetric-both chromium/chromium: outcome is connected",
        "expectation not met: symmetric-both chromium/aiortc: host -> host/srflx pairs fail",
    ]


def test_exit_status_is_about_runs_not_differences() -> None:
    document = sample_document()
    assert exit_status(document["scenarios"][:1]) == 0
    assert exit_status(document["scenarios"]) == 3  # one run left no result
    turned_away = scenario_row("x", {"aiortc/aiortc": summarize(None, "no coturn", 2)})
    assert exit_status([turned_away]) == 2


def test_unknown_scenario_and_agent_are_bad_input_before_root_is_needed() -> None:
    from typer.testing import CliRunner

    from lab.commands import app

    unknown = CliRunner().invoke(app, ["compare", "no-such-scenario"])
    assert unknown.exit_code == 2 and "unknown scenario 'no-such-scenario'" in unknown.output
    agent = CliRunner().invoke(app, ["compare", "home-nat-both", "--agents", "aiortc,safari"])
    assert agent.exit_code == 2 and "--agents: unknown agent 'safari'" in agent.output
    matrix = CliRunner().invoke(app, ["matrix", "--nat", "open", "--viewer", "safari"])
    assert matrix.exit_code == 2 and "--viewer: unknown agent 'safari'" in matrix.output


def test_runs_are_counted_by_the_sweep_one_line_each_when_not_on_a_terminal() -> None:
    def run(scenario: str, combo: Combo, extra: list[str]) -> dict[str, Any]:
        if combo.viewer == "chromium":
            return summarize(None, "no browser", 3)
        return summarize(result(failed_check="viewer's selected local candidate is relay"))

    output = io.StringIO()
    combos = [Combo("aiortc", "aiortc"), Combo("chromium", "aiortc")]
    with Sweep("compare", 4, Console(file=output, width=300)) as sweep:
        rows = run_all(["a", "b"], combos, [], 2, sweep, run=run)
    assert [row["scenario"] for row in rows] == ["a", "b"]
    lines = output.getvalue().splitlines()
    assert len(lines) == 4 and sweep.failed == 4 and sweep.running == 0
    assert any(line.endswith("a chromium/aiortc: FAILED error (no browser)") for line in lines)
    assert any(
        "a aiortc/aiortc: FAILED connected srflx->srflx (expectations not met)" in line
        for line in lines
    )
