"""Scenario and topology files: schema validation and cross-checks name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.core.documents import field_path, schema_errors
from lab.core.errors import LabInputError
from lab.network.topology import load_topology
from lab.scenario.scenario import bundled_scenarios, load_scenario

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, document: object) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return path


def scenario_document() -> dict:
    return yaml.safe_load((ROOT / "scenarios" / "enterprise-firewall.yaml").read_text())


@pytest.mark.parametrize("path", bundled_scenarios(), ids=lambda p: p.stem)
def test_every_bundled_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path.stem)
    assert scenario.name == path.stem
    assert scenario.peers["viewer"].host != scenario.peers["master"].host


def test_scenario_by_path_and_by_name_are_the_same() -> None:
    by_name = load_scenario("enterprise-firewall")
    by_path = load_scenario(str(ROOT / "scenarios" / "enterprise-firewall.yaml"))
    assert by_name.resolved() == by_path.resolved()


def test_unknown_scenario_names_the_bundled_ones() -> None:
    with pytest.raises(LabInputError, match="unknown scenario 'no-such-scenario'.*enterprise"):
        load_scenario("no-such-scenario")


def test_schema_violation_names_file_and_field(tmp_path: Path) -> None:
    document = scenario_document()
    document["peers"]["viewer"]["mode"] = "sideways"
    path = write(tmp_path, "bad.yaml", document)
    with pytest.raises(LabInputError) as error:
        load_scenario(str(path))
    message = str(error.value)
    assert str(path) in message and "peers.viewer.mode" in message and "sideways" in message


def test_unknown_field_is_reported(tmp_path: Path) -> None:
    document = scenario_document()
    document["expect"]["outcome_typo"] = "connected"
    path = write(tmp_path, "bad.yaml", document)
    with pytest.raises(LabInputError, match="expect: unknown field"):
        load_scenario(str(path))


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\npeers: [\n")
    with pytest.raises(LabInputError, match=r"broken.yaml: line \d+: invalid YAML"):
        load_scenario(str(path))


def test_peer_on_a_missing_node_is_refused(tmp_path: Path) -> None:
    document = scenario_document()
    document["topology"] = str(ROOT / "topologies" / "office-and-home.yaml")
    document["peers"]["master"]["host"] = "laptop"
    path = write(tmp_path, "bad.yaml", document)
    with pytest.raises(LabInputError, match="peers.master.host: no node 'laptop'"):
        load_scenario(str(path))


def test_peer_on_a_router_is_refused(tmp_path: Path) -> None:
    document = scenario_document()
    document["topology"] = str(ROOT / "topologies" / "office-and-home.yaml")
    document["peers"]["master"]["host"] = "internet"
    path = write(tmp_path, "bad.yaml", document)
    with pytest.raises(LabInputError, match="'internet' is a router, expected peer"):
        load_scenario(str(path))


def test_node_names_in_ice_urls_resolve_to_addresses() -> None:
    scenario = load_scenario("enterprise-firewall")
    urls = [u for s in scenario.ice_servers for u in s.urls]
    assert "stun:203.0.113.10:3478" in urls
    assert "turns:203.0.113.10:443?transport=tcp" in urls


def test_addresses_outside_the_lab_ranges_are_refused(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "topologies" / "office-and-home.yaml").read_text())
    document["links"][4]["addresses"][0] = "8.8.8.8/28"
    path = write(tmp_path, "topo.yaml", document)
    with pytest.raises(LabInputError, match=r"links\[4\].addresses\[0\]: 8.8.8.8 is outside"):
        load_topology(str(path))


def test_gateway_must_be_on_a_link(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "topologies" / "office-and-home.yaml").read_text())
    document["nodes"]["viewer"]["gateway"] = "10.99.0.1"
    path = write(tmp_path, "topo.yaml", document)
    with pytest.raises(LabInputError, match="nodes.viewer.gateway: 10.99.0.1 is on none"):
        load_topology(str(path))


def test_field_path_rendering() -> None:
    assert field_path(["links", 2, "addresses"]) == "links[2].addresses"
    assert field_path([]) == "(top level)"


def test_result_schema_requires_the_fixed_fields() -> None:
    errors = schema_errors({"scenario": "x"}, "result")
    assert errors and "required" in errors[0]


def _both_validators(document: object, kind: str) -> tuple[bool, bool]:
    """Validity by the fast path (jsonschema-rs) and by jsonschema itself."""
    import jsonschema

    from lab.core.documents import _fast_validator, load_schema

    slow = jsonschema.Draft202012Validator(load_schema(kind)).is_valid(document)
    return _fast_validator(kind).is_valid(document), slow


@pytest.mark.parametrize(
    "path",
    [*bundled_scenarios(), *sorted((ROOT / "topologies").glob("*.yaml"))],
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_fast_validation_agrees_on_every_bundled_document(path: Path) -> None:
    """A document the fast path accepts is never one jsonschema would reject: the fast
    path's yes skips jsonschema, whose errors are the ones users read."""
    kind = "scenario" if path.parent.name == "scenarios" else "topology"
    assert _both_validators(yaml.safe_load(path.read_text()), kind) == (True, True)


@pytest.mark.parametrize(
    "change",
    [
        {"peers": None},
        {"expect": {"outcome": "maybe"}},
        {"unknown_field": 1},
        {"timing": 3},
    ],
    ids=["peers-null", "bad-outcome", "unknown-field", "timing-type"],
)
def test_fast_validation_rejects_what_jsonschema_rejects(change: dict) -> None:
    document = scenario_document() | change
    assert _both_validators(document, "scenario") == (False, False)
    assert schema_errors(document, "scenario")  # and the message comes from jsonschema
