"""Issue 5 on real runs: the mock STUN/TURN server in place of coturn, and the request log
in the result (root). Each fault scenario runs in test_scenario_library.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import run_scenario

pytestmark = pytest.mark.root

INTERCHANGEABLE = ["home-nat-both", "symmetric-viewer", "enterprise-firewall-kvs"]


def selected_types(result: dict) -> dict[str, tuple[str, str] | None]:
    return {
        role: (pair["local"]["type"], pair["remote"]["type"]) if pair else None
        for role, pair in result["selected"].items()
    }


def test_enterprise_firewall_with_the_mock_relays_over_tls_443(tmp_path: Path) -> None:
    status, result, output = run_scenario(tmp_path, "enterprise-firewall", "--servers", "mock")
    assert status == 0, output
    selected = result["selected"]["viewer"]
    assert selected["local"]["type"] == "relay"
    assert selected["local"]["relay_protocol"] == "tls" and ":443" in selected["local"]["server"]
    assert result["servers"]["turn"]["software"] == "mock"
    methods = {
        (r["transport"], r["method"], r["outcome"]) for r in result["servers"]["turn"]["requests"]
    }
    assert ("tls", "allocate", "success") in methods


def test_forbidden_private_peers_shows_403_in_pairs_and_request_log(tmp_path: Path) -> None:
    status, result, output = run_scenario(tmp_path, "turn-forbidden-private-peers-mock")
    assert status == 0, output
    refused = [p for p in result["pairs"] if (p["failure"] or {}).get("reason") == "turn_error"]
    assert refused
    for pair in refused:
        assert pair["local"]["type"] == "relay"
        assert pair["remote"]["address"].startswith("192.168.")
        assert pair["failure"]["code"] == 403 and pair["failure"]["phrase"] == "Forbidden IP"
    # Pairs to public addresses still work: the guide's "benign" 403.
    assert any(p["state"] == "succeeded" and p["local"]["type"] == "relay" for p in result["pairs"])
    log = result["servers"]["turn"]["requests"]
    forbidden = [r for r in log if r["error_code"] == 403]
    assert forbidden and all(r["fault"] == "forbid_peers" for r in forbidden)
    assert all(r["method"] in ("channel_bind", "create_permission") for r in forbidden)
    assert all(r["peer"].startswith("192.168.") for r in forbidden)


def test_coturn_request_log_is_parsed_into_the_result(tmp_path: Path) -> None:
    _, result, _ = run_scenario(tmp_path, "turn-forbidden-private-peers")
    log = result["servers"]["turn"]["requests"]
    assert result["servers"]["turn"]["software"] == "coturn"
    assert any(r["method"] == "allocate" and r["outcome"] == "success" for r in log)
    assert any(r["method"] == "channel_bind" and r["error_code"] == 403 for r in log)


@pytest.mark.parametrize("name", INTERCHANGEABLE)
def test_mock_and_coturn_give_the_same_outcome_and_selected_types(
    tmp_path: Path, name: str
) -> None:
    _, with_coturn, out_coturn = run_scenario(tmp_path, name, "--servers", "coturn")
    _, with_mock, out_mock = run_scenario(tmp_path, name, "--servers", "mock")
    assert with_coturn["outcome"] == with_mock["outcome"], out_coturn + out_mock
    assert selected_types(with_coturn) == selected_types(with_mock)
    assert with_coturn["expectations_met"] and with_mock["expectations_met"]
