"""scripts/vm-check.sh's parts that can be checked without booting a VM.

The check itself boots one (`make vm-check`, run by .ci/run where /dev/kvm works); here: the
result checker it trusts, the names it cleans up by, and how `make` and CI reach it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VM_CHECK = REPO / "scripts" / "vm-check.sh"
BOX_VAGRANTFILE = REPO / "scripts" / "vm" / "box.Vagrantfile"
CHECK_RESULT = REPO / "scripts" / "vm" / "check_result.py"


def _load_check_result():
    spec = importlib.util.spec_from_file_location("check_result", CHECK_RESULT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_result = _load_check_result()


def _result(agent: str = "chromium", **changes: object) -> dict:
    pair = {
        "local": {"type": "srflx", "protocol": "udp", "address": "198.51.100.2", "port": 4000},
        "remote": {"type": "srflx", "protocol": "udp", "address": "203.0.113.2", "port": 5000},
        "rtt_ms": 1.2,
    }
    result = {
        "scenario": "home-nat-both",
        "outcome": "connected",
        "expectations_met": True,
        "expectations": [{"check": "outcome", "met": True}],
        "peers": {"viewer": {"agent": agent}, "master": {"agent": "aiortc"}},
        "selected": {"viewer": pair, "master": pair},
    }
    result.update(changes)
    return result


def test_a_connected_run_of_the_agent_passes() -> None:
    assert check_result.problems(_result(), "chromium") == []


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"outcome": "failed"}, "outcome"),
        (
            {"expectations_met": False, "expectations": [{"check": "selected", "met": False}]},
            "selected",
        ),
        ({"selected": {"viewer": None, "master": None}}, "no candidate pair"),
        ({"peers": {"viewer": {"agent": "aiortc"}, "master": {"agent": "aiortc"}}}, "'aiortc'"),
    ],
)
def test_a_wrong_result_fails_naming_what(changes: dict, complaint: str) -> None:
    found = check_result.problems(_result(**changes), "chromium")
    assert len(found) == 1 and complaint in found[0], found


def test_an_empty_copy_fails(tmp_path: Path) -> None:
    """A copy cut short (the VM died mid-`cat`) is not a result: the check must fail."""
    empty = tmp_path / "r.json"
    empty.write_text("")
    result = subprocess.run(
        [sys.executable, str(CHECK_RESULT), str(empty), "chromium"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "not a result document" in result.stderr


def test_the_checker_prints_the_run_on_success(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_result("kvs-js")))
    result = subprocess.run(
        [sys.executable, str(CHECK_RESULT), str(path), "kvs-js"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "home-nat-both: connected, viewer kvs-js" in result.stdout


def test_vm_check_scripts_parse() -> None:
    for script in (VM_CHECK, *sorted((REPO / "scripts" / "vm").glob("*.sh"))):
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, (script, result.stderr)


def test_the_box_names_what_vm_check_cleans_up() -> None:
    """vm-check removes and verifies libvirt objects by the names the box gives them."""
    name = re.search(r"^NAME=(\S+)", VM_CHECK.read_text(), re.MULTILINE).group(1)
    box = BOX_VAGRANTFILE.read_text()
    for setting in ("default_prefix", "storage_pool_name", "management_network_name"):
        assert re.search(rf'lv\.{setting} = "{re.escape(name)}-?"', box), setting
    subnet = re.search(r"^VM_NET=(\S+)", VM_CHECK.read_text(), re.MULTILINE).group(1)
    assert f'management_network_address = "{subnet}"' in box


def test_vm_check_refuses_unknown_arguments() -> None:
    result = subprocess.run(
        ["bash", str(VM_CHECK), "--bogus"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_make_vm_check_runs_the_script() -> None:
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(REPO), "vm-check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "bash scripts/vm-check.sh"


def test_ci_runs_vm_check_only_where_kvm_works_and_says_when_it_skips() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    if "vm-check" not in ci:
        pytest.skip(".ci/run does not run make vm-check")
    assert "scripts/vm-check.sh --kvm-works" in ci
    assert re.search(r"echo .*skip", ci, re.IGNORECASE), ci


def test_every_lab_run_in_the_vm_gets_the_measured_slowdown() -> None:
    """The VM's CPU may be emulated: each run of the lab in it carries ICE_LAB_SLOWDOWN,
    measured by the same workload here and in the VM before the first run."""
    script = VM_CHECK.read_text()
    runs = re.findall(r'in_vm "[^"]*(?:make run|lab run)[^"]*"', script)
    assert len(runs) >= 2, runs
    assert all("ICE_LAB_SLOWDOWN=${SLOWDOWN} " in run for run in runs), runs
    measured = script.index("step --here \"the VM's CPU against this host's\" measure_slowdown")
    assert measured < script.index('in_vm "ICE_LAB_SLOWDOWN=${SLOWDOWN} make run"')
    assert "python3 -S -m lab.core.slowdown" in script
